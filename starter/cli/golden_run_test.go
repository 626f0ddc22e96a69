package cli

import (
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/workflows"
)

func runState(status workflows.Status, state fabric.RunState, result fabric.RunResult, tasks ...workflows.TaskState) workflows.RunOutcome {
	s := workflows.RunOutcome{Progress: workflows.Progress{Status: status, Summary: "running nightly of demo on dev for alice"},
		Project: "demo", Fabric: "dev", Job: "nightly", Actor: "alice", Version: "v1.0.0", Started: t0,
		RunID: "9", URL: "https://dbc.example/#job/1/run/9", State: state, Result: result, Tasks: tasks}
	return s
}

func tk(key string, st fabric.RunState, res fabric.RunResult, msg string) workflows.TaskState {
	return workflows.TaskState{Key: key, State: st, Result: res, Message: msg}
}

func TestGoldenRun(t *testing.T) {
	pending := runState(workflows.StatusRunning, fabric.RunPending, "", tk("ingest", fabric.RunPending, "", ""), tk("score", fabric.RunPending, "", ""))
	runningRun := runState(workflows.StatusRunning, fabric.RunRunning, "", tk("ingest", fabric.RunRunning, "", ""), tk("score", fabric.RunPending, "", ""))
	half := runState(workflows.StatusRunning, fabric.RunRunning, "", tk("ingest", fabric.RunTerminated, fabric.RunSucceeded, ""), tk("score", fabric.RunRunning, "", ""))
	done := runState(workflows.StatusSucceeded, fabric.RunTerminated, fabric.RunSucceeded,
		tk("ingest", fabric.RunTerminated, fabric.RunSucceeded, ""), tk("score", fabric.RunTerminated, fabric.RunSucceeded, ""))
	done.Summary = "nightly on dev succeeded (run 9, 1m5s): https://dbc.example/#job/1/run/9"
	failedRun := runState(workflows.StatusFailed, fabric.RunTerminated, fabric.RunFailed,
		tk("ingest", fabric.RunTerminated, fabric.RunSucceeded, ""), tk("score", fabric.RunTerminated, fabric.RunFailed, "ValueError: no orders for 2026-11-22"))
	failedRun.Message = "task score failed: ValueError: no orders for 2026-11-22"
	failedRun.Summary = "nightly on dev failed (run 9, 1m5s): task score failed: ValueError: no orders for 2026-11-22 — https://dbc.example/#job/1/run/9"

	t.Run("wait", func(t *testing.T) {
		for _, out := range []string{"text", "json"} {
			f := newFake()
			f.onStart[workflows.RunWorkflow] = &fakeWF{typ: workflows.RunWorkflow, accept: workflows.Acceptance{Accepted: true, Status: workflows.StatusRunning},
				states: []any{pending, runningRun, half, done}}
			if code, _, _ := golden(t, "run_wait_"+out, f, "--output", out, "run", "nightly", "--project", "demo", "--fabric", "dev", "--param", "mode=smoke", "--wait"); code != ExitOK {
				t.Errorf("exit %d", code)
			}
		}
	})
	t.Run("started", func(t *testing.T) {
		for _, out := range []string{"text", "json"} {
			f := newFake()
			f.onStart[workflows.RunWorkflow] = &fakeWF{typ: workflows.RunWorkflow, accept: workflows.Acceptance{Accepted: true, Status: workflows.StatusRunning},
				states: []any{runningRun}}
			if code, _, _ := golden(t, "run_started_"+out, f, "--output", out, "run", "nightly", "--project", "demo", "--fabric", "dev"); code != ExitOK {
				t.Errorf("exit %d", code)
			}
		}
	})
	t.Run("failed", func(t *testing.T) {
		f := newFake()
		f.onStart[workflows.RunWorkflow] = &fakeWF{typ: workflows.RunWorkflow, accept: workflows.Acceptance{Accepted: true, Status: workflows.StatusRunning},
			states: []any{runningRun, failedRun}}
		if code, _, _ := golden(t, "run_wait_failed", f, "run", "nightly", "--project", "demo", "--fabric", "dev", "--wait"); code != ExitFailed {
			t.Errorf("exit %d, want 1", code)
		}
	})
	t.Run("refused", func(t *testing.T) {
		f := newFake()
		f.onStart[workflows.RunWorkflow] = &fakeWF{typ: workflows.RunWorkflow, accept: workflows.Acceptance{Status: workflows.StatusRefused, Step: workflows.StepRunResolve,
			Reason: "job hourly of demo is not deployed on fabric dev by Shipline (deployed there: nightly); deploy it first: `shipline deploy VERSION --project demo --fabric dev`"}}
		if code, _, _ := golden(t, "run_refused", f, "run", "hourly", "--project", "demo", "--fabric", "dev"); code != ExitFailed {
			t.Errorf("exit %d, want 1", code)
		}
	})
	t.Run("same id", func(t *testing.T) {
		f := newFake()
		f.add(workflows.RunID("demo", "dev", "nightly", "ci-42"), &fakeWF{typ: workflows.RunWorkflow, states: []any{done}})
		if code, _, _ := golden(t, "run_same_id", f, "run", "nightly", "--project", "demo", "--fabric", "dev", "--id", "ci-42", "--wait"); code != ExitOK {
			t.Errorf("exit %d", code)
		}
	})
	t.Run("bad param", func(t *testing.T) {
		f := newFake()
		if code, _, _ := golden(t, "run_bad_param", f, "run", "nightly", "--project", "demo", "--fabric", "dev", "--param", "smoke"); code != ExitInvalid {
			t.Errorf("exit %d, want 2", code)
		}
	})
}

