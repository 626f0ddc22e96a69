package gitrepo

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestTreeFS(t *testing.T) {
	f := newFixture(t, map[string]string{
		"shipline.yaml":            "name: demo\n",
		"jobs/daily/job.json":      `{"name": "daily"}`,
		"jobs/daily/link.json":     "->job.json",
		"jobs/up.json":             "->daily/job.json",
		"jobs/dirlink":             "->daily",
		"pipelines/p/setup.py":     "print('hi')\n",
		"escape/abs":               "->/etc/passwd",
		"escape/up":                "->../../outside",
		"escape/loop":              "->loop",
		"pipelines/p/src/__init__": "",
	})
	commit := gitCmd(t, f.work, "rev-parse", "HEAD")
	m := f.mirror(t, f.bare) // a new mirror: TreeFS fetches the commit itself
	fsys, err := m.TreeFS(context.Background(), commit)
	if err != nil {
		t.Fatal(err)
	}

	data, err := fs.ReadFile(fsys, "jobs/daily/job.json")
	if err != nil || string(data) != `{"name": "daily"}` {
		t.Fatalf("ReadFile = %q, %v", data, err)
	}
	for _, link := range []string{"jobs/daily/link.json", "jobs/up.json", "jobs/dirlink/job.json"} {
		if data, err := fs.ReadFile(fsys, link); err != nil || string(data) != `{"name": "daily"}` {
			t.Errorf("ReadFile(%s) through an inside link = %q, %v", link, data, err)
		}
	}
	for _, link := range []string{"escape/abs", "escape/up", "escape/loop"} {
		if _, err := fs.ReadFile(fsys, link); err == nil {
			t.Errorf("ReadFile(%s) followed a link it must not", link)
		}
		if _, err := fs.Stat(fsys, link); err == nil {
			t.Errorf("Stat(%s) followed a link it must not", link)
		}
	}
	if _, err := fs.ReadFile(fsys, "escape/up"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "outside the repository") {
		t.Errorf("ReadFile(escape/up) = %v, want not-exist saying the link leaves the repository", err)
	}

	entries, err := fs.ReadDir(fsys, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name()+":"+e.Type().String())
	}
	if want := "daily:d--------- dirlink:L--------- up.json:L---------"; strings.Join(got, " ") != want {
		t.Errorf("ReadDir(jobs) = %v, want %s", got, want)
	}
	lfs := fsys.(fs.ReadLinkFS)
	if target, err := lfs.ReadLink("escape/up"); err != nil || target != "../../outside" {
		t.Errorf("ReadLink = %q, %v", target, err)
	}
	if fi, err := lfs.Lstat("escape/abs"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(escape/abs) = %v, %v; want a symlink", fi, err)
	}
	if fi, err := fs.Stat(fsys, "jobs/dirlink"); err != nil || !fi.IsDir() {
		t.Errorf("Stat(jobs/dirlink) = %v, %v; want the directory it links to", fi, err)
	}
	if _, err := fs.Stat(fsys, "nope.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(nope.yaml) = %v, want ErrNotExist", err)
	}
	if _, err := fsys.Open("../x"); err == nil {
		t.Error("Open(../x) succeeded")
	}

	// The standard conformance test, on a sub-tree without escaping links (TestFS
	// expects every listed entry to open).
	sub, err := fs.Sub(fsys, "pipelines")
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(sub, "p/setup.py", "p/src/__init__"); err != nil {
		t.Fatal(err)
	}
	jobs, _ := fs.Sub(fsys, "jobs")
	if err := fstest.TestFS(jobs, "daily/job.json", "daily/link.json", "up.json"); err != nil {
		t.Fatal(err)
	}
}

func TestTreeFSUnknownCommit(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "x\n"})
	m := f.mirror(t, f.bare)
	_, err := m.TreeFS(context.Background(), strings.Repeat("1", 40))
	if !errors.Is(err, ErrUnknownRef) {
		t.Fatalf("TreeFS(unknown) = %v, want ErrUnknownRef", err)
	}
	if _, err := m.TreeFS(context.Background(), "main"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("TreeFS(main) = %v, want ErrInvalid", err)
	}
}

func TestMirrorLayout(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "x\n"})
	state := t.TempDir()
	s := &Store{Dir: filepath.Join(state, "git")}
	m, err := s.Mirror(Remote{Project: "demo", URL: f.bare})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, "git", "demo.git", "HEAD")); err != nil {
		t.Fatalf("mirror is not a bare repository at <state>/git/demo.git: %v", err)
	}
	if url := gitCmd(t, m.Path(), "config", "remote.origin.url"); url != f.bare {
		t.Errorf("origin = %s", url)
	}
	for _, bad := range []string{"", "..", "a/b", ".hidden"} {
		if _, err := s.Mirror(Remote{Project: bad, URL: f.bare}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Mirror(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}
