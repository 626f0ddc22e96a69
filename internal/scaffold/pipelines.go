package scaffold

import (
	"encoding/xml"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/shipline/shipline/internal/manifest"
)

// findPipelines finds the pipelines among dirs (lexical order, so a parent
// comes before its children): the outermost directory with a build file.
func findPipelines(fsys fs.FS, dirs []string) []Pipeline {
	var out []Pipeline
	var roots []string
	for _, dir := range dirs {
		if under(dir, roots) {
			continue
		}
		p, ok := pipelineAt(fsys, dir)
		if !ok {
			continue
		}
		roots = append(roots, dir)
		out = append(out, p)
	}
	namePipelines(out)
	return out
}

// under reports whether dir is one of roots or inside one.
func under(dir string, roots []string) bool {
	for _, r := range roots {
		if r == "." || dir == r || strings.HasPrefix(dir, r+"/") {
			return true
		}
	}
	return false
}

// pipelineAt reads the build file of dir, if it has one.
func pipelineAt(fsys fs.FS, dir string) (Pipeline, bool) {
	switch {
	case exists(fsys, join(dir, "pom.xml")):
		return mavenPipeline(fsys, dir)
	case exists(fsys, join(dir, "build.sbt")):
		return sbtPipeline(fsys, dir), true
	case exists(fsys, join(dir, "pyproject.toml")):
		return pythonPipeline(fsys, dir, "pyproject.toml")
	case exists(fsys, join(dir, "setup.py")):
		return pythonPipeline(fsys, dir, "setup.py")
	}
	return Pipeline{}, false
}

// pom is what a pom.xml tells about a Maven project.
type pom struct {
	ArtifactID string `xml:"artifactId"`
	Version    string `xml:"version"`
	Packaging  string `xml:"packaging"`
}

// mavenPipeline is a Maven project; an aggregator (packaging pom) is not a pipeline.
func mavenPipeline(fsys fs.FS, dir string) (Pipeline, bool) {
	marker := join(dir, "pom.xml")
	p := Pipeline{Path: dir, Language: manifest.Java, Marker: marker, Build: "mvn -B package"}
	var pm pom
	if data, ok := readFile(fsys, marker); ok {
		if err := xml.Unmarshal(data, &pm); err != nil {
			p.Todo = append(p.Todo, fmt.Sprintf("%s does not parse as XML (%v): check the build and artifact", marker, err))
		}
	}
	if pm.Packaging == "pom" {
		return Pipeline{}, false
	}
	if isDir(fsys, join(dir, "src/main/scala")) {
		p.Language = manifest.Scala
	}
	switch {
	case pm.ArtifactID != "" && pm.Version != "" && !strings.Contains(pm.Version, "${"):
		p.Artifact = "target/" + pm.ArtifactID + "-" + pm.Version + ".jar"
	case pm.ArtifactID != "":
		p.Artifact = "target/" + pm.ArtifactID + "-*.jar"
	default:
		p.Artifact = "target/*.jar"
	}
	p.Todo = append(p.Todo, "check build (it runs in the pipeline's directory, tests included) and artifact (the one jar it writes, relative to path)")
	if pm.ArtifactID != "" {
		p.Names = append(p.Names, pm.ArtifactID)
	}
	p.Packages = jvmPackages(fsys, dir)
	return p, true
}

var sbtName = regexp.MustCompile(`(?m)^\s*name\s*:=\s*"([^"]+)"`)

// sbtPipeline is an sbt project.
func sbtPipeline(fsys fs.FS, dir string) Pipeline {
	marker := join(dir, "build.sbt")
	p := Pipeline{Path: dir, Language: manifest.Scala, Marker: marker, Build: "sbt -batch package", Artifact: "target/scala-*/*.jar",
		Todo: []string{"check build (it runs in the pipeline's directory; add a test command or `sbt -batch test package` to run the tests) and artifact (the one jar it writes, relative to path)"}}
	if data, ok := readFile(fsys, marker); ok {
		if m := sbtName.FindSubmatch(data); m != nil {
			p.Names = append(p.Names, strings.ToLower(strings.ReplaceAll(string(m[1]), " ", "-")))
		}
	}
	p.Packages = jvmPackages(fsys, dir)
	return p
}

// pythonPipeline is a Python project: pyproject.toml with [project],
// [tool.poetry] or [build-system], or setup.py.
func pythonPipeline(fsys fs.FS, dir, file string) (Pipeline, bool) {
	marker := join(dir, file)
	p := Pipeline{Path: dir, Language: manifest.Python, Marker: marker}
	data, _ := readFile(fsys, marker)
	if file == "pyproject.toml" {
		t := readTOML(string(data))
		if !t.tables["project"] && !t.tables["tool.poetry"] && !t.tables["build-system"] {
			if exists(fsys, join(dir, "setup.py")) {
				return pythonPipeline(fsys, dir, "setup.py")
			}
			return Pipeline{}, false // tool settings only
		}
		for _, n := range []string{t.values["project.name"], t.values["tool.poetry.name"]} {
			if n != "" {
				p.Names = append(p.Names, n)
			}
		}
		p.Scripts = append(p.Scripts, t.keys["project.scripts"]...)
		p.Scripts = append(p.Scripts, t.keys["tool.poetry.scripts"]...)
	} else if m := setupName.FindSubmatch(data); m != nil {
		p.Names = append(p.Names, string(m[2]))
	}
	p.Names = append(p.Names, importPackages(fsys, dir)...)
	return p, true
}

