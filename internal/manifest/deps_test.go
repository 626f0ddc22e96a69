package manifest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// depsProject is a project whose pipelines depend on its libraries in every
// way LibraryDeps reads.
func depsProject() fstest.MapFS {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	return fstest.MapFS{
		"shipline.yaml": file(`name: demo
pipelines:
  a: {path: pipelines/a, language: python}
  b: {path: pipelines/b, language: python}
  c: {path: pipelines/c, language: java}
  d: {path: pipelines/d, language: python}
libraries:
  common: {path: libs/common, language: python, index: internal}
  utils_x: {path: libs/utils, language: python, index: internal}
  jcommon: {path: libs/jcommon, language: java, index: maven, group: com.example}
`),
		"libs/common/pyproject.toml": file("[project]\nname = \"common\"\nversion = \"0.0.0\"\n"),
		"libs/utils/pyproject.toml":  file("[project]\nname = \"utils-x\"\nversion = \"0.0.0\"\n"),
		"libs/jcommon/pom.xml":       file("<project/>\n"),
		"pipelines/a/pyproject.toml": file(`[project]
name = "a"
version = "1.0.0"
dependencies = [
  "requests>=2",
  "common == 1.2.0",  # pinned
  "Utils.X[extra]>=1.0 ; python_version > '3'",
]
`),
		"pipelines/b/setup.py": file(`from setuptools import setup
setup(name="b", version="1.0",
      install_requires=[
          "common===1.3.0rc1",
          'utils_x==2.0.0',
      ])
`),
		"pipelines/c/pom.xml": file(`<project>
  <dependencies>
    <dependency>
      <groupId>com.example</groupId>
      <artifactId>jcommon</artifactId>
      <version>1.2.0</version>
    </dependency>
    <dependency><groupId>org.other</groupId><artifactId>jcommon</artifactId><version>9</version></dependency>
  </dependencies>
</project>
`),
		"pipelines/d/pyproject.toml": file("[tool.poetry.dependencies]\npython = \"^3.9\"\ncommon = \"1.1.0\"\n"),
	}
}

