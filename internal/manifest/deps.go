package manifest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/shipline/shipline/internal/diag"
)

// Dependencies of pipelines on the project's libraries. A pipeline declares
// them where its build tool reads them: pyproject.toml ([project]
// dependencies, or [tool.poetry.dependencies]), setup.py (install_requires)
// or pom.xml (<dependency> with the library's group as groupId and its name as
// artifactId). A dependency pinned to one version (common==1.2.0, or a Maven
// <version>) must be published on the library's package index before the
// pipeline is released, unless the release that builds the pipeline is the one
// publishing it (the same version). Other specifiers (>=, ~=, ranges) are left
// to pip and Maven.

// LibraryDep is one dependency of a pipeline on a library of the project.
type LibraryDep struct {
	Pipeline string `json:"pipeline"`
	Library  string `json:"library"`
	// Version is the pinned version; empty when the specifier pins none.
	Version string `json:"version,omitempty"`
	// Spec is the dependency as written.
	Spec string `json:"spec"`
	// File and Line are where it is written (File relative to the project root).
	File string `json:"file"`
	Line int    `json:"line"`
}

// Where renders file:line.
func (d LibraryDep) Where() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// LibraryDeps reads the dependencies of every pipeline on the project's
// libraries, in pipeline order then file order. A file that cannot be read is
// skipped (Load reports the pipeline's directory).
func (m *Manifest) LibraryDeps(fsys fs.FS) []LibraryDep {
	if len(m.Libraries) == 0 {
		return nil
	}
	byName := map[string]Library{}
	for _, l := range m.Libraries {
		byName[NormalizeName(l.Name)] = l
	}
	var deps []LibraryDep
	for _, name := range sortedKeys(m.Pipelines) {
		p := m.Pipelines[name]
		if p.Path == "" || problem(p.Path) {
			continue
		}
		for _, f := range []string{"pyproject.toml", "setup.py", "pom.xml"} {
			file := p.Path + "/" + f
			data, err := ReadFile(fsys, file)
			if err != nil {
				continue
			}
			var reqs []Requirement
			switch f {
			case "pyproject.toml":
				reqs = ReadPyproject(string(data)).Dependencies
			case "setup.py":
				reqs = setupRequires(string(data))
			case "pom.xml":
				for _, d := range pomDependencies(data) {
					l, ok := byName[NormalizeName(d.artifact)]
					if ok && l.Language != Python && l.Group == d.group {
						deps = append(deps, LibraryDep{Pipeline: name, Library: l.Name, Version: d.version,
							Spec: d.group + ":" + d.artifact + ":" + d.version, File: file, Line: d.line})
					}
				}
				continue
			}
			for _, r := range reqs {
				l, ok := byName[NormalizeName(r.name)]
				if !ok || l.Language != Python {
					continue
				}
				deps = append(deps, LibraryDep{Pipeline: name, Library: l.Name, Version: r.pinned(), Spec: r.spec, File: file, Line: r.line})
			}
		}
	}
	return deps
}

// setUses records on each pipeline the project's libraries it depends on
// (any specifier), in name order: on a Python pipeline its Python libraries
// (their sources are importable by its tests), on a Java or Scala pipeline
// its JVM libraries (compiled onto its classpath; a library with a build
// command brings the jar that command builds).
func (m *Manifest) setUses(fsys fs.FS) {
	used := map[string]map[string]bool{}
	for _, d := range m.LibraryDeps(fsys) {
		if used[d.Pipeline] == nil {
			used[d.Pipeline] = map[string]bool{}
		}
		used[d.Pipeline][d.Library] = true
	}
	for _, name := range sortedKeys(used) {
		p := m.Pipelines[name]
		p.Uses = nil
		for _, lib := range sortedKeys(used[name]) {
			l := m.Libraries[lib]
			sameKind := (p.Language == Python && l.Language == Python) || (isJVM(p.Language) && isJVM(l.Language))
			if !sameKind || l.Path == "" || problem(l.Path) {
				continue
			}
			u := UsedLibrary{Name: l.Name, Path: l.Path}
			if isJVM(l.Language) {
				u.Build, u.Artifact = l.Build, l.Artifact
			}
			p.Uses = append(p.Uses, u)
		}
		m.Pipelines[name] = p
	}
}

