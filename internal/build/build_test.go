package build

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/manifest"
)

// Git tree hashes of the test trees (any hex will do).
const (
	tree1       = "3f9a1c2e55aa0000000000000000000000000001"
	tree2       = "4e8b2d3f66bb0000000000000000000000000002"
	treeBad     = "bad0000000000000000000000000000000000003"
	treeT       = "7777777700000000000000000000000000000004"
	treeJ       = "1a2b3c4d00000000000000000000000000000005"
	treeJBad    = "1a2b3c4e00000000000000000000000000000006"
	treeJBroken = "1a2b3c4f00000000000000000000000000000007"
	treeS       = "5c0e5c0e00000000000000000000000000000008"
)

// PythonFiles is a small Python pipeline with a passing test.
var pythonFiles = map[string]string{
	"pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "orders"
version = "1.2.0"

[tool.setuptools.packages.find]
where = ["src"]
`,
	"src/orders/__init__.py": "def double(x):\n    return 2 * x\n",
	"tests/test_double.py":   "from orders import double\n\ndef test_double():\n    assert double(2) == 4\n",
}

// source is an exporter of a fixed set of files that counts its calls.
type source struct {
	files map[string]string
	calls atomic.Int32
}

func (s *source) export(_ context.Context, dir string) error {
	s.calls.Add(1)
	for name, content := range s.files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func with(files map[string]string, changes map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range files {
		out[k] = v
	}
	for k, v := range changes {
		out[k] = v
	}
	return out
}

func needPython(t *testing.T) *Builder {
	t.Helper()
	b := &Builder{StateDir: t.TempDir(), Getenv: func(string) string { return "" }}
	if err := exec.Command(b.python(), "-c", "import build, setuptools, pytest").Run(); err != nil {
		t.Skipf("%s lacks build/setuptools/pytest: %v", b.python(), err)
	}
	return b
}

func needJDK(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"javac", "jar", "java"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
}

func sha(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func zipNames(t *testing.T, path string) []string {
	t.Helper()
	r, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var names []string
	for _, f := range r.File {
		names = append(names, f.Name)
	}
	return names
}

// failure is what a test reads from a permanent build error.
type failure struct{ Msg, LogPath, LogTail string }

// buildErr asserts err is a permanent build error of kind.
func buildErr(t *testing.T, err error, kind error) failure {
	t.Helper()
	var be *apperr.Error
	if !errors.As(err, &be) || !errors.Is(err, kind) {
		t.Fatalf("err = %v (%T), want a build error of kind %v", err, err, kind)
	}
	d, _ := Details(err)
	return failure{Msg: be.Msg, LogPath: d.LogPath, LogTail: d.LogTail}
}

func TestPythonWheelAndCache(t *testing.T) {
	b := needPython(t)
	src := &source{files: pythonFiles}
	p := manifest.Pipeline{Name: "orders", Path: "pipelines/orders", Language: manifest.Python}
	ctx := context.Background()

	res, err := b.Build(ctx, Request{Pipeline: p, TreeHash: tree1, Export: src.export})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wheel built in %.2fs inside build tools", res.Seconds)
	if res.Cached || res.File != "orders-1.2.0+sl.3f9a1c2e-py3-none-any.whl" || res.Seconds <= 0 {
		t.Fatalf("result = %+v", res)
	}
	if res.Object != "cache/"+res.Key+"/"+res.SHA256+"/"+res.File || res.Key != Key(p, tree1) {
		t.Errorf("artifact at %s, key %s", res.Object, res.Key)
	}
	if got := sha(t, b.file(res.Object)); got != res.SHA256 {
		t.Errorf("sha256 of file %s, result says %s", got, res.SHA256)
	}
	if fi, _ := os.Stat(b.file(res.Object)); fi.Size() != res.Size {
		t.Errorf("size %d, result says %d", fi.Size(), res.Size)
	}
	if names := strings.Join(zipNames(t, b.file(res.Object)), " "); !strings.Contains(names, "orders/__init__.py") {
		t.Errorf("wheel holds %s", names)
	}
	log, err := os.ReadFile(b.file(res.LogPath))
	if err != nil || res.LogPath != "logs/builds/"+res.Key+".log" {
		t.Fatalf("log %s: %v", res.LogPath, err)
	}
	for _, want := range []string{"-m pytest -q -p no:cacheprovider", "1 passed", "-m build --wheel --no-isolation", "exit 0"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if res.LogTail == "" || strings.Count(res.LogTail, "\n") > tailLines+1 || len(res.LogTail) > tailBytes+8 {
		t.Errorf("log tail = %q", res.LogTail)
	}
	var meta Meta
	data, _ := os.ReadFile(filepath.Join(b.StateDir, "cache", res.Key, "meta.json"))
	if err := json.Unmarshal(data, &meta); err != nil || meta.SHA256 != res.SHA256 || meta.File != res.File ||
		meta.Tools["build"] == "" || meta.Tools["python"] == "" || meta.BuiltAt.IsZero() {
		t.Errorf("meta.json = %s (%v)", data, err)
	}

	// A second build of the same key is a cache hit: same bytes, no export, no tools.
	again, err := b.Build(ctx, Request{Pipeline: p, TreeHash: tree1, Export: src.export})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.SHA256 != res.SHA256 || again.Object != res.Object || again.Seconds != 0 || src.calls.Load() != 1 {
		t.Fatalf("second build = %+v (exports: %d), want a cache hit", again, src.calls.Load())
	}
	if hit, ok, err := b.Lookup(ctx, p, tree1); err != nil || !ok || hit.SHA256 != res.SHA256 {
		t.Fatalf("Lookup = %+v, %v, %v", hit, ok, err)
	}
	if _, ok, err := b.Lookup(ctx, p, tree2); err != nil || ok {
		t.Fatalf("Lookup(tree-2) = %v, %v; want a miss", ok, err)
	}

	// A damaged entry is dropped and rebuilt, byte-identical (SOURCE_DATE_EPOCH).
	if err := os.WriteFile(b.file(res.Object), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := b.Build(ctx, Request{Pipeline: p, TreeHash: tree1, Export: src.export})
	if err != nil {
		t.Fatal(err)
	}
	if rebuilt.Cached || src.calls.Load() != 2 {
		t.Fatalf("damaged entry was not rebuilt: %+v", rebuilt)
	}
	if rebuilt.SHA256 != res.SHA256 {
		t.Errorf("rebuild of the same tree gave sha256 %s, first build %s", rebuilt.SHA256, res.SHA256)
	}
}

func TestKey(t *testing.T) {
	p := manifest.Pipeline{Name: "orders", Path: "pipelines/orders", Language: manifest.Python}
	base := Key(p, tree1)
	if len(base) != 64 {
		t.Fatalf("key %q", base)
	}
	moved := p
	moved.Path = "elsewhere/orders"
	if Key(moved, tree1) != base {
		t.Error("moving the pipeline changed its key")
	}
	for name, change := range map[string]func(*manifest.Pipeline){
		"language": func(p *manifest.Pipeline) { p.Language = manifest.Java },
		"build":    func(p *manifest.Pipeline) { p.Build = "make" },
		"artifact": func(p *manifest.Pipeline) { p.Artifact = "*.jar" },
		"test":     func(p *manifest.Pipeline) { p.Test = "make test" },
		"name":     func(p *manifest.Pipeline) { p.Name = "other" },
	} {
		q := p
		change(&q)
		if Key(q, tree1) == base {
			t.Errorf("changing %s kept the key", name)
		}
	}
	if Key(p, tree2) == base {
		t.Error("a new tree kept the key")
	}
	// Keys are stable across Shipline versions unless BuilderVersion is bumped:
	// an unchanged pipeline keeps its cache entry and its bytes (promotions pin
	// them by checksum). This is the key of p at tree1 under BuilderVersion 1.
	if base != "b7c45b898d36d4c058a1cb1b65c6702f0a7a46838d0c0b993415c7e4f357a1e6" {
		t.Errorf("the cache key of an unchanged pipeline changed: %s", base)
	}
}

func TestPythonFailingTest(t *testing.T) {
	b := needPython(t)
	src := &source{files: with(pythonFiles, map[string]string{
		"tests/test_double.py": "from orders import double\n\ndef test_double():\n    assert double(2) == 5, 'doubling is broken'\n",
	})}
	p := manifest.Pipeline{Name: "orders", Path: "pipelines/orders", Language: manifest.Python}
	_, err := b.Build(context.Background(), Request{Pipeline: p, TreeHash: treeBad, Export: src.export})
	be := buildErr(t, err, ErrTestsFailed)
	t.Log(be.Msg)
	for _, text := range []string{be.Msg, be.LogTail} {
		if !strings.Contains(text, "doubling is broken") {
			t.Errorf("error/tail lacks the assertion:\n%s", text)
		}
	}
	if !strings.Contains(be.Msg, be.LogPath) || !strings.Contains(be.Msg, "pipeline orders") {
		t.Errorf("error does not name the pipeline and log: %s", be.Msg)
	}
	log, _ := os.ReadFile(b.file(be.LogPath))
	if !strings.Contains(string(log), "doubling is broken") || strings.Contains(string(log), "-m build") {
		t.Errorf("log:\n%s", log)
	}
	if _, ok, _ := b.Lookup(context.Background(), p, treeBad); ok {
		t.Error("a failed build left a cache entry")
	}
}

func TestPythonToolMissing(t *testing.T) {
	b := needPython(t)
	src := &source{files: pythonFiles}
	p := manifest.Pipeline{Name: "orders", Path: "p", Language: manifest.Python}

	b.Python = filepath.Join(t.TempDir(), "no-such-python")
	_, err := b.Build(context.Background(), Request{Pipeline: p, TreeHash: treeT, Export: src.export})
	if be := buildErr(t, err, ErrToolMissing); !strings.Contains(be.Msg, PythonEnv) {
		t.Errorf("message lacks the fix: %s", be.Msg)
	}

	// An interpreter without site-packages has neither build nor pytest.
	real := (&Builder{Getenv: func(string) string { return "" }}).python()
	wrapper := filepath.Join(t.TempDir(), "python-bare")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec "+real+" -S \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b.Python = ""
	b.Getenv = func(k string) string { return map[string]string{PythonEnv: wrapper}[k] }
	_, err = b.Build(context.Background(), Request{Pipeline: p, TreeHash: treeT, Export: src.export})
	be := buildErr(t, err, ErrToolMissing)
	if !strings.Contains(be.Msg, "apt-get install python3-build") || !strings.Contains(be.Msg, wrapper) {
		t.Errorf("message lacks the interpreter or the fix: %s", be.Msg)
	}
}

var javaFiles = map[string]string{
	"src/main/java/com/example/orders/Orders.java": `package com.example.orders;

public class Orders {
    public static int count(String csv) { return csv.isEmpty() ? 0 : csv.split(",").length; }
    public static void main(String[] args) { System.out.println(count(args.length > 0 ? args[0] : "")); }
}
`,
	"src/main/resources/orders.properties": "schema=dev\n",
	"src/test/java/com/example/orders/OrdersTest.java": `package com.example.orders;

public class OrdersTest {
    public static void main(String[] args) {
        if (Orders.count("a,b") != 2) { System.err.println("count is wrong"); System.exit(1); }
        System.out.println("OrdersTest ok");
    }
}
`,
}

func TestJavaConvention(t *testing.T) {
	needJDK(t)
	b := &Builder{StateDir: t.TempDir()}
	p := manifest.Pipeline{Name: "orders_java", Path: "pipelines/orders_java", Language: manifest.Java}
	res, err := b.Build(context.Background(), Request{Pipeline: p, TreeHash: treeJ, Export: (&source{files: javaFiles}).export})
	if err != nil {
		t.Fatal(err)
	}
	if res.File != "orders_java-sl.1a2b3c4d.jar" || res.Meta.Tools["javac"] == "" {
		t.Fatalf("result = %+v", res)
	}
	names := strings.Join(zipNames(t, b.file(res.Object)), " ")
	for _, want := range []string{"com/example/orders/Orders.class", "orders.properties"} {
		if !strings.Contains(names, want) {
			t.Errorf("jar lacks %s: %s", want, names)
		}
	}
	if strings.Contains(names, "OrdersTest") {
		t.Errorf("jar holds test classes: %s", names)
	}
	// The content version is in the manifest; java still runs the stamped jar,
	// and another build of the same tree gives the same bytes.
	if v := jarManifest(t, b.file(res.Object))["Implementation-Version"]; v != "sl.1a2b3c4d" {
		t.Errorf("Implementation-Version %q", v)
	}
	if out, err := exec.Command("java", "-cp", b.file(res.Object), "com.example.orders.Orders", "a,b,c").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "3" {
		t.Errorf("java -cp %s: %v\n%s", res.File, err, out)
	}
	if out, err := exec.Command("jar", "--describe-module", "--file", b.file(res.Object)).CombinedOutput(); err != nil {
		t.Errorf("jar cannot read %s: %v\n%s", res.File, err, out)
	}
	other, err := (&Builder{StateDir: t.TempDir()}).Build(context.Background(), Request{Pipeline: p, TreeHash: treeJ, Export: (&source{files: javaFiles}).export})
	if err != nil || other.SHA256 != res.SHA256 || other.File != res.File {
		t.Errorf("second build of the same tree: %+v, %v; first sha256 %s", other, err, res.SHA256)
	}
	if log, _ := os.ReadFile(b.file(res.LogPath)); !strings.Contains(string(log), "OrdersTest ok") {
		t.Errorf("tests did not run:\n%s", log)
	}

	failing := with(javaFiles, map[string]string{
		"src/test/java/com/example/orders/OrdersTest.java": strings.Replace(javaFiles["src/test/java/com/example/orders/OrdersTest.java"], "!= 2", "!= 3", 1),
	})
	_, err = b.Build(context.Background(), Request{Pipeline: p, TreeHash: treeJBad, Export: (&source{files: failing}).export})
	if be := buildErr(t, err, ErrTestsFailed); !strings.Contains(be.Msg, "count is wrong") || !strings.Contains(be.Msg, "com.example.orders.OrdersTest") {
		t.Errorf("error: %s", be.Msg)
	}

	broken := with(javaFiles, map[string]string{"src/main/java/com/example/orders/Orders.java": "package com.example.orders;\nclass Orders { int x = ; }\n"})
	_, err = b.Build(context.Background(), Request{Pipeline: p, TreeHash: treeJBroken, Export: (&source{files: broken}).export})
	if be := buildErr(t, err, ErrBuildFailed); !strings.Contains(be.Msg, "Orders.java") {
		t.Errorf("error lacks the compiler's message: %s", be.Msg)
	}
}

func TestCustomBuildCommand(t *testing.T) {
	b := &Builder{StateDir: t.TempDir()}
	files := map[string]string{"VERSION": "2.0.1\n", "packed.zip": testJar(t, "Implementation-Version: 2.0.1\r\n", "jar-2.0.1")}
	p := manifest.Pipeline{
		Name: "score", Path: "pipelines/score", Language: manifest.Scala,
		Test:     "test -f VERSION && echo tests-ran",
		Build:    `mkdir -p target/scala-2.12 && cp packed.zip target/scala-2.12/score_2.12-$(cat VERSION).jar && echo built`,
		Artifact: "target/scala-2.12/*.jar",
	}
	res, err := b.Build(context.Background(), Request{Pipeline: p, TreeHash: treeS, Export: (&source{files: files}).export})
	if err != nil {
		t.Fatal(err)
	}
	if res.File != "score_2.12-2.0.1+sl.5c0e5c0e.jar" || jarEntry(t, b.file(res.Object), "data.txt") != "jar-2.0.1" {
		t.Fatalf("artifact %s", res.File)
	}
	if v := jarManifest(t, b.file(res.Object))["Implementation-Version"]; v != "2.0.1+sl.5c0e5c0e" {
		t.Errorf("Implementation-Version %q", v)
	}
	log, _ := os.ReadFile(b.file(res.LogPath))
	if i, j := strings.Index(string(log), "tests-ran"), strings.Index(string(log), "built"); i < 0 || j < i {
		t.Errorf("test command did not run before the build:\n%s", log)
	}

	for _, tc := range []struct {
		name     string
		change   func(*manifest.Pipeline)
		kind     error
		contains []string
	}{
		{"glob matches nothing", func(p *manifest.Pipeline) { p.Artifact = "target/*.jar" }, ErrArtifactNotFound,
			[]string{`"target/*.jar"`, "scala-2.12/"}},
		{"glob matches two", func(p *manifest.Pipeline) { p.Build += " && cp target/scala-2.12/*.jar target/scala-2.12/copy.jar" },
			ErrArtifactAmbiguous, []string{"copy.jar", "score_2.12-2.0.1.jar"}},
		{"build fails", func(p *manifest.Pipeline) { p.Build = "echo compiling; echo 'error: type mismatch' >&2; exit 3" },
			ErrBuildFailed, []string{"exited with 3", "type mismatch"}},
		{"test fails", func(p *manifest.Pipeline) { p.Test = "echo '1 test failed'; exit 1" }, ErrTestsFailed, []string{"1 test failed"}},
		{"tool missing", func(p *manifest.Pipeline) { p.Build = "shipline-no-such-tool package" }, ErrToolMissing, []string{"not installed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := p
			tc.change(&q)
			_, err := b.Build(context.Background(), Request{Pipeline: q, TreeHash: treeS, Export: (&source{files: files}).export})
			be := buildErr(t, err, tc.kind)
			for _, want := range tc.contains {
				if !strings.Contains(be.Msg, want) {
					t.Errorf("error lacks %q: %s", want, be.Msg)
				}
			}
		})
	}

	noBuild := manifest.Pipeline{Name: "score", Path: "p", Language: manifest.Scala}
	_, err = b.Build(context.Background(), Request{Pipeline: noBuild, TreeHash: treeS, Export: (&source{files: files}).export})
	buildErr(t, err, ErrInvalid)
}

// Concurrent builds of one key build once; the others wait and share the entry.
func TestConcurrentBuildsOfOneKey(t *testing.T) {
	b := &Builder{StateDir: t.TempDir()}
	src := &source{files: map[string]string{"a.txt": "a\n"}}
	p := manifest.Pipeline{Name: "c", Path: "c", Language: manifest.Java, Build: "mkdir -p out && cp a.txt out/c.bin", Artifact: "out/*.bin"}
	var wg sync.WaitGroup
	results := make([]Result, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = b.Build(context.Background(), Request{Pipeline: p, TreeHash: treeT, Export: src.export})
		}()
	}
	wg.Wait()
	built := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !r.Cached {
			built++
		}
		if r.SHA256 != results[0].SHA256 || r.Object != results[0].Object {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	if built != 1 || src.calls.Load() != 1 {
		t.Errorf("%d builds and %d exports, want 1", built, src.calls.Load())
	}
	if left, _ := os.ReadDir(filepath.Join(b.StateDir, "cache", ".tmp")); len(left) != 0 {
		t.Errorf("build directories left behind: %v", left)
	}
}

// file is where the default (state_dir) store keeps key.
func (b *Builder) file(key string) string {
	return filepath.Join(b.StateDir, filepath.FromSlash(key))
}
