package dbemu

// Jobs API 2.2 runs: run-now (idempotency_token: the same token gives the same
// run, as the real service guarantees), runs/get, runs/list and runs/cancel.
//
// A run's tasks advance with the emulator's clock (Advance moves it on): each
// task waits for its depends_on, is PENDING for its behaviour's Pending time,
// RUNNING for its Running time, then TERMINATED with SUCCESS, or FAILED with
// the behaviour's Fail message. A task whose dependency did not succeed ends
// UPSTREAM_FAILED (run_if ALL_SUCCESS, the default). The run is PENDING until
// a task starts, RUNNING while any task has not ended and TERMINATED with
// SUCCESS, FAILED or CANCELED after. Like the real service, a job whose
// max_concurrent_runs (default 1) are all active skips a new run
// (life_cycle_state SKIPPED) unless its queue is enabled, where the run waits
// (QUEUED) for an earlier one to end.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"
)

const (
	maxIdempotencyToken = 64
	defaultRunsLimit    = 20
	maxRunsLimit        = 25
)

// TaskBehavior is how the tasks with one task_key behave in runs started
// after it is set (SetTaskBehavior).
type TaskBehavior struct {
	// Pending is how long the task stays PENDING (cluster start) once its
	// dependencies ended.
	Pending time.Duration
	// Running is how long it then runs.
	Running time.Duration
	// Fail, when set, makes the task end FAILED with this state_message.
	Fail string
}

// DefaultTaskBehavior is the behaviour of tasks without their own: 10 s
// pending, 1 min running, success.
var DefaultTaskBehavior = TaskBehavior{Pending: 10 * time.Second, Running: time.Minute}

type run struct {
	id, jobID, number int64
	token             string
	name              string
	created           time.Time
	settings          map[string]any // the job's settings when the run started
	params            map[string]any // the run-now request's parameters
	tasks             []*runTask
	skipped           string    // state_message of a skipped run
	cancelled         time.Time // when runs/cancel arrived
}

type runTask struct {
	id        int64
	key       string
	dependsOn []string
	runIf     string
	b         TaskBehavior
	settings  map[string]any
}

// taskView is a task's state at one instant.
type taskView struct {
	life, result, message string
	start, end            time.Time
}

// Advance moves the emulator's clock on by d: runs advance as if d had passed.
func (e *Emulator) Advance(d time.Duration) {
	e.skew.Add(int64(d))
}

// SetTaskBehavior sets how tasks with task_key behave in runs started from now on.
func (e *Emulator) SetTaskBehavior(taskKey string, b TaskBehavior) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.behaviors[taskKey] = b
}

// RunInfo is a run as the emulator holds it, for tests.
type RunInfo struct {
	RunID, JobID     int64
	IdempotencyToken string
	// LifeCycleState and ResultState are the run's state now.
	LifeCycleState, ResultState string
	// Params are the run-now request's parameter fields (job_parameters,
	// python_named_params, ...).
	Params map[string]any
}

// Runs returns every run, oldest first.
func (e *Emulator) Runs() []RunInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	var out []RunInfo
	for _, r := range e.sortedRuns() {
		life, result, _ := e.runState(r, now)
		out = append(out, RunInfo{RunID: r.id, JobID: r.jobID, IdempotencyToken: r.token, LifeCycleState: life, ResultState: result, Params: clone(r.params).(map[string]any)})
	}
	return out
}

func (e *Emulator) sortedRuns() []*run {
	out := make([]*run, 0, len(e.runs))
	for _, r := range e.runs {
		out = append(out, r)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].id < out[b].id })
	return out
}

// runParamFields are the run-now fields kept as the run's parameters.
var runParamFields = []string{"job_parameters", "notebook_params", "python_params", "python_named_params", "jar_params", "spark_submit_params", "sql_params", "dbt_commands"}

