package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest"
)

var demoLibraries = []manifest.Library{{Name: "common", Path: "libs/common", Language: manifest.Python, Index: "internal"}}

// libraryGit validates a manifest with libraries (the rest as okGit).
func (e *releaseEnv) libraryGit(tagged *bool) {
	e.OnActivity(gitActs.ResolveRef, mock.Anything, mock.Anything).Return(activities.ResolveRefOutput{Commit: commit}, nil)
	e.OnActivity(gitActs.ValidateManifest, mock.Anything, mock.Anything).
		Return(activities.ValidateManifestOutput{Name: "demo", Pipelines: demoPipelines, Libraries: demoLibraries}, nil)
	e.OnActivity(gitActs.CreateTag, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CreateTagInput) (activities.CreateTagOutput, error) {
			e.mu.Lock()
			e.events = append(e.events, "tag "+in.Version)
			*tagged = true
			e.mu.Unlock()
			return activities.CreateTagOutput{Created: true, Tagger: in.Tagger, When: in.When}, nil
		})
}

// libraryDeps answers the dependency check with diags.
func (e *releaseEnv) libraryDeps(diags diag.List) {
	e.OnActivity(libActs.CheckDependencies, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.LibraryDepsInput) (activities.LibraryDepsOutput, error) {
			e.mu.Lock()
			e.events = append(e.events, "check deps at "+in.Release)
			e.mu.Unlock()
			return activities.LibraryDepsOutput{Diagnostics: diags}, nil
		})
}

// The release builds and tests its libraries with its pipelines, checks the
// dependencies on them, publishes them after the tests passed and before the
// tag, and records what it published.
func TestReleasePublishesLibrariesBeforeTag(t *testing.T) {
	e := newReleaseEnv(t, admins())
	tagged := false
	e.libraryGit(&tagged)
	builds := map[string]activities.BuildInput{}
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BuildInput) (activities.BuildOutput, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			builds[in.Pipeline.Name] = in
			e.events = append(e.events, "build")
			return activities.BuildOutput{Pipeline: in.Pipeline.Name, File: in.Pipeline.Name + "-x.whl", SHA256: "sha-" + in.Pipeline.Name,
				Object: "cache/k/" + in.Pipeline.Name, Size: 7}, nil
		})
	e.libraryDeps(nil)
	var published activities.PublishLibraryInput
	e.OnActivity(libActs.Publish, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PublishLibraryInput) (activities.PublishedLibrary, error) {
			e.mu.Lock()
			e.events = append(e.events, "publish "+in.Library.Name)
			published = in
			e.mu.Unlock()
			return activities.PublishedLibrary{Library: in.Library.Name, Index: in.Library.Index, Name: "common", Version: "1.2.0",
				File: in.File, SHA256: in.SHA256, URL: "file:///srv/pypi/common/" + in.File}, nil
		})
	state := e.runOpen(ReleaseInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})

	if state.Status != StatusReleased || !tagged {
		t.Fatalf("state = %+v", state)
	}
	if got := strings.Join(e.events, ", "); got != "build, build, build, check deps at v1.2.0, publish common, tag v1.2.0" {
		t.Fatalf("activities ran in the order %q, want builds, the dependency check and the publication before the tag", got)
	}
	if p := builds["common"].Pipeline; p.Version != "1.2.0" || p.Path != "libs/common" || p.Language != manifest.Python {
		t.Errorf("library built as %+v, want version 1.2.0 (the release's)", p)
	}
	if builds["ingest"].Pipeline.Version != "" {
		t.Errorf("a pipeline was built with a library version: %+v", builds["ingest"].Pipeline)
	}
	if published.Release != "v1.2.0" || published.Object != "cache/k/common" || published.SHA256 != "sha-common" || published.Size != 7 || published.File != "common-x.whl" {
		t.Errorf("published %+v, want the artifact the build step recorded", published)
	}
	if names := stepNames(state.Steps); names != "authorize, resolve ref, validate manifest, build and test, publish libraries, tag and push, deploy" {
		t.Fatalf("steps %s", names)
	}
	if st := stepOf(state.Steps, StepBuildTest); st.Detail != "2 pipelines and 1 library built and tested (0 from cache)" {
		t.Errorf("build step %+v", st)
	}
	if st := stepOf(state.Steps, StepPublishLibraries); st.Status != StepDone || st.Detail != "1 library published" {
		t.Errorf("publish step %+v", st)
	}
	lib := state.Libraries["common"]
	if lib.Index != "internal" || lib.Version != "1.2.0" || lib.SHA256 != "sha-common" || lib.URL == "" || !state.Builds["common"].Library || state.Builds["ingest"].Library {
		t.Errorf("record: libraries %+v, builds %+v", state.Libraries, state.Builds)
	}
}

