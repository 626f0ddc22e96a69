package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
)

// A release deployed directly to qa while the promotion's deployment queued
// for qa's lock: the deployment, holding the lock, finds the plan changed and
// ends with PlanChanged; the promotion reopens the gate with the plan the
// deployment found (bob's approval dropped, the stage says why), and after
// alice approves the new plan it starts a new deployment, with a new ID,
// bound to the new plan.
func TestGatePlanChangedAtLockReopensGate(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	landed := []activities.PlanChange{{Fabric: "qa", Job: "daily_orders", Action: "update", From: "v1.1.1", To: "v1.2.0", Detail: "upgrade from v1.1.1"}}
	var approved string
	e.RegisterDelayedCallback(func() { approved = stageNamed(e.state(), "qa").Plan.Hash }, 30*time.Second)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob", Comment: "ok"}, "")
	e.deployHook = func(ctx workflow.Context, in DeployInput) error {
		if in.Stage != "qa" || len(e.deploys) != 2 {
			return nil
		}
		// Queued behind v1.1.1's direct deployment; granted once it landed.
		e.plans.set("qa", landed)
		if err := workflow.Sleep(ctx, 10*time.Second); err != nil {
			return err
		}
		plan, err := computeStagePlan(ctx, PlanInput{Project: in.Project, Version: in.Version, Actor: in.Actor, Stage: in.Stage, Fabrics: in.Fabrics}, in.Expect)
		if err != nil || plan.Hash == in.PlanHash {
			return errors.New("the test's plan did not change")
		}
		_, failure := planChangedFailure(in.Stage, &PlanAtLock{ApprovedHash: in.PlanHash, Plan: &plan})
		return failure
	}
	var reopened PromoteState
	e.RegisterDelayedCallback(func() { reopened = e.state() }, 2*time.Minute)
	e.vote(3*time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "alice"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if len(e.deploys) != 3 || e.deploys[1].PlanHash != approved || approved == "" || e.deploys[0].PlanHash != "" {
		t.Fatalf("deploys %+v: want dev's without a plan hash, qa's bound to the approved plan %s, then qa's again", e.deploys, approved)
	}
	qa := stageNamed(reopened, "qa")
	if qa.Status != StageApproval || len(qa.Approvals) != 0 || len(qa.Reopened) != 1 || qa.Plan == nil {
		t.Fatalf("after the deployment found the plan changed: qa %+v", qa)
	}
	r := qa.Reopened[0]
	wantChange := "qa/daily_orders: action create → update; runs v1.1.1 now, was none"
	if !r.AtLock || r.DeploymentID != e.deployIDs[1] || r.ApprovedHash != approved || r.Hash != qa.Plan.Hash || r.Hash == approved ||
		len(r.Dropped) != 1 || r.Dropped[0].Actor != "bob" || len(r.Changes) != 1 || r.Changes[0] != wantChange {
		t.Fatalf("reopen %+v (approved %s, now %s)", r, approved, qa.Plan.Hash)
	}
	if !strings.Contains(r.Reason, "while its deployment "+e.deployIDs[1]+" queued for the stage's fabrics") || !strings.Contains(r.Reason, "approved by bob") ||
		!strings.Contains(reopened.Pending, "; reopened ") {
		t.Fatalf("reason %q, pending %q", r.Reason, reopened.Pending)
	}
	final := stageNamed(s, "qa")
	if s.Status != StatusPromoted || final.DeploymentID != e.deployIDs[2] || e.deploys[2].PlanHash != final.Plan.Hash || final.Plan.Hash != r.Hash ||
		len(final.Approvals) != 1 || final.Approvals[0].Actor != "alice" {
		t.Fatalf("status %s, qa %+v, last deploy %+v", s.Status, final, e.deploys[2])
	}
	if e.deployIDs[2] == e.deployIDs[1] || e.deployIDs[2] != e.deployIDs[1]+"-2" {
		t.Fatalf("deployment IDs %q: want a new one for the deployment after the reopen", e.deployIDs)
	}
}

// The plan still the approved one at the lock: no reopen, the stage deploys
// once, bound to the approved plan.
func TestGatePlanUnchangedAtLockDeploys(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	qa := stageNamed(s, "qa")
	if s.Status != StatusPromoted || len(e.deploys) != 2 || len(qa.Reopened) != 0 || qa.Plan == nil || e.deploys[1].PlanHash != qa.Plan.Hash {
		t.Fatalf("status %s, deploys %+v, qa %+v", s.Status, e.deploys, qa)
	}
}

// A promotion that began before deployments checked the plan at the lock
// hands its deployment no plan hash.
func TestGatePlanAtLockOffForPromotionsBeforeIt(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	e.OnGetVersion(ChangePlanAtLock, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusPromoted || len(e.deploys) != 2 || e.deploys[1].PlanHash != "" {
		t.Fatalf("status %s, deploys %+v", s.Status, e.deploys)
	}
}

// planAtLockEnv is a deployment of v1.0.0 to stage qa (fabric dev) by a
// promotion that approved the plan approved(): another deployment holds dev
// first; at an hour it lands (landed becomes true, and PlanStage computes
// landedPlan from then on) and dev's lock is granted.
type planAtLockEnv struct {
	*deployEnv
	in        DeployInput
	approved  activities.StagePlan
	landed    activities.StagePlan
	hasLanded bool
	planned   int
	upserts   int
	queued    DeployState
	// supersede, when set, is what dev answers at an hour instead of the grant.
	supersede *Supersession
}

func newPlanAtLockEnv(t *testing.T, approved, landed activities.StagePlan) *planAtLockEnv {
	e := &planAtLockEnv{deployEnv: newDeployEnv(t), approved: approved, landed: landed}
	e.grantOnEnqueue = false
	e.okResolve()
	e.okBuilds()
	e.okUpload()
	e.onJobs(func(activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		e.upserts++
		return activities.UpsertJobOutput{ID: "1", Action: "updated"}, nil
	})
	e.OnActivity(buildActs.CacheKey, mock.Anything, mock.Anything).Return(activities.CacheKeyOutput{Key: "k1", Cached: true, File: "x.whl"}, nil)
	e.OnActivity(messageActs.Query, mock.Anything, activities.QueryInput{WorkflowID: FabricID("demo", "dev"), Query: StateQuery}).
		Return(func(context.Context, activities.QueryInput) (activities.QueryOutput, error) {
			b, err := json.Marshal(FabricState{})
			return activities.QueryOutput{Result: b}, err
		})
	e.OnActivity(deployActs.PlanStage, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PlanStageInput) (activities.StagePlan, error) {
		e.planned++
		if in.Stage != "qa" || len(in.Jobs) != 2 || in.Pins["ingest"] != "ab" {
			return activities.StagePlan{}, temporal.NewNonRetryableApplicationError("unexpected plan input", apperr.InvalidInput, nil)
		}
		if e.hasLanded {
			return e.landed, nil
		}
		return e.approved, nil
	})
	e.in = DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob", Trigger: "promote", Stage: "qa", Fabrics: []string{"dev"},
		Expect: map[string]string{"ingest": "ab", "score": "ab"}, PlanHash: approved.Hash}
	e.RegisterDelayedCallback(func() {
		e.SignalWorkflow(GrantSignal, sealed(deployID, GrantSignal, Grant{Fabric: "dev", Ahead: []string{"deploy/demo/v0.9.1/cli"}}))
	}, time.Minute)
	e.RegisterDelayedCallback(func() {
		e.queued = e.query()
		e.hasLanded = true
		if e.supersede != nil {
			e.SignalWorkflow(GrantSignal, sealed(deployID, GrantSignal, Grant{Fabric: "dev", Superseded: e.supersede}))
			return
		}
		e.SignalWorkflow(GrantSignal, sealed(deployID, GrantSignal, Grant{Fabric: "dev", Granted: true}))
	}, time.Hour)
	return e
}

