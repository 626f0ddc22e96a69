package workflows

import (
	"encoding/json"
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
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/signing"
)

// olderRelease makes v1.0.0 a release whose artifacts the rollbacks must pin.
func (e *promoteEnv) olderRelease(version, sha string) {
	rel := released()
	rel.Version, rel.Artifacts = version, map[string]string{"ingest": sha}
	raw, _ := json.Marshal(rel)
	e.OnActivity(messageActs.Query, mock.Anything, activities.QueryInput{WorkflowID: ReleaseID("demo", version), Query: StateQuery}).
		Return(activities.QueryOutput{Result: raw}, nil)
}

// stageRan records, as promotions would have, that stage verified these versions in order.
func (e *promoteEnv) stageRan(stage string, versions ...string) *stageEntity {
	st := e.audit.stage(StageID("demo", stage))
	for i, v := range versions {
		st.record(StageRecord{Kind: StageRecordVerified, Version: v, Actor: "bob", At: time.Date(2026, 11, 1+i, 10, 0, 0, 0, time.UTC)})
	}
	return st
}

func (e *promoteEnv) rollback(in PromoteInput) (PromoteState, error) {
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: RollbackID("demo", in.Rollback.Stage, "req-1")})
	e.ExecuteWorkflow(Rollback, in)
	var s PromoteState
	err := e.GetWorkflowResult(&s)
	return s, err
}

