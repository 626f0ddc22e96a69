package build

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/manifest"
)

func TestContentLabel(t *testing.T) {
	for tree, want := range map[string]string{
		"3F9A1C2E55aa00": "sl.3f9a1c2e",
		"0012345600":     "sl.123456", // PEP 440 reads all-digit segments as numbers
		"00000000ff":     "sl.0",
		"0a000000ff":     "sl.0a000000",
	} {
		if got := ContentLabel(tree); got != want {
			t.Errorf("ContentLabel(%s) = %s, want %s", tree, got, want)
		}
	}
	for version, want := range map[string]string{"1.0.0": "1.0.0+sl.ab", "1.0+cpu": "1.0+cpu.sl.ab", "": "sl.ab"} {
		if got := WithLabel(version, "sl.ab"); got != want {
			t.Errorf("WithLabel(%q) = %s, want %s", version, got, want)
		}
	}
	if validTreeHash("tree-1") || !validTreeHash("3F9A1C2E") {
		t.Error("validTreeHash accepts a non-hex hash or refuses a hex one")
	}
}

// wheelMetadataVersion reads Version: from the wheel's METADATA.
func wheelMetadataVersion(t *testing.T, path string) string {
	t.Helper()
	r, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, f := range r.File {
		if strings.HasSuffix(f.Name, ".dist-info/METADATA") {
			rc, _ := f.Open()
			data, _ := io.ReadAll(rc)
			rc.Close()
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "Version: "); ok {
					return strings.TrimSpace(v)
				}
			}
		}
	}
	t.Fatalf("%s has no METADATA Version", path)
	return ""
}

// pipDryRun asks pip whether it would install the wheel.
func pipDryRun(t *testing.T, py, wheel string) {
	t.Helper()
	// --dry-run installs nothing, so Debian's externally managed interpreter may be asked.
	out, err := exec.Command(py, "-m", "pip", "install", "--isolated", "--no-deps", "--no-index", "--dry-run", "--quiet",
		"--break-system-packages", wheel).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "No module named pip") {
			t.Logf("no pip for %s: not checked", py)
			return
		}
		t.Fatalf("pip refuses %s: %v\n%s", filepath.Base(wheel), err, out)
	}
}

// A wheel's version carries the content label (file name and METADATA), pip
// accepts it, builds of one tree are byte-identical and another tree gets
// another label. The exported sources (the repository) are not changed.
func TestPythonContentVersion(t *testing.T) {
	b := needPython(t)
	p := manifest.Pipeline{Name: "orders", Path: "pipelines/orders", Language: manifest.Python}
	ctx := context.Background()
	src := &source{files: pythonFiles}
	first, err := b.Build(ctx, Request{Pipeline: p, TreeHash: tree1, Export: src.export})
	if err != nil {
		t.Fatal(err)
	}
	if first.File != "orders-1.2.0+sl.3f9a1c2e-py3-none-any.whl" {
		t.Fatalf("wheel %s lacks the content version", first.File)
	}
	if v := wheelMetadataVersion(t, b.file(first.Object)); v != "1.2.0+sl.3f9a1c2e" {
		t.Errorf("METADATA Version = %s", v)
	}
	pipDryRun(t, b.python(), b.file(first.Object))
	if !strings.Contains(src.files["pyproject.toml"], `version = "1.2.0"`) {
		t.Error("the source's pyproject.toml was changed")
	}

	// Another worker (another state directory) builds the same bytes.
	other := &Builder{StateDir: t.TempDir(), Getenv: b.Getenv}
	same, err := other.Build(ctx, Request{Pipeline: p, TreeHash: tree1, Export: src.export})
	if err != nil {
		t.Fatal(err)
	}
	if same.Key != first.Key || same.File != first.File || same.SHA256 != first.SHA256 {
		t.Errorf("second build of the same tree: %s %s, first %s %s", same.File, same.SHA256, first.File, first.SHA256)
	}

	// A change in the tree is another label.
	changed := &source{files: with(pythonFiles, map[string]string{"src/orders/__init__.py": "def double(x):\n    return x + x\n"})}
	next, err := b.Build(ctx, Request{Pipeline: p, TreeHash: tree2, Export: changed.export})
	if err != nil {
		t.Fatal(err)
	}
	if next.File != "orders-1.2.0+sl.4e8b2d3f-py3-none-any.whl" || wheelMetadataVersion(t, b.file(next.Object)) != "1.2.0+sl.4e8b2d3f" {
		t.Errorf("changed tree built %s", next.File)
	}
}

