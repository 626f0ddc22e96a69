package cli

import (
	"testing"

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
	running := runState(workflows.StatusRunning, fabric.RunRunning, "", tk("ingest", fabric.RunRunning, "", ""), tk("score", fabric.RunPending, "", ""))
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
				states: []any{pending, running, half, done}}
			if code, _, _ := golden(t, "run_wait_"+out, f, "--output", out, "run", "nightly", "--project", "demo", "--fabric", "dev", "--param", "mode=smoke", "--wait"); code != ExitOK {
				t.Errorf("exit %d", code)
			}
		}
	})
	t.Run("failed", func(t *testing.T) {
		f := newFake()
		f.onStart[workflows.RunWorkflow] = &fakeWF{typ: workflows.RunWorkflow, accept: workflows.Acceptance{Accepted: true, Status: workflows.StatusRunning},
			states: []any{running, failedRun}}
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
	t.Run("bad param", func(t *testing.T) {
		f := newFake()
		if code, _, _ := golden(t, "run_bad_param", f, "run", "nightly", "--project", "demo", "--fabric", "dev", "--param", "smoke"); code != ExitInvalid {
			t.Errorf("exit %d, want 2", code)
		}
	})
}
