package build

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Libraries (manifest.Library, built as a Pipeline with Version set) are
// versioned with the release, not with the content label: a package index
// holds common 1.2.0, never 1.2.0+sl.3f9a1c2e (PyPI refuses local versions,
// and pipelines pin the release's version). The release's version replaces
// the declared one in the build's copy of the sources:
//
//   - python: pyproject.toml's static [project] (or [tool.poetry]) version
//     becomes the release's, and the wheel must carry exactly that version;
//   - jar: Implementation-Version becomes the release's, and the file is
//     named <library>-<version>.jar (Maven's artifactId-version.jar).
//
// The version is part of the cache key (Key), so each release builds its
// libraries once, with its own version.

// versionPython labels a pipeline's copy, or sets a library's version.
func (s *session) versionPython(label string) (string, error) {
	if s.p.Version == "" {
		return labelPython(s.src, s.p.Path, label)
	}
	shown := path.Join(s.p.Path, "pyproject.toml")
	file := filepath.Join(s.src, "pyproject.toml")
	data, err := os.ReadFile(file)
	if err != nil {
		return "", &labelError{fmt.Sprintf("%s cannot be read (%v): a library is built from its pyproject.toml", shown, err),
			`add pyproject.toml with [project] name and version = "0.0.0" (the release sets the version), commit and push`}
	}
	p := readPyproject(string(data))
	if p.versionAt < 0 {
		return "", &labelError{shown + ": no static [project] version, which the release replaces with its own (" + s.p.Version + ")",
			`declare version = "0.0.0" under [project], commit and push`}
	}
	m := versionLine.FindStringSubmatch(p.lines[p.versionAt])
	old, quote := m[3]+m[4], m[2][:1]
	p.lines[p.versionAt] = m[1] + quote + s.p.Version + quote + m[5]
	if err := os.WriteFile(file, []byte(strings.Join(p.lines, "\n")), 0o644); err != nil {
		return "", fmt.Errorf("write pyproject.toml: %w", err)
	}
	return fmt.Sprintf("%s:%d: library version %s → %s (the release's)", shown, p.versionAt+1, old, s.p.Version), nil
}

// checkWheelVersion fails a library build whose wheel does not carry the
// release's version.
func (s *session) checkWheelVersion(wheel string) error {
	if v := wheelVersion(wheel); v != s.p.Version {
		return s.fail(ErrBuildFailed, outcome{}, fmt.Sprintf("the wheel %s has version %q, not the release's %s", filepath.Base(wheel), v, s.p.Version),
			"Shipline sets the version in its copy of pyproject.toml; make sure nothing changes it after (a version plugin, setup.py's version=), commit and push")
	}
	s.r.logf("library version: %s", s.p.Version)
	return nil
}

// withUsedLibraries exports the sources of the libraries the pipeline uses
// (Pipeline.Uses, at the build's commit) into the build's directory and
// returns pythonPath with their import roots (<library>/src, else the
// library's directory) appended, so the pipeline's tests import them offline,
// at the commit being built, as the release publishes them. Their trees are
// part of the cache key. Without an exporter (a build outside a release or
// deploy) the libraries are left out.
func (s *session) withUsedLibraries(ctx context.Context, pythonPath string) (string, error) {
	if len(s.p.Uses) == 0 || s.exportLibrary == nil {
		return pythonPath, nil
	}
	parts := []string{pythonPath}
	for _, u := range s.p.Uses {
		dir := filepath.Join(s.work, "uses", u.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("create build directory: %w", err)
		}
		if err := s.exportLibrary(ctx, u.Path, dir); err != nil {
			s.r.logf("export of library %s (%s) failed: %v", u.Name, u.Path, err)
			return "", fmt.Errorf("export library %s: %w", u.Path, err)
		}
		root := dir
		if isDir(filepath.Join(dir, "src")) {
			root = filepath.Join(dir, "src")
		}
		s.r.logf("tests import library %s from %s (tree %s)", u.Name, u.Path, u.Tree)
		parts = append(parts, root)
	}
	return strings.Join(parts, string(os.PathListSeparator)), nil
}
