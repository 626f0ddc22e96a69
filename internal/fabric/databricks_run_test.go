package fabric

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/test/dbemu"
)

// dbRunJob deploys a two-task job (ingest → score, wheel tasks) of version
// v1.2.0 with extra top-level settings.
func dbRunJob(t *testing.T, d *databricksFabric, extra string) string {
	t.Helper()
	lib := dbVolume + "/demo/v1.2.0/ingest/ingest-1.2.0-py3-none-any.whl"
	def := `{"name": "demo nightly"` + extra + `, "tasks": [
	  {"task_key": "ingest", "python_wheel_task": {"package_name": "ingest", "entry_point": "main"}, "libraries": [{"whl": "` + lib + `"}]},
	  {"task_key": "score", "depends_on": [{"task_key": "ingest"}], "python_wheel_task": {"package_name": "ingest", "entry_point": "score"}, "libraries": [{"whl": "` + lib + `"}]}]}`
	res, err := d.UpsertJob(context.Background(), JobSpec{Project: "demo", Job: "nightly", Definition: []byte(def), Version: "v1.2.0"})
	if err != nil {
		t.Fatalf("UpsertJob: %v", err)
	}
	return res.ID
}

func taskStates(r Run) string {
	var s []string
	for _, t := range r.Tasks {
		s = append(s, t.Key+"="+string(t.State)+"/"+string(t.Result))
	}
	return strings.Join(s, " ")
}

func TestDatabricksRunIdempotentAndAdvances(t *testing.T) {
	ctx := context.Background()
	emu, d, _ := dbSetup(t, dbVolume)
	jobID := dbRunJob(t, d, "")
	// The run-now answers are lost after the run started (503 after
	// handling, also for the SDK's own resends): the start fails as
	// transient, and the retried start gets the run the first one started.
	emu.Inject(dbemu.Fault{Method: "POST", Path: "/api/2.2/jobs/run-now", Times: 3, Status: http.StatusServiceUnavailable, After: true})
	req := RunRequest{Project: "demo", Job: "nightly", Key: "run/demo/dev/nightly/7f3a", Params: map[string]string{"mode": "smoke"}, TriggeredBy: "alice"}
	_, err := d.StartRun(ctx, req)
	dbKind(t, err, apperr.FabricUnavailable, false)
	var ref RunRef
	for attempt := 0; ; attempt++ { // retried like Temporal retries the activity
		if ref, err = d.StartRun(ctx, req); err == nil || attempt == 5 {
			break
		}
	}
	if err != nil {
		t.Fatalf("retried StartRun: %v", err)
	}
	if n := emu.CountRequests("POST", "/api/2.2/jobs/run-now"); n != 1 {
		t.Fatalf("%d run-now calls answered, want the retry's one", n)
	}
	again, err := d.StartRun(ctx, req)
	if err != nil || again.ID != ref.ID {
		t.Fatalf("second StartRun with the same key = %+v, %v; want run %s", again, err, ref.ID)
	}
	runs := emu.Runs()
	if len(runs) != 1 || runs[0].IdempotencyToken != req.Key || runs[0].JobID == 0 {
		t.Fatalf("emulator runs = %+v, want exactly one with token %q", runs, req.Key)
	}
	if got := runs[0].Params["python_named_params"]; got == nil || got.(map[string]any)["mode"] != "smoke" {
		t.Fatalf("run-now parameters = %v, want python_named_params mode=smoke", runs[0].Params)
	}
	if !strings.Contains(ref.URL, "#job/"+jobID+"/run/"+ref.ID) {
		t.Fatalf("run URL = %q, want the run page of job %s run %s", ref.URL, jobID, ref.ID)
	}

	r, err := d.GetRun(ctx, "demo", "nightly", ref.ID)
	if err != nil || r.State != RunPending || taskStates(r) != "ingest=pending/ score=pending/" {
		t.Fatalf("at start: %+v %v", r, err)
	}
	if r.Version != "v1.2.0" || r.URL != ref.URL || r.StartedAt.IsZero() {
		t.Fatalf("run = %+v, want version v1.2.0 (from the task libraries), URL and start", r)
	}
	emu.Advance(30 * time.Second) // ingest runs
	if r, _ = d.GetRun(ctx, "demo", "nightly", ref.ID); r.State != RunRunning || taskStates(r) != "ingest=running/ score=pending/" {
		t.Fatalf("after 30s: %s %s", r.State, taskStates(r))
	}
	emu.Advance(time.Minute) // score runs (ingest ended at 1m10s)
	if r, _ = d.GetRun(ctx, "demo", "nightly", ref.ID); r.State != RunRunning || taskStates(r) != "ingest=terminated/success score=running/" {
		t.Fatalf("after 1m30s: %s %s", r.State, taskStates(r))
	}
	emu.Advance(time.Hour)
	r, _ = d.GetRun(ctx, "demo", "nightly", ref.ID)
	if r.State != RunTerminated || r.Result != RunSucceeded || r.Active() || r.EndedAt.Before(r.StartedAt) || taskStates(r) != "ingest=terminated/success score=terminated/success" {
		t.Fatalf("at the end: %+v", r)
	}
	if _, err := d.GetRun(ctx, "demo", "nightly", "123"); err == nil || !strings.Contains(err.Error(), "run 123 of demo/nightly does not exist") {
		t.Fatalf("GetRun of a missing run: %v", err)
	}
}

