package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/workflows"
)

// qaPlan is the plan of the qa stage: one job updated, one left, one artifact pinned.
func qaPlan(drift string) *workflows.StagePlan {
	p := &workflows.StagePlan{Project: "demo", Version: "v1.0.0", Stage: "qa",
		Changes: []activities.PlanChange{
			{Fabric: "qa", Job: "daily_orders", Action: activities.PlanUpdate, From: "v0.9.0", To: "v1.0.0", Detail: "upgrade from v0.9.0", Drift: drift},
			{Fabric: "qa", Job: "weekly_report", Action: activities.PlanLeave, From: "v0.8.0", To: "v0.8.0", Detail: "not in v1.0.0: keeps running v0.8.0"},
		},
		Artifacts: []activities.PlanArtifact{{Fabric: "qa", Pipeline: "ingest_orders", Path: "/Volumes/main/shipline/artifacts/demo/v1.0.0/ingest_orders/ingest_orders-1.0.0-py3-none-any.whl",
			SHA256: "4f2a9c0d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19"}}}
	p.Hash, _ = activities.HashStagePlan(*p)
	return p
}

// gatedQA is the qa stage waiting at its gate, showing its plan.
func gatedQA() workflows.StageState {
	return workflows.StageState{Name: "qa", Fabrics: []string{"qa"}, Status: workflows.StageApproval, Team: "developers", Required: 1,
		OpenedAt: t0, Plan: qaPlan(""), PlannedAt: t0}
}

// A gate that reopened: bob approved the first plan, then the job was
// edited by hand in qa before the deployment started.
func reopenedQA() workflows.StageState {
	qa := gatedQA()
	approved := qa.Plan.Hash
	qa.Plan = qaPlan("max_concurrent_runs: deployed 1, live 4")
	qa.OpenedAt, qa.PlannedAt = t0.Add(10*time.Minute), t0.Add(10*time.Minute)
	qa.Reopened = []workflows.GateReopen{{At: t0.Add(10 * time.Minute), ApprovedHash: approved, Hash: qa.Plan.Hash,
		Changes: []string{"qa/daily_orders: drift: max_concurrent_runs: deployed 1, live 4 (was: none)"},
		Reason:  "the plan of qa changed since it was approved by bob: qa/daily_orders: drift: max_concurrent_runs: deployed 1, live 4 (was: none); approve the new plan (review it with `shipline status promote/demo/v1.0.0`)",
		Dropped: []workflows.Vote{{Stage: "qa", Actor: "bob", PlanHash: approved, At: t0.Add(5 * time.Minute)}}}}
	qa.Detail = "reopened: the plan changed after it was approved; approve the new plan"
	return qa
}

// status of a promotion waiting at a gate that reopened: the plan it shows,
// and how it differs from the plan approved before (text and JSON).
func TestGoldenStatusGatePlan(t *testing.T) {
	devDone := workflows.StageState{Name: "dev", Fabrics: []string{"dev"}, Status: workflows.StageReached, Detail: "deployed before this promotion"}
	s := promoteState(workflows.StatusWaiting, "promoting v1.0.0 of demo for alice", devDone, reopenedQA())
	s.Pending = "qa: 0 of 1 approvals from developers; alice, bob may approve; reopened 10:25: the plan changed (qa/daily_orders: drift: max_concurrent_runs: deployed 1, live 4 (was: none))"
	pid := workflows.PromoteID("demo", "v1.0.0")
	for _, out := range []string{"text", "json"} {
		f := newFake()
		f.add(pid, &fakeWF{typ: workflows.PromoteWorkflow, states: []any{s}})
		code, stdout, _ := golden(t, "status_promote_reopened_"+out, f, "--output", out, "status", pid)
		if code != ExitOK {
			t.Fatalf("exit %d", code)
		}
		for _, want := range map[string][]string{
			"text": {"plan of qa (sha256 " + s.Stages[1].Plan.Hash[:12] + "):", "daily_orders       update v0.9.0 → v1.0.0 (upgrade from v0.9.0); changed outside Shipline: max_concurrent_runs",
				"- qa/daily_orders: drift: max_concurrent_runs: deployed 1, live 4 (was: none)", "artifact /Volumes/main/shipline/artifacts/demo/v1.0.0/ingest_orders/ingest_orders-1.0.0-py3-none-any.whl sha256 4f2a9c0d8e7b"},
			"json": {`"plan": {`, `"hash": "` + s.Stages[1].Plan.Hash + `"`, `"reopened": [`, `"approved_hash": "` + s.Stages[1].Reopened[0].ApprovedHash + `"`, `"drift": "max_concurrent_runs: deployed 1, live 4"`},
		}[out] {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s status lacks %q:\n%s", out, want, stdout)
			}
		}
	}
}

