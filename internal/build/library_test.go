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

// A pipeline's tests import the libraries it uses, from their sources at the
// build's commit; the libraries' trees are part of its cache key.
func TestPipelineTestsImportUsedLibrary(t *testing.T) {
	b := needPython(t)
	ctx := context.Background()
	files := with(pythonFiles, map[string]string{
		"tests/test_double.py": "from orders import double\nfrom common import greeting\n\ndef test_double():\n    assert greeting(str(double(2))) == 'hello 4'\n",
	})
	lib := &source{files: map[string]string{
		"pyproject.toml":             "[project]\nname = \"common\"\nversion = \"0.0.0\"\n",
		"src/common/__init__.py":     "def greeting(x):\n    return 'hello ' + x\n",
		"tests/test_nothing_here.py": "",
	}}
	var exported []string
	exportLib := func(ctx context.Context, path, dir string) error {
		exported = append(exported, path)
		return lib.export(ctx, dir)
	}
	p := manifest.Pipeline{Name: "orders", Path: "pipelines/orders", Language: manifest.Python,
		Uses: []manifest.UsedLibrary{{Name: "common", Path: "libs/common", Tree: tree2}}}

	// Without the library's sources the tests cannot import it.
	_, err := b.Build(ctx, Request{Pipeline: p, TreeHash: treeT, Export: (&source{files: files}).export})
	if f := buildErr(t, err, ErrTestsFailed); !strings.Contains(f.LogTail, "No module named 'common'") {
		t.Errorf("tail: %s", f.LogTail)
	}
	res, err := (&Builder{StateDir: t.TempDir(), Getenv: b.Getenv}).Build(ctx, Request{Pipeline: p, TreeHash: treeT, Export: (&source{files: files}).export, ExportLibrary: exportLib})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(exported, ",") != "libs/common" || !strings.HasPrefix(res.File, "orders-1.2.0+sl.") {
		t.Fatalf("exported %v, built %s", exported, res.File)
	}
	other := p
	other.Uses = []manifest.UsedLibrary{{Name: "common", Path: "libs/common", Tree: tree1}}
	if Key(other, treeT) == Key(p, treeT) {
		t.Error("a change of a used library leaves the pipeline's cache key as it was")
	}
}
