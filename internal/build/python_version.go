package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// How a Python pipeline's wheel gets its content version, in the build's copy
// of the sources (labelPython):
//
//  1. pyproject.toml declares a static [project] version (PEP 621, any build
//     backend) or a [tool.poetry] version: the copy's version line is
//     rewritten, "1.0.0" → "1.0.0+sl.3f9a1c2e".
//  2. otherwise, when the build backend is setuptools (named in
//     [build-system], or no pyproject.toml at all: setup.py / setup.cfg), the
//     copy's setup.cfg gets `[egg_info] tag_build = +sl.3f9a1c2e`, which
//     setuptools appends to the version however it is computed (setup.py,
//     setup.cfg's version = attr: …, [tool.setuptools.dynamic]).
//  3. otherwise (a dynamic version with another backend) the build fails,
//     naming pyproject.toml's line and what to change.
//
// After the build, the wheel's file name must show the label (checkWheelLabel).

// tomlTable matches a TOML table header: [name] or [[name]].
var tomlTable = regexp.MustCompile(`^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$`)

// tomlString matches `key = "value"` or `key = 'value'`, keeping what surrounds the value.
func tomlString(key string) *regexp.Regexp {
	return regexp.MustCompile(`^(\s*` + regexp.QuoteMeta(key) + `\s*=\s*)("([^"\\]*)"|'([^']*)')(.*)$`)
}

var (
	versionLine = tomlString("version")
	backendLine = tomlString("build-backend")
	dynamicKey  = regexp.MustCompile(`^\s*dynamic\s*=`)
)

// pyproject is what labelPython reads from pyproject.toml.
type pyproject struct {
	lines []string
	// versionAt is the index of the static version line ([project], else
	// [tool.poetry]); -1 if none.
	versionAt int
	// dynamicAt is the index of [project]'s dynamic key when it lists
	// "version"; -1 if not.
	dynamicAt int
	backend   string
}

func readPyproject(data string) pyproject {
	p := pyproject{lines: strings.Split(data, "\n"), versionAt: -1, dynamicAt: -1}
	table, poetryVersion := "", -1
	for i := 0; i < len(p.lines); i++ {
		line := p.lines[i]
		if m := tomlTable.FindStringSubmatch(line); m != nil {
			table = strings.ReplaceAll(m[1], " ", "")
			continue
		}
		switch table {
		case "project":
			if versionLine.MatchString(line) {
				p.versionAt = i
			}
			if dynamicKey.MatchString(line) {
				// The array may span lines up to its closing bracket.
				j, text := i, line
				for !strings.Contains(stripComment(text), "]") && j+1 < len(p.lines) {
					j++
					text += "\n" + p.lines[j]
				}
				if strings.Contains(text, `"version"`) || strings.Contains(text, `'version'`) {
					p.dynamicAt = i
				}
				i = j
			}
		case "tool.poetry":
			if versionLine.MatchString(line) {
				poetryVersion = i
			}
		case "build-system":
			if m := backendLine.FindStringSubmatch(line); m != nil {
				p.backend = m[3] + m[4]
			}
		}
	}
	if p.versionAt < 0 {
		p.versionAt = poetryVersion
	}
	return p
}

func stripComment(s string) string {
	if i := strings.Index(s, "#"); i >= 0 {
		return s[:i]
	}
	return s
}

// setuptoolsBackend reports whether a build-backend value is setuptools'.
func setuptoolsBackend(backend string) bool {
	return backend == "" || backend == "setuptools.build_meta" || backend == "setuptools.build_meta:__legacy__"
}

