package activities

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/pkgindex"
	"github.com/shipline/shipline/internal/pkgindex/pkgindextest"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/storage"
)

// libraryActivities returns Library activities whose index "internal" is a
// simple index in a temporary directory and whose store holds a built wheel.
func libraryActivities(t *testing.T, repo string) (*Libraries, string) {
	t.Helper()
	index := t.TempDir()
	cfg := &platform.Config{
		StateDir: t.TempDir(),
		Projects: map[string]platform.Project{"demo": {Name: "demo", Repo: repo, Admins: []string{"alice"}}},
		PackageIndexes: map[string]platform.PackageIndex{
			"internal": {Name: "internal", Kind: platform.IndexSimple, URL: "file://" + filepath.ToSlash(index)},
			"secured":  {Name: "secured", Kind: platform.IndexSimple, URL: "file://" + filepath.ToSlash(index), TokenEnv: "SECURED_TOKEN"},
		},
	}
	return &Libraries{Platform: cfg, Getenv: func(string) string { return "" }}, index
}

// storeWheel puts a wheel into the libraries' store as a build would.
func storeWheel(t *testing.T, l *Libraries, code string) PublishLibraryInput {
	t.Helper()
	path := pkgindextest.Wheel(t, t.TempDir(), "common", "1.2.0", pkgindextest.WheelOptions{Code: code})
	sum, data := fileSum(t, path)
	st, err := storage.Open(context.Background(), l.Platform.StorageURL())
	if err != nil {
		t.Fatal(err)
	}
	object := "cache/k/" + sum + "/" + filepath.Base(path)
	if err := st.PutFile(context.Background(), object, path); err != nil {
		t.Fatal(err)
	}
	return PublishLibraryInput{Project: "demo", Release: "v1.2.0", File: filepath.Base(path), Object: object, SHA256: sum, Size: int64(len(data)),
		Library: manifest.Library{Name: "common", Path: "libs/common", Language: manifest.Python, Index: "internal"}}
}

func publishOnce(t *testing.T, l *Libraries, in PublishLibraryInput) (PublishedLibrary, error) {
	t.Helper()
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(l)
	val, err := env.ExecuteActivity(l.Publish, in)
	if err != nil {
		return PublishedLibrary{}, err
	}
	var out PublishedLibrary
	if err := val.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out, nil
}

// A library is published from the build cache to its index; the same bytes
// again are a no-op; other bytes under the version are refused permanently.
func TestPublishLibrary(t *testing.T) {
	l, index := libraryActivities(t, "")
	in := storeWheel(t, l, "X = 1\n")
	out, err := publishOnce(t, l, in)
	if err != nil {
		t.Fatal(err)
	}
	if out.AlreadyPublished || out.Index != "internal" || out.Name != "common" || out.Version != "1.2.0" || out.SHA256 != in.SHA256 || out.File != in.File {
		t.Fatalf("published %+v", out)
	}
	if _, err := os.Stat(filepath.Join(index, "common", in.File)); err != nil {
		t.Fatalf("the wheel is not in the index: %v", err)
	}
	ix, err := OpenIndex(context.Background(), l.Platform, "internal", l.getenv)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := ix.Has(context.Background(), "common", "1.2.0"); !ok || err != nil {
		t.Fatalf("Has(common 1.2.0) = %v, %v", ok, err)
	}

	again, err := publishOnce(t, l, in)
	if err != nil || !again.AlreadyPublished {
		t.Fatalf("same bytes again: %+v, %v; want already published", again, err)
	}

	other := storeWheel(t, l, "X = 2\n")
	_, err = publishOnce(t, l, other)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != apperr.VersionAlreadyPublished || !app.NonRetryable() {
		t.Fatalf("other bytes: %v, want a non-retryable %s", err, apperr.VersionAlreadyPublished)
	}
	if !strings.Contains(err.Error(), "immutable") {
		t.Errorf("message: %v", err)
	}
}

// An index whose credential variable is unset fails with IndexConfig, naming the variable.
func TestOpenIndexCredentials(t *testing.T) {
	l, _ := libraryActivities(t, "")
	_, err := OpenIndex(context.Background(), l.Platform, "secured", l.getenv)
	if apperr.Type(err) != apperr.IndexConfig || !strings.Contains(err.Error(), "SECURED_TOKEN") || !strings.Contains(err.Error(), "restart the worker and resume") {
		t.Fatalf("err = %v", err)
	}
	_, err = OpenIndex(context.Background(), l.Platform, "nexus", l.getenv)
	if apperr.Type(err) != apperr.IndexConfig || !strings.Contains(err.Error(), "internal, secured") {
		t.Fatalf("err = %v", err)
	}
}