func stagePlanOf(from string) activities.StagePlan {
	p := activities.StagePlan{Project: "demo", Version: "v1.0.0", Stage: "qa", Changes: []activities.PlanChange{
		{Fabric: "dev", Job: "daily_orders", Action: "update", From: from, To: "v1.0.0"},
		{Fabric: "dev", Job: "orders_dag", Action: "update", From: from, To: "v1.0.0"}}}
	p.Hash, _ = activities.HashStagePlan(p)
	return p
}

// The deployment queued behind v0.9.1's, which landed: holding dev's lock it
// computes the stage's plan, finds it is no longer the approved one, and ends
// with PlanChanged carrying the new plan — nothing built, uploaded or
// written, dev's lock released.
func TestDeployPlanChangedAtLock(t *testing.T) {
	approved, landed := stagePlanOf("v0.9.0"), stagePlanOf("v0.9.1")
	e := newPlanAtLockEnv(t, approved, landed)
	e.ExecuteWorkflow(Deploy, e.in)
	if !e.IsWorkflowCompleted() {
		t.Fatal("deployment did not complete")
	}
	err := e.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != apperr.PlanChanged {
		t.Fatalf("error %v: want type %s", err, apperr.PlanChanged)
	}
	var pc PlanAtLock
	if err := app.Details(&pc); err != nil || pc.ApprovedHash != approved.Hash || pc.Plan == nil || pc.Plan.Hash != landed.Hash {
		t.Fatalf("details %+v (%v): want the landed plan %s", pc, err, landed.Hash)
	}
	if !strings.Contains(app.Error(), "no longer the approved plan "+approved.Hash[:12]) || !strings.Contains(app.Error(), "nothing was written") {
		t.Fatalf("message %q", app.Error())
	}
	if e.queued.Status != StatusQueued || e.planned != 1 || e.builds.Load() != 0 || e.upserts != 0 {
		t.Fatalf("queued %s, plans computed %d, builds %d, upserts %d: want the plan computed once, holding the lock, and nothing done",
			e.queued.Status, e.planned, e.builds.Load(), e.upserts)
	}
	if len(e.done) != 1 || e.done[0].Outcome != Outcome(apperr.PlanChanged) || len(e.done[0].Jobs) != 0 {
		t.Fatalf("done signals %+v: want dev released with no jobs", e.done)
	}
	s := e.query()
	if s.Status != Outcome(apperr.PlanChanged) || s.PlanChanged == nil || s.PlanChanged.Plan.Hash != landed.Hash {
		t.Fatalf("state %s, plan changed %+v", s.Status, s.PlanChanged)
	}
}