// runsFake: the fabrics of deploymentsFake; daily_orders on dev ran twice
// (the newer one through Shipline, by bob, still running; the older one from
// a schedule, failed); dev's orders_dag could not be read.
func runsFake() *fakeClient {
	f := deploymentsFake()
	f.reads[workflows.ListRunsUpdate] = workflows.ListRunsOutput{
		Runs: []activities.FabricRun{
			{Fabric: "dev", Job: "daily_orders", Run: fabric.Run{ID: "902", URL: "https://dbc.example/#job/1234/run/902", State: fabric.RunRunning,
				StartedAt: t0.Add(3 * time.Hour), Version: "v1.0.0"}},
			{Fabric: "qa", Job: "weekly", Run: fabric.Run{ID: "77", URL: "https://dbc-qa.example/#job/9012/run/77", State: fabric.RunTerminated, Result: fabric.RunSucceeded,
				StartedAt: t0.Add(2 * time.Hour), EndedAt: t0.Add(2*time.Hour + 4*time.Minute + 12*time.Second), TriggeredBy: "carol", Version: "v1.0.0"}},
			{Fabric: "dev", Job: "daily_orders", Run: fabric.Run{ID: "901", URL: "https://dbc.example/#job/1234/run/901", State: fabric.RunTerminated, Result: fabric.RunFailed,
				Message: "task score failed", StartedAt: t0.Add(time.Hour), EndedAt: t0.Add(time.Hour + 90*time.Second), Version: "v1.0.0"}},
		},
		Errors: []activities.JobRunsError{{Fabric: "dev", Job: "orders_dag", Error: "fabric dev: 503 Service Unavailable"}},
	}
	f.listExec(workflows.RunWorkflow, workflows.RunID("demo", "dev", "daily_orders", "20261122-131500-ab12"), running, t0.Add(3*time.Hour),
		map[string]any{workflows.MemoRunID: "902"}, map[string]any{workflows.ActorKey.GetName(): "bob"})
	return f
}

func TestGoldenRuns(t *testing.T) {
	for _, out := range []string{"text", "json"} {
		golden(t, "runs_"+out, runsFake(), "--output", out, "runs", "--project", "demo")
	}
	golden(t, "runs_none", newFake(), "runs", "--project", "demo", "--fabric", "dev")
}

// `cancel` of a run goes through Temporal's cancellation (the workflow cancels
// the remote run); cancelling a run that ended is refused and recorded in the
// project's audit.
func TestGoldenCancelRun(t *testing.T) {
	id := workflows.RunID("demo", "dev", "nightly", "20261122-101500-ab12")
	running := runState(workflows.StatusRunning, fabric.RunRunning, "", tk("ingest", fabric.RunRunning, "", ""))
	f := newFake()
	f.add(id, &fakeWF{typ: workflows.RunWorkflow, states: []any{running}})
	if code, _, _ := golden(t, "cancel_run", f, "cancel", id, "--wait"); code != ExitOK {
		t.Errorf("exit %d", code)
	}
	f = newFake()
	f.add(id, &fakeWF{typ: workflows.RunWorkflow, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, states: []any{running}})
	if code, _, _ := golden(t, "cancel_run_ended", f, "cancel", id); code != ExitFailed {
		t.Errorf("exit %d, want 1", code)
	}
}
