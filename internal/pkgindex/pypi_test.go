package pkgindex_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/pkgindex"
	"github.com/shipline/shipline/internal/pkgindex/pkgindextest"
)

func pypiIndex(t *testing.T, srv *pkgindextest.PyPI, c pkgindex.Config) pkgindex.Index {
	t.Helper()
	c.Name, c.Kind, c.URL = "artifactory", "pypi", srv.UploadURL()
	idx, err := pkgindex.Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// twine uploads path to the upload URL with a token, in a clean environment.
func twine(t *testing.T, uploadURL, token, path string) {
	t.Helper()
	bin, err := exec.LookPath("twine")
	if err != nil {
		t.Skip("twine, the judge of this test, is missing: apt-get install twine")
	}
	cmd := exec.Command(bin, "upload", "--non-interactive", "--disable-progress-bar", "--repository-url", uploadURL, "-u", "__token__", "-p", token, path)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin", "PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring", "NO_COLOR=1"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("twine upload: %v\n%s", err, out)
	}
}

// Shipline's upload leaves the server as twine's upload of the same wheel
// does: the same file, digests and metadata fields.
func TestPyPIUploadMatchesTwine(t *testing.T) {
	whl := pkgindextest.Wheel(t, t.TempDir(), "Common.Lib", "1.4.0", pkgindextest.WheelOptions{
		Code: "X = 1", Summary: "Shared helpers", RequiresPython: ">=3.8"})
	srv := uploadLikeTwine(t, whl, "Common.Lib", "1.4.0")

	// pip installs what Shipline uploaded, from the server's simple pages.
	target := t.TempDir()
	if out, err := pip(t, "install", "--no-deps", "--index-url", srv.SimpleURL(), "--target", target, "common_lib==1.4.0"); err != nil {
		t.Fatalf("pip install: %v\n%s", err, out)
	}
}