// promote --wait stopping at a gate prints the plan the gate shows.
func TestGoldenPromoteWaitsWithPlan(t *testing.T) {
	devDone := workflows.StageState{Name: "dev", Fabrics: []string{"dev"}, Status: workflows.StageReached, Detail: "deployed before this promotion"}
	s := promoteState(workflows.StatusWaiting, "promoting v1.0.0 of demo for alice", devDone, gatedQA())
	s.Pending = "qa: 0 of 1 approvals from developers; bob, carol may approve"
	f := newFake()
	f.onStart[workflows.PromoteWorkflow] = &fakeWF{typ: workflows.PromoteWorkflow, accept: workflows.Acceptance{Accepted: true}, states: []any{s}}
	code, stdout, _ := golden(t, "promote_waiting_plan", f, "promote", "v1.0.0", "--project", "demo", "--wait")
	if code != ExitOK || !strings.Contains(stdout, "plan of qa (sha256 ") || strings.Index(stdout, "plan of qa") > strings.Index(stdout, "pending: qa") {
		t.Errorf("exit %d:\n%s", code, stdout)
	}
}

// A gate whose plan could not be computed says so; the approval names no plan.
func TestGoldenApproveWithoutPlan(t *testing.T) {
	pid := workflows.PromoteID("demo", "v1.0.0")
	qa := workflows.StageState{Name: "qa", Fabrics: []string{"qa"}, Status: workflows.StageApproval, Team: "developers", Required: 1,
		PlanError: `read job daily_orders on fabric qa: databricks fabric "qa": 403 invalid token`}
	f := newFake()
	f.add(pid, &fakeWF{typ: workflows.PromoteWorkflow, states: []any{promoteState(workflows.StatusWaiting, "", qa)}, updates: map[string]any{
		workflows.ApproveUpdate: workflows.StageState{Name: "qa", Required: 1, Approvals: []workflows.Vote{{Actor: "alice"}}}}})
	code, stdout, _ := golden(t, "approve_no_plan", f, "approve", "v1.0.0", "--project", "demo", "--stage", "qa")
	if code != ExitOK || !strings.Contains(stdout, "plan of qa: could not be computed: read job daily_orders on fabric qa") {
		t.Errorf("exit %d:\n%s", code, stdout)
	}
	if args := f.wfs[pid].updateArgs; len(args) != 1 || args[0].(workflows.Vote).PlanHash != "" {
		t.Errorf("approve sent %+v, want no plan hash", args)
	}
}

// approve --plan names the plan the approver reviewed: the approval sends
// that plan's whole hash (found among the plans the gate showed), so a gate
// that reopened since the review refuses it instead of taking an approval of
// a plan nobody reviewed; a gate that shows no plan refuses it before
// anything is sent; a malformed hash is bad input.
func TestApproveReviewedPlan(t *testing.T) {
	pid := workflows.PromoteID("demo", "v1.0.0")
	qa := reopenedQA()
	before, now := qa.Reopened[0].ApprovedHash, qa.Plan.Hash
	for _, tc := range []struct {
		name, plan string
		gate       workflows.StageState
		code       int
		sent       string // the hash the approval sent; "" for none sent
	}{
		{"reviewed the plan shown", now[:12], qa, ExitOK, now},
		{"reviewed the plan shown, whole hash", now, qa, ExitOK, now},
		{"reviewed the plan before the reopen", before[:12], qa, ExitOK, before},
		{"reviewed a plan the gate never showed", "0123456789ab", qa, ExitOK, "0123456789ab"},
		{"the gate shows no plan", now[:12], workflows.StageState{Name: "qa", Status: workflows.StageApproval, Team: "developers", Required: 1, PlanError: "403 invalid token"}, ExitFailed, ""},
		{"not a hash", "abc", qa, ExitInvalid, ""},
	} {
		f := newFake()
		f.add(pid, &fakeWF{typ: workflows.PromoteWorkflow, states: []any{promoteState(workflows.StatusWaiting, "", tc.gate)}, updates: map[string]any{
			workflows.ApproveUpdate: workflows.StageState{Name: "qa", Required: 1, Approvals: []workflows.Vote{{Actor: "alice", PlanHash: tc.sent}}}}})
		code, out, errOut := shipline(t, f, "approve", "v1.0.0", "--project", "demo", "--stage", "qa", "--plan", tc.plan)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", tc.name, code, tc.code, out, errOut)
		}
		args := f.wfs[pid].updateArgs
		switch {
		case tc.sent == "" && len(args) != 0:
			t.Errorf("%s: sent %+v, want nothing sent", tc.name, args)
		case tc.sent != "" && (len(args) != 1 || args[0].(workflows.Vote).PlanHash != tc.sent):
			t.Errorf("%s: sent %+v, want plan %s", tc.name, args, tc.sent)
		}
		if tc.code == ExitFailed && !strings.Contains(errOut, "the qa gate shows no plan (it could not be computed: 403 invalid token)") {
			t.Errorf("%s: stderr %q", tc.name, errOut)
		}
	}
}