// A failing test of a library ends the release before anything is published or tagged.
func TestReleaseLibraryTestsFailNoTag(t *testing.T) {
	e := newReleaseEnv(t, admins())
	tagged := false
	e.libraryGit(&tagged)
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BuildInput) (activities.BuildOutput, error) {
			if in.Pipeline.Name == "common" {
				return activities.BuildOutput{}, temporal.NewNonRetryableApplicationError("pipeline common: tests failed: pytest exited with 1", apperr.TestsFailed, nil)
			}
			return activities.BuildOutput{Pipeline: in.Pipeline.Name, File: "x.whl", SHA256: "sha"}, nil
		})
	published := false
	e.OnActivity(libActs.CheckDependencies, mock.Anything, mock.Anything).Return(activities.LibraryDepsOutput{}, nil)
	e.OnActivity(libActs.Publish, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.PublishLibraryInput) (activities.PublishedLibrary, error) {
			published = true
			return activities.PublishedLibrary{}, nil
		})
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ReleaseID("demo", "v1.2.0")})
	state, msg := e.runFailing(ReleaseInput{Project: "demo", Version: "v1.2.0", Actor: "alice"}, apperr.TestsFailed)
	if tagged || published || len(e.deploys) != 0 {
		t.Fatalf("tagged %v, published %v, deploys %v: a release whose library tests fail publishes and tags nothing", tagged, published, e.deploys)
	}
	if !strings.Contains(msg, "the tests of library common failed at 0123456 (main), so v1.2.0 was not tagged") {
		t.Errorf("message:\n%s", msg)
	}
	if st := stepOf(state.Steps, StepPublishLibraries); st.Status != StepPending {
		t.Errorf("publish step %+v", st)
	}
}

// Other bytes under the version on the index end the release before the tag.
func TestReleaseLibraryOtherBytesRefused(t *testing.T) {
	e := newReleaseEnv(t, admins())
	tagged := false
	e.libraryGit(&tagged)
	e.okBuilds()
	e.libraryDeps(nil)
	attempts := 0
	e.OnActivity(libActs.Publish, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.PublishLibraryInput) (activities.PublishedLibrary, error) {
			attempts++
			return activities.PublishedLibrary{}, temporal.NewNonRetryableApplicationError(
				"package index internal already holds common 1.2.0 of project demo (common-1.2.0-py3-none-any.whl) with other bytes: sha256 aaa there, bbb built now; published versions are immutable and a library takes the release's version: release a new version (e.g. the next patch)",
				apperr.VersionAlreadyPublished, nil)
		})
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ReleaseID("demo", "v1.2.0")})
	state, msg := e.runFailing(ReleaseInput{Project: "demo", Version: "v1.2.0", Actor: "alice"}, apperr.VersionAlreadyPublished)
	if tagged || len(e.deploys) != 0 || attempts != 1 {
		t.Fatalf("tagged %v, deploys %v, attempts %d", tagged, e.deploys, attempts)
	}
	for _, want := range []string{"library common could not be published to package index internal", "with other bytes: sha256 aaa there, bbb built now", "so v1.2.0 was not tagged"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if state.Status != StatusFailed || stepOf(state.Steps, StepPublishLibraries).Status != StepFailed || stepOf(state.Steps, StepTag).Status != StepPending {
		t.Errorf("state %s, steps %+v", state.Status, state.Steps)
	}
}