// The same with a wheel setuptools builds from a pyproject.toml that uses
// every kind of metadata (authors, license, keywords, URLs, dependencies,
// extras, a Markdown readme).
func TestPyPIUploadOfASetuptoolsWheelMatchesTwine(t *testing.T) {
	if err := exec.Command(debianPython, "-c", "import build, setuptools").Run(); err != nil {
		t.Skip("python3-build and python3-setuptools, which build this test's wheel, are missing: apt-get install python3-build python3-setuptools")
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"pyproject.toml":          richPyproject,
		"README.md":               "# Rich lib\n\nLine one.\n\n  Indented line, and **markdown**.\n",
		"src/richlib/__init__.py": "X = 1\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(debianPython, "-m", "build", "--wheel", "--no-isolation", "--outdir", filepath.Join(dir, "dist"), dir)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin", "SOURCE_DATE_EPOCH=315532800"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := uploadLikeTwine(t, filepath.Join(dir, "dist", "Rich_Lib-0.3.0-py3-none-any.whl"), "Rich-Lib", "0.3.0")
	form := srv.Uploads()[0].Form
	if len(form["requires_dist"]) != 3 || len(form["project_urls"]) != 2 || form["provides_extras"][0] != "fast" ||
		!strings.Contains(form["description"][0], "**markdown**") || form["author_email"][0] != "Ada Data <ada@example.com>" {
		t.Errorf("the upload lost metadata: %v", form)
	}
}

const richPyproject = `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "Rich_Lib"
version = "0.3.0"
description = "A library with every kind of metadata"
readme = "README.md"
requires-python = ">=3.8"
license = {text = "Apache-2.0"}
authors = [{name = "Ada Data", email = "ada@example.com"}]
maintainers = [{name = "Bo Ops", email = "bo@example.com"}]
keywords = ["data", "pipelines"]
classifiers = ["Programming Language :: Python :: 3", "License :: OSI Approved :: Apache Software License"]
dependencies = ["requests>=2", "pyyaml; python_version>'3.7'"]

[project.optional-dependencies]
fast = ["orjson"]

[project.urls]
Homepage = "https://example.com/rich"
Issues = "https://example.com/rich/issues"
`

// uploadLikeTwine uploads whl with twine to one fresh server and with
// Shipline to another, checks that both hold the same state, and returns
// Shipline's server.
func uploadLikeTwine(t *testing.T, whl, name, version string) *pkgindextest.PyPI {
	t.Helper()
	byTwine := pkgindextest.NewPyPI(t)
	byTwine.AddToken("alice", "tok-a")
	twine(t, byTwine.UploadURL(), "tok-a", whl)

	byShipline := pkgindextest.NewPyPI(t)
	byShipline.AddToken("alice", "tok-a")
	res := publish(t, pypiIndex(t, byShipline, pkgindex.Config{Token: "tok-a"}), name, version, whl)
	if res.AlreadyPublished {
		t.Error("a first upload says AlreadyPublished")
	}
	if want := byShipline.URL + "/packages/" + pkgindex.Normalize(name) + "/" + filepath.Base(whl); res.URL != want {
		t.Errorf("URL = %s, want %s", res.URL, want)
	}

	got, want := byShipline.Uploads(), byTwine.Uploads()
	if len(want) != 1 || len(got) != 1 {
		t.Fatalf("uploads: shipline %d, twine %d", len(got), len(want))
	}
	if want[0].SHA256 != sha256File(t, whl) {
		t.Fatal("twine uploaded other bytes")
	}
	if len(want[0].Form) < 10 {
		t.Fatalf("twine sent only %v", want[0].Form)
	}
	if !reflect.DeepEqual(got[0], want[0]) {
		for k := range want[0].Form {
			if !reflect.DeepEqual(got[0].Form[k], want[0].Form[k]) {
				t.Errorf("field %s: shipline %q, twine %q", k, got[0].Form[k], want[0].Form[k])
			}
		}
		for k := range got[0].Form {
			if _, ok := want[0].Form[k]; !ok {
				t.Errorf("field %s: shipline %q, twine none", k, got[0].Form[k])
			}
		}
		got[0].Form, want[0].Form = nil, nil
		if !reflect.DeepEqual(got[0], want[0]) {
			t.Errorf("server state after shipline:\n%+v\nafter twine:\n%+v", got[0], want[0])
		}
	}
	return byShipline
}

func TestPyPIImmutability(t *testing.T) {
	srv := pkgindextest.NewPyPI(t)
	srv.AddUser("ci", "secret")
	idx := pypiIndex(t, srv, pkgindex.Config{Username: "ci", Password: "secret"})
	whl := pkgindextest.Wheel(t, t.TempDir(), "common", "1.0.0", pkgindextest.WheelOptions{Code: "X = 1"})
	publish(t, idx, "common", "1.0.0", whl)

	if res := publish(t, idx, "common", "1.0.0", whl); !res.AlreadyPublished {
		t.Error("the same bytes again are not AlreadyPublished")
	}
	other := pkgindextest.Wheel(t, t.TempDir(), "common", "1.0.0", pkgindextest.WheelOptions{Code: "X = 2"})
	_, err := idx.Publish(context.Background(), pkgindex.File{Name: "common", Version: "1.0.0", Path: other})
	if apperr.Type(err) != apperr.VersionAlreadyPublished {
		t.Fatalf("other bytes: %v, want %s", err, apperr.VersionAlreadyPublished)
	}
	for _, s := range []string{"artifactory", "common 1.0.0", sha256File(t, whl), sha256File(t, other), "release a new version"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("refusal %q does not say %q", err, s)
		}
	}
	if ups := srv.Uploads(); len(ups) != 1 || ups[0].SHA256 != sha256File(t, whl) {
		t.Errorf("server holds %+v", ups)
	}

	// An index whose pages do not show the file: its JSON API does.
	srv.HideFiles = true
	if res := publish(t, idx, "common", "1.0.0", whl); !res.AlreadyPublished {
		t.Error("same bytes, found through the JSON API: not AlreadyPublished")
	}
	_, err = idx.Publish(context.Background(), pkgindex.File{Name: "common", Version: "1.0.0", Path: other})
	if apperr.Type(err) != apperr.VersionAlreadyPublished || !strings.Contains(err.Error(), sha256File(t, whl)) {
		t.Errorf("other bytes, found through the JSON API: %v", err)
	}

	// Neither: the upload's answer (400 "File already exists") is reported,
	// with what to do.
	srv.NoJSON = true
	_, err = idx.Publish(context.Background(), pkgindex.File{Name: "common", Version: "1.0.0", Path: other})
	if apperr.Type(err) != apperr.IndexRejected || !strings.Contains(err.Error(), "File already exists") || !strings.Contains(err.Error(), sha256File(t, other)) {
		t.Errorf("hidden file: %v (type %q)", err, apperr.Type(err))
	}
}

