package test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/shipline/shipline/test/dbemu"
)

// A deploy that would replace a Databricks job while it runs waits (dev's
// active_runs is the default, wait), holding the fabric and saying so in
// `status` and `deployments`; once the run ended it replaces the job.
func TestDeployWaitsForActiveRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	f := newDeployFixture(t)
	if code, _, _ := f.s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatal("release failed")
	}
	job, _ := f.job(t)
	w, err := f.emu.Client(goodToken)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var taskKeys []string
	var settings struct {
		Tasks []struct {
			TaskKey string `json:"task_key"`
		} `json:"tasks"`
	}
	_ = json.Unmarshal(job.Settings, &settings)
	// The run's tasks last 1 s pending + 10 min running on the emulator's clock.
	for _, tk := range settings.Tasks {
		taskKeys = append(taskKeys, tk.TaskKey)
		f.emu.SetTaskBehavior(tk.TaskKey, dbemu.TaskBehavior{Pending: time.Second, Running: 10 * time.Minute})
	}
	run, err := w.Jobs.RunNow(ctx, jobs.RunNow{JobId: job.ID})
	if err != nil {
		t.Fatal(err)
	}
	runID := fmt.Sprint(run.RunId)
	// A change by hand: the deploy will reset the job (an unchanged job is
	// not replaced, and its runs are no reason to wait).
	if err := w.Jobs.Update(ctx, jobs.UpdateJob{JobId: job.ID, NewSettings: &jobs.JobSettings{Description: "edited by hand"}}); err != nil {
		t.Fatal(err)
	}
	resetsBefore := f.emu.CountRequests("POST", "/api/2.2/jobs/reset")

	code, out, _ := f.s.shipline("--output", "json", "deploy", "v1.0.0", "--project", "demo", "--as", "bob")
	var started startResultJSON
	if code != 0 || json.Unmarshal([]byte(out), &started) != nil {
		t.Fatalf("deploy did not start: %d %s", code, out)
	}
	want := "waiting: daily_orders on dev has an active run " + runID + " ("
	sawStatus, sawDeployments := false, false
	for i := 0; i < 600 && !(sawStatus && sawDeployments); i++ {
		if _, out, _ := f.s.shipline("status", started.WorkflowID); strings.Contains(out, want) && strings.Contains(out, "waiting up to 1h (active_runs: wait)") {
			sawStatus = true
		}
		if sawStatus && !sawDeployments {
			_, out, _ := f.s.shipline("deployments", "--project", "demo", "--fabric", "dev")
			sawDeployments = strings.Contains(out, started.WorkflowID+" is deploying — "+want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sawStatus || !sawDeployments {
		t.Fatalf("the deployment never said it waits for run %s (status %v, deployments %v); tasks %v", runID, sawStatus, sawDeployments, taskKeys)
	}
	if n := f.emu.CountRequests("POST", "/api/2.2/jobs/reset"); n != resetsBefore {
		t.Fatalf("the job was reset (%d times) while run %s was active", n-resetsBefore, runID)
	}
	f.emu.Advance(time.Hour) // the run ends
	if code, out, _ := f.s.shipline("status", started.WorkflowID, "--watch"); code != 0 || !strings.Contains(out, "deployed v1.0.0 of demo") {
		t.Fatalf("after the run ended the deployment did not finish: %d\n%s", code, out)
	}
	if n := f.emu.CountRequests("POST", "/api/2.2/jobs/reset"); n == resetsBefore {
		t.Fatal("the job was never replaced")
	}
}
