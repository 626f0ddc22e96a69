package workflows

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/signing"
)

// noPlanHash makes promoteEnv.vote send an approval without a plan hash.
const noPlanHash = "-"

// planPlayer plays what a gate's plan reads: Resolve (the release's job on
// each of the stage's fabrics), the fabric entities (none yet) and the
// PlanStage activity, whose changes a test edits to play a change by hand
// or another deployment landing.
type planPlayer struct {
	mu       sync.Mutex
	changes  map[string][]activities.PlanChange // stage → its plan's changes (default: create the job on each fabric)
	computed map[string]int                     // stage → plans computed
	// failing makes the stage's plan fail (a workspace that cannot be read) while set.
	failing map[string]error
}

func (e *promoteEnv) installPlans() {
	e.plans = &planPlayer{changes: map[string][]activities.PlanChange{}, computed: map[string]int{}, failing: map[string]error{}}
	e.RegisterActivity(&activities.Deploy{})
	e.OnActivity(deployActs.Resolve, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ResolveDeployInput) (activities.ResolveDeployOutput, error) {
		out := activities.ResolveDeployOutput{Commit: "c0ffee"}
		for _, f := range in.Stage {
			out.Jobs = append(out.Jobs, activities.ResolvedJob{Name: "daily_orders", Scheduler: "databricks", Fabric: f})
		}
		return out, nil
	}).Maybe()
	e.OnActivity(messageActs.Query, mock.Anything, mock.MatchedBy(func(in activities.QueryInput) bool { return strings.HasPrefix(in.WorkflowID, "fabric/") })).
		Return(activities.QueryOutput{Missing: true}, nil).Maybe()
	e.OnActivity(deployActs.PlanStage, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PlanStageInput) (activities.StagePlan, error) {
		e.plans.mu.Lock()
		defer e.plans.mu.Unlock()
		e.plans.computed[in.Stage]++
		if err := e.plans.failing[in.Stage]; err != nil {
			return activities.StagePlan{}, err
		}
		var fabrics []string
		for _, j := range in.Jobs {
			fabrics = append(fabrics, j.Fabric)
		}
		return e.plans.plan(in.Stage, in.Version, fabrics, in.Pins), nil
	}).Maybe()
}

// plan is the stage's plan as the player computes it now (mu held).
func (pp *planPlayer) plan(stage, version string, fabrics []string, pins map[string]string) activities.StagePlan {
	p := activities.StagePlan{Project: "demo", Version: version, Stage: stage, Changes: slices.Clone(pp.changes[stage])}
	if p.Changes == nil {
		for _, f := range fabrics {
			p.Changes = append(p.Changes, activities.PlanChange{Fabric: f, Job: "daily_orders", Action: activities.PlanCreate, To: version})
		}
	}
	for _, f := range fabrics {
		p.Artifacts = append(p.Artifacts, activities.PlanArtifact{Fabric: f, Pipeline: "ingest", Path: "/Volumes/a/demo/" + version + "/ingest/ingest.whl", SHA256: pins["ingest"]})
	}
	p.Hash, _ = activities.HashStagePlan(p)
	return p
}

// set replaces a stage's changes (a test playing a change on the fabric).
func (pp *planPlayer) set(stage string, changes []activities.PlanChange) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	pp.changes[stage] = changes
}

// hash is the hash of the plan the player computes for a stage of v1.2.0
// with dev's pinned checksum, for tests that sign votes before the gate opens.
func (pp *planPlayer) hash(stage string, fabrics ...string) string {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.plan(stage, "v1.2.0", fabrics, map[string]string{"ingest": "sha-ingest"}).Hash
}

func (pp *planPlayer) count(stage string) int {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.computed[stage]
}

// planHash is what an approver's CLI sends: the hash of the plan the stage's
// gate shows now (v.PlanHash when the test names one; noPlanHash for none).
func (e *promoteEnv) planHash(v Vote) string {
	switch v.PlanHash {
	case noPlanHash:
		return ""
	case "":
		for _, s := range e.state().Stages {
			if s.Name == v.Stage && s.Plan != nil {
				return s.Plan.Hash
			}
		}
	}
	return v.PlanHash
}

