package pkgindex_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/pkgindex"
	"github.com/shipline/shipline/internal/pkgindex/pkgindextest"
	"github.com/shipline/shipline/internal/storage"
)

// simpleIndex opens a simple index in a new directory.
func simpleIndex(t *testing.T) (pkgindex.Index, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pypi")
	idx, err := pkgindex.Open(context.Background(), pkgindex.Config{Name: "internal", Kind: "simple", URL: storage.FileURL(dir)})
	if err != nil {
		t.Fatal(err)
	}
	return idx, dir
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func publish(t *testing.T, idx pkgindex.Index, name, version, path string) pkgindex.Result {
	t.Helper()
	res, err := idx.Publish(context.Background(), pkgindex.File{Project: "customer360", Name: name, Version: version, Path: path})
	if err != nil {
		t.Fatalf("publish %s %s: %v", name, version, err)
	}
	return res
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestKinds(t *testing.T) {
	for _, k := range pkgindex.Kinds() {
		if _, err := pkgindex.Open(context.Background(), pkgindex.Config{Name: "x", Kind: k, URL: storage.FileURL(t.TempDir())}); err != nil && k == "simple" {
			t.Errorf("open %s: %v", k, err)
		}
	}
	_, err := pkgindex.Open(context.Background(), pkgindex.Config{Name: "art", Kind: "npm", URL: "https://x"})
	if apperr.Type(err) != apperr.IndexConfig || !strings.Contains(err.Error(), "package index art") || !strings.Contains(err.Error(), "simple") {
		t.Errorf("unknown kind: %v", err)
	}
	_, err = pkgindex.Open(context.Background(), pkgindex.Config{Name: "art", Kind: "simple"})
	if apperr.Type(err) != apperr.IndexConfig || !strings.Contains(err.Error(), "package_indexes.art.url") {
		t.Errorf("no url: %v", err)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"friendly-bard": "friendly-bard", "Friendly-Bard": "friendly-bard", "FRIENDLY-BARD": "friendly-bard",
		"friendly.bard": "friendly-bard", "friendly_bard": "friendly-bard", "friendly--bard": "friendly-bard",
		"FrIeNdLy-._.-bArD": "friendly-bard",
	} {
		if got := pkgindex.Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

// The index follows PEP 503: files and a page per normalized project name,
// each link with the file's sha256 and its Requires-Python, and a root page.
func TestSimplePublishWritesPEP503Index(t *testing.T) {
	idx, dir := simpleIndex(t)
	whl := pkgindextest.Wheel(t, t.TempDir(), "Common.Lib_Utils", "1.2.0", pkgindextest.WheelOptions{Code: "X = 1", RequiresPython: ">=3.8,<4"})
	res := publish(t, idx, "Common.Lib_Utils", "v1.2.0", whl)
	if res.AlreadyPublished {
		t.Error("a first publish says AlreadyPublished")
	}
	fn := filepath.Base(whl)
	stored := filepath.Join(dir, "common-lib-utils", fn)
	if sha256File(t, stored) != sha256File(t, whl) {
		t.Fatal("the stored wheel is not the built one")
	}
	if res.URL != storage.FileURL(stored) {
		t.Errorf("URL = %s, want %s", res.URL, storage.FileURL(stored))
	}
	page := readFile(t, filepath.Join(dir, "common-lib-utils", "index.html"))
	want := fmt.Sprintf(`<a href="%s#sha256=%s" data-requires-python="&gt;=3.8,&lt;4">%s</a>`, fn, sha256File(t, whl), fn)
	if !strings.Contains(page, want) {
		t.Errorf("project page lacks %s:\n%s", want, page)
	}
	root := readFile(t, filepath.Join(dir, "index.html"))
	if !strings.Contains(root, `<a href="common-lib-utils/">common-lib-utils</a>`) {
		t.Errorf("root page:\n%s", root)
	}

	// A second version joins the same page; a second project the root page.
	whl2 := pkgindextest.Wheel(t, t.TempDir(), "common-lib-utils", "1.3.0", pkgindextest.WheelOptions{Code: "X = 2"})
	publish(t, idx, "common_lib_utils", "1.3.0", whl2)
	other := pkgindextest.Wheel(t, t.TempDir(), "alpha", "0.1.0", pkgindextest.WheelOptions{})
	publish(t, idx, "alpha", "0.1.0", other)
	page = readFile(t, filepath.Join(dir, "common-lib-utils", "index.html"))
	if !strings.Contains(page, want) || !strings.Contains(page, filepath.Base(whl2)+"#sha256="+sha256File(t, whl2)) {
		t.Errorf("project page after a second version:\n%s", page)
	}
	root = readFile(t, filepath.Join(dir, "index.html"))
	if a, c := strings.Index(root, `"alpha/"`), strings.Index(root, `"common-lib-utils/"`); a < 0 || c < a {
		t.Errorf("root page lists both projects in order:\n%s", root)
	}
}

// Publishing the same bytes again is a no-op; other bytes under a published
// version are refused with a stable type and a message saying what to do.
func TestSimpleImmutability(t *testing.T) {
	idx, dir := simpleIndex(t)
	whl := pkgindextest.Wheel(t, t.TempDir(), "common", "1.0.0", pkgindextest.WheelOptions{Code: "X = 1"})
	publish(t, idx, "common", "1.0.0", whl)
	stored := filepath.Join(dir, "common", filepath.Base(whl))
	written := []string{stored, filepath.Join(dir, "common", "index.html"), filepath.Join(dir, "index.html")}
	var before []os.FileInfo
	for _, p := range written {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, st)
	}

	res := publish(t, idx, "common", "1.0.0", whl)
	if !res.AlreadyPublished {
		t.Error("the same bytes again are not AlreadyPublished")
	}
	for i, p := range written {
		if after, err := os.Stat(p); err != nil || !os.SameFile(before[i], after) || !after.ModTime().Equal(before[i].ModTime()) {
			t.Errorf("publishing the same bytes again wrote %s", p)
		}
	}

	other := pkgindextest.Wheel(t, t.TempDir(), "common", "1.0.0", pkgindextest.WheelOptions{Code: "X = 2"})
	_, err := idx.Publish(context.Background(), pkgindex.File{Project: "customer360", Name: "common", Version: "1.0.0", Path: other})
	if apperr.Type(err) != apperr.VersionAlreadyPublished {
		t.Fatalf("other bytes: %v (type %q), want %s", err, apperr.Type(err), apperr.VersionAlreadyPublished)
	}
	var app *apperr.Error
	if !errors.As(err, &app) || !app.Permanent() {
		t.Error("the refusal is retryable")
	}
	for _, s := range []string{"package index internal", "common 1.0.0", sha256File(t, whl), sha256File(t, other), "release a new version"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("refusal %q does not say %q", err, s)
		}
	}
	if sha256File(t, stored) != sha256File(t, whl) {
		t.Error("the refusal replaced the published file")
	}
}

// A publish that stopped after the file and before its page is finished by
// the next one: the page links the file again.
func TestSimpleFinishesAnInterruptedPublish(t *testing.T) {
	idx, dir := simpleIndex(t)
	whl := pkgindextest.Wheel(t, t.TempDir(), "common", "1.0.0", pkgindextest.WheelOptions{})
	publish(t, idx, "common", "1.0.0", whl)
	for _, p := range []string{filepath.Join(dir, "common", "index.html"), filepath.Join(dir, "index.html")} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if res := publish(t, idx, "common", "1.0.0", whl); !res.AlreadyPublished {
		t.Error("not AlreadyPublished")
	}
	if page := readFile(t, filepath.Join(dir, "common", "index.html")); !strings.Contains(page, "#sha256="+sha256File(t, whl)) {
		t.Errorf("page not rewritten:\n%s", page)
	}
	if !strings.Contains(readFile(t, filepath.Join(dir, "index.html")), `"common/"`) {
		t.Error("root page not rewritten")
	}
}

// Readers of the index never see half a page nor a link to a file that is
// not there yet: files are written before the page, pages replaced whole.
func TestSimplePagesAreAtomic(t *testing.T) {
	idx, dir := simpleIndex(t)
	src := t.TempDir()
	const versions = 15
	var wheels []string
	for i := range versions {
		wheels = append(wheels, pkgindextest.Wheel(t, src, "common", fmt.Sprintf("1.0.%d", i), pkgindextest.WheelOptions{Code: strings.Repeat("# padding\n", 2000)}))
	}
	var done atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	problems := make(chan string, 100)
	page := filepath.Join(dir, "common", "index.html")
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done.Load() {
			data, err := os.ReadFile(page)
			if err != nil {
				continue // not written yet
			}
			reads.Add(1)
			s := string(data)
			if !strings.HasPrefix(s, "<!DOCTYPE html>") || !strings.HasSuffix(s, "</html>\n") {
				problems <- "half a page: " + s
				return
			}
			for _, line := range strings.Split(s, "\n") {
				if href, ok := strings.CutPrefix(strings.TrimSpace(line), `<a href="`); ok {
					fn, _, _ := strings.Cut(href, "#")
					if _, err := os.Stat(filepath.Join(dir, "common", fn)); err != nil {
						problems <- "the page links a missing file: " + fn
						return
					}
				}
			}
		}
	}()
	for i, w := range wheels {
		publish(t, idx, "common", fmt.Sprintf("1.0.%d", i), w)
	}
	done.Store(true)
	wg.Wait()
	close(problems)
	for p := range problems {
		t.Error(p)
	}
	if reads.Load() == 0 {
		t.Log("the reader saw no page while publishing (machine too fast); the final page is checked below")
	}
	final := readFile(t, page)
	for _, w := range wheels {
		if !strings.Contains(final, filepath.Base(w)+"#sha256="+sha256File(t, w)) {
			t.Errorf("final page lacks %s", filepath.Base(w))
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "common"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestSimpleHas(t *testing.T) {
	idx, _ := simpleIndex(t)
	ctx := context.Background()
	whl := pkgindextest.Wheel(t, t.TempDir(), "My_Lib", "2.0.1", pkgindextest.WheelOptions{})
	if ok, err := idx.Has(ctx, "my-lib", "2.0.1"); err != nil || ok {
		t.Fatalf("Has before publish = %v, %v", ok, err)
	}
	publish(t, idx, "My_Lib", "2.0.1", whl)
	for _, c := range []struct {
		name, version string
		want          bool
	}{
		{"my-lib", "2.0.1", true}, {"My.Lib", "v2.0.1", true}, {"my_lib", "2.0.1", true},
		{"my-lib", "2.0.2", false}, {"my-lib", "2.0", false}, {"other", "2.0.1", false},
	} {
		if ok, err := idx.Has(ctx, c.name, c.version); err != nil || ok != c.want {
			t.Errorf("Has(%s, %s) = %v, %v; want %v", c.name, c.version, ok, err, c.want)
		}
	}
}

// The file must be the library's version: a wheel of another version or
// package is refused before anything is written.
func TestSimpleRefusesAMislabelledWheel(t *testing.T) {
	idx, dir := simpleIndex(t)
	whl := pkgindextest.Wheel(t, t.TempDir(), "common", "1.0.0", pkgindextest.WheelOptions{})
	for _, f := range []pkgindex.File{
		{Name: "common", Version: "1.0.1", Path: whl},
		{Name: "other", Version: "1.0.0", Path: whl},
		{Name: "common", Version: "1.0.0", Path: filepath.Join(t.TempDir(), "missing.whl")},
		{Name: "bad name!", Version: "1.0.0", Path: whl},
	} {
		if _, err := idx.Publish(context.Background(), f); err == nil || !apperr.Known(apperr.Type(err)) {
			t.Errorf("publish %+v: %v (type %q)", f, err, apperr.Type(err))
		}
	}
	if _, err := os.Stat(dir); err == nil {
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("a refused publish wrote %v", entries)
		}
	}
}

// Publishes running at once (two workers releasing two libraries, or two
// versions of one) all end up on the pages: each page is rewritten until it
// lists what the directory holds.
func TestSimpleConcurrentPublishes(t *testing.T) {
	idx, dir := simpleIndex(t)
	src := t.TempDir()
	type job struct{ name, version, path string }
	var jobs []job
	for _, name := range []string{"alpha", "beta"} {
		for i := range 4 {
			v := fmt.Sprintf("1.%d.0", i)
			jobs = append(jobs, job{name, v, pkgindextest.Wheel(t, src, name, v, pkgindextest.WheelOptions{})})
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(jobs))
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := idx.Publish(context.Background(), pkgindex.File{Name: j.name, Version: j.version, Path: j.path})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, j := range jobs {
		if page := readFile(t, filepath.Join(dir, j.name, "index.html")); !strings.Contains(page, filepath.Base(j.path)+"#sha256="+sha256File(t, j.path)) {
			t.Errorf("page of %s lacks %s", j.name, j.version)
		}
	}
	if root := readFile(t, filepath.Join(dir, "index.html")); !strings.Contains(root, `"alpha/"`) || !strings.Contains(root, `"beta/"`) {
		t.Errorf("root page:\n%s", root)
	}
}
