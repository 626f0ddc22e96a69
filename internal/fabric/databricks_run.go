package fabric

// Runs of the jobs Shipline deployed to a databricks fabric, through the Jobs
// API 2.2 of databricks-sdk-go: run-now, runs/get, runs/list, runs/cancel. The
// job is the one tagged shipline_project + shipline_job (as UpsertJob finds it).
//
// Choices:
//   - The run's key becomes run-now's idempotency_token (at most 64
//     characters: a longer key keeps its first 23 characters and adds a
//     hash). The service starts exactly one run per token, so a start retried
//     after a lost answer returns the first run; run-now is therefore sent
//     through the SDK, whose resends are harmless here.
//   - Parameters: a job that defines job parameters gets them as
//     job_parameters (a name the job does not define is refused before the
//     call, naming the defined ones); a job without gets them as
//     python_named_params (python_wheel_task) and notebook_params
//     (notebook_task), the task-level parameters those tasks take.
//   - Who triggered a run: run-now takes no run name, description or tag, so
//     the only place on the fabric is a job parameter. When the job defines
//     one named shipline_triggered_by, Shipline fills it and reads it back
//     from the run's job_parameters; otherwise the fabric cannot hold it and
//     Run.TriggeredBy stays empty (the run workflow keeps it).
//   - The job's version when the run started: a job parameter named
//     shipline_version when the job defines one, else the version segment of
//     the run's task libraries, which Shipline deployed under
//     <artifact_root>/<project>/<version>/ (a run keeps the settings it
//     started with, so this is the version that ran).
//   - State: life_cycle_state and result_state (always sent) decide; the
//     newer status.state and status.termination_details fill in when a
//     service leaves the older ones out. SUCCESS_WITH_FAILURES counts as
//     failed (a task failed); SKIPPED runs (max_concurrent_runs reached) are
//     terminated with result skipped.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/shipline/shipline/internal/apperr"
)

// Job parameters Shipline fills and reads when a job defines them.
const (
	ParamTriggeredBy = "shipline_triggered_by"
	ParamVersion     = "shipline_version"
)

const maxIdempotencyToken = 64

// runsPage is runs/list's largest page.
const runsPage = 25

// IdempotencyToken is the run-now idempotency_token for a run key.
func IdempotencyToken(key string) string {
	if len(key) <= maxIdempotencyToken {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return key[:23] + "-" + hex.EncodeToString(sum[:20])
}

var _ Runner = (*databricksFabric)(nil)

// jobID finds the job Shipline deployed for project/job; a job that is not
// there is a permanent error.
func (d *databricksFabric) jobID(ctx context.Context, project, job string) (int64, error) {
	ids, err := d.findJobs(ctx, JobSpec{Project: project, Job: job}, nil)
	if err != nil {
		return 0, err
	}
	switch len(ids) {
	case 0:
		return 0, &apperr.Error{Type: apperr.FabricRejected,
			Msg: fmt.Sprintf("databricks fabric %q (%s): no job carries tags %s=%s and %s=%s; deploy job %s of project %s to this fabric first",
				d.name, d.where(), TagProject, project, TagJob, job, job, project), Cause: ErrJobNotDeployed}
	case 1:
		return ids[0], nil
	}
	return 0, d.duplicates(JobSpec{Project: project, Job: job}, ids)
}

// deployedJob returns the deployed job's ID and settings.
func (d *databricksFabric) deployedJob(ctx context.Context, project, job string) (int64, map[string]any, error) {
	id, err := d.jobID(ctx, project, job)
	if err != nil {
		return 0, nil, err
	}
	ids := []int64{id}
	settings, found, err := d.getSettings(ctx, ids[0])
	if err != nil {
		return 0, nil, err
	}
	if !found {
		return 0, nil, &apperr.Error{Type: apperr.FabricUnavailable,
			Msg: fmt.Sprintf("databricks fabric %q: job %d (%s/%s) disappeared while it was being read (will retry)", d.name, ids[0], project, job)}
	}
	return ids[0], settings, nil
}

// StartRun sends run-now with the key's idempotency token (see the file comment).
func (d *databricksFabric) StartRun(ctx context.Context, r RunRequest) (RunRef, error) {
	if r.Key == "" {
		return RunRef{}, &apperr.Error{Type: apperr.InvalidInput, Msg: fmt.Sprintf("run of %s/%s on fabric %q: an idempotency key is required", r.Project, r.Job, d.name)}
	}
	w, _, err := d.clients()
	if err != nil {
		return RunRef{}, err
	}
	id, settings, err := d.deployedJob(ctx, r.Project, r.Job)
	if err != nil {
		return RunRef{}, err
	}
	req := jobs.RunNow{JobId: id, IdempotencyToken: IdempotencyToken(r.Key)}
	if err := d.runParams(&req, r, settings); err != nil {
		return RunRef{}, err
	}
	op := fmt.Sprintf("run-now of job %d (%s/%s)", id, r.Project, r.Job)
	wait, err := w.Jobs.RunNow(ctx, req)
	if err != nil {
		return RunRef{}, d.fail(op, err)
	}
	ref := RunRef{ID: strconv.FormatInt(wait.RunId, 10)}
	run, err := w.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: wait.RunId})
	if err == nil {
		ref.URL = run.RunPageUrl
	}
	return ref, nil
}

