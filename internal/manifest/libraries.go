package manifest

import (
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest/yamlnode"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/version"
)

// Library is a package the project's pipelines share (Prophecy's Gems): a
// Python package built into a wheel, or a Java/Scala library built into a
// jar. A release builds and tests it like a pipeline and publishes it to the
// package index of the platform config it names, never to fabrics.
//
// A library is versioned with the release tag: the release v1.2.0 publishes
// it as 1.2.0 (PEP 440 for Python, e.g. v1.3.0-rc.1 → 1.3.0rc1; Maven keeps
// 1.3.0-rc.1), whatever version its package metadata declares. Its name is
// its distribution name (Python: pip install <name>; a pyproject.toml
// [project] name must be the same, up to PEP 503 normalization) or its Maven
// artifactId (with group: as groupId).
type Library struct {
	Name     string   `json:"name"`
	Path     string   `json:"path"` // slash-separated, relative to the project root, inside it
	Language Language `json:"language"`
	// Index names the package index of the platform config (package_indexes:).
	Index    string `json:"index"`
	Build    string `json:"build,omitempty"`    // custom build command (scala/java)
	Artifact string `json:"artifact,omitempty"` // glob of the built jar, relative to Path
	Test     string `json:"test,omitempty"`     // custom test command
	// Group is the Maven groupId of a Java or Scala library.
	Group string `json:"group,omitempty"`
}

// AsPipeline describes the library's build at a release version (a valid
// release tag): the builder builds it as a pipeline whose artifact carries
// that version.
func (l Library) AsPipeline(release string) (Pipeline, error) {
	v, err := l.PackageVersion(release)
	if err != nil {
		return Pipeline{}, err
	}
	return Pipeline{Name: l.Name, Path: l.Path, Language: l.Language, Build: l.Build, Artifact: l.Artifact, Test: l.Test,
		Version: v, Group: l.Group}, nil
}

// PackageVersion is the version the release publishes the library as.
func (l Library) PackageVersion(release string) (string, error) {
	if l.Language == Python {
		return version.Python(release)
	}
	return version.Maven(release)
}

var libraryKeys = []string{"path", "language", "index", "build", "artifact", "test", "group"}

// groupRE is the rule of Maven groupIds.
var groupRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// libraries decodes the libraries: section.
func (p *parser) libraries(v *yaml.Node) {
	if p.m.Libraries == nil {
		p.m.Libraries = map[string]Library{}
	}
	if yamlnode.IsNull(v) {
		return
	}
	p.Map(v, "libraries", nil, func(name string, k, v *yaml.Node) {
		field := "libraries." + name
		p.setPos(field, k)
		p.checkName(k, name, "library name")
		l := Library{Name: name}
		defer func() { p.m.Libraries[name] = l }()
		p.libraryRefs = append(p.libraryRefs, nameRef{owner: name, name: name, node: k})
		if yamlnode.IsNull(v) {
			p.Errorf(k, fmt.Sprintf("give it path:, language: and index:, e.g. %s: {path: libs/%s, language: python, index: internal}", name, name),
				"library %q has no settings", name)
			return
		}
		var buildNode, artifactNode, groupNode *yaml.Node
		empty := map[string]*yaml.Node{}
		if !p.Map(v, field, libraryKeys, func(key string, kk, vv *yaml.Node) {
			if yamlnode.IsNull(vv) && key != "build" && key != "artifact" {
				empty[key] = kk
				return
			}
			p.setPos(field+"."+key, vv)
			switch key {
			case "path":
				l.Path, _ = p.relPath(vv, field+".path", true)
			case "language":
				l.Language = p.language(vv, field, "library", name)
			case "index":
				if s, ok := p.String(vv, field+".index"); ok {
					l.Index = s
					p.checkName(vv, s, "package index name")
				}
			case "build", "artifact", "test":
				p.buildKey(key, kk, vv, field, buildKeys{&l.Build, &l.Artifact, &l.Test, &buildNode, &artifactNode})
			case "group":
				groupNode = kk
				if s, ok := p.String(vv, field+".group"); ok {
					l.Group = s
					if !groupRE.MatchString(s) {
						p.Errorf(vv, "use a Maven groupId: dot-separated parts of letters, digits, _ and -, e.g. com.example.data", "invalid group %q for library %q", s, name)
					}
				}
			}
		}) {
			return
		}
		for _, req := range []struct{ key, fix string }{
			{"path", fmt.Sprintf("add path: libs/%s (the library's directory, relative to the project root)", name)},
			{"language", "add language: python, scala or java"},
			{"index", "add index: <name> (a package index of the platform config's package_indexes:)"},
		} {
			if _, ok := p.m.pos(field + "." + req.key); !ok {
				p.missing(k, empty[req.key], req.fix, "library", name, req.key)
			}
		}
		switch {
		case l.Language == Python && groupNode != nil:
			p.Errorf(groupNode, "remove group: a Python library is published under its name", "python library %q cannot set group", name)
		case (l.Language == Java || l.Language == Scala) && l.Group == "" && empty["group"] == nil && groupNode == nil:
			p.Errorf(k, "add group: <groupId>, e.g. group: com.example.data (the library is published as <group>:"+name+")",
				"%s library %q has no group", l.Language, name)
		}
		if empty["group"] != nil {
			p.Errorf(empty["group"], "give the Maven groupId, e.g. com.example.data", "library %q: group is empty", name)
		}
		p.buildRule(k, "library", name, Pipeline{Language: l.Language}, buildNode, artifactNode)
	})
}