func TestRollbackManualGoesThroughTheStageGate(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	e.olderRelease("v1.0.0", "sha-old")
	qa := e.stageRan("qa", "v1.0.0", "v1.1.0")
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	var pending string
	e.RegisterDelayedCallback(func() { pending = e.state().Pending }, 30*time.Second)
	s, err := e.rollback(PromoteInput{Project: "demo", Actor: "alice", Rollback: &RollbackRequest{Stage: "qa", Reason: "wrong totals"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pending, "qa: 0 of 1 approvals from developers") {
		t.Errorf("pending before the approval = %q, want the qa gate", pending)
	}
	if s.Status != StatusRolledBack || len(e.deploys) != 1 {
		t.Fatalf("status %s, deploys %+v", s.Status, e.deploys)
	}
	d := e.deploys[0]
	if d.Version != "v1.0.0" || d.Stage != "qa" || d.Trigger != "rollback" || d.Actor != "bob" || d.Expect["ingest"] != "sha-old" {
		t.Errorf("deploy = %+v, want v1.0.0's pinned artifacts on qa by the approver", d)
	}
	h := qa.state.Hold
	if h == nil || h.Version != "v1.0.0" || h.From != "v1.1.0" || h.By != "alice" || h.Reason != "wrong totals" || h.Emergency || h.Automatic {
		t.Fatalf("hold = %+v", h)
	}
	if qa.state.Current.Version != "v1.0.0" || len(qa.state.Verified) != 1 || qa.state.Verified[0].Version != "v1.0.0" {
		t.Errorf("qa after the rollback: runs %s, verified %+v (v1.1.0, rolled back from, is no longer one to go back to)", qa.state.Current.Version, qa.state.Verified)
	}
	for _, want := range []string{"rolled back qa of demo to v1.0.0 (from v1.1.0)", "qa held since", "clear with `shipline release-hold --project demo --stage qa --clear`"} {
		if !strings.Contains(s.Summary, want) {
			t.Errorf("summary %q does not say %q", s.Summary, want)
		}
	}
}

func TestRollbackEmergencySkipsGateForOwnerTeamOnly(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	e.olderRelease("v1.0.0", "sha-old")
	qa := e.stageRan("qa", "v1.0.0", "v1.1.0")
	s, err := e.rollback(PromoteInput{Project: "demo", Actor: "bob", Rollback: &RollbackRequest{Stage: "qa", Emergency: true, Reason: "pager"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusRolledBack || len(e.deploys) != 1 || e.deploys[0].Actor != "bob" || len(s.Stages[1].Approvals) != 0 {
		t.Fatalf("status %s, deploys %+v", s.Status, e.deploys)
	}
	if h := qa.state.Hold; h == nil || !h.Emergency || !strings.Contains(h.Held("demo", "qa"), "after emergency rollback to v1.0.0 by bob: pager") {
		t.Errorf("hold = %+v", h)
	}

	e = newPromoteEnv(t, stages(), released())
	e.olderRelease("v1.0.0", "sha-old")
	e.stageRan("qa", "v1.0.0", "v1.1.0")
	_, err = e.rollback(PromoteInput{Project: "demo", Actor: "carol", Rollback: &RollbackRequest{Stage: "qa", Emergency: true}})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != apperr.AccessDenied || !strings.Contains(app.Message(), "carol may not roll back, as an emergency, stage qa: fabric qa is owned by team developers") {
		t.Fatalf("carol's emergency rollback: %v", err)
	}
	if len(e.deploys) != 0 {
		t.Errorf("a refused rollback deployed %+v", e.deploys)
	}
}

func TestRollbackRefusesVersionNeverVerifiedThere(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	e.stageRan("qa", "v1.0.0", "v1.1.0")
	_, err := e.rollback(PromoteInput{Project: "demo", Version: "v0.9.0", Actor: "bob", Rollback: &RollbackRequest{Stage: "qa", Emergency: true}})
	var app *temporal.ApplicationError
	want := "v0.9.0 was never verified on stage qa of demo, so it cannot be rolled back to; verified there: v1.0.0, v1.1.0"
	if !errors.As(err, &app) || !strings.Contains(app.Message(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}

	e = newPromoteEnv(t, stages(), released())
	e.stageRan("qa", "v1.1.0")
	_, err = e.rollback(PromoteInput{Project: "demo", Actor: "bob", Rollback: &RollbackRequest{Stage: "qa", Emergency: true}})
	if !errors.As(err, &app) || !strings.Contains(app.Message(), "stage qa of demo has no verified release to roll back to (it runs v1.1.0; verified: v1.1.0)") {
		t.Fatalf("err = %v", err)
	}
}

func TestRollbackAutomaticIsStartedOnlyByAPromotion(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	e.olderRelease("v1.0.0", "sha-old")
	e.stageRan("qa", "v1.0.0", "v1.1.0")
	_, err := e.rollback(PromoteInput{Project: "demo", Actor: SystemActor, Rollback: &RollbackRequest{Stage: "qa", Automatic: true, DeployAs: "bob"}})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != apperr.AccessDenied || !strings.Contains(app.Message(), "started only by a promotion") {
		t.Fatalf("a direct automatic rollback: %v", err)
	}
	if len(e.deploys) != 0 {
		t.Errorf("deployed %+v", e.deploys)
	}
}

func TestVerificationFailureRollsBackAutomaticallyAndHolds(t *testing.T) {
	settings := verifiedStages()
	settings.Stages[1].OnFailure = platform.OnFailureRollback
	e := newPromoteEnv(t, settings, released())
	e.olderRelease("v1.0.0", "sha-old")
	qa := e.stageRan("qa", "v1.0.0")
	(&fakeRuns{fail: map[string]string{"report": "task totals failed: AssertionError"}}).install(e)
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})

	err := e.GetWorkflowResult(nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != apperr.VerificationFailed {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(app.Message(), "report on qa failed: task totals failed: AssertionError") || !strings.Contains(app.Message(), "rolled back qa to v1.0.0 automatically") {
		t.Errorf("message %q", app.Message())
	}
	if len(e.deploys) != 3 || e.deploys[2].Version != "v1.0.0" || e.deploys[2].Stage != "qa" || e.deploys[2].Actor != "alice" || e.deploys[2].Expect["ingest"] != "sha-old" {
		t.Fatalf("deploys = %+v, want dev, qa, then qa back to v1.0.0", e.deploys)
	}
	h := qa.state.Hold
	if h == nil || !h.Automatic || h.By != SystemActor || h.From != "v1.2.0" || !strings.Contains(h.Reason, "AssertionError") {
		t.Fatalf("hold = %+v", h)
	}
	if s := e.state(); s.Stages[1].Status != StageRolledBack {
		t.Errorf("qa is %s", s.Stages[1].Status)
	}
}

func TestPromotionWaitsOnHeldStageUntilCleared(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	qa := e.stageRan("qa", "v1.0.0")
	qa.record(StageRecord{Kind: StageRecordRolledBack, Version: "v1.0.0", Actor: "alice", Hold: &StageHold{
		Since: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC), Version: "v1.0.0", From: "v1.1.0", By: "alice", Reason: "wrong totals"}})
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	var pending string
	var deploysWhileHeld int
	e.RegisterDelayedCallback(func() { pending, deploysWhileHeld = e.state().Pending, len(e.deploys) }, 20*time.Minute)
	e.RegisterDelayedCallback(func() { qa.state.Hold = nil }, 30*time.Minute) // the owner team clears it
	e.vote(40*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "carol"}, "")
	e.vote(41*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "dave"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	want := "qa held since 2026-11-20 09:30 UTC after rollback to v1.0.0 by alice: wrong totals; clear with `shipline release-hold --project demo --stage qa --clear`"
	if pending != want {
		t.Errorf("pending while held = %q\nwant %q", pending, want)
	}
	if deploysWhileHeld != 1 || s.Status != StatusPromoted || len(e.deploys) != 3 {
		t.Fatalf("deploys while held %d (want dev only), then %s with %d", deploysWhileHeld, s.Status, len(e.deploys))
	}
	if at := s.Stages[1].DeployedAt.Sub(s.Stages[0].DeployedAt); at < 30*time.Minute {
		t.Errorf("qa deployed %s after dev, before the hold was cleared", at)
	}
}

// The Stage entity: a rollback record holds the stage; only its owner team
// clears the hold, and only with --clear.
func TestStageEntityHoldAndClear(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Stage, workflow.RegisterOptions{Name: StageWorkflow})
	env.RegisterActivity(&activities.Config{})
	env.RegisterActivity(&activities.Messages{})
	useInternalAuth(env)
	audit := installProjectAudit(env)
	env.OnActivity(configActs.Promotion, mock.Anything, mock.Anything).Return(stages(), nil)
	env.OnActivity(configActs.Signatures, mock.Anything).Return(signing.Policy{}, nil)
	id := StageID("demo", "qa")
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
	hold := &StageHold{Since: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC), Version: "v1.0.0", From: "v1.1.0", By: "alice", Reason: "r"}
	results := map[string]string{}
	send := func(at time.Duration, key, name string, arg any) {
		env.RegisterDelayedCallback(func() {
			env.UpdateWorkflow(name, key, &testsuite.TestUpdateCallback{
				OnReject: func(err error) { results[key] = "rejected: " + err.Error() },
				OnAccept: func() {},
				OnComplete: func(_ any, err error) {
					if err != nil {
						results[key] = "refused: " + err.Error()
					} else {
						results[key] = "ok"
					}
				},
			}, arg)
		}, at)
	}
	send(time.Minute, "verified", StageRecordUpdate, sealed(id, StageRecordUpdate, StageRecord{Kind: StageRecordVerified, Version: "v1.0.0", Actor: "bob"}))
	send(2*time.Minute, "forged", StageRecordUpdate, StageRecord{Kind: StageRecordRolledBack, Version: "v0.1.0", Actor: "mallory", Hold: &StageHold{Version: "v0.1.0"}})
	send(3*time.Minute, "rolled-back", StageRecordUpdate, sealed(id, StageRecordUpdate, StageRecord{Kind: StageRecordRolledBack, Version: "v1.0.0", Actor: "alice", Hold: hold}))
	send(4*time.Minute, "no-clear", ReleaseHoldUpdate, ReleaseHoldRequest{Actor: "bob"})
	send(5*time.Minute, "carol", ReleaseHoldUpdate, ReleaseHoldRequest{Actor: "carol", Clear: true})
	var held StageLedger
	env.RegisterDelayedCallback(func() {
		v, _ := env.QueryWorkflow(StateQuery)
		_ = v.Get(&held)
	}, 6*time.Minute)
	send(7*time.Minute, "bob", ReleaseHoldUpdate, ReleaseHoldRequest{Actor: "bob", Clear: true})
	send(8*time.Minute, "again", ReleaseHoldUpdate, ReleaseHoldRequest{Actor: "bob", Clear: true})
	var cleared StageLedger
	env.RegisterDelayedCallback(func() {
		v, _ := env.QueryWorkflow(StateQuery)
		_ = v.Get(&cleared)
		env.CancelWorkflow()
	}, 9*time.Minute)
	env.ExecuteWorkflow(Stage, StageInput{Project: "demo", Stage: "qa"})

	if results["verified"] != "ok" || results["rolled-back"] != "ok" || !strings.HasPrefix(results["forged"], "refused") {
		t.Fatalf("records: %v", results)
	}
	if !strings.Contains(results["no-clear"], "pass --clear") {
		t.Errorf("without --clear: %q", results["no-clear"])
	}
	if !strings.Contains(results["carol"], "carol may not clear the hold of stage qa: fabric qa is owned by team developers") {
		t.Errorf("carol: %q", results["carol"])
	}
	if held.Hold == nil || held.Hold.Version != "v1.0.0" || held.Current.Version != "v1.0.0" || len(held.Verified) != 1 {
		t.Fatalf("before clearing: %+v", held)
	}
	if results["bob"] != "ok" || cleared.Hold != nil {
		t.Fatalf("bob clears: %q, hold %+v", results["bob"], cleared.Hold)
	}
	if !strings.Contains(results["again"], "does not hold") {
		t.Errorf("clearing twice: %q", results["again"])
	}
	var refused []string
	for _, r := range audit.refusals() {
		refused = append(refused, r.Actor+" "+r.Action)
	}
	if got := strings.Join(refused, ","); !strings.Contains(got, "carol release-hold") {
		t.Errorf("audited refusals %q, want carol's", got)
	}
}

func TestVerifyOnDemandRecordsResult(t *testing.T) {
	settings := verifiedStages()
	settings.Stages[1].OnFailure = platform.OnFailureRollback
	e := newPromoteEnv(t, settings, released())
	runs := &fakeRuns{}
	runs.install(e)
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: VerifyID("demo", "qa", "v1.2.0", "req-1")})
	e.ExecuteWorkflow(Verify, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "bob", Reverify: "qa"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusSucceeded || len(e.deploys) != 0 || len(runs.inputs) != 2 || runs.inputs[0].Actor != "bob" {
		t.Fatalf("status %s, deploys %d, runs %+v", s.Status, len(e.deploys), runs.inputs)
	}
	if qa := e.audit.stage(StageID("demo", "qa")); len(qa.state.Verified) != 1 || qa.state.Verified[0].Version != "v1.2.0" {
		t.Errorf("qa's record: %+v", qa.state)
	}

	// A failed rerun ends with the run's message and does not roll back.
	e = newPromoteEnv(t, settings, released())
	(&fakeRuns{fail: map[string]string{"nightly": "boom"}}).install(e)
	e.stageRan("qa", "v1.0.0")
	e.ExecuteWorkflow(Verify, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "bob", Reverify: "qa"})
	err := e.GetWorkflowResult(nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != apperr.VerificationFailed || !strings.Contains(app.Message(), "nightly on qa failed: boom") || len(e.deploys) != 0 {
		t.Fatalf("failed rerun: %v, deploys %d", err, len(e.deploys))
	}

	// Only the owner team of the stage's fabrics reruns it.
	e = newPromoteEnv(t, settings, released())
	e.ExecuteWorkflow(Verify, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "carol", Reverify: "qa"})
	if err := e.GetWorkflowResult(nil); !errors.As(err, &app) || app.Type() != apperr.AccessDenied {
		t.Fatalf("carol: %v", err)
	}
}