// runParams puts the request's parameters where the job takes them.
func (d *databricksFabric) runParams(req *jobs.RunNow, r RunRequest, settings map[string]any) error {
	defined := map[string]bool{}
	if ps, ok := settings["parameters"].([]any); ok {
		for _, p := range ps {
			if m, ok := p.(map[string]any); ok {
				name, _ := m["name"].(string)
				defined[name] = true
			}
		}
	}
	if len(defined) > 0 {
		req.JobParameters = map[string]string{}
		for k, v := range r.Params {
			if !defined[k] {
				names := make([]string, 0, len(defined))
				for n := range defined {
					names = append(names, n)
				}
				sort.Strings(names)
				return &apperr.Error{Type: apperr.InvalidInput,
					Msg: fmt.Sprintf("run of %s/%s on databricks fabric %q: parameter %q is not a job parameter of the job (it defines %s); add it to the job's parameters or leave it out",
						r.Project, r.Job, d.name, k, strings.Join(names, ", "))}
			}
			req.JobParameters[k] = v
		}
		if defined[ParamTriggeredBy] && r.TriggeredBy != "" {
			req.JobParameters[ParamTriggeredBy] = r.TriggeredBy
		}
		return nil
	}
	if len(r.Params) == 0 {
		return nil
	}
	tasks, _ := settings["tasks"].([]any)
	for _, t := range tasks {
		m, _ := t.(map[string]any)
		if _, ok := m["python_wheel_task"]; ok {
			req.PythonNamedParams = r.Params
		}
		if _, ok := m["notebook_task"]; ok {
			req.NotebookParams = r.Params
		}
	}
	if req.PythonNamedParams == nil && req.NotebookParams == nil {
		return &apperr.Error{Type: apperr.InvalidInput,
			Msg: fmt.Sprintf("run of %s/%s on databricks fabric %q: the job defines no job parameters and has no python_wheel_task or notebook_task to take parameters; define job parameters in its definition or run it without parameters",
				r.Project, r.Job, d.name)}
	}
	return nil
}