// isJVM reports whether a language builds into a jar.
func isJVM(l Language) bool { return l == Java || l == Scala }

// Published answers whether a library's version is on its package index.
type Published func(l Library, version string) (bool, error)

// CheckLibraryDeps checks that every pinned dependency of a pipeline on a
// library is published on the library's index, or is the version the release
// (release, a tag like v1.2.0; empty outside a release) publishes itself. An
// index that cannot be asked returns the error (the caller decides whether
// that skips the check or retries).
func (m *Manifest) CheckLibraryDeps(deps []LibraryDep, release string, published Published) (diag.List, error) {
	var diags diag.List
	for _, d := range deps {
		l, ok := m.Libraries[d.Library]
		if !ok || d.Version == "" {
			continue
		}
		if release != "" {
			if own, err := l.PackageVersion(release); err == nil && own == d.Version {
				continue // the release publishes it before it tags
			}
		}
		ok, err := published(l, d.Version)
		if err != nil {
			return diags, fmt.Errorf("ask package index %s whether library %s %s is published: %w", l.Index, l.Name, d.Version, err)
		}
		if !ok {
			fix := fmt.Sprintf("release the project at the version that publishes %s %s first (a release publishes its libraries before it tags), or depend on a published version", l.Name, d.Version)
			if release == "" {
				// validate and check do not know which version the commit will be released as.
				fix += fmt.Sprintf("; the release that publishes %s %s itself accepts this pin (this check, outside a release, cannot know the release's version)", l.Name, d.Version)
			}
			diags = append(diags, diag.Errorf(d.File, d.Line, 1, fix,
				"pipeline %q depends on library %s %s (%s), which is not published on package index %q", d.Pipeline, l.Name, d.Version, d.Spec, l.Index))
		}
	}
	return diags, nil
}

// Requirement is one PEP 508 dependency string and its line.
type Requirement struct {
	name, spec string
	specifier  string
	line       int
}

var requirementRE = regexp.MustCompile(`^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*\(?\s*([^;()]*?)\s*\)?\s*(;.*)?$`)

func parseRequirement(s string, line int) (Requirement, bool) {
	m := requirementRE.FindStringSubmatch(s)
	if m == nil {
		return Requirement{}, false
	}
	return Requirement{name: m[1], spec: strings.TrimSpace(s), specifier: strings.ReplaceAll(m[3], " ", ""), line: line}, true
}

// pinned returns the version of an exact pin (==1.2.0, ===1.2.0), else "".
func (r Requirement) pinned() string {
	s := r.specifier
	if strings.Contains(s, ",") || strings.Contains(s, "*") {
		return ""
	}
	for _, op := range []string{"===", "=="} {
		if v, ok := strings.CutPrefix(s, op); ok {
			return v
		}
	}
	return ""
}

// Pyproject is what Shipline reads from a pyproject.toml (1-based lines; 0
// when absent).
type Pyproject struct {
	Name         string
	NameLine     int
	VersionLine  int
	ProjectLine  int
	Dependencies []Requirement
}

var (
	tomlHeader = regexp.MustCompile(`^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$`)
	tomlKeyStr = regexp.MustCompile(`^\s*([A-Za-z0-9_.-]+|"[^"]*")\s*=\s*(?:"([^"\\]*)"|'([^']*)')`)
	tomlKey    = regexp.MustCompile(`^\s*([A-Za-z0-9_-]+)\s*=`)
	tomlQuoted = regexp.MustCompile(`"([^"\\]*)"|'([^']*)'`)
)

