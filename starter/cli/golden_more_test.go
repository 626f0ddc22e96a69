package cli

import (
	"errors"
	"os"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/workflows"
)

// Commands that print times in the local zone (releases, deployments,
// history, audit) render them in UTC here, whatever the machine's TZ.
func TestMain(m *testing.M) {
	time.Local = time.UTC
	os.Exit(m.Run())
}

var running = enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING

// releasesFake lists three releases of demo: v1.0.0 promoted to qa, whose
// deployment passed; v1.1.0, whose tests failed (so it is not the latest);
// v1.2.0 still releasing.
func releasesFake() *fakeClient {
	f := newFake()
	f.listExec(workflows.ReleaseWorkflow, workflows.ReleaseID("demo", "v1.0.0"), running, t0, map[string]any{
		workflows.MemoStatus: string(workflows.StatusReleased), workflows.MemoCommit: "0123456789abcdef", workflows.MemoCreatedBy: "alice",
		workflows.MemoCreatedAt: t0, workflows.MemoStages: []string{"qa"}, workflows.MemoFabrics: []string{"dev", "qa"}, workflows.MemoLinked: true}, nil)
	f.listExec(workflows.ReleaseWorkflow, workflows.ReleaseID("demo", "v1.1.0"), running, t0.Add(24*time.Hour), map[string]any{
		workflows.MemoStatus: string(workflows.StatusReleased), workflows.MemoCommit: "89abcdef01234567", workflows.MemoCreatedBy: "bob",
		workflows.MemoCreatedAt: t0.Add(24 * time.Hour)}, nil)
	f.listExec(workflows.ReleaseWorkflow, workflows.ReleaseID("demo", "v1.2.0"), running, t0.Add(48*time.Hour), map[string]any{
		workflows.MemoStatus: string(workflows.StatusRunning), workflows.MemoCreatedBy: "alice", workflows.MemoCreatedAt: t0.Add(48 * time.Hour)}, nil)
	f.listExec(workflows.DeployWorkflow, depID, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, t0, map[string]any{
		workflows.MemoStatus: string(workflows.StatusSucceeded), workflows.MemoBuilds: workflows.BuildsPassed},
		map[string]any{workflows.VersionKey.GetName(): "v1.0.0"})
	f.listExec(workflows.DeployWorkflow, "deploy/demo/v1.1.0/20261123-101500-cd34", running, t0.Add(24*time.Hour), map[string]any{
		workflows.MemoStatus: string(workflows.StatusParked), workflows.MemoBuilds: workflows.TestsFailed},
		map[string]any{workflows.VersionKey.GetName(): "v1.1.0"})
	return f
}

func TestGoldenReleases(t *testing.T) {
	for _, out := range []string{"text", "json"} {
		golden(t, "releases_"+out, releasesFake(), "--output", out, "releases", "--project", "demo")
		// --refresh adds the remote's tags: v0.9.0 pushed by hand, v1.0.0 known.
		f := releasesFake()
		f.reads[workflows.ListReleasesUpdate] = workflows.ListReleasesOutput{Tags: []workflows.RemoteTag{
			{Version: "v1.0.0", Commit: "0123456789abcdef", Creator: "alice", Created: t0, Shipline: true},
			{Version: "v0.9.0", Commit: "fedcba9876543210", Creator: "carol", Created: t0.Add(-72 * time.Hour)},
		}}
		golden(t, "releases_refresh_"+out, f, "--output", out, "releases", "--project", "demo", "--refresh")
	}
	golden(t, "releases_none", newFake(), "releases", "--project", "demo")
}