// The plan still the approved one once the lock is granted: the deployment
// goes on and deploys.
func TestDeployPlanUnchangedAtLock(t *testing.T) {
	approved := stagePlanOf("v0.9.0")
	e := newPlanAtLockEnv(t, approved, approved)
	e.ExecuteWorkflow(Deploy, e.in)
	s := e.result()
	if s.Status != StatusSucceeded || e.planned != 1 || e.upserts != 2 || s.PlanChanged != nil {
		t.Fatalf("status %s, plans computed %d, upserts %d, plan changed %+v", s.Status, e.planned, e.upserts, s.PlanChanged)
	}
	if lock := s.Steps[2]; lock.Name != StepLock || !strings.Contains(lock.Detail, "the approved plan "+approved.Hash[:12]+" holds") {
		t.Fatalf("lock step %+v", lock)
	}
}

// A deployment with no plan hash (started by hand, or by a promotion of
// before) does not compute the plan.
func TestDeployWithoutPlanHashSkipsPlan(t *testing.T) {
	e := newPlanAtLockEnv(t, stagePlanOf("v0.9.0"), stagePlanOf("v0.9.1"))
	e.in.PlanHash = ""
	e.ExecuteWorkflow(Deploy, e.in)
	if s := e.result(); s.Status != StatusSucceeded || e.planned != 0 {
		t.Fatalf("status %s, plans computed %d", s.Status, e.planned)
	}
}

// A newer version landed on dev while the deployment queued, and dev dropped
// it as superseded: the plan is no longer the approved one (it would now
// take the jobs back from v1.1.0), so it ends with PlanChanged carrying that
// plan — the promotion's gate reopens — instead of superseded.
func TestDeploySupersededWithChangedPlanEndsPlanChanged(t *testing.T) {
	approved, landed := stagePlanOf("v0.9.0"), stagePlanOf("v1.1.0")
	e := newPlanAtLockEnv(t, approved, landed)
	e.supersede = &Supersession{By: "deploy/demo/v1.1.0/cli", Version: "v1.1.0", Reason: "deploy/demo/v1.1.0/cli deployed the newer v1.1.0 to fabric dev"}
	e.ExecuteWorkflow(Deploy, e.in)
	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.PlanChanged {
		t.Fatalf("error %v: want type %s", err, apperr.PlanChanged)
	}
	var pc PlanAtLock
	if err := app.Details(&pc); err != nil || pc.Plan == nil || pc.Plan.Hash != landed.Hash {
		t.Fatalf("details %+v (%v)", pc, err)
	}
	if s := e.query(); s.Status != Outcome(apperr.PlanChanged) || s.Superseded == nil || e.builds.Load() != 0 || e.upserts != 0 || e.planned != 1 {
		t.Fatalf("state %s superseded %+v, builds %d, upserts %d, plans %d", s.Status, s.Superseded, e.builds.Load(), e.upserts, e.planned)
	}
}

// Superseded by a newer version only queued behind it (the plan still
// holds): the deployment ends superseded, as before.
func TestDeploySupersededWithSamePlanEndsSuperseded(t *testing.T) {
	approved := stagePlanOf("v0.9.0")
	e := newPlanAtLockEnv(t, approved, approved)
	e.supersede = &Supersession{By: "deploy/demo/v1.1.0/cli", Version: "v1.1.0", Reason: "deploy/demo/v1.1.0/cli deploys the newer v1.1.0 to fabric dev and is queued behind it"}
	e.ExecuteWorkflow(Deploy, e.in)
	if s := e.result(); s.Status != StatusSuperseded || s.PlanChanged != nil || e.planned != 1 {
		t.Fatalf("status %s, plan changed %+v, plans %d", s.Status, s.PlanChanged, e.planned)
	}
}
