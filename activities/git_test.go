package activities

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/manifest"
)

var releaseTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// appError asserts err is a non-retryable application error of type typ.
func appError(t *testing.T, err error, typ string) *temporal.ApplicationError {
	t.Helper()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want an application error of type %s", err, err, typ)
	}
	if ae.Type() != typ || !ae.NonRetryable() {
		t.Fatalf("err type %q non-retryable=%v, want %q non-retryable: %v", ae.Type(), ae.NonRetryable(), typ, err)
	}
	return ae
}

func TestCreateTagActivity(t *testing.T) {
	remote := newTestRemote(t)
	first := remote.commit(t, map[string]string{"README": "one\n"})
	second := remote.commit(t, map[string]string{"README": "two\n"})
	g := gitActivities(t, "file://"+remote.bare, nil)
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(g)

	resolve := func(ref string) string {
		val, err := env.ExecuteActivity(g.ResolveRef, ResolveRefInput{Project: "demo", Ref: ref})
		if err != nil {
			t.Fatalf("ResolveRef(%s): %v", ref, err)
		}
		var out ResolveRefOutput
		if err := val.Get(&out); err != nil {
			t.Fatal(err)
		}
		return out.Commit
	}
	if got := resolve("main"); got != second {
		t.Fatalf("ResolveRef(main) = %s, want %s", got, second)
	}
	if got := resolve(first[:8]); got != first {
		t.Fatalf("ResolveRef(short) = %s, want %s", got, first)
	}

	in := CreateTagInput{Project: "demo", Version: "v1.0.0", Commit: first, Message: "First release", Tagger: "alice", When: releaseTime}
	for i, wantCreated := range []bool{true, false} {
		val, err := env.ExecuteActivity(g.CreateTag, in)
		if err != nil {
			t.Fatalf("CreateTag #%d: %v", i+1, err)
		}
		var out CreateTagOutput
		if err := val.Get(&out); err != nil {
			t.Fatal(err)
		}
		if out.Created != wantCreated || out.Tagger != "alice" || !out.When.Equal(releaseTime) {
			t.Fatalf("CreateTag #%d = %+v, want Created=%v", i+1, out, wantCreated)
		}
	}
	raw := runGit(t, remote.bare, "cat-file", "-p", "v1.0.0")
	if !strings.Contains(raw, "tagger alice <alice@shipline.local>") || !strings.Contains(raw, "First release") {
		t.Errorf("remote tag object:\n%s", raw)
	}
	if got := runGit(t, remote.bare, "rev-parse", "v1.0.0^{commit}"); got != first {
		t.Errorf("v1.0.0 peels to %s, want %s", got, first)
	}

	// The same version on another commit is a permanent conflict.
	moved := in
	moved.Commit = second
	_, err := env.ExecuteActivity(g.CreateTag, moved)
	ae := appError(t, err, apperr.TagConflict)
	if !strings.Contains(ae.Error(), "tag v1.0.0 already exists") || !strings.Contains(ae.Error(), first[:7]) {
		t.Errorf("conflict message: %v", ae)
	}

	// ListTags sees the release.
	val, err := env.ExecuteActivity(g.ListTags, ListTagsInput{Project: "demo", Fetch: true})
	if err != nil {
		t.Fatal(err)
	}
	var tags ListTagsOutput
	if err := val.Get(&tags); err != nil {
		t.Fatal(err)
	}
	if len(tags.Tags) != 1 || tags.Tags[0].Name != "v1.0.0" || tags.Tags[0].Commit != first ||
		!tags.Tags[0].Annotated || tags.Tags[0].Creator != "alice" || tags.Tags[0].Message != "First release" {
		t.Errorf("ListTags = %+v", tags.Tags)
	}
}

func TestGitActivityPermanentErrors(t *testing.T) {
	remote := newTestRemote(t)
	commit := remote.commit(t, map[string]string{"README": "one\n"})
	g := gitActivities(t, remote.bare, nil)
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(g)

	_, err := env.ExecuteActivity(g.ResolveRef, ResolveRefInput{Project: "nope", Ref: "main"})
	ae := appError(t, err, apperr.UnknownProject)
	if !strings.Contains(ae.Error(), `"nope"`) || !strings.Contains(ae.Error(), "demo") {
		t.Errorf("unknown project message: %v", ae)
	}
	_, err = env.ExecuteActivity(g.ResolveRef, ResolveRefInput{Project: "demo", Ref: "no-such-branch"})
	appError(t, err, apperr.UnknownRef)
	_, err = env.ExecuteActivity(g.CreateTag, CreateTagInput{Project: "demo", Version: "1.0", Commit: commit, Tagger: "alice", When: releaseTime})
	appError(t, err, apperr.InvalidInput)
}

