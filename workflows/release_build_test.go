package workflows

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
)

// Every pipeline of the manifest is built and tested at the release's commit
// before the tag is pushed, with the build inputs a deploy uses (so the deploy
// finds the artifacts in the build cache).
func TestReleaseBuildsAndTestsBeforeTag(t *testing.T) {
	e := newReleaseEnv(t, admins())
	// The builds run in parallel: record them under a lock and compare them
	// by pipeline, not by arrival order.
	inputs := map[string]activities.BuildInput{}
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BuildInput) (activities.BuildOutput, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			inputs[in.Pipeline.Name] = in
			e.events = append(e.events, "build")
			return activities.BuildOutput{Pipeline: in.Pipeline.Name, File: in.Pipeline.Name + ".whl", SHA256: "sha-" + in.Pipeline.Name,
				Cached: in.Pipeline.Name == "score"}, nil
		})
	e.okGit(true)
	state := e.runOpen(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"})

	if state.Status != StatusReleased {
		t.Fatalf("state = %+v", state)
	}
	if got := strings.Join(e.events, ", "); got != "build, build, tag v1.0.0" {
		t.Fatalf("activities ran in the order %q, want both builds before the tag", got)
	}
	if len(inputs) != len(demoPipelines) {
		t.Fatalf("built %d pipelines, want %d: %+v", len(inputs), len(demoPipelines), inputs)
	}
	for _, p := range demoPipelines {
		if in := inputs[p.Name]; in.Project != "demo" || in.Commit != commit || !reflect.DeepEqual(in.Pipeline, p) {
			t.Errorf("build input of %s = %+v, want pipeline %+v at %s", p.Name, in, p, commit)
		}
	}
	step := stepOf(state.Steps, StepBuildTest)
	if step.Status != StepDone || step.Detail != "2 pipelines built and tested (1 from cache)" {
		t.Fatalf("build step %+v", step)
	}
	if names := stepNames(state.Steps); names != "authorize, resolve ref, validate manifest, build and test, tag and push, deploy" {
		t.Fatalf("steps %s", names)
	}
	if b := state.Builds["ingest"]; b.Status != StepDone || b.SHA256 != "sha-ingest" || b.Cached || !state.Builds["score"].Cached {
		t.Fatalf("builds %+v", state.Builds)
	}
	if len(e.deploys) != 1 {
		t.Fatalf("auto_deploy children %+v, want one after the builds passed", e.deploys)
	}
}

// A failing test ends the release before the tag: nothing is pushed, no
// deploy starts, the failure is permanent (not retried) and its message names
// the pipeline, shows the test output and says how to read the full log.
func TestReleaseFailingTestsAreNeverTagged(t *testing.T) {
	e := newReleaseEnv(t, admins())
	e.OnActivity(gitActs.ResolveRef, mock.Anything, mock.Anything).Return(activities.ResolveRefOutput{Commit: commit}, nil)
	e.OnActivity(gitActs.ValidateManifest, mock.Anything, mock.Anything).Return(activities.ValidateManifestOutput{Name: "demo", Pipelines: demoPipelines}, nil)
	tagged := false
	e.OnActivity(gitActs.CreateTag, mock.Anything, mock.Anything).Return(func(context.Context, activities.CreateTagInput) (activities.CreateTagOutput, error) {
		tagged = true
		return activities.CreateTagOutput{Created: true}, nil
	})
	tail := "FAILED tests/test_score.py::test_threshold - assert 0.4 > 0.5\n1 failed, 3 passed in 0.02s"
	attempts := map[string]int{}
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BuildInput) (activities.BuildOutput, error) {
			e.mu.Lock() // the builds run in parallel
			attempts[in.Pipeline.Name]++
			e.mu.Unlock()
			if in.Pipeline.Name == "score" {
				return activities.BuildOutput{}, temporal.NewNonRetryableApplicationError(
					"pipeline score: tests failed: pytest exited with 1: fix the failing tests, commit, and release a new version\n--- output (last lines) ---\n"+tail+"\n---\nfull build log: /state/logs/builds/k.log",
					apperr.TestsFailed, nil, activities.BuildFailureDetails{Pipeline: "score", LogPath: "/state/logs/builds/k.log", LogTail: tail})
			}
			return activities.BuildOutput{Pipeline: in.Pipeline.Name, File: "ingest.whl", SHA256: "sha-ingest"}, nil
		})
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ReleaseID("demo", "v1.1.0")})
	state, msg := e.runFailing(ReleaseInput{Project: "demo", Version: "v1.1.0", Actor: "alice"}, apperr.TestsFailed)

	if tagged || len(e.deploys) != 0 {
		t.Fatalf("tagged %v, deploys %+v: a release whose tests fail must not be tagged or deployed", tagged, e.deploys)
	}
	if attempts["score"] != 1 {
		t.Errorf("the failing tests ran %d times; a test failure is permanent", attempts["score"])
	}
	for _, want := range []string{
		"the tests of pipeline score failed at 0123456 (main), so v1.1.0 was not tagged",
		"assert 0.4 > 0.5",
		"full build log: /state/logs/builds/k.log",
		"`shipline logs release/demo/v1.1.0` prints the full build logs",
		"`shipline release v1.1.0 --project demo` again",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if state.Status != StatusFailed || state.Refusal != msg {
		t.Fatalf("state %s, refusal %q", state.Status, state.Refusal)
	}
	if st := stepOf(state.Steps, StepBuildTest); st.Status != StepFailed {
		t.Fatalf("build step %+v", st)
	}
	if st := stepOf(state.Steps, StepTag); st.Status != StepPending {
		t.Fatalf("tag step %+v", st)
	}
	if b := state.Builds["score"]; b.Status != StepFailed || b.Failure != apperr.TestsFailed || b.LogTail != tail || b.LogPath != "/state/logs/builds/k.log" {
		t.Fatalf("score build %+v", b)
	}
	if b := state.Builds["ingest"]; b.Status != StepDone {
		t.Fatalf("ingest build %+v", b)
	}
	if got := buildsOutcome(state.Builds, len(state.Builds)); got != TestsFailed {
		t.Fatalf("builds outcome %q", got)
	}
}

