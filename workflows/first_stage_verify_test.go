package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/platform"
)

// devDeployed is a release whose auto_deploy deployed it to dev (the first
// stage) before any promotion.
func devDeployed() ReleaseState {
	rel := released()
	rel.Fabrics = map[string]FabricReach{"dev": {DeploymentID: "deploy/demo/v1.2.0/release", Actor: "bob", At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	return rel
}

func TestPromoteVerifiesFirstStageDeployedByRelease(t *testing.T) {
	settings := stages()
	settings.Stages[0].Verify = &platform.Verify{Jobs: []string{"smoke"}, Timeout: time.Hour}
	e := newPromoteEnv(t, settings, devDeployed())
	runs := &fakeRuns{took: map[string]time.Duration{"smoke": 10 * time.Minute}}
	runs.install(e)
	var atVerify PromoteState
	e.RegisterDelayedCallback(func() { atVerify = e.state() }, 5*time.Minute)
	e.vote(30*time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "alice"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})

	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusPromoted || len(e.deploys) != 1 || e.deploys[0].Stage != "qa" {
		t.Fatalf("status %s, deploys %+v: dev was deployed by the release, only qa is deployed", s.Status, e.deploys)
	}
	// dev's smoke ran on dev, as the user who deployed it there.
	if len(runs.inputs) != 1 || runs.inputs[0].Fabric != "dev" || runs.inputs[0].Job != "smoke" || runs.inputs[0].Actor != "bob" {
		t.Fatalf("verify runs = %+v, want smoke on dev as bob", runs.inputs)
	}
	// While dev verifies, qa's gate is not open.
	if !strings.Contains(atVerify.Pending, "dev: verifying: smoke on dev") || atVerify.Stages[1].Status != StagePending {
		t.Errorf("at 5m: pending %q, qa %s; want dev verifying and qa not open", atVerify.Pending, atVerify.Stages[1].Status)
	}
	dev, qa := s.Stages[0], s.Stages[1]
	if dev.Status != StageVerified || dev.VerifiedAt.IsZero() || qa.OpenedAt.Before(dev.VerifiedAt) {
		t.Errorf("dev %s verified %s, qa gate opened %s: the gate opens only after dev verified", dev.Status, dev.VerifiedAt, qa.OpenedAt)
	}
	if len(e.verified) == 0 || e.verified[0].Stage != "dev" || !e.verified[0].At.Equal(dev.VerifiedAt) {
		t.Errorf("verified records on the release = %+v, want dev first", e.verified)
	}
	if got := e.audit.stage(StageID("demo", "dev")).state.Verified; len(got) != 1 || got[0].Version != "v1.2.0" {
		t.Errorf("dev's Stage entity verified = %+v, want v1.2.0", got)
	}
}

func TestPromoteFirstStageVerificationFailureStops(t *testing.T) {
	settings := stages()
	settings.Stages[0].Verify = &platform.Verify{Jobs: []string{"smoke"}, Timeout: time.Hour}
	e := newPromoteEnv(t, settings, devDeployed())
	runs := &fakeRuns{fail: map[string]string{"smoke": "table orders is empty"}}
	runs.install(e)
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})

	err := e.GetWorkflowResult(nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != apperr.VerificationFailed {
		t.Fatalf("err = %v, want %s", err, apperr.VerificationFailed)
	}
	for _, want := range []string{"verification of v1.2.0 on dev failed: smoke on dev failed: table orders is empty", "(https://dbc.example/#job/1/run/smoke)"} {
		if !strings.Contains(app.Message(), want) {
			t.Errorf("message %q does not say %q", app.Message(), want)
		}
	}
	s := e.state()
	if len(e.deploys) != 0 || s.Stages[0].Status != StageFailed || s.Stages[1].Status != StagePending || !s.Stages[1].OpenedAt.IsZero() {
		t.Errorf("deploys %d, dev %s, qa %s: a failed dev verification must stop before qa's gate", len(e.deploys), s.Stages[0].Status, s.Stages[1].Status)
	}
	if len(e.verified) != 0 || len(e.audit.stage(StageID("demo", "dev")).state.Verified) != 0 {
		t.Errorf("dev recorded verified after a failed verification: %+v", e.verified)
	}
}

// A first stage without verify that the release deployed counts as verified
// when its deployment succeeded, and is recorded so on the Stage entity.
func TestPromoteRecordsFirstStageWithoutVerify(t *testing.T) {
	e := newPromoteEnv(t, stages(), devDeployed())
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "alice"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	dev := s.Stages[0]
	if dev.Status != StageVerified || !dev.VerifiedAt.Equal(devDeployed().Fabrics["dev"].At) {
		t.Errorf("dev %s verified at %s, want verified at its deployment", dev.Status, dev.VerifiedAt)
	}
	if got := e.audit.stage(StageID("demo", "dev")).state.Verified; len(got) != 1 || got[0].Version != "v1.2.0" {
		t.Errorf("dev's Stage entity verified = %+v, want v1.2.0", got)
	}
}