// deploymentsFake: dev runs two jobs of v1.0.0 (one drifted) and is
// deploying v1.1.0 with one more queued; qa has a job left by a parked
// deployment and one its fabric no longer has.
func deploymentsFake() *fakeClient {
	f := newFake()
	parkedID := "deploy/demo/v1.1.0/20261123-101500-cd34"
	dev := workflows.FabricState{Project: "demo", Fabric: "dev",
		Queue: []workflows.QueueEntry{{DeploymentID: "deploy/demo/v1.1.0/20261124-091500-ef56", Version: "v1.1.0", Actor: "bob",
			Since: t0.Add(47 * time.Hour), Queued: t0.Add(47 * time.Hour)},
			{DeploymentID: "deploy/demo/v1.2.0/20261124-092500-aa11", Version: "v1.2.0", Actor: "alice", Since: t0.Add(47*time.Hour + 10*time.Minute), Queued: t0.Add(47*time.Hour + 10*time.Minute)}},
		Jobs: map[string]workflows.JobRecord{
			"daily_orders": {Fabric: "dev", Job: "daily_orders", Scheduler: "databricks", ID: "1234", Version: "v1.0.0", Commit: "0123456", DeploymentID: depID, Actor: "alice", At: t0},
			"orders_dag":   {Fabric: "dev", Job: "orders_dag", Scheduler: "airflow", ID: "dags/orders_dag.py", Version: "v1.0.0", Commit: "0123456", DeploymentID: depID, Actor: "alice", At: t0},
		}}
	qa := workflows.FabricState{Project: "demo", Fabric: "qa",
		Jobs: map[string]workflows.JobRecord{
			"daily_orders": {Fabric: "qa", Job: "daily_orders", Scheduler: "databricks", ID: "5678", Version: "v1.1.0", Commit: "89abcde", DeploymentID: parkedID, Actor: "bob", At: t0.Add(24 * time.Hour)},
			"weekly":       {Fabric: "qa", Job: "weekly", Scheduler: "databricks", ID: "9012", Version: "v1.0.0", Commit: "0123456", DeploymentID: stageDep, Actor: "alice", At: t0.Add(time.Hour)},
		},
		Parked: []workflows.ParkedDeployment{{DeploymentID: parkedID, Version: "v1.1.0", Actor: "bob", Step: workflows.StepSchedule,
			Reason: "fabric qa: 503 Service Unavailable\nretry later", Since: t0.Add(25 * time.Hour), Queued: t0.Add(24 * time.Hour), Jobs: []string{"daily_orders", "weekly"}, LeftBehind: []string{"daily_orders"}}}}
	f.listExec(workflows.FabricWorkflow, workflows.FabricID("demo", "dev"), running, t0, nil, nil)
	f.listExec(workflows.FabricWorkflow, workflows.FabricID("demo", "qa"), running, t0, nil, nil)
	f.add(workflows.FabricID("demo", "dev"), &fakeWF{typ: workflows.FabricWorkflow, states: []any{dev}})
	f.add(workflows.FabricID("demo", "qa"), &fakeWF{typ: workflows.FabricWorkflow, states: []any{qa}})
	f.reads[workflows.InspectUpdate] = workflows.InspectOutput{Jobs: []activities.JobDrift{
		{Fabric: "dev", Job: "daily_orders", Exists: true},
		{Fabric: "dev", Job: "orders_dag", Exists: true, Drift: true, Detail: "schedule changed on the fabric: 0 6 * * * (recorded 0 5 * * *)\nmore"},
		{Fabric: "qa", Job: "daily_orders", Error: "fabric qa: 503 Service Unavailable"},
		{Fabric: "qa", Job: "weekly"},
	}}
	return f
}

func TestGoldenDeployments(t *testing.T) {
	for _, out := range []string{"text", "json"} {
		golden(t, "deployments_"+out, deploymentsFake(), "--output", out, "deployments", "--project", "demo")
	}
	golden(t, "deployments_none", newFake(), "deployments", "--project", "demo")
}

func historyFake() *fakeClient {
	f := newFake()
	dep := func(id, version, actor string, fabrics []string, start time.Time, st enumspb.WorkflowExecutionStatus, status workflows.Status, reason string) {
		f.listExec(workflows.DeployWorkflow, id, st, start, map[string]any{workflows.MemoStatus: string(status), workflows.MemoReason: reason},
			map[string]any{workflows.VersionKey.GetName(): version, workflows.ActorKey.GetName(): actor, workflows.FabricKey.GetName(): fabrics})
	}
	done := enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	dep(depID, "v1.0.0", "alice", []string{"dev"}, t0, done, workflows.StatusSucceeded, "")
	dep("deploy/demo/v1.1.0/20261123-101500-cd34", "v1.1.0", "bob", []string{"dev", "qa"}, t0.Add(24*time.Hour), running, workflows.StatusParked,
		"parked at schedule: fabric qa: 503 Service Unavailable\nretry later")
	dep("deploy/demo/v1.0.1/20261122-121500-9f9f", "v1.0.1", "mallory", []string{"prod"}, t0.Add(2*time.Hour), done, workflows.StatusRefused,
		"mallory may not deploy to prod: fabric prod is owned by team ops")
	dep("deploy/demo/v1.1.0/20261124-091500-ef56", "v1.1.0", "bob", []string{"dev"}, t0.Add(47*time.Hour), running, workflows.StatusRunning, "")
	return f
}

