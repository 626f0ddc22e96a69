package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// libraryFiles is a small Python library (shipline.yaml's libraries:) with a
// passing test; its declared version is replaced by the release's.
var libraryFiles = map[string]string{
	"libs/common/pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "common"
version = "0.0.0"

[tool.setuptools.packages.find]
where = ["src"]
`,
	"libs/common/src/common/__init__.py": "def greeting(name):\n    return 'hello ' + name\n",
	"libs/common/tests/test_common.py":   "from common import greeting\n\ndef test_greeting():\n    assert greeting('x') == 'hello x'\n",
}

// jvmLibraryFiles is a small Java library built by convention (javac, jar),
// and a Java pipeline whose pom.xml depends on it and whose code and test
// use its class.
var jvmLibraryFiles = map[string]string{
	"libs/jcommon/src/main/java/com/example/jcommon/Greeting.java": "package com.example.jcommon;\n\npublic class Greeting {\n    public static String of(String name) { return \"hello \" + name; }\n}\n",
	"pipelines/greet/pom.xml": `<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId><artifactId>greet</artifactId><version>1.0.0</version>
  <dependencies>
    <dependency><groupId>com.example</groupId><artifactId>jcommon</artifactId><version>1.0.0</version></dependency>
  </dependencies>
</project>
`,
	"pipelines/greet/src/main/java/com/example/greet/Greet.java": "package com.example.greet;\n\nimport com.example.jcommon.Greeting;\n\npublic class Greet {\n    public static String run(String who) { return Greeting.of(who); }\n}\n",
	"pipelines/greet/src/test/java/com/example/greet/GreetTest.java": "package com.example.greet;\n\npublic class GreetTest {\n    public static void main(String[] args) {\n" +
		"        if (!Greet.run(\"greet\").equals(\"hello greet\")) { System.exit(1); }\n        System.out.println(\"GreetTest ok\");\n    }\n}\n",
}

// TestLibraryReleaseEndToEnd releases a project with a Python library on the
// embedded stack: the release builds and tests the library, publishes it to
// a simple index in a directory before the tag, records it (status,
// releases), and pip installs it from there; the pipeline that depends on it
// is built (its tests import the library's sources) and deployed. With a JDK,
// a Java library is published to a Maven repository that Maven resolves, and
// a Java pipeline that imports its class compiles and tests against it. A later release whose pipeline pins a version
// the index does not hold is refused before its tag, naming the file:line.
func TestLibraryReleaseEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server")
	}
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-m", "pip", "--version").Run(); err != nil {
		t.Skipf("pip, the judge of this test, is missing (%s -m pip: %v): apt-get install python3-pip", python, err)
	}
	// With a JDK and Debian's Maven, a Java library is published to a Maven
	// repository in a directory too, and Maven resolves it.
	mvn, jvm := exec.LookPath("mvn")
	_, javac := exec.LookPath("javac")
	const plugin = "/usr/share/maven-repo/org/apache/maven/plugins/maven-dependency-plugin/3.5.0"
	_, pluginErr := os.Stat(plugin)
	withJVM := jvm == nil && javac == nil && pluginErr == nil
	if !withJVM {
		t.Log("no javac, mvn or Debian's maven-dependency-plugin: the Java library is left out (apt-get install default-jdk-headless maven libmaven-dependency-plugin-java junit4)")
	}
	cfgPath, remote, work := demoProject(t)
	index := filepath.Join(t.TempDir(), "pypi")
	m2 := filepath.Join(t.TempDir(), "maven")
	appendFile(t, cfgPath, "\npackage_indexes:\n  internal: {kind: simple, url: \"file://"+filepath.ToSlash(index)+"\"}\n"+
		"  maven: {kind: maven, url: \"file://"+filepath.ToSlash(m2)+"\"}\n")
	for name, content := range libraryFiles {
		writeFile(t, filepath.Join(work, name), content)
	}
	libs := "libraries:\n  common: {path: libs/common, language: python, index: internal}\n"
	if withJVM {
		for name, content := range jvmLibraryFiles {
			writeFile(t, filepath.Join(work, name), content)
		}
		libs += "  jcommon: {path: libs/jcommon, language: java, index: maven, group: com.example}\n"
		// The Java pipeline greet depends on jcommon 1.0.0, published by this release.
		replaceIn(t, filepath.Join(work, "shipline.yaml"), "pipelines:\n", "pipelines:\n  greet: {path: pipelines/greet, language: java}\n")
	}
	appendFile(t, filepath.Join(work, "shipline.yaml"), libs)
	// score_churn depends on the library at the version this release publishes.
	pyproject := filepath.Join(work, "pipelines", "score_churn", "pyproject.toml")
	replaceIn(t, pyproject, `requires-python = ">=3.9"`, "requires-python = \">=3.9\"\ndependencies = [\"common==1.0.0\"]")
	// Its tests import the library: they see its sources at the release's commit.
	writeFile(t, filepath.Join(work, "pipelines", "score_churn", "tests", "test_uses_common.py"),
		"from common import greeting\n\n\ndef test_greeting():\n    assert greeting('churn') == 'hello churn'\n")
	git(t, work, "add", ".")
	git(t, work, "commit", "-q", "-m", "shared library common")
	git(t, work, "push", "-q", "origin", "main")

	s := startStack(t, cfgPath, 0)
	code, out, errOut := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait")
	if code != 0 || !strings.Contains(out, "released v1.0.0 of demo") {
		t.Fatalf("release exit %d:\n%s%s", code, out, errOut)
	}
	wheel := "common-1.0.0-py3-none-any.whl"
	if _, err := os.Stat(filepath.Join(index, "common", wheel)); err != nil {
		t.Fatalf("the library is not in the index: %v", err)
	}
	code, out, _ = s.shipline("status", "release/demo/v1.0.0")
	published := "publish libraries  1 library published"
	if withJVM {
		published = "publish libraries  2 libraries published"
	}
	for _, want := range []string{published, "libraries published:", "common", "1.0.0", "on internal", wheel} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ = s.shipline("releases", "--project", "demo"); code != 0 || !strings.Contains(out, "v1.0.0: common 1.0.0 on internal") {
		t.Errorf("releases:\n%s", out)
	}
	// The deployment that followed built the pipeline that depends on the
	// library; the library itself went to no fabric.
	fabric := filepath.Join(filepath.Dir(cfgPath), ".shipline", "fabrics", "dev")
	var shipped []string
	_ = filepath.Walk(fabric, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			shipped = append(shipped, filepath.Base(p))
		}
		return nil
	})
	joined := strings.Join(shipped, " ")
	if !strings.Contains(joined, "score_churn-1.0.0") || strings.Contains(joined, "common-") {
		t.Errorf("fabric local-dev holds %s: want the pipelines' wheels and no library", joined)
	}

	// pip, the judge: it resolves and installs the library from the index.
	target := t.TempDir()
	pip := exec.Command(python, "-m", "pip", "install", "--no-deps", "--index-url", "file://"+filepath.ToSlash(index), "--target", target, "common==1.0.0")
	pip.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin", "PIP_CONFIG_FILE=/dev/null", "PIP_NO_CACHE_DIR=1",
		"PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1", "PYTHONDONTWRITEBYTECODE=1"}
	if b, err := pip.CombinedOutput(); err != nil {
		t.Fatalf("pip install common==1.0.0 from the index: %v\n%s", err, b)
	}
	run := exec.Command(python, "-c", "import common; print(common.greeting('pip'))")
	run.Env = []string{"PYTHONPATH=" + target, "PYTHONDONTWRITEBYTECODE=1"}
	if b, err := run.CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "hello pip" {
		t.Fatalf("the installed library: %v\n%s", err, b)
	}

	if withJVM {
		if _, err := os.Stat(filepath.Join(m2, "com", "example", "jcommon", "1.0.0", "jcommon-1.0.0.jar")); err != nil {
			t.Fatalf("the Java library is not in the Maven repository: %v", err)
		}
		mavenResolves(t, mvn, m2)
		// The release built and tested greet against jcommon's sources at its commit.
		logs, _ := filepath.Glob(filepath.Join(filepath.Dir(cfgPath), ".shipline", "logs", "builds", "*.log"))
		var greetLog string
		for _, l := range logs {
			if data, _ := os.ReadFile(l); strings.Contains(string(data), "shipline build of pipeline greet (java)") {
				greetLog = string(data)
			}
		}
		for _, want := range []string{"compiles against library jcommon from libs/jcommon (tree ", "GreetTest ok"} {
			if !strings.Contains(greetLog, want) {
				t.Errorf("the build log of greet lacks %q (logs %v):\n%s", want, logs, greetLog)
			}
		}
	}

	// A pipeline pinned to a library version nobody published: refused before the tag.
	replaceIn(t, pyproject, `"common==1.0.0"`, `"common==0.9.0"`)
	git(t, work, "commit", "-q", "-am", "pin an unpublished version")
	git(t, work, "push", "-q", "origin", "main")
	code, _, errOut = s.shipline("release", "v1.1.0", "--project", "demo", "--as", "alice", "--wait")
	if code != 1 || !strings.Contains(errOut, `pipelines/score_churn/pyproject.toml:10:1: error: pipeline "score_churn" depends on library common 0.9.0`) ||
		!strings.Contains(errOut, "v1.1.0 was not tagged") {
		t.Fatalf("unpublished dependency: exit %d, stderr:\n%s", code, errOut)
	}
	if tags := git(t, remote, "tag", "-l"); tags != "v1.0.0" {
		t.Fatalf("remote tags %q: the refused release must not be tagged", tags)
	}
}

func appendFile(t testing.TB, path, content string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(data)+content)
}

func replaceIn(t testing.TB, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	writeFile(t, path, strings.Replace(string(data), old, new, 1))
}

// mavenResolves has Debian's Maven resolve com.example:jcommon:1.0.0 from the
// repository in directory repo, checksums checked, to the published bytes.
func mavenResolves(t *testing.T, mvn, repo string) {
	t.Helper()
	work := t.TempDir()
	settings := "<settings><localRepository>" + work + "/m2</localRepository>" +
		"<mirrors><mirror><id>debian</id><mirrorOf>central</mirrorOf><url>file:///usr/share/maven-repo</url></mirror></mirrors></settings>"
	pom := `<project><modelVersion>4.0.0</modelVersion>
  <groupId>judge</groupId><artifactId>judge</artifactId><version>1</version><packaging>pom</packaging>
  <repositories><repository><id>shipline</id><url>file://` + filepath.ToSlash(repo) + `</url><releases><checksumPolicy>fail</checksumPolicy></releases></repository></repositories>
  <dependencies><dependency><groupId>com.example</groupId><artifactId>jcommon</artifactId><version>1.0.0</version></dependency></dependencies>
</project>`
	writeFile(t, filepath.Join(work, "settings.xml"), settings)
	writeFile(t, filepath.Join(work, "pom.xml"), pom)
	cmd := exec.Command(mvn, "-B", "-s", "settings.xml", "org.apache.maven.plugins:maven-dependency-plugin:3.5.0:copy-dependencies", "-DoutputDirectory=out")
	cmd.Dir = work
	cmd.Env = []string{"HOME=" + work, "PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mvn: %v\n%s", err, out)
	}
	resolved, err := os.ReadFile(filepath.Join(work, "out", "jcommon-1.0.0.jar"))
	if err != nil {
		t.Fatalf("maven resolved no jcommon jar: %v", err)
	}
	published, err := os.ReadFile(filepath.Join(repo, "com", "example", "jcommon", "1.0.0", "jcommon-1.0.0.jar"))
	if err != nil || !bytes.Equal(resolved, published) {
		t.Fatalf("maven resolved other bytes than were published (%v)", err)
	}
}
