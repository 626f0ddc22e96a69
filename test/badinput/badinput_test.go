// Package badinput runs Shipline's real CLI code and git layer against a corpus
// of broken inputs (corpus/<case>/) and checks that each one is refused with a
// clear error, the right exit code, no panic, in bounded time, and without
// writing anything.
//
// # Corpus layout
//
// corpus/_base/ is a small valid project (shipline.yaml, two pipelines, a
// Databricks job JSON and an Airflow DAG) plus a valid platform.yaml whose
// state_dir and local fabric root are relative, so they fall inside the test's
// temporary copy. Each other directory is one case: the test copies _base into
// a temporary directory, applies the case's `delete:` lines, overlays the
// case's files (every file but expect.txt) and runs its `setup:` lines. Then
// it runs, by default,
//
//	shipline validate <copy> --platform <copy>/platform.yaml
//
// expect.txt holds one directive or expected fragment per line:
//
//	# comment                    ignored
//	exit: N                      expected exit code (default 2)
//	args: ["release", "1.0"]     the CLI arguments instead of validate, as a JSON array;
//	                             {dir} is the temporary copy
//	noplatform                   run validate without --platform
//	delete: PATH                 remove PATH of _base before the overlay
//	setup: append FILE N "S"     append N times the Go-quoted string S to FILE
//	setup: random FILE N SEED    write N pseudo-random bytes to FILE
//	setup: symlink LINK TARGET   create a symlink ({outside} is a directory
//	                             outside the copy holding a valid shipline.yaml and dag.py)
//	setup: fifo PATH             create a named pipe
//	absent: TEXT                 TEXT must not appear in the output (secrets)
//	kind: K / ref: "R"           a ref case: Mirror.Resolve(R) on a temporary
//	                             repository must fail with K (unknown-ref or invalid)
//	known: REASON                a ref case whose error kind or message is a known bug
//	                             elsewhere: the safety checks (an error, no panic, no hang,
//	                             nothing read or written outside the mirror) still fail the
//	                             test; a wrong kind or message skips it with REASON, and a
//	                             case that starts passing fails so that the line gets removed
//	skip: REASON                 skip the case (a known bug outside this package)
//	anything else                a fragment the output (stdout+stderr) must contain
//
// Large, binary and symlinked inputs are created at run time by `setup:`
// lines, so that the repository holds no 5 MiB files, binary blobs or
// symlinks (which git and some checkouts handle badly).
package badinput

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/gitrepo"
	"github.com/shipline/shipline/starter/cli"
)

// caseTimeout bounds one case: a hang (a FIFO read, an endless file, an
// exponential parse) fails the case instead of the whole test binary.
const caseTimeout = 60 * time.Second

// spec is a parsed expect.txt.
type spec struct {
	comment    string
	exit       int
	args       []string
	noPlatform bool
	deletes    []string
	setups     []string
	absent     []string
	kind, ref  string
	isRef      bool
	fragments  []string
	skip       string
	known      string
}

func readSpec(t *testing.T, file string) spec {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := spec{exit: 2}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		key, val, _ := strings.Cut(line, ": ")
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			if s.comment == "" {
				s.comment = strings.TrimSpace(line[1:])
			}
		case line == "noplatform":
			s.noPlatform = true
		case key == "exit":
			if s.exit, err = strconv.Atoi(val); err != nil {
				t.Fatalf("%s: bad exit line %q", file, line)
			}
		case key == "args":
			if err := json.Unmarshal([]byte(val), &s.args); err != nil {
				t.Fatalf("%s: bad args line %q: %v", file, line, err)
			}
		case key == "delete":
			s.deletes = append(s.deletes, val)
		case key == "setup":
			s.setups = append(s.setups, val)
		case key == "absent":
			s.absent = append(s.absent, val)
		case key == "kind":
			s.kind, s.isRef = val, true
		case key == "ref":
			if err := json.Unmarshal([]byte(val), &s.ref); err != nil {
				t.Fatalf("%s: bad ref line %q: %v", file, line, err)
			}
			s.isRef = true
		case key == "skip":
			s.skip = val
		case key == "known":
			s.known = val
		default:
			s.fragments = append(s.fragments, line)
		}
	}
	return s
}

func corpusCases(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("corpus")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), "_") {
			names = append(names, e.Name())
		}
	}
	if len(names) < 100 {
		t.Fatalf("the corpus has %d cases; it must keep at least 100", len(names))
	}
	return names
}

// TestCorpus runs every case of the corpus.
func TestCorpus(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the corpus uses symlinks and FIFOs")
	}
	sourceBefore := snapshot(t, "corpus")
	refs := newRefRepo(t) // shared by the ref cases; its directories live as long as the test
	for _, name := range corpusCases(t) {
		t.Run(name, func(t *testing.T) {
			s := readSpec(t, filepath.Join("corpus", name, "expect.txt"))
			if s.skip != "" {
				t.Skip(s.skip)
			}
			if s.isRef {
				refs.check(t, s)
				return
			}
			runCLICase(t, name, s)
		})
	}
	// Nothing may write into the corpus itself.
	if diff := diffSnapshots(sourceBefore, snapshot(t, "corpus")); diff != "" {
		t.Errorf("the corpus directory changed during the test:\n%s", diff)
	}
}