// GetRun reads one run; a run of another job is reported as not found.
func (d *databricksFabric) GetRun(ctx context.Context, project, job, runID string) (Run, error) {
	w, _, err := d.clients()
	if err != nil {
		return Run{}, err
	}
	id, err := strconv.ParseInt(runID, 10, 64)
	if err != nil {
		return Run{}, &apperr.Error{Type: apperr.InvalidInput, Msg: fmt.Sprintf("databricks fabric %q: run ID %q is not a number", d.name, runID)}
	}
	run, err := w.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: id})
	notFound := &apperr.Error{Type: apperr.FabricRejected,
		Msg: fmt.Sprintf("databricks fabric %q (%s): run %s of %s/%s does not exist; list the job's runs with `shipline runs`", d.name, d.where(), runID, project, job)}
	if apierr.IsMissing(err) {
		return Run{}, notFound
	}
	if err != nil {
		return Run{}, d.fail(fmt.Sprintf("runs/get of run %s", runID), err)
	}
	// The run must belong to the job: its job carries the job's tags (a
	// run of a job deleted since is taken as it is).
	owner, err := w.Jobs.GetByJobId(ctx, run.JobId)
	switch {
	case isMissingJob(err):
	case err != nil:
		return Run{}, d.fail(fmt.Sprintf("reading job %d of run %s", run.JobId, runID), err)
	case owner.Settings == nil || owner.Settings.Tags[TagProject] != project || owner.Settings.Tags[TagJob] != job:
		return Run{}, notFound
	}
	return d.runOf(project, *run), nil
}

// ListRuns lists the job's runs, newest first (runs/list's order).
func (d *databricksFabric) ListRuns(ctx context.Context, project, job string, limit int) ([]Run, error) {
	return d.listRuns(ctx, project, job, limit, false)
}

// ActiveRuns lists the job's runs that have not ended (runs/list active_only).
func (d *databricksFabric) ActiveRuns(ctx context.Context, project, job string) ([]Run, error) {
	return d.listRuns(ctx, project, job, 0, true)
}

func (d *databricksFabric) listRuns(ctx context.Context, project, job string, limit int, activeOnly bool) ([]Run, error) {
	w, _, err := d.clients()
	if err != nil {
		return nil, err
	}
	id, err := d.jobID(ctx, project, job)
	if err != nil {
		return nil, err
	}
	if limit <= 0 && !activeOnly {
		limit = runsPage
	}
	req := jobs.ListRunsRequest{JobId: id, ExpandTasks: true, ActiveOnly: activeOnly, Limit: runsPage}
	if limit > 0 {
		req.Limit = min(limit, runsPage)
	}
	var out []Run
	it := w.Jobs.ListRuns(ctx, req)
	for (limit == 0 || len(out) < limit) && it.HasNext(ctx) {
		b, err := it.Next(ctx)
		if err != nil {
			return nil, d.fail(fmt.Sprintf("runs/list of job %d (%s/%s)", id, project, job), err)
		}
		out = append(out, d.runOf(project, jobs.Run{RunId: b.RunId, JobId: b.JobId, RunPageUrl: b.RunPageUrl,
			State: b.State, Status: b.Status, StartTime: b.StartTime, EndTime: b.EndTime,
			JobParameters: b.JobParameters, Tasks: b.Tasks}))
	}
	return out, nil
}

// CancelRun sends runs/cancel; a run that has ended is left as it is.
func (d *databricksFabric) CancelRun(ctx context.Context, project, job, runID string) error {
	run, err := d.GetRun(ctx, project, job, runID)
	if err != nil || !run.Active() {
		return err
	}
	w, _, err := d.clients()
	if err != nil {
		return err
	}
	id, _ := strconv.ParseInt(runID, 10, 64)
	if _, err := w.Jobs.CancelRun(ctx, jobs.CancelRun{RunId: id}); err != nil {
		return d.fail(fmt.Sprintf("runs/cancel of run %s (%s/%s)", runID, project, job), err)
	}
	return nil
}

