package build

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/manifest"
)

// A library is built with the release's version instead of the content
// label, and each version is a cache entry of its own.
func TestLibraryWheelVersion(t *testing.T) {
	b := needPython(t)
	src := &source{files: pythonFiles}
	ctx := context.Background()
	lib := manifest.Library{Name: "orders", Path: "libs/orders", Language: manifest.Python, Index: "internal"}
	p, err := lib.AsPipeline("v2.0.0-rc.1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Build(ctx, Request{Pipeline: p, TreeHash: tree1, Export: src.export})
	if err != nil {
		t.Fatal(err)
	}
	if res.File != "orders-2.0.0rc1-py3-none-any.whl" {
		t.Fatalf("library wheel %s, want orders-2.0.0rc1-py3-none-any.whl", res.File)
	}
	logData, err := os.ReadFile(b.file(res.LogPath))
	if err != nil {
		t.Fatal(err)
	}
	log := string(logData)
	if !strings.Contains(log, "libs/orders/pyproject.toml:7: library version 1.2.0 → 2.0.0rc1") || !strings.Contains(log, "1 passed") {
		t.Errorf("log:\n%s", log)
	}
	// The pipeline of the same tree keeps its content label and its own key.
	pl := manifest.Pipeline{Name: "orders", Path: "libs/orders", Language: manifest.Python}
	if Key(pl, tree1) == res.Key {
		t.Fatal("a library and a pipeline of the same tree share a cache key")
	}
	p2, _ := lib.AsPipeline("v2.0.0")
	if Key(p2, tree1) == res.Key {
		t.Fatal("two versions of a library share a cache key")
	}
	again, err := b.Build(ctx, Request{Pipeline: p2, TreeHash: tree1, Export: src.export})
	if err != nil || again.Cached || again.File != "orders-2.0.0-py3-none-any.whl" {
		t.Fatalf("second version: %+v, %v", again, err)
	}

	// Without a static version the release has nothing to replace.
	noVersion := with(pythonFiles, map[string]string{"pyproject.toml": strings.Replace(pythonFiles["pyproject.toml"], `version = "1.2.0"`, `dynamic = ["version"]`, 1)})
	_, err = b.Build(ctx, Request{Pipeline: p, TreeHash: tree2, Export: (&source{files: noVersion}).export})
	f := buildErr(t, err, ErrBuildFailed)
	if !strings.Contains(f.Msg, "libs/orders/pyproject.toml: no static [project] version") {
		t.Errorf("msg = %s", f.Msg)
	}
}

// A JVM library's jar carries the release's version in its manifest and is
// named as Maven names it (<artifactId>-<version>.jar).
func TestLibraryJarVersion(t *testing.T) {
	needJDK(t)
	b := &Builder{StateDir: t.TempDir()}
	lib := manifest.Library{Name: "orders_java", Path: "libs/orders_java", Language: manifest.Java, Index: "maven", Group: "com.example"}
	p, err := lib.AsPipeline("v1.4.0-rc.1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Build(context.Background(), Request{Pipeline: p, TreeHash: treeJ, Export: (&source{files: javaFiles}).export})
	if err != nil {
		t.Fatal(err)
	}
	if res.File != "orders_java-1.4.0-rc.1.jar" {
		t.Fatalf("library jar %s, want orders_java-1.4.0-rc.1.jar", res.File)
	}
	if v := jarManifest(t, b.file(res.Object))["Implementation-Version"]; v != "1.4.0-rc.1" {
		t.Errorf("Implementation-Version %q, want the release's 1.4.0-rc.1", v)
	}
	pl := manifest.Pipeline{Name: "orders_java", Path: "libs/orders_java", Language: manifest.Java}
	if Key(pl, treeJ) == res.Key {
		t.Error("the library and the pipeline of the same tree share a cache key")
	}
}