// runCLICase prepares the case's copy and runs the CLI on it.
func runCLICase(t *testing.T, name string, s spec) {
	root := t.TempDir()
	dir := filepath.Join(root, "work")        // the project copy
	outside := filepath.Join(root, "outside") // a target for links leaving the copy
	copyTree(t, filepath.Join("corpus", "_base"), dir)
	copyTree(t, filepath.Join("corpus", "_base"), outside)
	for _, d := range s.deletes {
		if err := os.RemoveAll(filepath.Join(dir, filepath.FromSlash(d))); err != nil {
			t.Fatal(err)
		}
	}
	copyTree(t, filepath.Join("corpus", name), dir)
	_ = os.Remove(filepath.Join(dir, "expect.txt"))
	for _, line := range s.setups {
		setup(t, dir, outside, line)
	}
	args := []string{"shipline", "validate", dir, "--platform", filepath.Join(dir, "platform.yaml")}
	if s.noPlatform {
		args = args[:3]
	}
	if s.args != nil {
		args = []string{"shipline"}
		for _, a := range s.args {
			args = append(args, strings.ReplaceAll(a, "{dir}", dir))
		}
	}
	before := snapshot(t, root)
	code, out := runCLI(t, args)
	after := snapshot(t, root)
	if diff := diffSnapshots(before, after); diff != "" {
		t.Errorf("the CLI wrote to the file system:\n%s", diff)
	}
	if code != s.exit {
		t.Errorf("exit code %d, want %d", code, s.exit)
	}
	for _, f := range s.fragments {
		if !strings.Contains(out, f) {
			t.Errorf("output lacks %q", f)
		}
	}
	for _, a := range s.absent {
		if strings.Contains(out, a) {
			t.Errorf("output shows %q, which must never be echoed", a)
		}
	}
	if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Errorf("output mentions a panic")
	}
	if t.Failed() {
		t.Logf("case: %s\nargs: %q\noutput:\n%s", s.comment, shorten(args), out)
	}
}

// runCLI runs cli.Main in a goroutine, turning a panic into a failure and a
// hang into a failure after caseTimeout (the goroutine is then abandoned).
func runCLI(t *testing.T, args []string) (int, string) {
	t.Helper()
	type result struct {
		code  int
		out   string
		panic any
	}
	done := make(chan result, 1)
	go func() {
		var out, errb bytes.Buffer
		r := result{code: -1}
		defer func() {
			r.panic = recover()
			r.out = out.String() + errb.String()
			done <- r
		}()
		r.code = cli.Main(args, &out, &errb)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	select {
	case r := <-done:
		if r.panic != nil {
			t.Fatalf("the CLI panicked: %v\noutput:\n%s", r.panic, r.out)
		}
		return r.code, r.out
	case <-ctx.Done():
		t.Fatalf("the CLI did not return within %v (a hang on this input)", caseTimeout)
		return 0, ""
	}
}

func shorten(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if len(a) > 80 {
			a = a[:80] + fmt.Sprintf("…(%d bytes)", len(a))
		}
		out[i] = a
	}
	return out
}