func TestGoldenHistory(t *testing.T) {
	for _, out := range []string{"text", "json"} {
		golden(t, "history_"+out, historyFake(), "--output", out, "history", "--project", "demo")
	}
	golden(t, "history_failed", historyFake(), "history", "--project", "demo", "--failed")
	golden(t, "history_none", newFake(), "history", "--project", "demo", "--failed")
}

func TestGoldenPlan(t *testing.T) {
	plan := workflows.PlanOutput{Project: "demo", Version: "v1.0.0", Commit: "0123456789abcdef",
		Builds:  []workflows.PlannedBuild{{Pipeline: "ingest", Action: "build", Key: "k1"}, {Pipeline: "score", Action: "cached", Key: "k2", File: "score-1.0.0-py3-none-any.whl"}},
		Uploads: []activities.PlannedUpload{{Fabric: "dev", Pipeline: "ingest", Path: "dbfs:/shipline/demo/ingest-1.0.0-py3-none-any.whl"}},
		Jobs: []activities.PlannedJob{{Fabric: "dev", Job: "daily_orders", Action: "update", ID: "1234", Detail: "schedule: 0 5 * * * → 0 6 * * *\nmore"},
			{Fabric: "dev", Job: "orders_dag", Action: "create"}, {Fabric: "dev", Job: "weekly", Action: "unchanged", ID: "9012"}}}
	for _, out := range []string{"text", "json"} {
		f := newFake()
		f.reads[workflows.PlanUpdate] = plan
		golden(t, "plan_"+out, f, "--output", out, "plan", "v1.0.0", "--project", "demo")
	}
}

// validate of a valid project says so, exit 0.
func TestGoldenValidateGood(t *testing.T) {
	for _, out := range []string{"text", "json"} {
		if code, _, _ := golden(t, "validate_good_"+out, newFake(), "--output", out, "validate", "testdata/validate/good"); code != ExitOK {
			t.Errorf("exit %d, want 0", code)
		}
	}
}

func TestGoldenVotes(t *testing.T) {
	pid := workflows.PromoteID("demo", "v1.0.0")
	vote := func(update string, res any) *fakeClient {
		f := newFake()
		// A worker whose gates show no plan: the approval names none.
		qa := workflows.StageState{Name: "qa", Fabrics: []string{"qa"}, Status: workflows.StageApproval, Team: "developers", Required: 2}
		f.add(pid, &fakeWF{typ: workflows.PromoteWorkflow, updates: map[string]any{update: res},
			states: []any{workflows.PromoteState{Progress: workflows.Progress{Status: workflows.StatusWaiting}, Project: "demo", Version: "v1.0.0", Stages: []workflows.StageState{qa}}}})
		return f
	}
	golden(t, "approve_json", vote(workflows.ApproveUpdate, workflows.StageState{Name: "qa", Fabrics: []string{"qa"}, Status: workflows.StageApproval,
		Required: 2, Team: "developers", OpenedAt: t0, ExpiresAt: t0.Add(72 * time.Hour),
		Approvals: []workflows.Vote{{Stage: "qa", Actor: "bob", At: t0.Add(time.Hour)}, {Stage: "qa", Actor: "alice", At: t0.Add(2 * time.Hour)}}}), "--output", "json", "approve", "v1.0.0", "--project", "demo", "--stage", "qa")
	if code, _, _ := golden(t, "approve_refused", vote(workflows.ApproveUpdate, errors.New("alice may not approve qa: the requester of a promotion cannot approve it")),
		"approve", "v1.0.0", "--project", "demo", "--stage", "qa"); code != ExitFailed {
		t.Errorf("exit %d", code)
	}
	golden(t, "reject", vote(workflows.RejectUpdate, workflows.StageState{Name: "qa", Required: 1, Rejection: &workflows.Vote{Stage: "qa", Actor: "alice", Comment: "failing smoke test"}}),
		"reject", "v1.0.0", "--project", "demo", "--stage", "qa", "--comment", "failing smoke test")
	if code, _, _ := golden(t, "reject_refused", vote(workflows.RejectUpdate, errors.New("alice may not reject prod: only team ops may (bob, carol)")),
		"reject", "v1.0.0", "--project", "demo", "--stage", "prod", "--comment", "failing smoke test"); code != ExitFailed {
		t.Errorf("exit %d", code)
	}
	if code, _, _ := golden(t, "reject_no_comment", newFake(), "reject", "v1.0.0", "--project", "demo", "--stage", "qa"); code != ExitInvalid {
		t.Errorf("exit %d", code)
	}
}