// platform.yaml accepts exactly the kinds internal/pkgindex publishes (the
// platform package cannot import pkgindex, which reads its storage through
// internal/storage: this keeps the two lists one).
func TestIndexKindsAgree(t *testing.T) {
	if got, want := strings.Join(platform.IndexKinds, ","), strings.Join(pkgindex.Kinds(), ","); got != want {
		t.Errorf("platform.IndexKinds = %s, pkgindex.Kinds() = %s: register the kind in both", got, want)
	}
}

// The dependencies of a commit's pipelines are checked against the index:
// a pin to a version the index holds passes, to the release's own version
// passes, to another version is reported at its file:line.
func TestCheckDependencies(t *testing.T) {
	remote := newTestRemote(t)
	commit := remote.commit(t, map[string]string{
		"shipline.yaml":              "name: demo\npipelines:\n  a: {path: pipelines/a, language: python}\nlibraries:\n  common: {path: libs/common, language: python, index: internal}\n",
		"libs/common/pyproject.toml": "[project]\nname = \"common\"\nversion = \"0.0.0\"\n",
		"pipelines/a/pyproject.toml": "[project]\nname = \"a\"\nversion = \"1.0.0\"\ndependencies = [\n  \"common==1.2.0\",\n  \"common==1.3.0\",\n]\n",
	})
	l, _ := libraryActivities(t, remote.bare)
	if _, err := publishOnce(t, l, storeWheel(t, l, "X = 1\n")); err != nil {
		t.Fatal(err)
	}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(l)
	check := func(release string) LibraryDepsOutput {
		val, err := env.ExecuteActivity(l.CheckDependencies, LibraryDepsInput{Project: "demo", Commit: commit, Release: release})
		if err != nil {
			t.Fatal(err)
		}
		var out LibraryDepsOutput
		if err := val.Get(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := check("v1.4.0")
	if len(out.Deps) != 2 || len(out.Diagnostics) != 1 ||
		!strings.Contains(out.Diagnostics.Error(), `pipelines/a/pyproject.toml:6:1: error: pipeline "a" depends on library common 1.3.0 (common==1.3.0), which is not published on package index "internal"`) {
		t.Fatalf("deps %+v\n%s", out.Deps, out.Diagnostics.Error())
	}
	if out := check("v1.3.0"); len(out.Diagnostics) != 0 {
		t.Fatalf("the release v1.3.0 publishes common 1.3.0 itself:\n%s", out.Diagnostics.Error())
	}
}

// platform.yaml's simple_url reaches the index: a devpi-like server whose
// simple pages are at <index>/+simple/ answers whether a pinned version is
// published only through it.
func TestOpenIndexSimpleURL(t *testing.T) {
	srv := pkgindextest.NewPyPI(t)
	srv.NoJSON = true
	srv.AddToken("ci", "tok")
	up, err := pkgindex.Open(context.Background(), pkgindex.Config{Name: "up", Kind: "pypi", URL: srv.UploadURL(), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	whl := pkgindextest.Wheel(t, t.TempDir(), "common", "1.2.0", pkgindextest.WheelOptions{})
	if _, err := up.Publish(context.Background(), pkgindex.File{Name: "common", Version: "1.2.0", Path: whl}); err != nil {
		t.Fatal(err)
	}
	devpi := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/team/prod/+simple/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		r.URL.Path = "/simple/" + rest
		srv.ServeHTTP(w, r)
	}))
	defer devpi.Close()
	lib := manifest.Library{Name: "common", Path: "libs/common", Language: manifest.Python, Index: "devpi"}
	for _, c := range []struct {
		simpleURL string
		want      bool
	}{{devpi.URL + "/team/prod/+simple/", true}, {"", false}} {
		cfg := &platform.Config{PackageIndexes: map[string]platform.PackageIndex{
			"devpi": {Name: "devpi", Kind: platform.IndexPyPI, URL: devpi.URL + "/team/prod/", SimpleURL: c.simpleURL, TokenEnv: "DEVPI_TOKEN"},
		}}
		ok, err := PublishedIn(context.Background(), cfg, func(string) string { return "tok" })(lib, "1.2.0")
		if err != nil || ok != c.want {
			t.Errorf("simple_url %q: published = %v, %v; want %v", c.simpleURL, ok, err, c.want)
		}
	}
}

// The worker warns at start about a package index whose credential variable
// is unset, naming the index and the variable, as it does for notifications.
func TestUnsetIndexVariablesAreReported(t *testing.T) {
	l, _ := libraryActivities(t, "")
	t.Setenv("SECURED_TOKEN", "")
	got := UnsetIndexVariables(l.Platform)
	if len(got) != 1 || !strings.HasPrefix(got[0], "package index secured: SECURED_TOKEN is not set in the worker's environment") {
		t.Errorf("unset = %q", got)
	}
	t.Setenv("SECURED_TOKEN", "x")
	if got := UnsetIndexVariables(l.Platform); len(got) != 0 {
		t.Errorf("with the variable set: %q", got)
	}
}