func TestLibraryDeps(t *testing.T) {
	fsys := depsProject()
	m, diags := Load(fsys)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var got []string
	for _, d := range m.LibraryDeps(fsys) {
		got = append(got, d.Pipeline+" "+d.Library+" "+d.Version+" "+d.Where())
	}
	want := []string{
		"a common 1.2.0 pipelines/a/pyproject.toml:6",
		"a utils_x  pipelines/a/pyproject.toml:7",
		"b common 1.3.0rc1 pipelines/b/setup.py:4",
		"b utils_x 2.0.0 pipelines/b/setup.py:5",
		"c jcommon 1.2.0 pipelines/c/pom.xml:3",
		"d common 1.1.0 pipelines/d/pyproject.toml:3",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("deps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Python pipelines use the Python libraries they depend on, whatever the specifier.
	uses := func(p string) string {
		var names []string
		for _, u := range m.Pipelines[p].Uses {
			names = append(names, u.Name+"@"+u.Path)
		}
		return strings.Join(names, ",")
	}
	// The Java pipeline uses the JVM library its pom.xml names with the
	// library's group (not org.other's jcommon, nor the Python libraries).
	if uses("a") != "common@libs/common,utils_x@libs/utils" || uses("b") != "common@libs/common,utils_x@libs/utils" || uses("c") != "jcommon@libs/jcommon" || uses("d") != "common@libs/common" {
		t.Errorf("uses: a %s, b %s, c %s, d %s", uses("a"), uses("b"), uses("c"), uses("d"))
	}
}

// A JVM pipeline uses the project's JVM libraries its pom.xml depends on
// (by the library's group and name), with a library's build command and jar
// glob; a dependency on the same artifactId of another group is not the
// library, and a Scala pipeline gets its JVM libraries too.
func TestJVMPipelineUses(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	pom := func(deps string) *fstest.MapFile {
		return file("<project>\n  <dependencies>\n" + deps + "  </dependencies>\n</project>\n")
	}
	dep := func(group, artifact string) string {
		return "    <dependency><groupId>" + group + "</groupId><artifactId>" + artifact + "</artifactId></dependency>\n"
	}
	fsys := fstest.MapFS{
		"shipline.yaml": file(`name: demo
pipelines:
  j: {path: pipelines/j, language: java}
  other: {path: pipelines/other, language: java}
  s: {path: pipelines/s, language: scala, build: "sbt -batch package", artifact: "target/*.jar"}
libraries:
  jcommon: {path: libs/jcommon, language: java, index: maven, group: com.example}
  sutil: {path: libs/sutil, language: scala, index: maven, group: com.example, build: "sbt -batch package", artifact: "target/*.jar"}
  common: {path: libs/common, language: python, index: internal}
`),
		"libs/jcommon/src/main/java/A.java": file("class A {}\n"),
		"libs/sutil/build.sbt":              file("\n"),
		"libs/common/pyproject.toml":        file("[project]\nname = \"common\"\nversion = \"0.0.0\"\n"),
		"pipelines/j/pom.xml":               pom(dep("com.example", "sutil") + dep("com.example", "jcommon")),
		"pipelines/other/pom.xml":           pom(dep("org.other", "jcommon") + dep("com.example", "common")),
		"pipelines/s/pom.xml":               pom(dep("com.example", "jcommon")),
	}
	m, diags := Load(fsys)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := []UsedLibrary{{Name: "jcommon", Path: "libs/jcommon"}, {Name: "sutil", Path: "libs/sutil", Build: "sbt -batch package", Artifact: "target/*.jar"}}
	if got := m.Pipelines["j"].Uses; !reflect.DeepEqual(got, want) {
		t.Errorf("j uses %+v, want %+v", got, want)
	}
	if got := m.Pipelines["other"].Uses; got != nil {
		t.Errorf("a dependency on org.other:jcommon (and on the Python library's name) uses %+v, want none", got)
	}
	if got := m.Pipelines["s"].Uses; !reflect.DeepEqual(got, want[:1]) {
		t.Errorf("the scala pipeline uses %+v, want %+v", got, want[:1])
	}
}

func TestCheckLibraryDeps(t *testing.T) {
	fsys := depsProject()
	m, _ := Load(fsys)
	deps := m.LibraryDeps(fsys)
	published := map[string]bool{"common 1.1.0": true, "jcommon 1.2.0": true}
	var asked []string
	has := func(l Library, v string) (bool, error) {
		asked = append(asked, l.Name+" "+v)
		return published[l.Name+" "+v], nil
	}
	// The release v1.2.0 publishes common 1.2.0 and jcommon 1.2.0 itself: those pins are satisfied
	// without asking the index.
	diags, err := m.CheckLibraryDeps(deps, "v1.2.0", has)
	if err != nil {
		t.Fatal(err)
	}
	got := diags.Error()
	for _, w := range []string{
		`pipelines/b/setup.py:4:1: error: pipeline "b" depends on library common 1.3.0rc1 (common===1.3.0rc1), which is not published on package index "internal"`,
		`pipelines/b/setup.py:5:1: error: pipeline "b" depends on library utils_x 2.0.0 (utils_x==2.0.0), which is not published on package index "internal"`,
	} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if len(diags) != 2 {
		t.Errorf("want 2 diagnostics, got:\n%s", got)
	}
	if strings.Join(asked, ",") != "common 1.3.0rc1,utils_x 2.0.0,common 1.1.0" {
		t.Errorf("asked the index for %v", asked)
	}
	// Outside a release, common 1.2.0 must be on the index too.
	diags, _ = m.CheckLibraryDeps(deps, "", has)
	if !strings.Contains(diags.Error(), "pipelines/a/pyproject.toml:6:1") {
		t.Errorf("common 1.2.0 not refused outside a release:\n%s", diags.Error())
	}
	// … and the fix says that the release publishing it would accept the pin.
	if !strings.Contains(diags.Error(), "the release that publishes common 1.2.0 itself accepts this pin") {
		t.Errorf("the fix outside a release does not say a release of that version accepts the pin:\n%s", diags.Error())
	}
	// An index that cannot be asked is an error, not a pass.
	_, err = m.CheckLibraryDeps(deps, "", func(Library, string) (bool, error) { return false, errors.New("connection refused") })
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v", err)
	}
}

func TestLibraryAsPipeline(t *testing.T) {
	l := Library{Name: "common", Path: "libs/common", Language: Python, Index: "internal"}
	p, err := l.AsPipeline("v1.3.0-rc.2")
	if err != nil || p.Version != "1.3.0rc2" || p.Name != "common" || p.Path != "libs/common" {
		t.Errorf("AsPipeline = %+v, %v", p, err)
	}
	j := Library{Name: "jcommon", Language: Java, Group: "com.example"}
	if p, _ := j.AsPipeline("v1.3.0-rc.2"); p.Version != "1.3.0-rc.2" || p.Group != "com.example" {
		t.Errorf("java AsPipeline = %+v", p)
	}
	if _, err := l.AsPipeline("v1.0.0-weird"); err == nil {
		t.Error("a prerelease without a PEP 440 form was accepted")
	}
}
