package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/signing"
)

func TestOutcomeClassifies(t *testing.T) {
	for typ, want := range map[string]Status{
		apperr.AccessDenied: StatusRefused, apperr.SignatureRefused: StatusRefused, apperr.InvalidInput: StatusRefused,
		apperr.NotReleased: StatusRefused, apperr.NotAdopted: StatusRefused, apperr.UnknownRelease: StatusRefused,
		apperr.ArtifactMismatch: StatusRefused,
		apperr.Cancelled:        StatusCancelled, apperr.Superseded: StatusSuperseded,
		apperr.TagConflict: StatusFailed, apperr.TestsFailed: StatusFailed, apperr.GitAuthFailed: StatusFailed, "": StatusFailed,
	} {
		if got := Outcome(typ); got != want {
			t.Errorf("Outcome(%q) = %s, want %s", typ, got, want)
		}
	}
}

// A deployment stopped by an artifact mismatch ends with the status Outcome
// gives its failure type, the same one `history` and `audit` show.
func TestDeployArtifactMismatchEndsAsOutcomeSays(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.okBuilds()
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob", Expect: map[string]string{"ingest": "cd"}})
	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.ArtifactMismatch {
		t.Fatalf("error = %v", err)
	}
	want := Outcome(apperr.ArtifactMismatch)
	if s := e.query(); s.Status != want || !strings.Contains(s.Summary, string(want)) {
		t.Fatalf("status %s (%q), want %s", s.Status, s.Summary, want)
	}
	if len(e.done) != 1 || e.done[0].Outcome != want {
		t.Fatalf("fabric told %+v", e.done)
	}
}

// A release cancelled while parked ends cancelled (Outcome of Cancelled), as
// the audit and `history` show it, not failed.
func TestReleaseCancelledEndsCancelled(t *testing.T) {
	e := newReleaseEnv(t, admins())
	e.OnActivity(gitActs.ResolveRef, mock.Anything, mock.Anything).Return(activities.ResolveRefOutput{}, errors.New("dial tcp: connection refused"))
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(CancelUpdate, "c", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("cancel rejected: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "alice"})
	}, 2*time.Hour)
	state, _ := e.runFailing(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"}, apperr.Cancelled)
	if state.Status != StatusCancelled {
		t.Fatalf("status %s, want cancelled", state.Status)
	}
}

// A tag pushed by hand resolves on the remote, but no Release recorded it: the
// deployment is refused with the adoption hint, before anything is built.
func TestDeployRefusesTagMadeOutsideShipline(t *testing.T) {
	e := newDeployEnv(t)
	e.release = nil
	e.okResolve()
	e.okBuilds()
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.NotAdopted ||
		app.Message() != "v1.0.0 was tagged outside Shipline; a project admin adopts it with `shipline release v1.0.0 --project demo`" {
		t.Fatalf("error = %v", err)
	}
	if s := e.query(); s.Status != StatusRefused || e.builds.Load() != 0 {
		t.Fatalf("status %s, %d builds", s.Status, e.builds.Load())
	}
}

// A deleted release whose tag was pushed again is refused as well.
func TestDeployRefusesDeletedRelease(t *testing.T) {
	e := newDeployEnv(t)
	e.release = &ReleaseState{Progress: Progress{Status: StatusDeleted}}
	e.okResolve()
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.NotReleased || !strings.Contains(app.Message(), "was deleted") {
		t.Fatalf("error = %v", err)
	}
}

// A promotion of a tag pushed by hand is refused with the same hint.
func TestPromoteRefusesTagMadeOutsideShipline(t *testing.T) {
	e := newPromoteEnvNoRelease(t)
	e.OnActivity(gitActs.ResolveRef, mock.Anything, activities.ResolveRefInput{Project: "demo", Ref: "refs/tags/v1.2.0"}).Return(activities.ResolveRefOutput{Commit: commit}, nil)
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})
	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.NotAdopted ||
		app.Message() != "v1.2.0 was tagged outside Shipline; a project admin adopts it with `shipline release v1.2.0 --project demo`" {
		t.Fatalf("error = %v", err)
	}
}

// newPromoteEnvNoRelease is a promotion environment where no Release entity exists.
func newPromoteEnvNoRelease(t *testing.T) *promoteEnv {
	var s testsuite.WorkflowTestSuite
	e := &promoteEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment(), t: t}
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: PromoteID("demo", "v1.2.0")})
	e.RegisterWorkflowWithOptions(Promote, workflow.RegisterOptions{Name: PromoteWorkflow})
	e.RegisterActivity(&activities.Config{})
	e.RegisterActivity(&activities.Messages{})
	e.RegisterActivity(&activities.Git{})
	e.OnActivity(configActs.Promotion, mock.Anything, mock.Anything).Return(stages(), nil)
	e.OnActivity(configActs.Signatures, mock.Anything).Return(signing.Policy{}, nil)
	e.OnActivity(messageActs.Query, mock.Anything, activities.QueryInput{WorkflowID: ReleaseID("demo", "v1.2.0"), Query: StateQuery}).
		Return(activities.QueryOutput{Missing: true}, nil)
	return e
}

// Without a tag on the remote either, the promotion says it was never released.
func TestPromoteRefusesNeverReleased(t *testing.T) {
	e := newPromoteEnvNoRelease(t)
	e.OnActivity(gitActs.ResolveRef, mock.Anything, mock.Anything).Return(activities.ResolveRefOutput{},
		temporal.NewNonRetryableApplicationError("no tag v1.2.0", apperr.UnknownRef, nil))
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})
	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.NotReleased || !strings.Contains(app.Message(), "it was never released") {
		t.Fatalf("error = %v", err)
	}
}

// A release without --ref of a version whose tag was pushed by hand adopts the
// tag: it resolves the tag (not main), runs the checks and records it.
func TestReleaseAdoptsTagMadeOutsideShipline(t *testing.T) {
	e := newReleaseEnv(t, admins())
	e.OnActivity(gitActs.ResolveRef, mock.Anything, activities.ResolveRefInput{Project: "demo", Ref: "main", Tag: "v1.0.0"}).
		Return(activities.ResolveRefOutput{Commit: commit, FromTag: true}, nil)
	e.OnActivity(gitActs.ValidateManifest, mock.Anything, activities.ValidateManifestInput{Project: "demo", Commit: commit}).
		Return(activities.ValidateManifestOutput{Name: "demo"}, nil)
	e.OnActivity(gitActs.CreateTag, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CreateTagInput) (activities.CreateTagOutput, error) {
			e.tagCall.in = in
			return activities.CreateTagOutput{Created: false, Tagger: "dev"}, nil
		})
	state := e.runOpen(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice", NoDeploy: true})
	if state.Status != StatusReleased || state.Ref != "v1.0.0" || !state.Adopted || state.TagCreated || e.tagCall.in.Commit != commit {
		t.Fatalf("state = %+v, tag %+v", state, e.tagCall.in)
	}
	if d := state.Steps[1].Detail; !strings.Contains(d, "adopting") {
		t.Fatalf("resolve step detail = %q", d)
	}
}

func TestEnded(t *testing.T) {
	for _, s := range []Status{StatusRunning, StatusQueued, StatusParked, StatusWaiting, StatusReleased} {
		if Ended(s) {
			t.Errorf("Ended(%s) = true", s)
		}
	}
	for _, typ := range append(apperr.Types(), "") {
		if !Ended(Outcome(typ)) {
			t.Errorf("Outcome(%q) = %s is not an ending", typ, Outcome(typ))
		}
	}
}