func TestGitAuthActivity(t *testing.T) {
	const token = "s3cr3t-token-value"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
		http.Error(w, "denied", http.StatusUnauthorized)
	}))
	defer srv.Close()
	g := gitActivities(t, srv.URL+"/demo.git", map[string]string{"DEMO_GIT_TOKEN": token})
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(g)

	_, err := env.ExecuteActivity(g.ResolveRef, ResolveRefInput{Project: "demo", Ref: "main"})
	ae := appError(t, err, apperr.GitAuthFailed)
	text := ae.Error()
	for c := errors.Unwrap(ae); c != nil; c = errors.Unwrap(c) {
		text += " | " + c.Error()
	}
	if strings.Contains(text, token) {
		t.Fatalf("error leaks the token: %s", text)
	}
	if !strings.Contains(text, "$DEMO_GIT_TOKEN") || !strings.Contains(text, srv.URL) {
		t.Errorf("auth error does not name the variable and remote: %s", text)
	}
}

func TestValidateManifestActivity(t *testing.T) {
	remote := newTestRemote(t)
	valid := remote.commit(t, map[string]string{
		"shipline.yaml": `name: demo
pipelines:
  ingest: {path: pipelines/ingest, language: python}
jobs:
  daily:
    scheduler: databricks
    fabric: dev
    pipelines: [ingest]
    definition: jobs/daily/job.json
`,
		"pipelines/ingest/pyproject.toml": "[project]\nname = \"ingest\"\n",
		"jobs/daily/job.json":             `{"name": "daily ${release.version}", "tasks": [{"task_key": "ingest", "python_wheel_task": {"package_name": "ingest", "entry_point": "main"}, "libraries": [{"whl": "${artifact.ingest}"}]}]}`,
	})
	invalid := remote.commit(t, map[string]string{
		"shipline.yaml": `name: demo
pipelines:
  ingest: {path: pipelines/ingest, language: cobol}
jobs:
  daily:
    scheduler: databricks
    fabric: dev
    pipelines: [ingest]
    definition: jobs/daily/job.json
`,
	})
	g := gitActivities(t, remote.bare, nil)
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(g)

	validate := func(commit string) ValidateManifestOutput {
		t.Helper()
		val, err := env.ExecuteActivity(g.ValidateManifest, ValidateManifestInput{Project: "demo", Commit: commit})
		if err != nil {
			t.Fatal(err)
		}
		var out ValidateManifestOutput
		if err := val.Get(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := validate(valid)
	if out.Name != "demo" || out.Diagnostics.HasErrors() {
		t.Fatalf("valid manifest: name %q, diagnostics:\n%v", out.Name, out.Diagnostics.Error())
	}
	// The pipelines, as a deploy builds them: a release builds and tests these
	// before it tags, into the cache keys the deploy looks up.
	if len(out.Pipelines) != 1 || !reflect.DeepEqual(out.Pipelines[0], manifest.Pipeline{Name: "ingest", Path: "pipelines/ingest", Language: manifest.Python}) {
		t.Errorf("pipelines = %+v", out.Pipelines)
	}
	out = validate(invalid)
	if !out.Diagnostics.HasErrors() {
		t.Fatalf("invalid manifest has no errors: %+v", out)
	}
	d := out.Diagnostics[0]
	if d.File != "shipline.yaml" || d.Line != 3 || d.Col == 0 || !strings.Contains(d.Summary, "cobol") {
		t.Errorf("diagnostic = %s, want shipline.yaml:3:<col> naming cobol", d)
	}

	_, err := env.ExecuteActivity(g.ValidateManifest, ValidateManifestInput{Project: "demo", Commit: strings.Repeat("ab", 20)})
	appError(t, err, apperr.UnknownRef)
}