func TestPyPIAuthErrors(t *testing.T) {
	srv := pkgindextest.NewPyPI(t)
	srv.AddToken("alice", "tok-a")
	srv.AddToken("bob", "tok-b")
	whl := pkgindextest.Wheel(t, t.TempDir(), "common", "1.0.0", pkgindextest.WheelOptions{})
	ctx := context.Background()
	f := pkgindex.File{Name: "common", Version: "1.0.0", Path: whl}

	_, err := pypiIndex(t, srv, pkgindex.Config{}).Publish(ctx, f)
	if apperr.Type(err) != apperr.IndexAuth || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "no credentials were given") {
		t.Errorf("no credentials: %v", err)
	}
	_, err = pypiIndex(t, srv, pkgindex.Config{Token: "wrong"}).Publish(ctx, f)
	if apperr.Type(err) != apperr.IndexAuth || !strings.Contains(err.Error(), "Invalid or non-existent authentication") || !strings.Contains(err.Error(), "package_indexes.artifactory") {
		t.Errorf("wrong token: %v", err)
	}
	var app *apperr.Error
	if !errors.As(err, &app) || !app.Permanent() {
		t.Error("an auth refusal is retryable")
	}
	publish(t, pypiIndex(t, srv, pkgindex.Config{Token: "tok-a"}), "common", "1.0.0", whl)
	other := pkgindextest.Wheel(t, t.TempDir(), "common", "1.0.1", pkgindextest.WheelOptions{})
	_, err = pypiIndex(t, srv, pkgindex.Config{Token: "tok-b"}).Publish(ctx, pkgindex.File{Name: "common", Version: "1.0.1", Path: other})
	if apperr.Type(err) != apperr.IndexAuth || !strings.Contains(err.Error(), "isn't allowed to upload to project") {
		t.Errorf("another user's project: %v", err)
	}
}

func TestPyPIHas(t *testing.T) {
	srv := pkgindextest.NewPyPI(t)
	srv.AddToken("alice", "tok-a")
	idx := pypiIndex(t, srv, pkgindex.Config{Token: "tok-a"})
	ctx := context.Background()
	if ok, err := idx.Has(ctx, "common", "1.0.0"); err != nil || ok {
		t.Fatalf("Has on an empty index = %v, %v", ok, err)
	}
	publish(t, idx, "common", "1.0.0", pkgindextest.Wheel(t, t.TempDir(), "common", "1.0.0", pkgindextest.WheelOptions{}))
	for v, want := range map[string]bool{"1.0.0": true, "v1.0.0": true, "1.0.1": false} {
		if ok, err := idx.Has(ctx, "Common", v); err != nil || ok != want {
			t.Errorf("Has(Common, %s) = %v, %v", v, ok, err)
		}
	}
}

// Answers other than success and auth refusals: 5xx is transient, other
// 4xx are rejections naming what the index said.
func TestPyPIServerErrors(t *testing.T) {
	whl := pkgindextest.Wheel(t, t.TempDir(), "common", "1.0.0", pkgindextest.WheelOptions{})
	for _, c := range []struct {
		status int
		body   string
		typ    string
	}{
		{http.StatusServiceUnavailable, "maintenance", apperr.IndexUnavailable},
		{http.StatusBadRequest, "Invalid value for classifiers.", apperr.IndexRejected},
		{http.StatusRequestEntityTooLarge, "File too large.", apperr.IndexRejected},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				http.NotFound(w, r)
				return
			}
			http.Error(w, c.body, c.status)
		}))
		idx, err := pkgindex.Open(context.Background(), pkgindex.Config{Name: "nexus", Kind: "pypi", URL: srv.URL + "/repository/pypi-hosted/", Token: "t"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = idx.Publish(context.Background(), pkgindex.File{Name: "common", Version: "1.0.0", Path: whl})
		if apperr.Type(err) != c.typ || !strings.Contains(err.Error(), strings.TrimSuffix(c.body, ".")) || !strings.Contains(err.Error(), "package index nexus") {
			t.Errorf("HTTP %d: %v (type %q), want %s", c.status, err, apperr.Type(err), c.typ)
		}
		srv.Close()
	}
}

func TestPyPIConfig(t *testing.T) {
	for _, u := range []string{"ftp://x/", "upload.example.com", "https://user:pw@example.com/legacy/"} {
		if _, err := pkgindex.Open(context.Background(), pkgindex.Config{Name: "p", Kind: "pypi", URL: u}); apperr.Type(err) != apperr.IndexConfig {
			t.Errorf("url %q: %v", u, err)
		}
	}
}