func stageNamed(s PromoteState, name string) StageState {
	for _, st := range s.Stages {
		if st.Name == name {
			return st
		}
	}
	return StageState{}
}

// A gate shows its stage's plan; an approval records the hash of the plan it
// approved; an approval naming no plan, or another plan, is refused. The
// plan is computed again before the deployment: unchanged, the stage
// deploys at once.
func TestGatePlanVoteRecordsHash(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	var shown StageState
	e.RegisterDelayedCallback(func() { shown = stageNamed(e.state(), "qa") }, 30*time.Second)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob", PlanHash: noPlanHash}, "the approval names no plan: the qa gate approves plan ")
	e.vote(2*time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob", PlanHash: strings.Repeat("ab", 32)},
		"the qa gate never showed plan abababababab: it shows plan ")
	e.vote(3*time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if shown.Status != StageApproval || shown.Plan == nil || len(shown.Plan.Hash) != 64 || len(shown.Plan.Changes) != 1 ||
		shown.Plan.Changes[0] != (activities.PlanChange{Fabric: "qa", Job: "daily_orders", Action: "create", To: "v1.2.0"}) {
		t.Fatalf("the open qa gate shows %+v, plan %+v", shown, shown.Plan)
	}
	if a := shown.Plan.Artifacts; len(a) != 1 || a[0].SHA256 != "sha-ingest" {
		t.Fatalf("the plan's artifacts %+v: want dev's pinned checksum", a)
	}
	qa := stageNamed(s, "qa")
	if s.Status != StatusPromoted || len(e.deploys) != 2 || len(qa.Approvals) != 1 || qa.Approvals[0].PlanHash != shown.Plan.Hash {
		t.Fatalf("status %s, deploys %d, qa approvals %+v; want bob's approval of plan %s", s.Status, len(e.deploys), qa.Approvals, shown.Plan.Hash)
	}
	if len(qa.Reopened) != 0 || e.plans.count("qa") != 2 || e.plans.count("dev") != 0 {
		t.Fatalf("reopened %+v, plans computed %v: want qa's at its gate and again before its deploy, none for the ungated dev", qa.Reopened, e.plans.computed)
	}
}

// A plan that changes between the approval and the deployment (a job edited
// by hand) reopens the gate: the approval no longer counts, the stage says
// why, an approval of the old plan is refused, and the stage deploys once the
// new plan is approved.
func TestGatePlanChangedReopensGate(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	drift := activities.PlanChange{Fabric: "qa", Job: "daily_orders", Action: "update", From: "v1.1.0", To: "v1.2.0",
		Detail: "upgrade from v1.1.0", Drift: "settings.max_concurrent_runs: deployed 1, live 4"}
	var approved string
	e.RegisterDelayedCallback(func() {
		approved = stageNamed(e.state(), "qa").Plan.Hash
		e.plans.set("qa", []activities.PlanChange{drift}) // edited by hand after the gate showed its plan
	}, 30*time.Second)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob", Comment: "ok"}, "")
	var reopened PromoteState
	deploysAtReopen := -1
	e.RegisterDelayedCallback(func() { reopened, deploysAtReopen = e.state(), len(e.deploys) }, 2*time.Minute)
	e.RegisterDelayedCallback(func() { // bob's CLI still shows the plan he approved
		e.vote(0, ApproveUpdate, Vote{Stage: "qa", Actor: "bob", PlanHash: approved}, "the plan changed since you looked: you approved plan "+approved[:12])
	}, 3*time.Minute)
	e.vote(4*time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "alice"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	qa := stageNamed(reopened, "qa")
	if deploysAtReopen != 1 || qa.Status != StageApproval || len(qa.Approvals) != 0 || len(qa.Reopened) != 1 {
		t.Fatalf("after the plan changed: deploys %d, qa %+v", deploysAtReopen, qa)
	}
	r := qa.Reopened[0]
	if r.ApprovedHash != approved || r.Hash != qa.Plan.Hash || r.Hash == approved || len(r.Dropped) != 1 || r.Dropped[0].Actor != "bob" {
		t.Fatalf("reopen %+v (approved %s, now %s)", r, approved, qa.Plan.Hash)
	}
	wantChange := "qa/daily_orders: action create → update; runs v1.1.0 now, was none; drift: settings.max_concurrent_runs: deployed 1, live 4 (was: none)"
	if len(r.Changes) != 1 || r.Changes[0] != wantChange || !strings.Contains(r.Reason, "approved by bob") ||
		!strings.Contains(r.Reason, "`shipline status promote/demo/v1.2.0`") {
		t.Fatalf("reopen changes %q reason %q", r.Changes, r.Reason)
	}
	if !strings.Contains(reopened.Pending, "qa: 0 of 1 approvals from developers") || !strings.Contains(reopened.Pending, "; reopened ") ||
		!strings.Contains(reopened.Pending, wantChange) {
		t.Fatalf("pending after the reopen: %q", reopened.Pending)
	}
	final := stageNamed(s, "qa")
	if s.Status != StatusPromoted || len(e.deploys) != 2 || e.deploys[1].Actor != "alice" || len(final.Approvals) != 1 ||
		final.Approvals[0].Actor != "alice" || final.Approvals[0].PlanHash != final.Plan.Hash {
		t.Fatalf("status %s, deploys %+v, qa approvals %+v", s.Status, e.deploys, final.Approvals)
	}
	if n := e.plans.count("qa"); n != 3 {
		t.Fatalf("qa's plan computed %d times, want 3 (gate, before the deploy that reopened it, before the deploy)", n)
	}
}

// The hash is part of the signed vote: a vote whose hash was changed after it
// was signed does not verify.
func TestGatePlanHashIsSigned(t *testing.T) {
	bob, bobPub := newKey(t)
	alice, alicePub := newKey(t)
	e := newPromoteEnv(t, stages(), released())
	e.policy = signing.Policy{Require: true, Keys: map[string][]string{"alice": {alicePub}, "bob": {bobPub}}}
	id := PromoteID("demo", "v1.2.0")
	in := PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"}
	in.Auth = sign(t, alice, id, ActionPromote, "alice", in, e.Now(), "p-1")
	var hash string
	e.RegisterDelayedCallback(func() { hash = stageNamed(e.state(), "qa").Plan.Hash }, 30*time.Second)
	e.RegisterDelayedCallback(func() {
		v := Vote{Stage: "qa", Actor: "bob", PlanHash: strings.Repeat("cd", 32)}
		v.Auth = sign(t, bob, id, ActionApprove, "bob", v, e.Now(), "v-1")
		v.PlanHash = hash // changed on the way
		e.vote(0, ApproveUpdate, v, "signature")
	}, time.Minute)
	e.RegisterDelayedCallback(func() {
		v := Vote{Stage: "qa", Actor: "bob", PlanHash: hash}
		v.Auth = sign(t, bob, id, ActionApprove, "bob", v, e.Now(), "v-2")
		e.vote(0, ApproveUpdate, v, "")
	}, 2*time.Minute)
	e.ExecuteWorkflow(Promote, in)
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if qa := stageNamed(s, "qa"); s.Status != StatusPromoted || len(qa.Approvals) != 1 || qa.Approvals[0].PlanHash != hash {
		t.Fatalf("status %s, qa approvals %+v", s.Status, qa.Approvals)
	}
}

// A plan that cannot be computed when the gate opens (the workspace cannot
// be read) is shown as such; approvals bind to no plan. When the plan can be
// computed before the deployment, the gate reopens to show it.
func TestGatePlanUnavailableThenComputedReopens(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	e.plans.failing["qa"] = temporal.NewNonRetryableApplicationError("databricks fabric \"qa\": 403 invalid token", apperr.FabricAuth, nil)
	var shown StageState
	e.RegisterDelayedCallback(func() {
		shown = stageNamed(e.state(), "qa")
		e.plans.mu.Lock()
		delete(e.plans.failing, "qa") // the token is fixed
		e.plans.mu.Unlock()
	}, 30*time.Second)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	var reopened StageState
	e.RegisterDelayedCallback(func() { reopened = stageNamed(e.state(), "qa") }, 2*time.Minute)
	e.vote(3*time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if shown.Status != StageApproval || shown.Plan != nil || !strings.Contains(shown.PlanError, "403 invalid token") {
		t.Fatalf("the qa gate with no plan shows %+v", shown)
	}
	if len(reopened.Reopened) != 1 || reopened.Plan == nil || len(reopened.Approvals) != 0 ||
		!strings.Contains(reopened.Reopened[0].Changes[0], "no plan could be computed when the gate opened (databricks fabric \"qa\": 403 invalid token)") {
		t.Fatalf("after the plan could be computed: %+v", reopened)
	}
	if qa := stageNamed(s, "qa"); s.Status != StatusPromoted || len(e.deploys) != 2 || qa.Approvals[0].PlanHash != reopened.Plan.Hash {
		t.Fatalf("status %s, deploys %d, qa %+v", s.Status, len(e.deploys), qa)
	}
}

// A promotion that began before gates showed plans (no ChangeGatePlan
// marker) goes on as it did: no plan is computed, an approval naming none
// counts, and the stage deploys after its gate.
func TestGatePlanOffForPromotionsBeforeIt(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	e.OnGetVersion(ChangeGatePlan, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob", PlanHash: noPlanHash}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if qa := stageNamed(s, "qa"); s.Status != StatusPromoted || len(e.deploys) != 2 || qa.Plan != nil || e.plans.count("qa") != 0 {
		t.Fatalf("status %s, deploys %d, qa plan %+v, plans computed %v", s.Status, len(e.deploys), qa.Plan, e.plans.computed)
	}
}

// A fabric that flaps (a job changed back and forth outside Shipline)
// reopens the gate after every approval: from the second reopen on, the
// reopen counts and says the plan went back to one the gate showed before,
// and what to do, rather than reopening silently again and again.
func TestGatePlanFlappingSaysSo(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	drift := []activities.PlanChange{{Fabric: "qa", Job: "daily_orders", Action: "update", From: "v1.1.0", To: "v1.2.0",
		Detail: "upgrade from v1.1.0", Drift: "settings.max_concurrent_runs: deployed 1, live 4"}}
	var first string
	e.RegisterDelayedCallback(func() { first = stageNamed(e.state(), "qa").Plan.Hash; e.plans.set("qa", drift) }, 30*time.Second)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "") // reopen 1: the drift appeared
	e.RegisterDelayedCallback(func() { e.plans.set("qa", nil) }, 90*time.Second)
	e.vote(2*time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "") // reopen 2: back to the first plan
	e.RegisterDelayedCallback(func() { e.plans.set("qa", drift) }, 150*time.Second)
	e.vote(3*time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "") // reopen 3: the drift again
	var reopened PromoteState
	e.RegisterDelayedCallback(func() { reopened = e.state() }, 210*time.Second)
	e.vote(4*time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "alice"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	qa := stageNamed(reopened, "qa")
	if len(qa.Reopened) != 3 || s.Status != StatusPromoted {
		t.Fatalf("status %s, reopens %+v: want 3, then promoted", s.Status, qa.Reopened)
	}
	last := func(r GateReopen) string { return r.Changes[len(r.Changes)-1] }
	if strings.Contains(last(qa.Reopened[0]), "reopen ") {
		t.Fatalf("the first reopen counts: %q", qa.Reopened[0].Changes)
	}
	back := "the plan went back to plan " + first[:12] + ", which this gate showed before (reopen 2 of this gate)"
	if r := qa.Reopened[1]; !strings.HasPrefix(last(r), back) || !strings.Contains(r.Reason, back) ||
		!strings.Contains(last(r), "`shipline deployments --project demo` shows drift") {
		t.Fatalf("second reopen: changes %q reason %q; want %q", r.Changes, r.Reason, back)
	}
	if r := qa.Reopened[2]; !strings.Contains(last(r), "(reopen 3 of this gate)") || !strings.Contains(reopened.Pending, "reopen 3 of this gate") {
		t.Fatalf("third reopen: changes %q, pending %q", r.Changes, reopened.Pending)
	}
}
