package fabric

import (
	"context"
	"time"
)

// Runner is a fabric that can start, follow, list and cancel runs of the jobs
// Shipline deployed there (Databricks jobs/run-now, Airflow dagRuns, local
// wheel entry points). A kind that cannot run jobs does not implement it;
// callers check with AsRunner.
type Runner interface {
	// StartRun triggers the job once. Key makes the start idempotent: a second
	// StartRun with the same key returns the run the first one started
	// (Databricks idempotency_token, Airflow dag_run_id, the local run's ID).
	StartRun(ctx context.Context, r RunRequest) (RunRef, error)
	// GetRun reads one run of the job, with its tasks.
	GetRun(ctx context.Context, project, job, runID string) (Run, error)
	// ListRuns returns the job's runs, newest first, at most limit (0: the
	// fabric's default page).
	ListRuns(ctx context.Context, project, job string, limit int) ([]Run, error)
	// CancelRun asks the fabric to cancel the run. Cancelling a run that has
	// already ended is not an error.
	CancelRun(ctx context.Context, project, job, runID string) error
	// ActiveRuns returns the job's runs that have not ended, newest first
	// (for deploys that must wait for, refuse or cancel running jobs).
	ActiveRuns(ctx context.Context, project, job string) ([]Run, error)
}

// AsRunner returns f's run operations, or false when its kind cannot run jobs.
func AsRunner(f Fabric) (Runner, bool) {
	r, ok := f.(Runner)
	return r, ok
}

// RunRequest asks for one run of a deployed job.
type RunRequest struct {
	Project string `json:"project"`
	Job     string `json:"job"`
	// Params are the run's parameters (Databricks job parameters, the Airflow
	// dag run's conf, the local entry point's --key=value arguments).
	Params map[string]string `json:"params,omitempty"`
	// Key is the idempotency key, derived from the workflow that starts the run.
	Key string `json:"key"`
	// TriggeredBy is the Shipline user who asked for the run, recorded on the
	// fabric where it can hold it (so `runs` can show it).
	TriggeredBy string `json:"triggered_by,omitempty"`
}

// RunRef names a started run.
type RunRef struct {
	ID  string `json:"id"`
	URL string `json:"url,omitempty"` // the run's page on the fabric
}

// RunState is where a run or task is in its life.
type RunState string

const (
	RunPending    RunState = "pending"
	RunRunning    RunState = "running"
	RunTerminated RunState = "terminated"
)

// RunResult is how a terminated run or task ended.
type RunResult string

const (
	RunSucceeded RunResult = "success"
	RunFailed    RunResult = "failed"
	RunCancelled RunResult = "cancelled"
	RunTimedOut  RunResult = "timedout"
	// RunSkipped: the fabric did not run it (Databricks skips a run when the
	// job's max_concurrent_runs are all busy and its queue is off).
	RunSkipped RunResult = "skipped"
)

// Run is one run of a job as the fabric reports it.
type Run struct {
	ID     string    `json:"id"`
	URL    string    `json:"url,omitempty"`
	State  RunState  `json:"state"`
	Result RunResult `json:"result,omitempty"` // set once State is terminated
	// Message is the fabric's explanation of the result (a failing task's error).
	Message   string    `json:"message,omitempty"`
	StartedAt time.Time `json:"started_at,omitempty"`
	EndedAt   time.Time `json:"ended_at,omitempty"`
	// TriggeredBy is the Shipline user for runs started through Shipline.
	TriggeredBy string `json:"triggered_by,omitempty"`
	// Version is the job's shipline_version when the run started, if known.
	Version string    `json:"version,omitempty"`
	Tasks   []TaskRun `json:"tasks,omitempty"`
}

// Active tells whether the run has not ended yet.
func (r Run) Active() bool { return r.State != RunTerminated }

// TaskRun is one task of a run.
type TaskRun struct {
	Key     string    `json:"key"`
	State   RunState  `json:"state"`
	Result  RunResult `json:"result,omitempty"`
	Message string    `json:"message,omitempty"`
}