// devpi serves an index's uploads at the index's URL and its simple pages at
// <index>/+simple/, not at <url>/simple/: simple_url names them, and both the
// published-version check and immutability read them there.
func TestPyPISimpleURL(t *testing.T) {
	srv := pkgindextest.NewPyPI(t)
	srv.NoJSON = true
	srv.AddUser("ci", "secret")
	const index = "/team/prod/"
	devpi := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == index && r.Method == http.MethodPost:
			r.URL.Path = "/legacy/"
		case strings.HasPrefix(p, index+"+simple/"):
			r.URL.Path = "/simple/" + strings.TrimPrefix(p, index+"+simple/")
		case strings.HasPrefix(p, index+"packages/"):
			r.URL.Path = "/packages/" + strings.TrimPrefix(p, index+"packages/")
		default:
			http.NotFound(w, r)
			return
		}
		srv.ServeHTTP(w, r)
	}))
	defer devpi.Close()
	ctx := context.Background()
	open := func(simpleURL string) pkgindex.Index {
		t.Helper()
		idx, err := pkgindex.Open(ctx, pkgindex.Config{Name: "devpi", Kind: "pypi", URL: devpi.URL + index, SimpleURL: simpleURL, Username: "ci", Password: "secret"})
		if err != nil {
			t.Fatal(err)
		}
		return idx
	}
	whl := pkgindextest.Wheel(t, t.TempDir(), "common", "1.0.0", pkgindextest.WheelOptions{Code: "X = 1"})
	other := pkgindextest.Wheel(t, t.TempDir(), "common", "1.0.0", pkgindextest.WheelOptions{Code: "X = 2"})

	guessed := open("")
	publish(t, guessed, "common", "1.0.0", whl)
	// Guessing <url>/simple/ finds nothing: the published version looks
	// unpublished, and other bytes are refused only by the upload's answer.
	if ok, err := guessed.Has(ctx, "common", "1.0.0"); err != nil || ok {
		t.Fatalf("Has without simple_url = %v, %v; the guess was expected to miss devpi's pages", ok, err)
	}

	named := open(devpi.URL + strings.TrimSuffix(index, "/") + "/+simple") // no trailing slash: added
	if ok, err := named.Has(ctx, "common", "1.0.0"); err != nil || !ok {
		t.Errorf("Has with simple_url = %v, %v, want true", ok, err)
	}
	if ok, err := named.Has(ctx, "common", "1.0.1"); err != nil || ok {
		t.Errorf("Has(1.0.1) with simple_url = %v, %v, want false", ok, err)
	}
	res := publish(t, named, "common", "1.0.0", whl)
	if !res.AlreadyPublished || !strings.HasPrefix(res.URL, devpi.URL+index+"packages/") {
		t.Errorf("same bytes again: %+v, want AlreadyPublished with the file's URL on the index", res)
	}
	_, err := named.Publish(ctx, pkgindex.File{Name: "common", Version: "1.0.0", Path: other})
	if apperr.Type(err) != apperr.VersionAlreadyPublished || !strings.Contains(err.Error(), sha256File(t, whl)) || !strings.Contains(err.Error(), sha256File(t, other)) {
		t.Errorf("other bytes with simple_url: %v (type %q), want %s naming both sha256", err, apperr.Type(err), apperr.VersionAlreadyPublished)
	}
	if ups := srv.Uploads(); len(ups) != 1 {
		t.Errorf("server holds %d files, want 1", len(ups))
	}
	// The credentials go to the simple pages: never in clear when the index
	// is https, never to another host.
	host := strings.TrimPrefix(devpi.URL, "http://")
	for _, c := range []struct{ url, simple string }{
		{devpi.URL + index, "ftp://" + host + "/+simple/"},
		{devpi.URL + index, "http://u:p@" + host + "/+simple/"},
		{devpi.URL + index, "http://elsewhere.example.com/team/prod/+simple/"},
		{"https://" + host + index, "http://" + host + index + "+simple/"},
	} {
		_, err := pkgindex.Open(ctx, pkgindex.Config{Name: "devpi", Kind: "pypi", URL: c.url, SimpleURL: c.simple, Username: "ci", Password: "secret"})
		if apperr.Type(err) != apperr.IndexConfig || !strings.Contains(err.Error(), "simple_url") {
			t.Errorf("url %s, simple_url %q: %v, want %s naming simple_url", c.url, c.simple, err, apperr.IndexConfig)
		}
	}
}