func (e *Emulator) runsRunNow(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	if !decodeJSON(w, r, &req) {
		return
	}
	jobID, _ := req["job_id"].(json.Number)
	token, _ := req["idempotency_token"].(string)
	if len(token) > maxIdempotencyToken {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Idempotency token must be at most %d characters, got %d.", maxIdempotencyToken, len(token)))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if token != "" {
		if id, ok := e.runTokens[token]; ok {
			// The real service answers the run the token started, whatever the job.
			writeJSON(w, http.StatusOK, map[string]any{"run_id": id, "number_in_job": id})
			return
		}
	}
	j, ok := e.lookupJob(w, jobID)
	if !ok {
		return
	}
	if msg := checkRunParams(j.settings, req); msg != "" {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", msg)
		return
	}
	now := e.now()
	run := &run{id: e.nextRunID, jobID: j.id, token: token, created: now, settings: clone(j.settings).(map[string]any), params: map[string]any{}}
	run.number = run.id
	run.name, _ = j.settings["name"].(string)
	e.nextRunID += 1 + e.rng.Int63n(1000)
	for _, k := range runParamFields {
		if v, ok := req[k]; ok {
			run.params[k] = v
		}
	}
	tasks, _ := j.settings["tasks"].([]any)
	for _, t := range tasks {
		m := t.(map[string]any)
		key, _ := m["task_key"].(string)
		rt := &runTask{id: e.nextRunID, key: key, b: DefaultTaskBehavior, settings: clone(m).(map[string]any)}
		e.nextRunID += 1 + e.rng.Int63n(1000)
		if b, ok := e.behaviors[key]; ok {
			rt.b = b
		}
		rt.runIf, _ = m["run_if"].(string)
		deps, _ := m["depends_on"].([]any)
		for _, d := range deps {
			if dm, ok := d.(map[string]any); ok {
				k, _ := dm["task_key"].(string)
				rt.dependsOn = append(rt.dependsOn, k)
			}
		}
		run.tasks = append(run.tasks, rt)
	}
	if max := maxConcurrent(j.settings); !queueEnabled(j.settings) && e.activeRuns(j.id, now) >= max {
		run.skipped = fmt.Sprintf("Skipping this run because the limit of %d maximum concurrent runs has been reached.", max)
	}
	e.runs[run.id] = run
	if token != "" {
		e.runTokens[token] = run.id
	}
	writeJSON(w, http.StatusOK, map[string]any{"run_id": run.id, "number_in_job": run.number})
}

// checkRunParams refuses what the real service refuses: job_parameters
// together with task parameters, and job parameters the job does not define.
func checkRunParams(settings, req map[string]any) string {
	jp, hasJP := req["job_parameters"].(map[string]any)
	defined, _ := settings["parameters"].([]any)
	if !hasJP {
		if len(defined) > 0 {
			for _, k := range runParamFields[1:] {
				if _, ok := req[k]; ok {
					return fmt.Sprintf("The job has job parameters: use job_parameters instead of %s.", k)
				}
			}
		}
		return ""
	}
	for _, k := range runParamFields[1:] {
		if _, ok := req[k]; ok {
			return fmt.Sprintf("job_parameters cannot be used together with %s.", k)
		}
	}
	names := map[string]bool{}
	for _, p := range defined {
		if m, ok := p.(map[string]any); ok {
			n, _ := m["name"].(string)
			names[n] = true
		}
	}
	keys := make([]string, 0, len(jp))
	for k := range jp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !names[k] {
			return fmt.Sprintf("Job parameter %q is not defined in the job.", k)
		}
	}
	return ""
}

func maxConcurrent(s map[string]any) int {
	if n, ok := s["max_concurrent_runs"].(json.Number); ok {
		if v, err := n.Int64(); err == nil && v > 0 {
			return int(v)
		}
	}
	return 1
}

func queueEnabled(s map[string]any) bool {
	q, _ := s["queue"].(map[string]any)
	on, _ := q["enabled"].(bool)
	return on
}

func (e *Emulator) activeRuns(jobID int64, now time.Time) int {
	n := 0
	for _, r := range e.runs {
		if r.jobID != jobID {
			continue
		}
		if life, _, _ := e.runState(r, now); isActive(life) {
			n++
		}
	}
	return n
}

func isActive(life string) bool {
	switch life {
	case "TERMINATED", "SKIPPED", "INTERNAL_ERROR":
		return false
	}
	return true
}

// queuedUntil returns when a queued run can start: the end of the earlier run
// it waits for (zero when it need not wait, or still unknown: far future).
func (e *Emulator) queuedUntil(r *run) time.Time {
	if !queueEnabled(r.settings) {
		return r.created
	}
	// Earlier active runs of the job, in start order; this run starts when
	// enough of them have ended. Their end times are computed recursively.
	var ends []time.Time
	for _, o := range e.sortedRuns() {
		if o.id >= r.id || o.jobID != r.jobID || o.skipped != "" {
			continue
		}
		_, end := e.runSpan(o)
		if end.IsZero() || end.After(r.created) {
			ends = append(ends, end)
		}
	}
	max := maxConcurrent(r.settings)
	if len(ends) < max {
		return r.created
	}
	sort.Slice(ends, func(a, b int) bool { return ends[a].Before(ends[b]) })
	return ends[len(ends)-max]
}