// A pipeline pinned to a library version that is not published is refused
// before anything is published or tagged, naming the pipeline's file:line.
func TestReleaseUnpublishedDependencyRefused(t *testing.T) {
	e := newReleaseEnv(t, admins())
	tagged := false
	e.libraryGit(&tagged)
	e.okBuilds()
	e.libraryDeps(diag.List{diag.Errorf("pipelines/ingest/pyproject.toml", 6, 1, "release the project at the version that publishes common 1.1.0 first",
		`pipeline "ingest" depends on library common 1.1.0 (common==1.1.0), which is not published on package index "internal"`)})
	published := false
	e.OnActivity(libActs.Publish, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.PublishLibraryInput) (activities.PublishedLibrary, error) {
			published = true
			return activities.PublishedLibrary{}, nil
		})
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ReleaseID("demo", "v1.2.0")})
	state, msg := e.runFailing(ReleaseInput{Project: "demo", Version: "v1.2.0", Actor: "alice"}, apperr.DependencyNotPublished)
	if tagged || published {
		t.Fatalf("tagged %v, published %v", tagged, published)
	}
	if !strings.Contains(msg, `pipelines/ingest/pyproject.toml:6:1: error: pipeline "ingest" depends on library common 1.1.0`) || !strings.Contains(msg, "so v1.2.0 was not tagged") {
		t.Errorf("message:\n%s", msg)
	}
	// The first line, the one `status` and --wait show, names the place and the problem.
	if first, _, _ := strings.Cut(msg, "\n"); !strings.HasPrefix(first, `pipelines/ingest/pyproject.toml:6:1: pipeline "ingest" depends on library common 1.1.0`) ||
		!strings.Contains(first, "so v1.2.0 was not tagged") {
		t.Errorf("first line: %s", first)
	}
	if state.Status != StatusRefused {
		t.Errorf("status %s", state.Status)
	}
}

// An index that refuses the credentials parks the release; resume publishes and tags.
func TestReleaseLibraryIndexAuthParks(t *testing.T) {
	e := newReleaseEnv(t, admins())
	tagged := false
	e.libraryGit(&tagged)
	e.okBuilds()
	e.libraryDeps(nil)
	calls := 0
	e.OnActivity(libActs.Publish, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PublishLibraryInput) (activities.PublishedLibrary, error) {
			calls++
			if calls == 1 {
				return activities.PublishedLibrary{}, temporal.NewNonRetryableApplicationError("package index internal refused the credentials (401)", apperr.IndexAuth, nil)
			}
			return activities.PublishedLibrary{Library: "common", Index: "internal", Name: "common", Version: "1.2.0", AlreadyPublished: true}, nil
		})
	var parked ReleaseState
	e.RegisterDelayedCallback(func() {
		v, err := e.QueryWorkflow(StateQuery)
		if err != nil {
			t.Fatal(err)
		}
		_ = v.Get(&parked)
		e.UpdateWorkflow(ResumeUpdate, "resume-1", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Fatalf("resume rejected: %v", err) },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "alice"})
	}, 30*time.Minute)
	state := e.runOpen(ReleaseInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})
	if parked.Status != StatusParked || parked.Parked == nil || parked.Parked.Step != StepPublishLibraries || !strings.Contains(parked.Parked.Reason, "refused the credentials") {
		t.Fatalf("before resume: %+v", parked)
	}
	if state.Status != StatusReleased || !tagged || calls != 2 {
		t.Fatalf("after resume: status %s, tagged %v, publish calls %d", state.Status, tagged, calls)
	}
	if st := stepOf(state.Steps, StepPublishLibraries); st.Detail != "0 libraries published, 1 already on the index with the same bytes" {
		t.Errorf("publish step %+v", st)
	}
}

// A release whose prerelease has no PEP 440 form cannot version its Python
// libraries: refused at validate, before anything is built.
func TestReleaseLibraryVersionWithoutPythonForm(t *testing.T) {
	e := newReleaseEnv(t, admins())
	tagged := false
	e.libraryGit(&tagged)
	built := false
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.BuildInput) (activities.BuildOutput, error) {
			built = true
			return activities.BuildOutput{}, nil
		})
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ReleaseID("demo", "v1.2.0-nightly.3")})
	state, msg := e.runFailing(ReleaseInput{Project: "demo", Version: "v1.2.0-nightly.3", Actor: "alice"}, apperr.InvalidInput)
	if tagged || built {
		t.Fatalf("tagged %v, built %v", tagged, built)
	}
	if !strings.Contains(msg, "library common: release v1.2.0-nightly.3 publishes Python libraries") || !strings.Contains(msg, "-rc.N") {
		t.Errorf("message:\n%s", msg)
	}
	if st := stepOf(state.Steps, StepValidate); st.Status != StepFailed {
		t.Errorf("validate step %+v", st)
	}
}
