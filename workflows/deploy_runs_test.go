package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
)

// fakeRunner plays a fabric's runs behind the ActiveRuns and CancelRuns
// activities: active holds the runs in progress; each read counts down
// endsAfter (0: the runs never end by themselves); a cancel ends them at the
// next read.
type fakeRunner struct {
	policy    string
	timeout   time.Duration
	active    []activities.JobRun
	endsAfter int
	reads     int
	cancels   []activities.CancelRunsInput
	cancelled bool
	// unchanged are the jobs the plan finds unchanged on the fabric.
	unchanged []string
	asked     [][]string // the jobs of each ActiveRuns read
}

func (f *fakeRunner) install(e *testsuite.TestWorkflowEnvironment) {
	e.OnActivity(deployActs.ActiveRuns, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ActiveRunsInput) (activities.ActiveRunsOutput, error) {
		f.reads++
		f.asked = append(f.asked, in.Jobs)
		if f.cancelled || (f.endsAfter > 0 && f.reads > f.endsAfter) {
			f.active = nil
		}
		out := activities.ActiveRunsOutput{Policy: f.policy, Timeout: f.timeout}
		for _, r := range f.active {
			for _, j := range in.Jobs {
				if j == r.Job {
					out.Runs = append(out.Runs, r)
				}
			}
		}
		return out, nil
	}).Maybe()
	e.OnActivity(deployActs.PlanJobs, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PlanJobsInput) (activities.PlanJobsOutput, error) {
		var out activities.PlanJobsOutput
		for _, j := range in.Jobs {
			action := "update"
			if slices.Contains(f.unchanged, j.Name) {
				action = "unchanged"
			}
			out.Jobs = append(out.Jobs, activities.PlannedJob{Fabric: j.Fabric, Job: j.Name, Action: action})
		}
		return out, nil
	}).Maybe()
	e.OnActivity(deployActs.CancelRuns, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CancelRunsInput) error {
		f.cancels = append(f.cancels, in)
		f.cancelled = true
		return nil
	}).Maybe()
}

// activeRun is run 123 of daily_orders, started 4 minutes before start.
func activeRun(start time.Time) activities.JobRun {
	return activities.JobRun{Job: "daily_orders", Run: fabric.Run{ID: "123", URL: "https://dbx.example.com/jobs/7/runs/123",
		State: fabric.RunRunning, StartedAt: start.Add(-4 * time.Minute)}}
}

// newRunsEnv is a deployment of v1.0.0 to dev whose job daily_orders has an
// active run; upserts are counted with the reads of runs seen before them.
func newRunsEnv(t *testing.T, policy string) (*deployEnv, *[]int) {
	e := newDeployEnv(t)
	e.okResolve()
	e.okBuilds()
	e.okUpload()
	e.runs.policy = policy
	e.runs.active = []activities.JobRun{activeRun(e.Now())}
	var upsertsAt []int
	e.onJobs(func(in activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		upsertsAt = append(upsertsAt, e.runs.reads)
		for _, r := range e.runs.active {
			if r.Job == in.Job.Name && !slices.Contains(e.runs.unchanged, r.Job) {
				t.Errorf("job %s replaced while run %s is active", in.Job.Name, r.Run.ID)
			}
		}
		return activities.UpsertJobOutput{ID: "7", Action: "updated"}, nil
	})
	return e, &upsertsAt
}