// runSpan returns when the run's tasks may start and when the run ends
// (zero: never on its own, i.e. still running or waiting).
func (e *Emulator) runSpan(r *run) (start, end time.Time) {
	start = e.queuedUntil(r)
	views := e.taskViews(r, start, time.Time{})
	for _, v := range views {
		if v.end.IsZero() {
			return start, time.Time{}
		}
		if v.end.After(end) {
			end = v.end
		}
	}
	if end.IsZero() {
		end = start
	}
	if !r.cancelled.IsZero() && r.cancelled.Before(end) {
		end = r.cancelled
	}
	return start, end
}

// taskViews computes each task's state at now (zero now: its whole schedule,
// ignoring the clock) for a run whose tasks may start at start.
func (e *Emulator) taskViews(r *run, start, now time.Time) map[string]taskView {
	out := map[string]taskView{}
	var visit func(t *runTask) taskView
	byKey := map[string]*runTask{}
	for _, t := range r.tasks {
		byKey[t.key] = t
	}
	visiting := map[string]bool{}
	visit = func(t *runTask) taskView {
		if v, ok := out[t.key]; ok {
			return v
		}
		if visiting[t.key] {
			return taskView{life: "INTERNAL_ERROR", message: "Task dependency cycle."}
		}
		visiting[t.key] = true
		ready, upstreamFailed := start, false
		for _, d := range t.dependsOn {
			dt, ok := byKey[d]
			if !ok {
				continue
			}
			dv := visit(dt)
			if dv.end.IsZero() {
				ready = time.Time{}
				break
			}
			if dv.end.After(ready) {
				ready = dv.end
			}
			upstreamFailed = upstreamFailed || dv.result != "SUCCESS"
		}
		v := schedule(t, ready, upstreamFailed)
		out[t.key] = v
		return v
	}
	for _, t := range r.tasks {
		visit(t)
	}
	// Cut the schedule at the clock and at a cancel.
	for k, v := range out {
		out[k] = cut(v, now, r.cancelled)
	}
	return out
}

// schedule is a task's whole life once it may start at ready (zero: never).
func schedule(t *runTask, ready time.Time, upstreamFailed bool) taskView {
	if ready.IsZero() {
		return taskView{life: "BLOCKED"}
	}
	if upstreamFailed && (t.runIf == "" || t.runIf == "ALL_SUCCESS") {
		return taskView{life: "TERMINATED", result: "UPSTREAM_FAILED", message: "Upstream task failed.", start: ready, end: ready}
	}
	v := taskView{life: "TERMINATED", result: "SUCCESS", start: ready.Add(t.b.Pending), end: ready.Add(t.b.Pending + t.b.Running)}
	if t.b.Fail != "" {
		v.result, v.message = "FAILED", t.b.Fail
	}
	return v
}

// cut returns the view of a scheduled task at now (zero: its end), after a
// cancel at cancelled. Tasks not running yet are PENDING.
func cut(v taskView, now, cancelled time.Time) taskView {
	if !cancelled.IsZero() && (now.IsZero() || !now.Before(cancelled)) && (v.end.IsZero() || cancelled.Before(v.end)) {
		return taskView{life: "TERMINATED", result: "CANCELED", message: "Run cancelled.", start: v.start, end: cancelled}
	}
	switch {
	case now.IsZero():
		return v
	case v.life == "BLOCKED":
		return taskView{life: "PENDING"}
	case v.result == "UPSTREAM_FAILED" && now.Before(v.end):
		return taskView{life: "PENDING"}
	case now.Before(v.start):
		return taskView{life: "PENDING"}
	case now.Before(v.end):
		return taskView{life: "RUNNING", start: v.start}
	}
	return v
}

