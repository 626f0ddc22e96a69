package activities

import (
	"os/exec"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/manifest"
)

// jvmLibraryRepo is a project whose Java pipeline greet depends on (pom.xml)
// and imports the class of its Java library jcommon.
var jvmLibraryRepo = map[string]string{
	"shipline.yaml": `name: demo
pipelines:
  greet: {path: pipelines/greet, language: java}
libraries:
  jcommon: {path: libs/jcommon, language: java, index: maven, group: com.example}
`,
	"libs/jcommon/src/main/java/com/example/jcommon/Greeting.java": "package com.example.jcommon;\n\npublic class Greeting {\n    public static String of(String name) { return \"hello \" + name; }\n}\n",
	"pipelines/greet/pom.xml":                                      "<project><dependencies><dependency><groupId>com.example</groupId><artifactId>jcommon</artifactId></dependency></dependencies></project>\n",
	"pipelines/greet/src/main/java/greet/Greet.java":               "package greet;\n\nimport com.example.jcommon.Greeting;\n\npublic class Greet {\n    public static String run() { return Greeting.of(\"greet\"); }\n}\n",
	"pipelines/greet/src/test/java/greet/GreetTest.java": "package greet;\n\npublic class GreetTest {\n    public static void main(String[] args) {\n" +
		"        if (!Greet.run().equals(\"hello greet\")) { System.err.println(\"got \" + Greet.run()); System.exit(1); }\n    }\n}\n",
}

// The build activity builds a Java pipeline against the library it uses at
// the commit: a change of the library alone is a new cache key, and the
// pipeline's tests run again against the changed library.
func TestBuildJavaPipelineUsesLibrary(t *testing.T) {
	for _, tool := range []string{"javac", "jar", "java"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	fsys := fstest.MapFS{}
	for name, content := range jvmLibraryRepo {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	m, diags := manifest.Load(fsys)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p := m.Pipelines["greet"]
	if len(p.Uses) != 1 || p.Uses[0].Name != "jcommon" {
		t.Fatalf("greet uses %+v, want jcommon", p.Uses)
	}

	remote := newTestRemote(t)
	first := remote.commit(t, jvmLibraryRepo)
	e := newBuildEnv(t, buildActivities(t, "file://"+remote.bare))
	built := e.mustPipeline(first, p)
	if k := e.cacheKey(first, p); !k.Cached || k.Key != built.CacheKey {
		t.Fatalf("cache key at the same commit: %+v, built %s", k, built.CacheKey)
	}

	// Only the library changes: the pipeline's tree is the same, its key is not.
	second := remote.commit(t, map[string]string{
		"libs/jcommon/src/main/java/com/example/jcommon/Greeting.java": strings.Replace(jvmLibraryRepo["libs/jcommon/src/main/java/com/example/jcommon/Greeting.java"], `"hello "`, `"hi "`, 1),
	})
	k := e.cacheKey(second, p)
	if k.TreeHash != built.TreeHash || k.Key == built.CacheKey || k.Cached {
		t.Fatalf("after a change of the library: %+v, before: tree %s key %s", k, built.TreeHash, built.CacheKey)
	}
	_, err := e.pipeline(second, p)
	if ae := appError(t, err, apperr.TestsFailed); !strings.Contains(ae.Error(), "got hi greet") {
		t.Errorf("the pipeline's test did not run against the changed library: %v", ae)
	}
}