// wait: the deployment holds its fabric, says what it waits for, and replaces
// the job once the run ended.
func TestDeployWaitsForActiveRun(t *testing.T) {
	e, upsertsAt := newRunsEnv(t, "wait")
	e.runs.endsAfter = 3 // ends after the third read: two polls
	var waiting DeployState
	e.RegisterDelayedCallback(func() { waiting = e.query() }, 10*time.Second)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	s := e.result()

	want := "waiting: daily_orders on dev has an active run 123 (running 4m); waiting up to 1h (active_runs: wait)"
	if waiting.Summary != want || waiting.Runs == nil || waiting.Runs.RunID != "123" || waiting.Runs.Fabric != "dev" || waiting.Status != StatusRunning {
		t.Fatalf("while waiting: summary %q, runs %+v, status %s; want %q", waiting.Summary, waiting.Runs, waiting.Status, want)
	}
	if st := stepOf(waiting.Steps, StepSchedule); st.Status != StepRunning || st.Detail != want {
		t.Fatalf("schedule step while waiting = %+v", st)
	}
	if s.Status != StatusSucceeded || s.Runs != nil || len(*upsertsAt) != 2 || (*upsertsAt)[0] != 4 {
		t.Fatalf("status %s, runs %+v, upserts after reads %v", s.Status, s.Runs, *upsertsAt)
	}
	if len(e.enqueued) != 1 || len(e.done) != 1 {
		t.Fatalf("the fabric was released during the wait: enqueued %d, done %d", len(e.enqueued), len(e.done))
	}
}

// wait, timed out: the deployment parks at schedule naming the run, the
// setting and the timeout; nothing was replaced; cancel ends it.
func TestDeployParksWhenActiveRunOutlastsTimeout(t *testing.T) {
	e, upsertsAt := newRunsEnv(t, "wait")
	var parked DeployState
	e.RegisterDelayedCallback(func() {
		parked = e.query()
		e.UpdateWorkflow(CancelUpdate, "1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Fatalf("cancel rejected: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "bob"})
	}, 2*time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})

	if parked.Status != StatusParked || parked.Parked == nil || parked.Parked.Step != StepSchedule {
		t.Fatalf("state after 2h = %s %+v", parked.Status, parked.Parked)
	}
	for _, w := range []string{"job daily_orders has an active run 123 (https://dbx.example.com/jobs/7/runs/123) on fabric dev did not end within 1h", "active_runs: wait", "active_runs_timeout: 1h", "`resume` waits again"} {
		if !strings.Contains(parked.Parked.Reason, w) {
			t.Errorf("park reason %q lacks %q", parked.Parked.Reason, w)
		}
	}
	// 1h of polls every 30s, plus the first read.
	if len(*upsertsAt) != 0 || e.runs.reads != 121 || parked.Runs != nil {
		t.Fatalf("upserts %v, reads %d, runs %+v", *upsertsAt, e.runs.reads, parked.Runs)
	}
	if !e.IsWorkflowCompleted() {
		t.Fatal("cancel did not end the parked deployment")
	}
}

// fail: refused at once, naming job, run, URL and the setting; nothing
// replaced, the fabric released.
func TestDeployRefusesActiveRunWhenFail(t *testing.T) {
	e, upsertsAt := newRunsEnv(t, "fail")
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})

	if !e.IsWorkflowCompleted() {
		t.Fatal("deployment did not end")
	}
	var app *temporal.ApplicationError
	err := e.GetWorkflowError()
	if !errors.As(err, &app) || app.Type() != apperr.ActiveRun ||
		!strings.Contains(app.Message(), "job daily_orders has an active run 123 (https://dbx.example.com/jobs/7/runs/123) on fabric dev; the fabric's active_runs is fail") {
		t.Fatalf("error = %v", err)
	}
	if len(*upsertsAt) != 0 || e.runs.reads != 1 {
		t.Fatalf("upserts %v, reads %d", *upsertsAt, e.runs.reads)
	}
	if len(e.done) != 1 || e.done[0].Outcome != StatusRefused || !strings.Contains(e.done[0].Reason, "run 123") {
		t.Fatalf("fabric told %+v", e.done)
	}
}