// runState is the run's life cycle and result states and message at now.
func (e *Emulator) runState(r *run, now time.Time) (life, result, msg string) {
	if r.skipped != "" {
		return "SKIPPED", "", r.skipped
	}
	start := e.queuedUntil(r)
	if now.Before(start) && r.cancelled.IsZero() {
		return "QUEUED", "", "Waiting for an earlier run of the job to finish."
	}
	views := e.taskViews(r, start, now)
	ended, started, failed, cancelled := true, false, "", false
	for _, t := range r.tasks {
		v := views[t.key]
		ended = ended && v.life == "TERMINATED"
		started = started || v.life == "RUNNING" || v.life == "TERMINATED"
		switch v.result {
		case "FAILED":
			if failed == "" {
				failed = fmt.Sprintf("Task %s failed with message: %s.", t.key, v.message)
			}
		case "CANCELED":
			cancelled = true
		}
	}
	switch {
	case !r.cancelled.IsZero() && !now.Before(r.cancelled) && cancelled:
		return "TERMINATED", "CANCELED", "Run cancelled."
	case !ended && started:
		return "RUNNING", "", ""
	case !ended:
		return "PENDING", "", "Waiting for cluster"
	case failed != "":
		return "TERMINATED", "FAILED", failed
	}
	return "TERMINATED", "SUCCESS", ""
}

// status is the newer status object for a life cycle and result state.
func status(life, result, msg string) map[string]any {
	s := map[string]any{"state": life}
	switch life {
	case "SKIPPED":
		s["state"] = "TERMINATED"
		s["termination_details"] = map[string]any{"code": "SKIPPED", "type": "CLIENT_ERROR", "message": msg}
	case "INTERNAL_ERROR":
		s["state"] = "TERMINATED"
		s["termination_details"] = map[string]any{"code": "INTERNAL_ERROR", "type": "INTERNAL_ERROR", "message": msg}
	case "TERMINATED":
		code, typ := "SUCCESS", "SUCCESS"
		switch result {
		case "FAILED":
			code, typ = "RUN_EXECUTION_ERROR", "CLIENT_ERROR"
		case "CANCELED":
			code, typ = "USER_CANCELED", "SUCCESS"
		case "UPSTREAM_FAILED":
			code, typ = "UPSTREAM_FAILED", "CLIENT_ERROR"
		}
		s["termination_details"] = map[string]any{"code": code, "type": typ, "message": msg}
	case "BLOCKED":
		s["state"] = "BLOCKED"
	}
	return s
}

func stateJSON(life, result, msg string) map[string]any {
	s := map[string]any{"life_cycle_state": life, "state_message": msg, "user_cancelled_or_timedout": result == "CANCELED"}
	if result != "" {
		s["result_state"] = result
	}
	return s
}

// runJSON renders a run as runs/get (and runs/list with expand_tasks) does.
func (e *Emulator) runJSON(r *run, now time.Time, withTasks bool) map[string]any {
	life, result, msg := e.runState(r, now)
	out := map[string]any{
		"job_id":                  r.jobID,
		"run_id":                  r.id,
		"number_in_job":           r.number,
		"original_attempt_run_id": r.id,
		"creator_user_name":       e.user,
		"run_name":                r.name,
		"run_type":                "JOB_RUN",
		"trigger":                 "ONE_TIME",
		"format":                  "MULTI_TASK",
		"attempt_number":          0,
		"start_time":              r.created.UnixMilli(),
		"state":                   stateJSON(life, result, msg),
		"status":                  status(life, result, msg),
		"run_page_url":            fmt.Sprintf("%s/?o=%d#job/%d/run/%d", e.URL, workspaceID, r.jobID, r.id),
	}
	if jp := e.runJobParameters(r); len(jp) > 0 {
		out["job_parameters"] = jp
	}
	if len(r.params) > 0 {
		out["overriding_parameters"] = clone(r.params)
	}
	if !isActive(life) {
		_, end := e.runSpan(r)
		if r.skipped != "" || end.IsZero() || end.After(now) {
			end = now
		}
		if r.skipped != "" {
			end = r.created
		}
		out["end_time"] = end.UnixMilli()
		out["run_duration"] = end.Sub(r.created).Milliseconds()
	} else {
		out["end_time"] = 0
	}
	if withTasks && r.skipped == "" {
		views := e.taskViews(r, e.queuedUntil(r), now)
		tasks := make([]map[string]any, 0, len(r.tasks))
		for _, t := range r.tasks {
			v := views[t.key]
			if life == "QUEUED" {
				v = taskView{life: "QUEUED"}
			}
			tj := clone(t.settings).(map[string]any)
			tj["run_id"] = t.id
			tj["task_key"] = t.key
			tj["state"] = stateJSON(v.life, v.result, v.message)
			tj["status"] = status(v.life, v.result, v.message)
			tj["run_page_url"] = fmt.Sprintf("%s/?o=%d#job/%d/run/%d", e.URL, workspaceID, r.jobID, t.id)
			tj["attempt_number"] = 0
			if !v.start.IsZero() {
				tj["start_time"] = v.start.UnixMilli()
			} else {
				tj["start_time"] = 0
			}
			if v.life == "TERMINATED" && !v.end.IsZero() {
				tj["end_time"] = v.end.UnixMilli()
			} else {
				tj["end_time"] = 0
			}
			tasks = append(tasks, tj)
		}
		out["tasks"] = tasks
	}
	return out
}