// ReadPyproject reads [project] name, version and dependencies, and
// [tool.poetry.dependencies], line by line (the subset of TOML these use).
func ReadPyproject(data string) Pyproject {
	var pp Pyproject
	lines := strings.Split(data, "\n")
	table := ""
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := tomlHeader.FindStringSubmatch(line); m != nil {
			table = strings.ReplaceAll(m[1], " ", "")
			if table == "project" {
				pp.ProjectLine = i + 1
			}
			continue
		}
		switch table {
		case "project":
			if m := tomlKeyStr.FindStringSubmatch(line); m != nil {
				switch m[1] {
				case "name":
					pp.Name, pp.NameLine = m[2]+m[3], i+1
				case "version":
					pp.VersionLine = i + 1
				}
				continue
			}
			if m := tomlKey.FindStringSubmatch(line); m != nil && m[1] == "dependencies" {
				// The array may span lines up to its closing bracket.
				for j := i; j < len(lines); j++ {
					text := lines[j]
					if j == i {
						text = text[strings.Index(text, "=")+1:]
					}
					for _, q := range tomlQuoted.FindAllStringSubmatch(stripTomlComment(text), -1) {
						if r, ok := parseRequirement(q[1]+q[2], j+1); ok {
							pp.Dependencies = append(pp.Dependencies, r)
						}
					}
					if strings.Contains(stripTomlComment(text), "]") {
						i = j
						break
					}
				}
			}
		case "tool.poetry.dependencies":
			if m := tomlKeyStr.FindStringSubmatch(line); m != nil {
				v := m[2] + m[3]
				if v != "" && v[0] >= '0' && v[0] <= '9' {
					v = "==" + v // poetry's bare version is an exact pin
				}
				pp.Dependencies = append(pp.Dependencies, Requirement{name: strings.Trim(m[1], `"`), spec: strings.TrimSpace(line),
					specifier: strings.ReplaceAll(v, " ", ""), line: i + 1})
			}
		}
	}
	return pp
}

func stripTomlComment(s string) string {
	inStr := byte(0)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inStr != 0 && c == inStr:
			inStr = 0
		case inStr == 0 && (c == '"' || c == '\''):
			inStr = c
		case inStr == 0 && c == '#':
			return s[:i]
		}
	}
	return s
}

var (
	installRequires = regexp.MustCompile(`install_requires\s*=\s*\[`)
	pyString        = regexp.MustCompile(`"([^"\\]*)"|'([^']*)'`)
)

// setupRequires reads the string literals of setup.py's install_requires=[…].
func setupRequires(data string) []Requirement {
	loc := installRequires.FindStringIndex(data)
	if loc == nil {
		return nil
	}
	end := strings.Index(data[loc[1]:], "]")
	if end < 0 {
		return nil
	}
	body := data[loc[1] : loc[1]+end]
	line := strings.Count(data[:loc[1]], "\n") + 1
	var reqs []Requirement
	for _, l := range strings.Split(body, "\n") {
		if i := strings.Index(l, "#"); i >= 0 {
			l = l[:i]
		}
		for _, q := range pyString.FindAllStringSubmatch(l, -1) {
			if r, ok := parseRequirement(q[1]+q[2], line); ok {
				reqs = append(reqs, r)
			}
		}
		line++
	}
	return reqs
}

// pomDep is one <dependency> of a pom.xml.
type pomDep struct {
	group, artifact, version string
	line                     int
}

// pomDependencies reads the <dependency> elements of a pom.xml (under
// <dependencies>, <dependencyManagement> included), with the line of each.
func pomDependencies(data []byte) []pomDep {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = false
	var deps []pomDep
	var cur *pomDep
	var field string
	for {
		tok, err := dec.Token()
		if err != nil { // the end, or XML Maven would refuse too: what was read so far
			return deps
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Local == "dependency":
				// The line where the start tag ends.
				cur = &pomDep{line: bytes.Count(data[:dec.InputOffset()], []byte("\n")) + 1}
			case cur != nil:
				field = t.Name.Local
			}
		case xml.CharData:
			if cur == nil {
				continue
			}
			s := strings.TrimSpace(string(t))
			switch field {
			case "groupId":
				cur.group = s
			case "artifactId":
				cur.artifact = s
			case "version":
				cur.version = s
			}
		case xml.EndElement:
			if t.Name.Local == "dependency" && cur != nil {
				if strings.HasPrefix(cur.version, "[") || strings.HasPrefix(cur.version, "(") || strings.Contains(cur.version, "${") {
					cur.version = "" // a range or a property: not a pin Shipline can check
				}
				deps = append(deps, *cur)
				cur = nil
			}
			field = ""
		}
	}
}