// auditFake: a release by alice, mallory's refused deploy, bob's deployment
// that parked and was resumed, carol's approval, and a refusal the Audit
// entity recorded.
func auditFake(t *testing.T) *fakeClient {
	f := newFake()
	relID := workflows.ReleaseID("demo", "v1.0.0")
	refusedID := workflows.DeployID("demo", "v1.0.0", "20261122-101000-aaaa")
	parkedID := workflows.DeployID("demo", "v1.0.0", "20261122-103000-bbbb")
	pid := workflows.PromoteID("demo", "v1.0.0")
	run := func(typ, id string, fabrics []string, h *auditHist) {
		var attrs map[string]any
		if fabrics != nil {
			attrs = map[string]any{workflows.FabricKey.GetName(): fabrics}
		}
		f.listExec(typ, id, running, h.events[0].EventTime.AsTime(), nil, attrs)
		f.add(id, &fakeWF{typ: typ, history: h.events})
	}
	run(workflows.ReleaseWorkflow, relID, nil, newAuditHist(t, auditT0).
		started(workflows.ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice", Ref: "main"}, false).
		memo("running", "").
		memoFields(map[string]any{workflows.MemoStatus: "released", workflows.MemoCommit: "0123456789abcdef", workflows.MemoCreatedBy: "alice"}))
	run(workflows.DeployWorkflow, refusedID, []string{"dev"}, newAuditHist(t, auditT0.Add(10*time.Minute)).
		started(workflows.DeployInput{Project: "demo", Version: "v1.0.0", Actor: "mallory", Trigger: "cli"}, false).
		memo("refused", "mallory may not deploy to fabric dev").
		failed(apperr.AccessDenied, "mallory may not deploy to fabric dev: it is owned by team developers"))
	run(workflows.DeployWorkflow, parkedID, nil, newAuditHist(t, auditT0.Add(30*time.Minute)).
		started(workflows.DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob", Fabric: "dev", Trigger: "cli"}, false).
		fabrics("dev").
		memo("running", "").
		memo("parked", "parked at upload: 403 invalid token (SHIPLINE_TOKEN)").
		update("u-res", workflows.ResumeUpdate, workflows.ControlRequest{Actor: "bob"}, "resuming "+parkedID+" from step upload").
		memo("running", "").
		completed(workflows.DeployState{Progress: workflows.Progress{Status: workflows.StatusSucceeded, Summary: "deployed v1.0.0 of demo to dev (1 job)"}}))
	run(workflows.PromoteWorkflow, pid, nil, newAuditHist(t, auditT0.Add(time.Hour)).
		started(workflows.PromoteInput{Project: "demo", Version: "v1.0.0", Actor: "alice", To: "prod"}, false).
		memo("waiting", "").
		update("u-app", workflows.ApproveUpdate, workflows.Vote{Stage: "qa", Actor: "carol", Comment: "lgtm"}, workflows.StageState{Name: "qa"}))
	run(workflows.AuditWorkflow, workflows.AuditID("demo"), nil, newAuditHist(t, auditT0.Add(90*time.Minute)).
		started(workflows.AuditInput{Project: "demo"}, false).
		signal(workflows.RefusalSignal, workflows.Refusal{Actor: "mallory", Action: workflows.ApproveUpdate, Target: pid, Version: "v1.0.0",
			Stage: "prod", Reason: "mallory is not in team prod_support", At: auditT0.Add(91 * time.Minute)}))
	return f
}

func TestGoldenAudit(t *testing.T) {
	golden(t, "audit_text", auditFake(t), "audit", "--project", "demo")
	golden(t, "audit_json", auditFake(t), "audit", "--project", "demo", "--json")
	golden(t, "audit_since", auditFake(t), "audit", "--project", "demo", "--since", "2026-11-22T11:00:00Z")
	golden(t, "audit_none", newFake(), "audit", "--project", "demo", "--since", "2026-11-22T11:00:00Z")
}