// labelPython writes the content label into the Python project at dir (the
// build's copy of the repository's directory repoDir, which messages name) and
// says what it changed, for the build log.
func labelPython(dir, repoDir, label string) (string, error) {
	shown := func(name string) string { return path.Join(repoDir, name) }
	file := filepath.Join(dir, "pyproject.toml")
	data, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read pyproject.toml: %w", err)
	}
	p := readPyproject(string(data))
	if p.versionAt >= 0 {
		m := versionLine.FindStringSubmatch(p.lines[p.versionAt])
		old, quote := m[3]+m[4], m[2][:1]
		if old == "" {
			return "", &labelError{fmt.Sprintf("%s:%d: the version is empty", shown("pyproject.toml"), p.versionAt+1),
				`set it, e.g. version = "1.0.0", commit and push`}
		}
		labelled := WithLabel(old, label)
		p.lines[p.versionAt] = m[1] + quote + labelled + quote + m[5]
		if err := os.WriteFile(file, []byte(strings.Join(p.lines, "\n")), 0o644); err != nil {
			return "", fmt.Errorf("write pyproject.toml: %w", err)
		}
		return fmt.Sprintf("%s:%d: version %s → %s", shown("pyproject.toml"), p.versionAt+1, old, labelled), nil
	}
	if !setuptoolsBackend(p.backend) {
		where := shown("pyproject.toml")
		if p.dynamicAt >= 0 {
			where = fmt.Sprintf("%s:%d", where, p.dynamicAt+1)
		}
		return "", &labelError{fmt.Sprintf("%s: the version is computed by the build backend %s, to which Shipline cannot add the content version (+%s) that makes each build's wheel distinct on clusters",
			where, p.backend, label),
			`declare a static version in [project] (version = "1.0.0"; Shipline adds the label in the copy it builds, never in the repository), commit and push`}
	}
	return tagBuild(dir, shown("setup.cfg"), label)
}

// tagBuild sets setuptools' egg_info tag_build in the copy's setup.cfg.
func tagBuild(dir, shown, label string) (string, error) {
	file := filepath.Join(dir, "setup.cfg")
	data, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read setup.cfg: %w", err)
	}
	lines := strings.Split(string(data), "\n")
	setting := "tag_build = +" + label
	section, at := "", -1
	for i, line := range lines {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			section = strings.TrimSpace(t[1 : len(t)-1])
			if section == "egg_info" {
				at = i
			}
			continue
		}
		if k, _, ok := strings.Cut(t, "="); ok && section == "egg_info" && strings.ReplaceAll(strings.TrimSpace(k), "-", "_") == "tag_build" {
			return "", &labelError{fmt.Sprintf("%s:%d sets [egg_info] tag_build, which Shipline sets to add the content version (+%s)", shown, i+1, label),
				"remove the line, commit and push"}
		}
	}
	if at >= 0 {
		lines = append(lines[:at+1], append([]string{setting}, lines[at+1:]...)...)
	} else {
		if len(data) > 0 && !strings.HasSuffix(string(data), "\n") {
			lines[len(lines)-1] += "\n"
		}
		lines = append(lines, "[egg_info]", setting, "")
	}
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return "", fmt.Errorf("write setup.cfg: %w", err)
	}
	return shown + ": [egg_info] tag_build = +" + label + " (setuptools adds it to the version)", nil
}

// labelError says why a project cannot be labelled, and what to do.
type labelError struct{ what, fix string }

func (e *labelError) Error() string { return e.what + ": " + e.fix }

// wheelVersion returns the version part of a wheel's file name
// ({name}-{version}(-{build})?-{python}-{abi}-{platform}.whl).
func wheelVersion(file string) string {
	parts := strings.Split(strings.TrimSuffix(filepath.Base(file), ".whl"), "-")
	if len(parts) < 5 {
		return ""
	}
	return parts[1]
}

// checkWheelLabel fails a build whose wheel does not carry the label.
func (s *session) checkWheelLabel(wheel, label string) error {
	if s.p.Version != "" {
		return s.checkWheelVersion(wheel)
	}
	v := wheelVersion(wheel)
	if hasLabel(v, label) {
		s.r.logf("content version: %s", v)
		return nil
	}
	return s.fail(ErrBuildFailed, outcome{}, fmt.Sprintf("the wheel %s has version %q, which does not end in the content label +%s", filepath.Base(wheel), v, label),
		"Shipline sets the label in its copy of pyproject.toml ([project] version) or setup.cfg ([egg_info] tag_build); "+
			"make sure nothing changes the version after it (setup.cfg's tag_build or tag_date, a version plugin), or declare a static version in [project], commit and push")
}