// cancel: the run is cancelled through the fabric, the deployment waits
// until it ended, then replaces the job and records the cancelled run.
func TestDeployCancelsActiveRun(t *testing.T) {
	e, upsertsAt := newRunsEnv(t, "cancel")
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	s := e.result()

	if len(e.runs.cancels) != 1 || len(e.runs.cancels[0].Runs) != 1 || e.runs.cancels[0].Runs[0].Run.ID != "123" ||
		e.runs.cancels[0].Fabric != "dev" || e.runs.cancels[0].For != deployID {
		t.Fatalf("cancels = %+v", e.runs.cancels)
	}
	if len(s.CancelledRuns) != 1 || s.CancelledRuns[0].RunID != "123" || s.CancelledRuns[0].Job != "daily_orders" || s.CancelledRuns[0].URL == "" {
		t.Fatalf("cancelled runs recorded = %+v", s.CancelledRuns)
	}
	if want := "deployed v1.0.0 of demo to dev (2 jobs); cancelled run 123 of daily_orders on dev (active_runs: cancel)"; s.Summary != want {
		t.Fatalf("outcome %q, want %q", s.Summary, want)
	}
	// Read, cancel, wait one poll, read again (ended), replace.
	if s.Status != StatusSucceeded || len(*upsertsAt) != 2 || (*upsertsAt)[0] != 2 {
		t.Fatalf("status %s, upserts after reads %v", s.Status, *upsertsAt)
	}
}

// A job the deploy leaves unchanged is not replaced: its run goes on, and the
// deploy does not wait for it.
func TestDeployDoesNotWaitForUnchangedJob(t *testing.T) {
	e, upsertsAt := newRunsEnv(t, "wait")
	e.runs.unchanged = []string{"daily_orders"}
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	s := e.result()

	if len(e.runs.asked) != 1 || !slices.Equal(e.runs.asked[0], []string{"orders_dag"}) {
		t.Fatalf("runs read for %v, want only orders_dag (daily_orders is unchanged)", e.runs.asked)
	}
	if s.Status != StatusSucceeded || len(*upsertsAt) != 2 {
		t.Fatalf("status %s, upserts %v", s.Status, *upsertsAt)
	}
}

// `shipline cancel` ends a deployment waiting for a run at once: nothing
// replaced, the fabric released, the wait cleared.
func TestDeployCancelWhileWaitingForRun(t *testing.T) {
	e, upsertsAt := newRunsEnv(t, "wait")
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(CancelUpdate, "1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Fatalf("cancel rejected: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "bob", Reason: "not now"})
	}, 5*time.Minute)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})

	if !e.IsWorkflowCompleted() {
		t.Fatal("deployment did not end")
	}
	s := e.query()
	if s.Status != StatusCancelled || s.Runs != nil || len(*upsertsAt) != 0 || e.runs.reads > 12 {
		t.Fatalf("status %s, runs %+v, upserts %v, reads %d", s.Status, s.Runs, *upsertsAt, e.runs.reads)
	}
	if len(e.done) != 1 || e.done[0].Outcome != StatusCancelled {
		t.Fatalf("fabric told %+v", e.done)
	}
}

// A long active_runs_timeout polls less often: a day's wait reads the runs
// about 200 times, not 2880.
func TestDeployLongRunWaitPollsSparingly(t *testing.T) {
	e, upsertsAt := newRunsEnv(t, "wait")
	e.runs.timeout = 24 * time.Hour
	var parked DeployState
	e.RegisterDelayedCallback(func() {
		parked = e.query()
		e.UpdateWorkflow(CancelUpdate, "1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Fatalf("cancel rejected: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "bob"})
	}, 25*time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})

	if parked.Status != StatusParked || !strings.Contains(parked.Parked.Reason, "did not end within 24h") {
		t.Fatalf("after 25h: %s %+v", parked.Status, parked.Parked)
	}
	if e.runs.reads != 201 || len(*upsertsAt) != 0 {
		t.Fatalf("reads %d (want 1 + 200 polls of 7m12s), upserts %v", e.runs.reads, *upsertsAt)
	}
}