// setup runs one `setup:` line inside dir.
func setup(t *testing.T, dir, outside, line string) {
	t.Helper()
	fields := strings.SplitN(line, " ", 4)
	path := func(i int) string {
		if len(fields) <= i {
			t.Fatalf("setup %q: missing argument", line)
		}
		return filepath.Join(dir, filepath.FromSlash(fields[i]))
	}
	num := func(i int) int {
		if len(fields) <= i {
			t.Fatalf("setup %q: missing argument", line)
		}
		n, err := strconv.Atoi(fields[i])
		if err != nil {
			t.Fatalf("setup %q: %v", line, err)
		}
		return n
	}
	mkParent := func(p string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	switch fields[0] {
	case "append":
		p, n := path(1), num(2)
		if len(fields) < 4 {
			t.Fatalf("setup %q: missing string", line)
		}
		str, err := strconv.Unquote(fields[3])
		if err != nil {
			t.Fatalf("setup %q: %v", line, err)
		}
		mkParent(p)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(strings.Repeat(str, n)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	case "random":
		p, n, seed := path(1), num(2), num(3)
		data := make([]byte, n)
		rand.New(rand.NewSource(int64(seed))).Read(data)
		data[0] = 0xff // always start with a byte that is not UTF-8 text
		mkParent(p)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	case "symlink":
		p := path(1)
		if len(fields) < 3 {
			t.Fatalf("setup %q: missing target", line)
		}
		target := strings.ReplaceAll(strings.Join(fields[2:], " "), "{outside}", outside)
		mkParent(p)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	case "fifo":
		p := path(1)
		mkParent(p)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Skipf("cannot create a FIFO here: %v", err)
		}
	default:
		t.Fatalf("unknown setup %q", line)
	}
}

// copyTree copies the regular files and directories of src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if fi, err := os.Lstat(target); err == nil && fi.IsDir() {
			return fmt.Errorf("case file %s would replace directory %s of _base: delete it first", rel, rel)
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot records every entry under root: type, mode, size, content hash or
// link target. Special files (FIFOs) are recorded without being opened.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "link " + target
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("file %v %d %x", fi.Mode(), len(data), sha256.Sum256(data))
		default:
			out[rel] = fmt.Sprintf("%v", fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSnapshots(before, after map[string]string) string {
	var lines []string
	for k, v := range after {
		if w, ok := before[k]; !ok {
			lines = append(lines, "  created "+k)
		} else if w != v {
			lines = append(lines, "  changed "+k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			lines = append(lines, "  removed "+k)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// refRepo is a temporary remote (branch main, tag v1.0.0) and a mirror store,
// with files outside the mirror that hold a valid commit hash: a ref that
// climbs out of the mirror and reads one of them would resolve.
type refRepo struct {
	root, remote, store, commit string
}

func newRefRepo(t *testing.T) *refRepo {
	t.Helper()
	root := t.TempDir()
	r := &refRepo{root: root, remote: filepath.Join(root, "remote"), store: filepath.Join(root, "state", "git")}
	repo, err := git.PlainInit(r.remote, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.remote, "shipline.yaml"), []byte("name: demo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("shipline.yaml"); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "Alice", Email: "alice@example.com", When: time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)}
	h, err := wt.Commit("first", &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	r.commit = h.String()
	// go-git's PlainInit names the branch master: add main and a tag.
	if err := repo.Storer.SetReference(plumbing.NewHashReference("refs/heads/main", h)); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CreateTag("v1.0.0", h, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		filepath.Join(root, "outside-ref"),
		filepath.Join(root, "state", "outside-ref"),
		filepath.Join(r.store, "outside-ref"),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(r.commit+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Sanity: a good ref resolves.
	m := r.mirror(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	if got, err := m.Resolve(ctx, "main"); err != nil || got != r.commit {
		t.Fatalf("Resolve(main) = %q, %v; want %s", got, err, r.commit)
	}
	return r
}

func (r *refRepo) mirror(t *testing.T) *gitrepo.Mirror {
	t.Helper()
	s := &gitrepo.Store{Dir: r.store, Getenv: func(string) string { return "" }}
	m, err := s.Mirror(gitrepo.Remote{Project: "demo", URL: r.remote})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// check resolves the case's ref and asserts a clear permanent error, and that
// nothing outside the mirror changed.
func (r *refRepo) check(t *testing.T, s spec) {
	m := r.mirror(t)
	outsideMirror := func() map[string]string {
		snap := snapshot(t, r.root)
		for k := range snap {
			if k == filepath.Join("state", "git", "demo.git") || strings.HasPrefix(k, filepath.Join("state", "git", "demo.git")+string(filepath.Separator)) {
				delete(snap, k)
			}
		}
		return snap
	}
	before := outsideMirror()
	type result struct {
		hash  string
		err   error
		panic any
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	go func() {
		var res result
		defer func() { res.panic = recover(); done <- res }()
		res.hash, res.err = m.Resolve(ctx, s.ref)
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		t.Fatalf("Resolve(%q) did not return within %v", shortRef(s.ref), caseTimeout)
	}
	if res.panic != nil {
		t.Fatalf("Resolve(%q) panicked: %v", shortRef(s.ref), res.panic)
	}
	if diff := diffSnapshots(before, outsideMirror()); diff != "" {
		t.Errorf("Resolve(%q) changed files outside the mirror:\n%s", shortRef(s.ref), diff)
	}
	if res.err == nil {
		t.Fatalf("Resolve(%q) = %s, want an error (resolving it reads a file outside the refs?)", shortRef(s.ref), res.hash)
	}
	want := map[string]error{"unknown-ref": gitrepo.ErrUnknownRef, "invalid": gitrepo.ErrInvalid}[s.kind]
	if want == nil {
		t.Fatalf("unknown kind %q", s.kind)
	}
	var problems []string
	var ge *apperr.Error
	if !errors.Is(res.err, want) || !errors.As(res.err, &ge) {
		problems = append(problems, fmt.Sprintf("error %q is not a permanent %v (%T)", res.err, want, res.err))
	}
	for _, f := range s.fragments {
		if !strings.Contains(res.err.Error(), f) {
			problems = append(problems, fmt.Sprintf("error %q lacks %q", res.err, f))
		}
	}
	switch {
	case len(problems) > 0 && s.known != "":
		t.Skipf("known bug: %s\nResolve(%q): %s", s.known, shortRef(s.ref), strings.Join(problems, "; "))
	case len(problems) > 0:
		t.Errorf("Resolve(%q): %s", shortRef(s.ref), strings.Join(problems, "\n"))
	case s.known != "":
		t.Errorf("Resolve(%q) now behaves as expected: remove the known: line of this case", shortRef(s.ref))
	}
}

func shortRef(s string) string {
	if len(s) > 60 {
		return s[:60] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}
