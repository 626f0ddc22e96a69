package test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/workflows"
)

// planGateStages: dev, then qa behind one developer's approval.
const planGateStages = `    - {name: dev,  fabrics: [dev, airflow-dev]}
    - {name: qa,   fabrics: [qa],   approval: {team: developers, required: 1}}
`

// A gate shows the plan of its stage; the approval binds to it. The qa job
// is edited by hand in the workspace after the gate showed its plan and
// before the deployment starts: the gate reopens, saying what changed, bob's
// approval no longer counts, and the stage deploys (resetting the job) only
// once the new plan is approved.
func TestPlanGateReopensWhenTheStageChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	f := newPromoteFixtureWith(t, planGateStages)
	sh := f.s.shipline
	pid := workflows.PromoteID("demo", "v1.2.0")

	// v1.1.0 runs on qa.
	if code, out, errOut := sh("release", "v1.1.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release v1.1.0: %s\n%s", out, errOut)
	}
	if code, out, _ := sh("promote", "v1.1.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 || !strings.Contains(out, "plan of qa (sha256 ") ||
		!strings.Contains(out, "daily_orders       create v1.1.0") {
		t.Fatalf("promote v1.1.0: exit %d\n%s", code, out)
	}
	if code, out, errOut := sh("approve", "v1.1.0", "--project", "demo", "--stage", "qa", "--as", "bob"); code != 0 || !strings.Contains(out, "qa: 1 of 1 approvals (you approved plan ") {
		t.Fatalf("approve v1.1.0: exit %d\n%s\n%s", code, out, errOut)
	}
	waitFor(t, f.s, workflows.PromoteID("demo", "v1.1.0"), "promoted v1.1.0 of demo to qa")

	// v1.2.0: the qa gate shows the update of the job from v1.1.0.
	git(t, f.workDir, "commit", "-q", "--allow-empty", "-m", "next")
	git(t, f.workDir, "push", "-q", f.remote, "main")
	if code, out, errOut := sh("release", "v1.2.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release v1.2.0: %s\n%s", out, errOut)
	}
	code, out, _ := sh("promote", "v1.2.0", "--project", "demo", "--as", "alice", "--wait")
	if code != 0 || !strings.Contains(out, "daily_orders       update v1.1.0 → v1.2.0 (upgrade from v1.1.0)") || !strings.Contains(out, "pending: qa: 0 of 1 approvals") {
		t.Fatalf("promote v1.2.0: exit %d\n%s", code, out)
	}
	approved := stagePlanHash(t, f.s, pid, "qa")

	// Someone changes the qa job by hand before the deployment starts.
	qaJobs := f.emus["qa"].JobsTagged(map[string]string{"shipline_project": "demo", "shipline_job": "daily_orders"})
	if len(qaJobs) != 1 {
		t.Fatalf("qa jobs: %+v", qaJobs)
	}
	w, err := f.emus["qa"].Client(goodToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Jobs.Update(context.Background(), jobs.UpdateJob{JobId: qaJobs[0].ID, NewSettings: &jobs.JobSettings{MaxConcurrentRuns: 4}}); err != nil {
		t.Fatal(err)
	}

	// bob approves the plan the gate shows: the plan computed again before
	// the deployment differs, and the gate reopens.
	if code, out, errOut := sh("approve", "v1.2.0", "--project", "demo", "--stage", "qa", "--as", "bob"); code != 0 || !strings.Contains(out, "you approved plan "+approved[:12]) {
		t.Fatalf("bob approving: exit %d\n%s\n%s", code, out, errOut)
	}
	waitFor(t, f.s, pid, `"approved_hash": "`+approved+`"`)
	code, out, _ = sh("status", pid)
	for _, want := range []string{
		"reopened ", "the plan of qa changed after bob approved plan " + approved[:12],
		"- qa/daily_orders: drift: max_concurrent_runs: deployed 1, live 4 (was: none)",
		"changed outside Shipline: max_concurrent_runs: deployed 1, live 4",
		"pending: qa: 0 of 1 approvals from developers",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("status after the change by hand lacks %q:\n%s", want, out)
		}
	}
	if n := len(f.emus["qa"].JobsTagged(map[string]string{"shipline_version": "v1.2.0"})); n != 0 {
		t.Fatalf("%d qa jobs run v1.2.0 before the new plan was approved", n)
	}
	reviewed := stagePlanHash(t, f.s, pid, "qa")
	if reviewed == approved {
		t.Fatal("the reopened gate shows the plan approved before")
	}

	// bob approves the new plan: qa deploys, and the job is Shipline's again.
	if code, out, errOut := sh("approve", "v1.2.0", "--project", "demo", "--stage", "qa", "--as", "bob"); code != 0 || !strings.Contains(out, "you approved plan "+reviewed[:12]) {
		t.Fatalf("bob approving the new plan: exit %d\n%s\n%s", code, out, errOut)
	}
	waitFor(t, f.s, pid, "promoted v1.2.0 of demo to qa")
	job := f.emus["qa"].JobsTagged(map[string]string{"shipline_project": "demo", "shipline_job": "daily_orders"})
	var settings struct {
		MaxConcurrentRuns int `json:"max_concurrent_runs"`
	}
	if len(job) != 1 || json.Unmarshal(job[0].Settings, &settings) != nil || settings.MaxConcurrentRuns != 1 || job[0].Tags()["shipline_version"] != "v1.2.0" {
		t.Fatalf("qa job after the promotion: %+v", job)
	}
	// SHIPLINE_RECORD_PROMOTE_HISTORY=1 records this promotion's history (a
	// gate that reopened) for workflows/replay_test.go.
	if os.Getenv("SHIPLINE_RECORD_PROMOTE_HISTORY") != "" {
		c, err := client.Dial(client.Options{HostPort: f.s.address, Logger: quietSDKLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		recordHistory(context.Background(), t, c, pid, "", filepath.Join("..", "workflows", "testdata", "histories", "promote_plan.json"))
		c.Close()
	}
	checkAudit(t, f.s, []string{
		"alice promote v1.2.0 started",
		"bob approve v1.2.0 ok",
		"alice promote v1.2.0 reopened",
		"bob approve v1.2.0 ok",
		"bob deploy v1.2.0 succeeded",
		"alice promote v1.2.0 promoted",
	})
}

// stagePlanHash is the hash of the plan a stage's gate shows in a promotion.
func stagePlanHash(t *testing.T, s *stack, id, stage string) string {
	t.Helper()
	code, out, _ := s.shipline("--output", "json", "status", id)
	var res struct {
		State workflows.PromoteState `json:"state"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("status %s: exit %d\n%s", id, code, out)
	}
	for _, st := range res.State.Stages {
		if st.Name == stage && st.Plan != nil {
			return st.Plan.Hash
		}
	}
	t.Fatalf("the %s gate of %s shows no plan:\n%s", stage, id, out)
	return ""
}