var setupName = regexp.MustCompile(`\bname\s*=\s*(["'])([^"']+)(["'])`)

// importPackages lists the top-level packages of a Python project (the
// directories with __init__.py under src/, else under the project root),
// tests excluded.
func importPackages(fsys fs.FS, dir string) []string {
	base := join(dir, "src")
	if !isDir(fsys, base) {
		base = dir
	}
	entries, _ := fs.ReadDir(fsys, base)
	var out []string
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "tests" || e.Name() == "test" || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if exists(fsys, join(join(base, e.Name()), "__init__.py")) {
			out = append(out, e.Name())
		}
	}
	return out
}

// jvmPackages lists the packages of a JVM project's main sources: the
// shallowest directories under src/main/{java,scala} that hold source files.
func jvmPackages(fsys fs.FS, dir string) []string {
	seen := map[string]bool{}
	for _, lang := range []string{"java", "scala"} {
		root := join(dir, "src/main/"+lang)
		if !isDir(fsys, root) {
			continue
		}
		_ = fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".java") || strings.HasSuffix(p, ".scala")) {
				return nil
			}
			pkgDir := path.Dir(p)
			if pkgDir == root {
				return nil // the default package cannot be matched
			}
			pkg := strings.ReplaceAll(strings.TrimPrefix(pkgDir, root+"/"), "/", ".")
			for other := range seen {
				if pkg == other || strings.HasPrefix(pkg, other+".") {
					return nil
				}
			}
			seen[pkg] = true
			return nil
		})
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// namePipelines names pipelines after their directories (the root after its
// package), unique: a collision gets the parent directory as prefix, then a number.
func namePipelines(ps []Pipeline) {
	taken := map[string]bool{}
	for i := range ps {
		p := &ps[i]
		base := path.Base(p.Path)
		if p.Path == "." {
			base = "pipeline"
			if len(p.Names) > 0 {
				base = p.Names[0]
			}
		}
		name := sanitizeName(base, "pipeline")
		if taken[name] {
			name = sanitizeName(strings.ReplaceAll(p.Path, "/", "_"), "pipeline")
		}
		for n, b := 2, name; taken[name]; n++ {
			name = fmt.Sprintf("%s_%d", truncate(b, 60), n)
		}
		p.Name = name
		taken[name] = true
		p.Names, p.Scripts = normalizeNames(p.Names), normalizeNames(p.Scripts)
	}
	sort.SliceStable(ps, func(a, b int) bool { return ps[a].Name < ps[b].Name })
}

// normalizeNames makes Python-style names comparable (PEP 503, with `_`) and
// drops duplicates, sorted.
func normalizeNames(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		n = normalize(n)
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

var separators = regexp.MustCompile(`[-_.]+`)

func normalize(n string) string {
	return separators.ReplaceAllString(strings.ToLower(strings.TrimSpace(n)), "_")
}

// toml is what readTOML reads: which tables exist, the string values
// ("table.key"), and the keys of each table.
type toml struct {
	tables map[string]bool
	values map[string]string
	keys   map[string][]string
}

var (
	tomlTable = regexp.MustCompile(`^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$`)
	tomlPair  = regexp.MustCompile(`^\s*("([^"]+)"|'([^']+)'|[A-Za-z0-9_.-]+)\s*=\s*(.*)$`)
	tomlStr   = regexp.MustCompile(`^("([^"\\]*)"|'([^']*)')`)
)

// readTOML reads the tables and simple `key = "string"` pairs of a TOML file:
// enough to find a Python project's name and scripts.
func readTOML(data string) toml {
	t := toml{tables: map[string]bool{}, values: map[string]string{}, keys: map[string][]string{}}
	table := ""
	for _, line := range strings.Split(data, "\n") {
		if m := tomlTable.FindStringSubmatch(line); m != nil {
			table = strings.ReplaceAll(strings.ReplaceAll(m[1], " ", ""), `"`, "")
			t.tables[table] = true
			continue
		}
		m := tomlPair.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key := m[1]
		if m[2] != "" || m[3] != "" {
			key = m[2] + m[3]
		}
		t.keys[table] = append(t.keys[table], key)
		if s := tomlStr.FindStringSubmatch(strings.TrimSpace(m[4])); s != nil {
			t.values[table+"."+key] = s[2] + s[3]
		}
	}
	return t
}
