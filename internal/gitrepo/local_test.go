package gitrepo

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// A local clone is read at a ref without a checkout, from a project in a
// subdirectory of the repository: the tree, the tree hash and the export
// are those of the commit, not of the files on disk.
func TestLocalReadsARefOfTheClone(t *testing.T) {
	f := newFixture(t, map[string]string{
		"proj/shipline.yaml":        "name: demo\n",
		"proj/pipes/a/setup.py":     "v1\n",
		"proj/pipes/a/pkg/mod.py":   "x = 1\n",
		"proj/pipes/a/link.py":      "->pkg/mod.py",
		"outside/unrelated.txt":     "x\n",
		"proj/pipes/a/.gitignore":   "build/\n",
		"proj/pipes/a/pkg/empty.py": "",
	})
	first := gitCmd(t, f.work, "rev-parse", "HEAD")
	gitCmd(t, f.work, "tag", "v1")
	f.commit(t, "second", map[string]string{"proj/pipes/a/setup.py": "v2\n"})
	// Uncommitted edits are not what --ref reads.
	if err := os.WriteFile(filepath.Join(f.work, "proj", "shipline.yaml"), []byte("name: edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	l, err := OpenLocal(filepath.Join(f.work, "proj"), "demo")
	if err != nil {
		t.Fatal(err)
	}
	if l.Prefix() != "proj" {
		t.Errorf("prefix %q", l.Prefix())
	}
	for _, ref := range []string{"v1", "HEAD~1", first[:9]} {
		if c, err := l.Resolve(ref); err != nil || c != first {
			t.Errorf("Resolve(%s) = %s, %v; want %s", ref, c, err, first)
		}
	}
	if _, err := l.Resolve("no-such-branch"); err == nil || !errors.Is(err, ErrUnknownRef) {
		t.Errorf("unknown ref: %v", err)
	}
	fsys, err := l.TreeFS(first)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(fsys, "shipline.yaml"); err != nil || string(b) != "name: demo\n" {
		t.Errorf("shipline.yaml at v1 = %q, %v", b, err)
	}
	want := gitCmd(t, f.work, "rev-parse", first+":proj/pipes/a")
	if h, err := l.TreeHash(first, "pipes/a"); err != nil || h != want {
		t.Errorf("TreeHash = %s, %v; want %s", h, err, want)
	}
	dest := t.TempDir()
	if err := l.Export(context.Background(), first, "pipes/a", dest); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "setup.py")); err != nil || string(b) != "v1\n" {
		t.Errorf("exported setup.py = %q, %v", b, err)
	}
	if _, err := l.TreeHash(first, "pipes/missing"); err == nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("missing dir: %v", err)
	}
}

// The files on disk hash as git would stage them: a committed, unchanged
// directory has the commit's tree hash even with ignored files around it; an
// edit changes the hash; the export holds exactly the hashed files.
func TestWorkDirHashesLikeGit(t *testing.T) {
	f := newFixture(t, map[string]string{
		".gitignore":              "*.egg-info/\n",
		"proj/pipes/a/setup.py":   "v1\n",
		"proj/pipes/a/pkg/mod.py": "x = 1\n",
		"proj/pipes/a/run.sh":     "#!/bin/sh\n",
		"proj/pipes/a/link.py":    "->pkg/mod.py",
		"proj/pipes/a/.gitignore": "build/\n__pycache__/\n",
	})
	if err := os.Chmod(filepath.Join(f.work, "proj/pipes/a/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	head := f.commit(t, "exec bit", nil)
	for _, p := range []string{"proj/pipes/a/build/lib/x.py", "proj/pipes/a/pkg/__pycache__/mod.pyc", "proj/pipes/a/a.egg-info/PKG-INFO"} {
		full := filepath.Join(f.work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("generated"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(f.work, "proj/pipes/a/emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := OpenWorkDir(filepath.Join(f.work, "proj"))
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := w.Head(); !ok || h != head {
		t.Errorf("Head = %s, %v; want %s", h, ok, head)
	}
	want := gitCmd(t, f.work, "rev-parse", "HEAD:proj/pipes/a")
	if h, err := w.TreeHash("pipes/a"); err != nil || h != want {
		t.Fatalf("TreeHash = %s, %v; want git's %s", h, err, want)
	}
	dest := t.TempDir()
	if err := w.Export(context.Background(), "pipes/a", dest); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"build", "pkg/__pycache__", "a.egg-info", "emptydir"} {
		if _, err := os.Lstat(filepath.Join(dest, gone)); err == nil {
			t.Errorf("export holds ignored %s", gone)
		}
	}
	if fi, err := os.Stat(filepath.Join(dest, "run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh: %v %v", fi, err)
	}
	if err := os.WriteFile(filepath.Join(f.work, "proj/pipes/a/pkg/mod.py"), []byte("x = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if h, err := w.TreeHash("pipes/a"); err != nil || h == want {
		t.Errorf("an edit kept the hash %s (%v)", h, err)
	}
}