// Projects without a static [project] version: setuptools gets tag_build;
// another backend with a dynamic version is refused with file:line.
func TestPythonContentVersionOtherProjects(t *testing.T) {
	b := needPython(t)
	p := manifest.Pipeline{Name: "legacy", Path: "pipelines/legacy", Language: manifest.Python}
	ctx := context.Background()

	legacy := map[string]string{
		"setup.py":           "from setuptools import setup\nsetup(name='legacy', version='2.0', packages=['legacy'])\n",
		"setup.cfg":          "[metadata]\ndescription = legacy\n\n[egg_info]\ntag_date = 0\n",
		"legacy/__init__.py": "",
	}
	res, err := b.Build(ctx, Request{Pipeline: p, TreeHash: tree1, Export: (&source{files: legacy}).export})
	if err != nil {
		t.Fatal(err)
	}
	if res.File != "legacy-2.0+sl.3f9a1c2e-py3-none-any.whl" {
		t.Errorf("setup.py project built %s", res.File)
	}

	dynamic := with(pythonFiles, map[string]string{"pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "orders"
dynamic = [
  "version",
]

[tool.setuptools.dynamic]
version = {attr = "orders.__version__"}
`, "src/orders/__init__.py": "__version__ = '3.1'\ndef double(x):\n    return 2 * x\n"})
	res, err = b.Build(ctx, Request{Pipeline: p, TreeHash: tree2, Export: (&source{files: dynamic}).export})
	if err != nil {
		t.Fatal(err)
	}
	if res.File != "orders-3.1+sl.4e8b2d3f-py3-none-any.whl" {
		t.Errorf("dynamic setuptools version built %s", res.File)
	}

	hatch := with(pythonFiles, map[string]string{"pyproject.toml": "[build-system]\nrequires = [\"hatchling\", \"hatch-vcs\"]\nbuild-backend = \"hatchling.build\"\n\n[project]\nname = \"orders\"\ndynamic = [\"version\"]\n"})
	_, err = b.Build(ctx, Request{Pipeline: p, TreeHash: treeT, Export: (&source{files: hatch}).export})
	be := buildErr(t, err, ErrBuildFailed)
	t.Log(be.Msg)
	for _, want := range []string{"pipelines/legacy/pyproject.toml:7", "hatchling.build", "+sl.77777777", "declare a static version in [project]"} {
		if !strings.Contains(be.Msg, want) {
			t.Errorf("error lacks %q: %s", want, be.Msg)
		}
	}
}

func TestLabelPyprojectLines(t *testing.T) {
	dir := t.TempDir()
	in := "[project]\nname = 'x'\nversion = '1.0+cpu'  # keep\n\n[tool.other]\nversion = \"9\"\n"
	if err := os.WriteFile(filepath.Join(dir, "pyproject.toml"), []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	how, err := labelPython(dir, "p", "sl.ab")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "pyproject.toml"))
	want := strings.Replace(in, "'1.0+cpu'", "'1.0+cpu.sl.ab'", 1)
	if string(got) != want || !strings.Contains(how, "p/pyproject.toml:3") {
		t.Errorf("labelled (%s):\n%s\nwant:\n%s", how, got, want)
	}

	// Poetry's version, when [project] has none.
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, "pyproject.toml"), []byte("[tool.poetry]\nname = \"x\"\nversion = \"0.3.0\"\n"), 0o644)
	if how, err := labelPython(dir, "p", "sl.ab"); err != nil || !strings.Contains(how, "p/pyproject.toml:3: version 0.3.0 → 0.3.0+sl.ab") {
		t.Errorf("poetry: %s, %v", how, err)
	}

	// A setup.cfg that sets tag_build itself is refused with its line.
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, "setup.cfg"), []byte("[metadata]\nname = x\n[egg_info]\ntag-build = .dev\n"), 0o644)
	_, err = labelPython(dir, "p", "sl.ab")
	if le, ok := err.(*labelError); !ok || !strings.Contains(le.what, "p/setup.cfg:4") {
		t.Errorf("err = %v", err)
	}
}

// testJar returns the bytes of a jar holding data.txt and, unless manifest is
// empty, a manifest with the given main attributes.
func testJar(t *testing.T, manifest, data string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	if manifest != "" {
		w, _ := zw.Create("META-INF/MANIFEST.MF")
		io.WriteString(w, "Manifest-Version: 1.0\r\n"+manifest+"\r\nName: data.txt\r\nSHA-256-Digest: abc\r\n\r\n")
	}
	w, _ := zw.Create("data.txt")
	io.WriteString(w, data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func jarEntry(t *testing.T, path, name string) string {
	t.Helper()
	r, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rc, err := r.Open(name)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer rc.Close()
	data, _ := io.ReadAll(rc)
	return string(data)
}

// jarManifest reads the main attributes of a jar's manifest.
func jarManifest(t *testing.T, path string) map[string]string {
	t.Helper()
	text := jarEntry(t, path, "META-INF/MANIFEST.MF")
	main, _, _ := strings.Cut(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n")
	attrs := map[string]string{}
	last := ""
	for _, line := range strings.Split(main, "\n") {
		if strings.HasPrefix(line, " ") {
			attrs[last] += line[1:]
			continue
		}
		k, v, _ := strings.Cut(line, ": ")
		attrs[k], last = v, k
	}
	return attrs
}

func TestStampJar(t *testing.T) {
	for _, tc := range []struct {
		name, file, manifest, wantFile, wantVersion string
	}{
		{"declared version in the name", "score_2.12-0.1.0.jar", "Implementation-Version: 0.1.0\r\nCreated-By: sbt\r\n", "score_2.12-0.1.0+sl.3f9a1c2e.jar", "0.1.0+sl.3f9a1c2e"},
		{"declared version not in the name", "score-assembly.jar", "Implementation-Version: 0.1.0\r\n", "score-assembly-sl.3f9a1c2e.jar", "0.1.0+sl.3f9a1c2e"},
		{"no version", "orders.jar", "Created-By: javac\r\n", "orders-sl.3f9a1c2e.jar", "sl.3f9a1c2e"},
		{"no manifest", "orders.jar", "", "orders-sl.3f9a1c2e.jar", "sl.3f9a1c2e"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, tc.file)
			if err := os.WriteFile(src, []byte(testJar(t, tc.manifest, "payload")), 0o644); err != nil {
				t.Fatal(err)
			}
			out, version, err := stampJar(src, filepath.Join(dir, "a"), "sl.3f9a1c2e")
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(out) != tc.wantFile || version != tc.wantVersion {
				t.Errorf("stamped %s version %s", filepath.Base(out), version)
			}
			m := jarManifest(t, out)
			if m["Implementation-Version"] != tc.wantVersion || m["Manifest-Version"] != "1.0" || jarEntry(t, out, "data.txt") != "payload" {
				t.Errorf("manifest %v", m)
			}
			if tc.manifest != "" && !strings.Contains(jarEntry(t, out, "META-INF/MANIFEST.MF"), "\r\n\r\nName: data.txt\r\nSHA-256-Digest: abc\r\n") {
				t.Errorf("per-entry sections lost:\n%s", jarEntry(t, out, "META-INF/MANIFEST.MF"))
			}
			// Stamping is a function of the jar: the same bytes again.
			again, _, err := stampJar(src, filepath.Join(dir, "b"), "sl.3f9a1c2e")
			if err != nil {
				t.Fatal(err)
			}
			if sha(t, again) != sha(t, out) {
				t.Error("stamping the same jar twice gave different bytes")
			}
		})
	}

	// A signed jar keeps its bytes (the signature covers the manifest); only its name changes.
	dir := t.TempDir()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"META-INF/MANIFEST.MF", "META-INF/LIB.SF", "a.class"} {
		w, _ := zw.Create(name)
		io.WriteString(w, "Manifest-Version: 1.0\r\nImplementation-Version: 2.1\r\n\r\n")
	}
	zw.Close()
	signed := filepath.Join(dir, "lib-2.1.jar")
	os.WriteFile(signed, buf.Bytes(), 0o644)
	out, _, err := stampJar(signed, filepath.Join(dir, "out"), "sl.ab")
	if err != nil || filepath.Base(out) != "lib-2.1+sl.ab.jar" || sha(t, out) != sha(t, signed) {
		t.Errorf("signed jar stamped to %s (%v)", out, err)
	}

	long := strings.Repeat("x", 100)
	_, edited := setImplementationVersion([]byte("Manifest-Version: 1.0\nImplementation-Version: "+long+"\n"), "sl.ab")
	for _, line := range strings.Split(string(edited), "\r\n") {
		if len(line) > 72 {
			t.Errorf("manifest line of %d bytes: %q", len(line), line)
		}
	}
	if !strings.Contains(strings.ReplaceAll(string(edited), "\r\n ", ""), "Implementation-Version: "+long+"+sl.ab\r\n") {
		t.Errorf("long value not kept:\n%s", edited)
	}

	bad := filepath.Join(t.TempDir(), "x.jar")
	os.WriteFile(bad, []byte("not a zip"), 0o644)
	if _, _, err := stampJar(bad, t.TempDir(), "sl.ab"); err == nil {
		t.Error("a jar that is not a zip was stamped")
	}
}
