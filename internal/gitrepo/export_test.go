package gitrepo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTreeHash(t *testing.T) {
	f := newFixture(t, map[string]string{
		"pipelines/a/setup.py": "a\n",
		"pipelines/b/setup.py": "b\n",
		"README":               "x\n",
	})
	first := gitCmd(t, f.work, "rev-parse", "HEAD")
	m := f.mirror(t, f.bare)
	ctx := context.Background()

	hash := func(commit, dir string) string {
		t.Helper()
		h, err := m.TreeHash(ctx, commit, dir)
		if err != nil {
			t.Fatalf("TreeHash(%s, %q): %v", commit[:7], dir, err)
		}
		return h
	}
	a1, b1 := hash(first, "pipelines/a"), hash(first, "pipelines/b")
	if want := gitCmd(t, f.work, "rev-parse", first+":pipelines/a"); a1 != want {
		t.Fatalf("TreeHash = %s, git says %s", a1, want)
	}
	if root := hash(first, ""); root != hash(first, ".") || root != gitCmd(t, f.work, "rev-parse", first+"^{tree}") {
		t.Errorf("root tree hash %s is not the commit's tree", root)
	}
	if hash(first, "/pipelines/a/") != a1 {
		t.Error("leading and trailing slashes change the hash")
	}

	second := f.commit(t, "change b", map[string]string{"pipelines/b/setup.py": "b2\n", "README": "y\n"})
	if hash(second, "pipelines/a") != a1 {
		t.Error("a change outside pipelines/a changed its tree hash")
	}
	if hash(second, "pipelines/b") == b1 {
		t.Error("a change inside pipelines/b kept its tree hash")
	}

	for _, dir := range []string{"pipelines/nope", "README", "../x"} {
		if _, err := m.TreeHash(ctx, second, dir); !errors.Is(err, ErrInvalid) {
			t.Errorf("TreeHash(%q) = %v, want ErrInvalid", dir, err)
		}
	}
	if _, err := m.TreeHash(ctx, strings.Repeat("2", 40), "pipelines/a"); !errors.Is(err, ErrUnknownRef) {
		t.Errorf("TreeHash(unknown commit) = %v, want ErrUnknownRef", err)
	}
}

func TestExport(t *testing.T) {
	f := newFixture(t, map[string]string{
		"p/pyproject.toml":   "[project]\n",
		"p/src/pkg/mod.py":   "x = 1\n",
		"p/bin/run.sh":       "#!/bin/sh\necho hi\n",
		"p/link.toml":        "->pyproject.toml",
		"p/src/dirlink":      "->pkg",
		"other/secret.txt":   "not exported\n",
		"shipline.yaml":      "name: demo\n",
		"bad/escape":         "->../other/secret.txt",
		"bad/abs":            "->/etc/passwd",
		"bad/ok/inside.txt":  "ok\n",
		"bad/ok/inside-link": "->inside.txt",
	})
	gitCmd(t, f.work, "update-index", "--chmod=+x", "p/bin/run.sh")
	gitCmd(t, f.work, "commit", "-q", "-m", "exec")
	gitCmd(t, f.work, "push", "-q", "origin", "main")
	commit := gitCmd(t, f.work, "rev-parse", "HEAD")
	m := f.mirror(t, f.bare)
	ctx := context.Background()

	dest := filepath.Join(t.TempDir(), "out")
	if err := m.Export(ctx, commit, "p", dest); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"pyproject.toml":     "[project]\n",
		"src/pkg/mod.py":     "x = 1\n",
		"bin/run.sh":         "#!/bin/sh\necho hi\n",
		"link.toml":          "[project]\n",
		"src/dirlink/mod.py": "x = 1\n",
	} {
		got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(name)))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dest, "bin", "run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("bin/run.sh is not executable: %v, %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dest, "pyproject.toml")); err != nil || fi.Mode().Perm()&0o111 != 0 {
		t.Errorf("pyproject.toml is executable: %v, %v", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(dest, "link.toml")); err != nil || target != "pyproject.toml" {
		t.Errorf("link.toml -> %q, %v", target, err)
	}
	entries, _ := os.ReadDir(dest)
	if len(entries) != 4 {
		t.Errorf("export holds %d top-level entries, want 4 (only p/'s files)", len(entries))
	}

	// Links leading out of the exported directory are refused, even when they
	// stay inside the repository.
	err := m.Export(ctx, commit, "bad", filepath.Join(t.TempDir(), "bad"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "bad/") {
		t.Fatalf("Export(bad) = %v, want ErrInvalid naming the link", err)
	}
	// The same links are fine when the exported directory holds their targets.
	if err := m.Export(ctx, commit, "bad/ok", filepath.Join(t.TempDir(), "ok")); err != nil {
		t.Fatalf("Export(bad/ok) = %v", err)
	}
	if err := m.Export(ctx, commit, "nope", t.TempDir()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Export(nope) = %v, want ErrInvalid", err)
	}
}