func TestDatabricksRunFailureListAndCancel(t *testing.T) {
	ctx := context.Background()
	emu, d, _ := dbSetup(t, dbVolume)
	dbRunJob(t, d, `, "max_concurrent_runs": 5`)
	emu.SetTaskBehavior("score", dbemu.TaskBehavior{Pending: time.Second, Running: time.Minute, Fail: "ZeroDivisionError: division by zero"})

	first, err := d.StartRun(ctx, RunRequest{Project: "demo", Job: "nightly", Key: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	emu.Advance(time.Hour)
	r, err := d.GetRun(ctx, "demo", "nightly", first.ID)
	if err != nil || r.Result != RunFailed || r.Message != "task score: ZeroDivisionError: division by zero" {
		t.Fatalf("failed run = %+v %v; want result failed with the task's message", r, err)
	}
	if taskStates(r) != "ingest=terminated/success score=terminated/failed" {
		t.Fatalf("tasks = %s", taskStates(r))
	}

	emu.Advance(time.Minute)
	second, _ := d.StartRun(ctx, RunRequest{Project: "demo", Job: "nightly", Key: "k2"})
	emu.Advance(time.Minute)
	third, _ := d.StartRun(ctx, RunRequest{Project: "demo", Job: "nightly", Key: "k3"})
	list, err := d.ListRuns(ctx, "demo", "nightly", 0)
	if err != nil || len(list) != 3 || list[0].ID != third.ID || list[1].ID != second.ID || list[2].ID != first.ID {
		t.Fatalf("ListRuns = %+v %v; want %s, %s, %s (newest first)", list, err, third.ID, second.ID, first.ID)
	}
	if two, _ := d.ListRuns(ctx, "demo", "nightly", 2); len(two) != 2 || two[0].ID != third.ID {
		t.Fatalf("ListRuns limit 2 = %+v", two)
	}
	active, err := d.ActiveRuns(ctx, "demo", "nightly")
	if err != nil || len(active) != 2 || active[0].ID != third.ID {
		t.Fatalf("ActiveRuns = %+v %v; want runs %s and %s", active, err, third.ID, second.ID)
	}

	if err := d.CancelRun(ctx, "demo", "nightly", third.ID); err != nil {
		t.Fatalf("CancelRun: %v", err)
	}
	r, _ = d.GetRun(ctx, "demo", "nightly", third.ID)
	if r.State != RunTerminated || r.Result != RunCancelled {
		t.Fatalf("cancelled run = %+v", r)
	}
	if err := d.CancelRun(ctx, "demo", "nightly", first.ID); err != nil {
		t.Fatalf("cancelling an ended run: %v", err)
	}
	if r, _ := d.GetRun(ctx, "demo", "nightly", first.ID); r.Result != RunFailed {
		t.Fatalf("an ended run changed on cancel: %+v", r)
	}
}

func TestDatabricksRunJobParameters(t *testing.T) {
	ctx := context.Background()
	emu, d, _ := dbSetup(t, dbVolume)
	dbRunJob(t, d, `, "parameters": [{"name": "mode", "default": "full"}, {"name": "shipline_triggered_by", "default": ""}, {"name": "shipline_version", "default": "v1.2.0"}]`)
	_, err := d.StartRun(ctx, RunRequest{Project: "demo", Job: "nightly", Key: "bad", Params: map[string]string{"day": "1"}})
	fe := dbKind(t, err, apperr.InvalidInput, true)
	if !strings.Contains(fe.Msg, `parameter "day" is not a job parameter`) || !strings.Contains(fe.Msg, "mode, shipline_triggered_by, shipline_version") {
		t.Fatalf("message = %q", fe.Msg)
	}
	if len(emu.Runs()) != 0 {
		t.Fatal("a refused start reached the fabric")
	}
	ref, err := d.StartRun(ctx, RunRequest{Project: "demo", Job: "nightly", Key: "ok", Params: map[string]string{"mode": "smoke"}, TriggeredBy: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	jp := emu.Runs()[0].Params["job_parameters"].(map[string]any)
	if jp["mode"] != "smoke" || jp[ParamTriggeredBy] != "carol" {
		t.Fatalf("job_parameters = %v", jp)
	}
	list, err := d.ListRuns(ctx, "demo", "nightly", 0)
	if err != nil || len(list) != 1 || list[0].ID != ref.ID || list[0].TriggeredBy != "carol" || list[0].Version != "v1.2.0" {
		t.Fatalf("ListRuns = %+v %v; want triggered by carol, version v1.2.0", list, err)
	}
}

func TestDatabricksRunSkippedAndNotDeployed(t *testing.T) {
	ctx := context.Background()
	emu, d, _ := dbSetup(t, dbVolume)
	if _, err := d.StartRun(ctx, RunRequest{Project: "demo", Job: "nightly", Key: "k"}); err == nil ||
		!strings.Contains(err.Error(), "deploy job nightly of project demo to this fabric first") {
		t.Fatalf("run of an undeployed job: %v", err)
	}
	dbRunJob(t, d, "") // max_concurrent_runs defaults to 1
	if _, err := d.StartRun(ctx, RunRequest{Project: "demo", Job: "nightly", Key: "k1"}); err != nil {
		t.Fatal(err)
	}
	ref, _ := d.StartRun(ctx, RunRequest{Project: "demo", Job: "nightly", Key: "k2"})
	r, _ := d.GetRun(ctx, "demo", "nightly", ref.ID)
	if r.State != RunTerminated || r.Result != RunSkipped || !strings.Contains(r.Message, "maximum concurrent runs") {
		t.Fatalf("second concurrent run = %+v, want skipped", r)
	}
	if n := len(emu.Runs()); n != 2 {
		t.Fatalf("%d runs", n)
	}
}

func TestIdempotencyTokenFits(t *testing.T) {
	long := "run/customer360/production-eu-west/daily_orders_with_a_long_name/0f3a9c2e-1d2b-4c5d-8e9f-0a1b2c3d4e5f"
	tok := IdempotencyToken(long)
	if len(tok) != 64 || tok == IdempotencyToken(long+"x") || IdempotencyToken("short") != "short" {
		t.Fatalf("IdempotencyToken(%q) = %q (%d)", long, tok, len(tok))
	}
}

// A run of another job is not a run of this one.
func TestDatabricksGetRunOfAnotherJob(t *testing.T) {
	ctx := context.Background()
	_, d, _ := dbSetup(t, dbVolume)
	dbRunJob(t, d, "")
	ref, err := d.StartRun(ctx, RunRequest{Project: "demo", Job: "nightly", Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpsertJob(ctx, JobSpec{Project: "demo", Job: "other", Definition: []byte(`{"name": "other"}`), Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetRun(ctx, "demo", "other", ref.ID); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("GetRun through another job: %v", err)
	}
	if err := d.CancelRun(ctx, "demo", "other", ref.ID); err == nil {
		t.Fatal("a run was cancelled through another job")
	}
}