// workspaceID is the emulated workspace's ID in run page URLs (?o=...).
const workspaceID = 1234567890123456

// runJobParameters are the job's parameters with this run's values, as the
// real runs/get lists them ({name, default, value}).
func (e *Emulator) runJobParameters(r *run) []map[string]any {
	defined, _ := r.settings["parameters"].([]any)
	given, _ := r.params["job_parameters"].(map[string]any)
	var out []map[string]any
	for _, p := range defined {
		m, ok := p.(map[string]any)
		if !ok {
			continue
		}
		jp := map[string]any{"name": m["name"], "default": m["default"], "value": m["default"]}
		if v, ok := given[fmt.Sprint(m["name"])]; ok {
			jp["value"] = v
		}
		out = append(out, jp)
	}
	return out
}

// lookupRun resolves a run_id like the real service: a missing run is 400
// INVALID_PARAMETER_VALUE "Run <id> does not exist.".
func (e *Emulator) lookupRun(w http.ResponseWriter, raw string) (*run, bool) {
	if raw == "" {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Missing required field: run_id")
		return nil, false
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid run_id %q: must be an integer", raw))
		return nil, false
	}
	r, ok := e.runs[id]
	if !ok {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Run %d does not exist.", id))
		return nil, false
	}
	return r, true
}

func (e *Emulator) runsGet(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	run, ok := e.lookupRun(w, r.URL.Query().Get("run_id"))
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, e.runJSON(run, e.now(), true))
}

func (e *Emulator) runsList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultRunsLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 || n > maxRunsLimit {
			apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid limit %s: limit must be between 1 and %d.", l, maxRunsLimit))
			return
		}
		limit = n
		if n == 0 { // the service uses its maximum
			limit = maxRunsLimit
		}
	}
	activeOnly, completedOnly := q.Get("active_only") == "true", q.Get("completed_only") == "true"
	if activeOnly && completedOnly {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "active_only and completed_only cannot both be true.")
		return
	}
	offset, _ := strconv.Atoi(q.Get("offset"))
	if t := q.Get("page_token"); t != "" {
		n, err := decodeToken(t, "runs")
		if err != nil {
			apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Invalid page_token.")
			return
		}
		offset = int(n)
	}
	var jobID int64 = -1
	if s := q.Get("job_id"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid job_id %q: must be an integer", s))
			return
		}
		jobID = n
	}
	expand := q.Get("expand_tasks") == "true"

	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	all := e.sortedRuns()
	// Newest first: by start_time, then run_id, descending.
	sort.SliceStable(all, func(a, b int) bool {
		if !all[a].created.Equal(all[b].created) {
			return all[a].created.After(all[b].created)
		}
		return all[a].id > all[b].id
	})
	var matched []*run
	for _, run := range all {
		if jobID >= 0 && run.jobID != jobID {
			continue
		}
		life, _, _ := e.runState(run, now)
		if activeOnly && !isActive(life) || completedOnly && isActive(life) {
			continue
		}
		matched = append(matched, run)
	}
	matched = matched[min(offset, len(matched)):]
	out := map[string]any{"has_more": len(matched) > limit}
	if len(matched) > limit {
		matched = matched[:limit]
		out["next_page_token"] = encodeToken("runs", int64(offset+limit))
	}
	if offset > 0 {
		out["prev_page_token"] = encodeToken("runs", int64(max(0, offset-limit)))
	}
	runs := make([]map[string]any, 0, len(matched))
	for _, run := range matched {
		runs = append(runs, e.runJSON(run, now, expand))
	}
	if len(runs) > 0 {
		out["runs"] = runs
	}
	writeJSON(w, http.StatusOK, out)
}

func (e *Emulator) runsCancel(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RunID json.Number `json:"run_id"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	run, ok := e.lookupRun(w, req.RunID.String())
	if !ok {
		return
	}
	now := e.now()
	if life, _, _ := e.runState(run, now); isActive(life) && run.cancelled.IsZero() {
		run.cancelled = now
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}