// A build that fails for a transient reason (an export that hit an I/O
// error) is retried by the activity's retry policy; the release goes on.
func TestReleaseRetriesTransientBuildFailure(t *testing.T) {
	e := newReleaseEnv(t, admins())
	calls := 0
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.MatchedBy(func(in activities.BuildInput) bool { return in.Pipeline.Name == "ingest" })).Return(
		func(_ context.Context, in activities.BuildInput) (activities.BuildOutput, error) {
			if calls++; calls < 3 {
				return activities.BuildOutput{}, errors.New("export pipelines/ingest: read: connection reset by peer")
			}
			return activities.BuildOutput{Pipeline: "ingest", File: "ingest.whl", SHA256: "sha-ingest"}, nil
		})
	e.okGit(true)
	state := e.runOpen(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice", NoDeploy: true})
	if state.Status != StatusReleased || calls != 3 {
		t.Fatalf("status %s after %d build attempts, want released after 3", state.Status, calls)
	}
}

// A failure someone can fix on the worker (a missing build tool) parks the
// release at its build step; resume builds what is still missing, then tags.
func TestReleaseParksWhenBuildToolMissing(t *testing.T) {
	e := newReleaseEnv(t, admins())
	installed := false
	built := map[string]int{}
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BuildInput) (activities.BuildOutput, error) {
			e.mu.Lock() // the builds run in parallel
			defer e.mu.Unlock()
			built[in.Pipeline.Name]++
			if in.Pipeline.Name == "score" && !installed {
				return activities.BuildOutput{}, temporal.NewNonRetryableApplicationError("pipeline score: sbt is not installed on the worker: install sbt", apperr.BuildToolMissing, nil)
			}
			return activities.BuildOutput{Pipeline: in.Pipeline.Name, SHA256: "sha"}, nil
		})
	e.okGit(true)
	var parked ReleaseState
	e.RegisterDelayedCallback(func() {
		v, _ := e.QueryWorkflow(StateQuery)
		_ = v.Get(&parked)
		e.mu.Lock()
		installed = true
		e.mu.Unlock()
		e.UpdateWorkflow(ResumeUpdate, "r", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("resume refused: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "alice"})
	}, 10*time.Minute)
	s := e.runOpen(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice", NoDeploy: true})

	if parked.Status != StatusParked || parked.Parked == nil || parked.Parked.Step != StepBuildTest || !strings.Contains(parked.Parked.Reason, "sbt is not installed") {
		t.Fatalf("parked state %+v", parked)
	}
	if e.tagCall.in.Version != "v1.0.0" || s.Status != StatusReleased {
		t.Fatalf("after resume: status %s, tag %+v", s.Status, e.tagCall.in)
	}
	if built["ingest"] != 1 || built["score"] != 2 {
		t.Fatalf("builds %v: resume must build only what failed", built)
	}
}

func stepNames(steps []Step) string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}