// checkLibraries checks each library's directory and, for a Python library,
// its pyproject.toml: it must exist, name the library (PEP 503 normalized) and
// declare a static version, which the release replaces with its own.
func (m *Manifest) checkLibraries(fsys fs.FS) diag.List {
	var diags diag.List
	for _, name := range m.byPosition("libraries.", sortedKeys(m.Libraries)) {
		l := m.Libraries[name]
		if l.Path == "" || problem(l.Path) {
			continue
		}
		field := "libraries." + name + ".path"
		if d := m.checkDir(fsys, field, "library", name, l.Path); d != nil {
			diags = append(diags, *d)
			continue
		}
		if l.Language == Python {
			diags = append(diags, m.checkLibraryPyproject(fsys, l)...)
		}
	}
	return diags
}

// checkLibraryPyproject checks a Python library's pyproject.toml.
func (m *Manifest) checkLibraryPyproject(fsys fs.FS, l Library) diag.List {
	file := l.Path + "/pyproject.toml"
	data, err := ReadFile(fsys, file)
	if err != nil {
		return diag.List{m.diagAt(diag.Error, "libraries."+l.Name+".path",
			fmt.Sprintf(`add %s with [project] name = "%s" and version = "0.0.0" (the release sets the version)`, file, l.Name),
			"library %q: %s is missing or unreadable: a Python library is built from its pyproject.toml", l.Name, file)}
	}
	pp := ReadPyproject(string(data))
	var diags diag.List
	switch {
	case pp.Name == "":
		diags = append(diags, diag.Errorf(file, pp.ProjectLine, 1, fmt.Sprintf(`add name = "%s" under [project]`, l.Name),
			"library %q: pyproject.toml has no [project] name", l.Name))
	case NormalizeName(pp.Name) != NormalizeName(l.Name):
		diags = append(diags, diag.Errorf(file, pp.NameLine, 1,
			fmt.Sprintf(`rename the library in shipline.yaml to %s, or set name = "%s": pipelines depend on it by this name`, NormalizeName(pp.Name), l.Name),
			"library %q: pyproject.toml names the package %q", l.Name, pp.Name))
	}
	if pp.VersionLine == 0 {
		diags = append(diags, diag.Errorf(file, pp.ProjectLine, 1,
			`declare a static version under [project], e.g. version = "0.0.0": the release builds the library with its own version (v1.2.0 → 1.2.0) in its copy, never in the repository`,
			"library %q: pyproject.toml declares no static [project] version", l.Name))
	}
	return diags
}

// checkDir checks that path is a directory of the project.
func (m *Manifest) checkDir(fsys fs.FS, field, what, name, path string) *diag.Diagnostic {
	resolved, err := resolveInside(fsys, path)
	var d diag.Diagnostic
	var fi fs.FileInfo
	if err == nil {
		fi, err = fs.Stat(fsys, resolved)
	}
	switch {
	case err != nil:
		d = m.diagAt(diag.Error, field, "create the directory, or fix the path (relative to the project root)",
			"%s %q: directory %s does not exist", what, name, path)
	case !fi.IsDir():
		d = m.diagAt(diag.Error, field, "point path at the "+what+"'s directory, not a file", "%s %q: %s is not a directory", what, name, path)
	default:
		return nil
	}
	return &d
}

// checkLibraryIndexes checks each library's index is a package index of the
// platform config that serves its language.
func (m *Manifest) checkLibraryIndexes(cfg *platform.Config) diag.List {
	var diags diag.List
	for _, name := range m.byPosition("libraries.", sortedKeys(m.Libraries)) {
		l := m.Libraries[name]
		if l.Index == "" {
			continue
		}
		field := "libraries." + name + ".index"
		ix, ok := cfg.PackageIndexes[l.Index]
		if !ok {
			diags = append(diags, m.diagAt(diag.Error, field,
				"use a package index of the platform config"+known("package indexes", cfg.PackageIndexes)+", or ask the platform admins to add it under package_indexes:",
				"library %q: package index %q is not defined in the platform config", name, l.Index))
			continue
		}
		python := l.Language == Python
		if l.Language != "" && python != platform.PythonIndex(ix.Kind) {
			want := "a maven index"
			if python {
				want = "a simple or pypi index"
			}
			diags = append(diags, m.diagAt(diag.Error, field, "use "+want+compatibleIndexes(cfg, python),
				"%s library %q cannot be published to package index %q of kind %s", l.Language, name, l.Index, ix.Kind))
		}
	}
	return diags
}

// compatibleIndexes renders " (candidates: a, b)" for the indexes serving a language.
func compatibleIndexes(cfg *platform.Config, python bool) string {
	var names []string
	for _, n := range sortedKeys(cfg.PackageIndexes) {
		if platform.PythonIndex(cfg.PackageIndexes[n].Kind) == python {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (candidates: " + strings.Join(names, ", ") + ")"
}

// SortedLibraries returns the libraries in name order.
func (m *Manifest) SortedLibraries() []Library {
	out := make([]Library, 0, len(m.Libraries))
	for _, name := range sortedKeys(m.Libraries) {
		out = append(out, m.Libraries[name])
	}
	return out
}

var nameSeparators = regexp.MustCompile(`[-_.]+`)

// NormalizeName is a Python distribution name's PEP 503 normal form.
func NormalizeName(name string) string {
	return strings.ToLower(nameSeparators.ReplaceAllString(name, "-"))
}
