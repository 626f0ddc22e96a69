package test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/workflows"
)

// bob approves "v1.1.0 → v1.2.0" on qa while v1.1.1 is being deployed to qa
// by its own promotion (it holds qa's lock, waiting for a run of the job to end):
// the promotion's deployment queues behind it. Once v1.1.1 landed and the
// lock is granted, the deployment computes the plan again, finds "v1.1.1 →
// v1.2.0", writes nothing and ends PlanChanged; the gate reopens naming it,
// and qa gets v1.2.0 only after the new plan is approved, by a new
// deployment.
func TestPlanGateHoldsAtTheFabricLock(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	f := newPromoteFixtureWith(t, planGateStages)
	sh := f.s.shipline
	pid := workflows.PromoteID("demo", "v1.2.0")
	release := func(v string) {
		git(t, f.workDir, "commit", "-q", "--allow-empty", "-m", v)
		git(t, f.workDir, "push", "-q", f.remote, "main")
		if code, out, errOut := sh("release", v, "--project", "demo", "--as", "alice", "--wait"); code != 0 {
			t.Fatalf("release %s: %s\n%s", v, out, errOut)
		}
	}

	// v1.1.0 runs on qa.
	if code, out, errOut := sh("release", "v1.1.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release v1.1.0: %s\n%s", out, errOut)
	}
	if code, out, _ := sh("promote", "v1.1.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("promote v1.1.0: exit %d\n%s", code, out)
	}
	if code, out, errOut := sh("approve", "v1.1.0", "--project", "demo", "--stage", "qa", "--as", "bob"); code != 0 {
		t.Fatalf("approve v1.1.0: exit %d\n%s\n%s", code, out, errOut)
	}
	waitFor(t, f.s, workflows.PromoteID("demo", "v1.1.0"), "promoted v1.1.0 of demo to qa")
	release("v1.1.1")
	release("v1.2.0")
	if code, out, _ := sh("promote", "v1.2.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 ||
		!strings.Contains(out, "daily_orders       update v1.1.0 → v1.2.0 (upgrade from v1.1.0)") {
		t.Fatalf("promote v1.2.0: exit %d\n%s", code, out)
	}
	approved := stagePlanHash(t, f.s, pid, "qa")

	// A run of the qa job is active; v1.1.1, promoted to qa meanwhile (alice
	// approves it), holds qa's lock while its deployment waits for the run
	// to end.
	qaJobs := f.emus["qa"].JobsTagged(map[string]string{"shipline_project": "demo", "shipline_job": "daily_orders"})
	if len(qaJobs) != 1 {
		t.Fatalf("qa jobs: %+v", qaJobs)
	}
	var settings struct {
		Tasks []struct {
			TaskKey string `json:"task_key"`
		} `json:"tasks"`
	}
	_ = json.Unmarshal(qaJobs[0].Settings, &settings)
	for _, tk := range settings.Tasks {
		f.emus["qa"].SetTaskBehavior(tk.TaskKey, dbemu.TaskBehavior{Pending: time.Second, Running: 10 * time.Minute})
	}
	w, err := f.emus["qa"].Client(goodToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Jobs.RunNow(context.Background(), jobs.RunNow{JobId: qaJobs[0].ID}); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := sh("promote", "v1.1.1", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("promote v1.1.1: exit %d\n%s", code, out)
	}
	if code, out, errOut := sh("approve", "v1.1.1", "--project", "demo", "--stage", "qa", "--as", "alice"); code != 0 {
		t.Fatalf("approve v1.1.1: exit %d\n%s\n%s", code, out, errOut)
	}
	waitFor(t, f.s, workflows.PromoteID("demo", "v1.1.1"), `"deployment_id": "deploy/demo/v1.1.1/promote-qa-`)
	direct := stageDeploymentID(t, f.s, workflows.PromoteID("demo", "v1.1.1"), "qa")
	waitFor(t, f.s, direct, "has an active run")

	// bob approves the plan he reviewed: it still holds before the
	// deployment starts, which then queues behind v1.1.1's.
	if code, out, errOut := sh("approve", "v1.2.0", "--project", "demo", "--stage", "qa", "--as", "bob"); code != 0 || !strings.Contains(out, "you approved plan "+approved[:12]) {
		t.Fatalf("bob approving: exit %d\n%s\n%s", code, out, errOut)
	}
	waitFor(t, f.s, pid, `"deployment_id": "deploy/demo/v1.2.0/promote-qa-`)
	first := stageDeploymentID(t, f.s, pid, "qa")
	waitFor(t, f.s, first, "queued for fabric qa behind "+direct)

	// The run ends; v1.1.1 lands; the promotion's deployment gets the lock.
	f.emus["qa"].Advance(time.Hour)
	if code, out, _ := sh("status", direct, "--watch"); code != 0 || !strings.Contains(out, "deployed v1.1.1 of demo") {
		t.Fatalf("v1.1.1 did not land: %d\n%s", code, out)
	}
	waitFor(t, f.s, pid, `"at_lock": true`)
	if code, out, _ := sh("status", first); !strings.Contains(out, "no longer the approved plan "+approved[:12]) || !strings.Contains(out, "refused") {
		t.Fatalf("status of the first deployment (exit %d):\n%s", code, out)
	}
	code, out, _ := sh("status", pid)
	for _, want := range []string{
		"the plan of qa changed after bob approved plan " + approved[:12],
		"(found by deployment " + first + " once it held the stage's fabrics; it wrote nothing)",
		"v1.1.1",
		"pending: qa: 0 of 1 approvals from developers",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("status after the deployment found the plan changed lacks %q:\n%s", want, out)
		}
	}
	if n := len(f.emus["qa"].JobsTagged(map[string]string{"shipline_version": "v1.2.0"})); n != 0 {
		t.Fatalf("%d qa jobs run v1.2.0 before the new plan was approved", n)
	}
	reviewed := stagePlanHash(t, f.s, pid, "qa")
	if reviewed == approved {
		t.Fatal("the reopened gate shows the plan approved before")
	}
	if code, out, errOut := sh("approve", "v1.2.0", "--project", "demo", "--stage", "qa", "--as", "bob"); code != 0 || !strings.Contains(out, "you approved plan "+reviewed[:12]) {
		t.Fatalf("bob approving the new plan: exit %d\n%s\n%s", code, out, errOut)
	}
	waitFor(t, f.s, pid, "promoted v1.2.0 of demo to qa")
	if second := stageDeploymentID(t, f.s, pid, "qa"); second == first {
		t.Fatalf("the stage deployed with the deployment that found the plan changed (%s)", first)
	}
	if job := f.emus["qa"].JobsTagged(map[string]string{"shipline_project": "demo", "shipline_job": "daily_orders"}); len(job) != 1 || job[0].Tags()["shipline_version"] != "v1.2.0" {
		t.Fatalf("qa job after the promotion: %+v", job)
	}
}

// stageDeploymentID is the ID of a promotion stage's (latest) deployment.
func stageDeploymentID(t *testing.T, s *stack, id, stage string) string {
	t.Helper()
	code, out, _ := s.shipline("--output", "json", "status", id)
	var res struct {
		State workflows.PromoteState `json:"state"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("status %s: exit %d\n%s", id, code, out)
	}
	for _, st := range res.State.Stages {
		if st.Name == stage && st.DeploymentID != "" {
			return st.DeploymentID
		}
	}
	t.Fatalf("stage %s of %s has no deployment:\n%s", stage, id, out)
	return ""
}