// runOf converts a Jobs API run.
func (d *databricksFabric) runOf(project string, r jobs.Run) Run {
	out := Run{ID: strconv.FormatInt(r.RunId, 10), URL: r.RunPageUrl}
	out.State, out.Result, out.Message = runStateOf(r.State, r.Status)
	if r.StartTime > 0 {
		out.StartedAt = time.UnixMilli(r.StartTime).UTC()
	}
	if r.EndTime > 0 {
		out.EndedAt = time.UnixMilli(r.EndTime).UTC()
	}
	for _, p := range r.JobParameters {
		switch p.Name {
		case ParamTriggeredBy:
			out.TriggeredBy = p.Value
		case ParamVersion:
			out.Version = p.Value
		}
	}
	failing := ""
	for _, t := range r.Tasks {
		tr := TaskRun{Key: t.TaskKey}
		tr.State, tr.Result, tr.Message = runStateOf(t.State, t.Status)
		if failing == "" && (tr.Result == RunFailed || tr.Result == RunTimedOut) && tr.Message != "" {
			failing = fmt.Sprintf("task %s: %s", t.TaskKey, tr.Message)
		}
		if out.Version == "" {
			out.Version = d.versionOf(project, t)
		}
		out.Tasks = append(out.Tasks, tr)
	}
	if failing != "" && out.Result != RunSucceeded {
		out.Message = failing
	}
	return out
}

// versionOf reads the release version from a task's library paths
// (<artifact_root>/<project>/<version>/...).
func (d *databricksFabric) versionOf(project string, t jobs.RunTask) string {
	prefix := d.root + "/" + project + "/"
	for _, l := range t.Libraries {
		for _, p := range []string{l.Whl, l.Jar} {
			if rest, ok := strings.CutPrefix(p, prefix); ok {
				if v, _, ok := strings.Cut(rest, "/"); ok {
					return v
				}
			}
		}
	}
	return ""
}

// runStateOf maps a run's or task's state (and newer status) to Shipline's.
func runStateOf(s *jobs.RunState, st *jobs.RunStatus) (RunState, RunResult, string) {
	if s == nil || s.LifeCycleState == "" {
		return statusStateOf(st)
	}
	msg := s.StateMessage
	switch s.LifeCycleState {
	case jobs.RunLifeCycleStateRunning, jobs.RunLifeCycleStateTerminating:
		return RunRunning, "", msg
	case jobs.RunLifeCycleStateSkipped:
		return RunTerminated, RunSkipped, msg
	case jobs.RunLifeCycleStateInternalError:
		return RunTerminated, RunFailed, msg
	case jobs.RunLifeCycleStateTerminated:
		return RunTerminated, resultOf(string(s.ResultState)), msg
	}
	return RunPending, "", msg // QUEUED, PENDING, BLOCKED, WAITING_FOR_RETRY
}

func resultOf(s string) RunResult {
	switch s {
	case "SUCCESS", "EXCLUDED":
		return RunSucceeded
	case "TIMEDOUT":
		return RunTimedOut
	case "CANCELED", "UPSTREAM_CANCELED", "DISABLED", "EVICTED", "UPSTREAM_EVICTED":
		return RunCancelled
	case "MAXIMUM_CONCURRENT_RUNS_REACHED", "SKIPPED":
		return RunSkipped
	}
	return RunFailed // FAILED, UPSTREAM_FAILED, SUCCESS_WITH_FAILURES, unknown
}

func statusStateOf(st *jobs.RunStatus) (RunState, RunResult, string) {
	if st == nil {
		return RunPending, "", ""
	}
	msg := ""
	if st.TerminationDetails != nil {
		msg = st.TerminationDetails.Message
	}
	switch st.State {
	case jobs.RunLifecycleStateV2StateRunning, jobs.RunLifecycleStateV2StateTerminating:
		return RunRunning, "", msg
	case jobs.RunLifecycleStateV2StateTerminated:
		code := ""
		if st.TerminationDetails != nil {
			code = string(st.TerminationDetails.Code)
		}
		switch code {
		case "SUCCESS":
			return RunTerminated, RunSucceeded, msg
		case "USER_CANCELED", "CANCELED", "DISABLED":
			return RunTerminated, RunCancelled, msg
		case "SKIPPED", "MAX_CONCURRENT_RUNS_EXCEEDED":
			return RunTerminated, RunSkipped, msg
		}
		return RunTerminated, RunFailed, msg
	}
	return RunPending, "", msg
}
