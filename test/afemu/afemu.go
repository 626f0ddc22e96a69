// Package afemu is an in-process stand-in for the part of Airflow's stable
// REST API that Shipline uses: DAGs' is_paused, dag runs (trigger, list, get,
// mark failed) and task instances, under /api/v2 (Airflow 3) or /api/v1
// (Airflow 2) — one version per server, so clients' fallback is exercised. It
// checks basic auth (v1) or a bearer token from POST /auth/token (v2),
// answers errors as Airflow does ({"title","detail","status"}), records every
// request and injects faults before or after a call acted.
//
// Dag runs advance with the emulator's clock (Advance): each task waits for
// its upstream tasks, is queued for its behaviour's Queued time, runs for its
// Running time and ends success, or failed (with the behaviour's Fail text as
// the task instance's note); tasks downstream of a failure end
// upstream_failed. A run is queued until its first task runs, running until
// every task ended, then success or failed. As in Airflow, the tasks of a run
// triggered while its DAG is paused are not scheduled: the run stays queued
// until the DAG is unpaused (pausing a DAG later does not stop runs already
// going, a simplification).
package afemu

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a server.
type Options struct {
	// Version is the API served: "v2" (default) or "v1".
	Version string
	// User and Password are the accepted credentials (default admin/secret).
	User, Password string
	// Token, when set, makes the v2 API take only this bearer token, which
	// POST /auth/token gives for the credentials (Airflow 3's own auth);
	// empty: both versions take basic auth (Airflow 2, or Airflow 3 with the
	// FAB auth manager's basic auth backend).
	Token string
}

// Task is one task of a DAG.
type Task struct {
	ID       string
	Upstream []string
}

// Behavior is how a task behaves in runs triggered after it is set.
type Behavior struct {
	Queued, Running time.Duration
	// Fail makes the task end failed, with this text as its note.
	Fail string
}

// DefaultBehavior: 5 s queued, 30 s running, success.
var DefaultBehavior = Behavior{Queued: 5 * time.Second, Running: 30 * time.Second}

// Fault is an injected failure of calls whose "METHOD path" starts with Prefix.
type Fault struct {
	Prefix string
	// Times is how many calls it answers (0: every one).
	Times int
	// Status answers with this status and an Airflow error body; 0 closes the
	// connection without an answer.
	Status int
	// After lets the call act first: its answer is lost.
	After bool
	used  int
}

// Server is a running stand-in.
type Server struct {
	URL string

	srv     *httptest.Server
	version string
	user    string
	pass    string
	token   string

	mu        sync.Mutex
	skew      time.Duration
	dags      map[string]*dag
	behaviors map[string]Behavior // dag/task
	faults    []*Fault
	requests  []string
}

type dag struct {
	id     string
	paused bool
	tasks  []Task
	runs   map[string]*dagRun
}

type dagRun struct {
	id, dagID  string
	logical    time.Time
	created    time.Time
	base       time.Time // when its tasks may start (zero: its DAG is paused)
	conf       map[string]any
	behaviors  map[string]Behavior
	tasks      []Task
	markedAt   time.Time // PATCH state=failed
	markedWith string
}

// Start runs a server on a loopback port; Close it when done.
func Start(opts Options) *Server {
	s := &Server{version: opts.Version, user: opts.User, pass: opts.Password, token: opts.Token,
		dags: map[string]*dag{}, behaviors: map[string]Behavior{}}
	if s.version == "" {
		s.version = "v2"
	}
	if s.user == "" {
		s.user, s.pass = "admin", "secret"
	}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.CloseClientConnections(); s.srv.Close() }

// AddDAG makes the scheduler know a DAG (as after it parsed its file).
func (s *Server) AddDAG(id string, tasks ...Task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.dags[id]; ok {
		d.tasks = tasks
		return
	}
	s.dags[id] = &dag{id: id, tasks: tasks, runs: map[string]*dagRun{}}
}

// RemoveDAG makes the scheduler forget a DAG (as before it parsed its file).
func (s *Server) RemoveDAG(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.dags, id)
}

// SetPaused sets a DAG's is_paused as a user would in the UI.
func (s *Server) SetPaused(id string, paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.dags[id]; d != nil {
		d.paused = paused
	}
}

// ClearFaults removes the injected faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Paused tells a DAG's is_paused.
func (s *Server) Paused(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dags[id] != nil && s.dags[id].paused
}

// SetBehavior sets how task taskID of dagID behaves in later runs.
func (s *Server) SetBehavior(dagID, taskID string, b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behaviors[dagID+"/"+taskID] = b
}

// Advance moves the clock on.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew += d
}

// Inject adds a fault; faults are tried in the order added.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// Requests returns the log: "METHOD /path?query body".
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// RunIDs returns the IDs of a DAG's runs, oldest first.
func (s *Server) RunIDs(dagID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dags[dagID]
	if d == nil {
		return nil
	}
	var out []string
	for _, r := range d.sortedRuns() {
		out = append(out, r.id)
	}
	return out
}

// Conf returns a run's conf.
func (s *Server) Conf(dagID, runID string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.dags[dagID]; d != nil && d.runs[runID] != nil {
		return d.runs[runID].conf
	}
	return nil
}

func (s *Server) now() time.Time { return time.Now().Add(s.skew).UTC() }

func (d *dag) sortedRuns() []*dagRun {
	out := make([]*dagRun, 0, len(d.runs))
	for _, r := range d.runs {
		out = append(out, r)
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].created.Equal(out[b].created) {
			return out[a].created.Before(out[b].created)
		}
		return out[a].id < out[b].id
	})
	return out
}

// ServeHTTP applies faults around the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	line := r.Method + " " + r.URL.RequestURI()
	if len(body) > 0 {
		line += " " + string(body)
	}
	s.mu.Lock()
	s.requests = append(s.requests, line)
	var f *Fault
	for _, c := range s.faults {
		if (c.Times == 0 || c.used < c.Times) && strings.HasPrefix(r.Method+" "+r.URL.Path, c.Prefix) {
			c.used++
			f = c
			break
		}
	}
	s.mu.Unlock()
	rec := httptest.NewRecorder()
	if f == nil || f.After {
		s.serve(rec, r, body)
	}
	switch {
	case f != nil && f.Status == 0: // connection closed without an answer
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			_ = conn.Close()
		}
	case f != nil:
		problem(w, f.Status, "injected fault")
	default:
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}
}

func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": http.StatusText(status), "detail": detail, "status": status, "type": "about:blank"})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

var (
	reDag      = regexp.MustCompile(`^dags/([^/]+)$`)
	reRuns     = regexp.MustCompile(`^dags/([^/]+)/dagRuns$`)
	reRun      = regexp.MustCompile(`^dags/([^/]+)/dagRuns/([^/]+)$`)
	reTIs      = regexp.MustCompile(`^dags/([^/]+)/dagRuns/([^/]+)/taskInstances$`)
	validRunID = regexp.MustCompile(`^[A-Za-z0-9_.~:+-]+$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method == http.MethodPost && r.URL.Path == "/auth/token" && s.version == "v2" && s.token != "" {
		var c struct{ Username, Password string }
		if json.Unmarshal(body, &c) != nil || c.Username != s.user || c.Password != s.pass {
			problem(w, http.StatusUnauthorized, "Invalid credentials")
			return
		}
		w.WriteHeader(http.StatusCreated)
		writeJSON(w, map[string]string{"access_token": s.token})
		return
	}
	prefix := "/api/" + s.version + "/"
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), prefix)
	if !ok {
		problem(w, http.StatusNotFound, "The requested URL was not found on the server.")
		return
	}
	if rest == "version" {
		writeJSON(w, map[string]string{"version": map[string]string{"v1": "2.10.5", "v2": "3.0.2"}[s.version]})
		return
	}
	if !s.authorized(r) {
		problem(w, http.StatusUnauthorized, "Not authenticated")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seg := func(re *regexp.Regexp) []string {
		m := re.FindStringSubmatch(rest)
		for i := range m {
			m[i], _ = urlUnescape(m[i])
		}
		return m
	}
	if m := seg(reDag); m != nil {
		switch r.Method {
		case http.MethodPatch:
			s.patchDag(w, r, m[1], body)
		case http.MethodGet:
			d := s.dags[m[1]]
			if d == nil {
				problem(w, http.StatusNotFound, fmt.Sprintf("DAG with dag_id: '%s' not found", m[1]))
				return
			}
			writeJSON(w, map[string]any{"dag_id": d.id, "is_paused": d.paused, "is_active": true})
		default:
			problem(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		}
		return
	}
	if m := seg(reRuns); m != nil {
		switch r.Method {
		case http.MethodPost:
			s.trigger(w, m[1], body)
		case http.MethodGet:
			s.listRuns(w, r, m[1])
		default:
			problem(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		}
		return
	}
	if m := seg(reRun); m != nil {
		d, run := s.findRun(w, m[1], m[2])
		if run == nil {
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, s.runJSON(d, run))
		case http.MethodPatch:
			s.patchRun(w, d, run, body)
		default:
			problem(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		}
		return
	}
	if m := seg(reTIs); m != nil && r.Method == http.MethodGet {
		d, run := s.findRun(w, m[1], m[2])
		if run == nil {
			return
		}
		q := r.URL.Query()
		limit, offset := 100, 0
		if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 {
			limit = min(v, 100) // maximum_page_limit
		}
		if v, err := strconv.Atoi(q.Get("offset")); err == nil && v > 0 {
			offset = v
		}
		states := s.taskStates(run)
		total := len(states)
		states = states[min(offset, len(states)):]
		states = states[:min(limit, len(states))]
		tis := []map[string]any{}
		for _, t := range states {
			tis = append(tis, map[string]any{"task_id": t.id, "dag_id": d.id, "dag_run_id": run.id, "state": nullable(t.state),
				"start_date": timeOrNull(t.start), "end_date": timeOrNull(t.end), "try_number": 1, "note": nullable(t.note)})
		}
		writeJSON(w, map[string]any{"task_instances": tis, "total_entries": total})
		return
	}
	problem(w, http.StatusNotFound, "The requested URL was not found on the server.")
}

func urlUnescape(s string) (string, error) {
	return strings.NewReplacer("%2F", "/", "%3A", ":", "%2B", "+", "%7E", "~").Replace(s), nil
}

func (s *Server) authorized(r *http.Request) bool {
	if s.version == "v2" && s.token != "" {
		return r.Header.Get("Authorization") == "Bearer "+s.token
	}
	u, p, ok := r.BasicAuth()
	return ok && u == s.user && p == s.pass
}

func (s *Server) patchDag(w http.ResponseWriter, r *http.Request, id string, body []byte) {
	d := s.dags[id]
	if d == nil {
		problem(w, http.StatusNotFound, fmt.Sprintf("DAG with dag_id: '%s' not found", id))
		return
	}
	var b struct {
		IsPaused *bool `json:"is_paused"`
	}
	if json.Unmarshal(body, &b) != nil || b.IsPaused == nil {
		problem(w, http.StatusBadRequest, "is_paused is required")
		return
	}
	d.paused = *b.IsPaused
	if !d.paused {
		for _, run := range d.runs {
			if run.base.IsZero() {
				run.base = s.now()
			}
		}
	}
	writeJSON(w, map[string]any{"dag_id": id, "is_paused": d.paused})
}

func (s *Server) trigger(w http.ResponseWriter, dagID string, body []byte) {
	d := s.dags[dagID]
	if d == nil {
		problem(w, http.StatusNotFound, fmt.Sprintf("DAG with dag_id: '%s' not found", dagID))
		return
	}
	var req map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil {
		problem(w, http.StatusBadRequest, "The request body is not a JSON object")
		return
	}
	if _, ok := req["logical_date"]; !ok && s.version == "v2" {
		problem(w, http.StatusUnprocessableEntity, "[{'type': 'missing', 'loc': ('body', 'logical_date'), 'msg': 'Field required'}]")
		return
	}
	var id string
	var logical *time.Time
	var conf map[string]any
	_ = json.Unmarshal(req["dag_run_id"], &id)
	_ = json.Unmarshal(req["logical_date"], &logical)
	if c, ok := req["conf"]; ok && json.Unmarshal(c, &conf) != nil {
		problem(w, http.StatusBadRequest, "conf must be a JSON object")
		return
	}
	now := s.now()
	if id == "" {
		id = "manual__" + now.Format(time.RFC3339Nano)
	}
	if !validRunID.MatchString(id) {
		problem(w, http.StatusBadRequest, fmt.Sprintf("The provided run ID '%s' is invalid. It does not match the configured pattern: '^[A-Za-z0-9_.~:+-]+$'", id))
		return
	}
	if _, dup := d.runs[id]; dup {
		msg := fmt.Sprintf("DAGRun with DAG ID: '%s' and DAGRun ID: '%s' already exists", dagID, id)
		if s.version == "v2" {
			msg = fmt.Sprintf("A DAG Run already exists for DAG %s with run id %s", dagID, id)
		}
		problem(w, http.StatusConflict, msg)
		return
	}
	run := &dagRun{id: id, dagID: dagID, created: now, conf: conf, behaviors: map[string]Behavior{}, tasks: d.tasks}
	if !d.paused {
		run.base = now
	}
	if logical != nil {
		run.logical = logical.UTC()
	} else if s.version == "v1" {
		run.logical = now
	}
	for _, t := range d.tasks {
		b, ok := s.behaviors[dagID+"/"+t.ID]
		if !ok {
			b = DefaultBehavior
		}
		run.behaviors[t.ID] = b
	}
	d.runs[id] = run
	writeJSON(w, s.runJSON(d, run))
}

func (s *Server) findRun(w http.ResponseWriter, dagID, runID string) (*dag, *dagRun) {
	d := s.dags[dagID]
	if d == nil {
		problem(w, http.StatusNotFound, fmt.Sprintf("DAG with dag_id: '%s' not found", dagID))
		return nil, nil
	}
	run := d.runs[runID]
	if run == nil {
		problem(w, http.StatusNotFound, fmt.Sprintf("DAGRun with DAG ID: '%s' and DagRun ID: '%s' not found", dagID, runID))
		return nil, nil
	}
	return d, run
}

func (s *Server) patchRun(w http.ResponseWriter, d *dag, run *dagRun, body []byte) {
	var b struct {
		State string `json:"state"`
	}
	if json.Unmarshal(body, &b) != nil || (b.State != "failed" && b.State != "success" && b.State != "queued") {
		problem(w, http.StatusBadRequest, "state must be one of success, failed, queued")
		return
	}
	if run.markedAt.IsZero() {
		run.markedAt, run.markedWith = s.now(), b.State
	}
	writeJSON(w, s.runJSON(d, run))
}

type taskState struct {
	id, state, note string
	start, end      time.Time
}

// schedule returns each task's planned start and end, ignoring the clock.
func (run *dagRun) schedule() map[string]taskState {
	out := map[string]taskState{}
	var visit func(t Task) taskState
	byID := map[string]Task{}
	for _, t := range run.tasks {
		byID[t.ID] = t
	}
	visit = func(t Task) taskState {
		if v, ok := out[t.ID]; ok {
			return v
		}
		out[t.ID] = taskState{id: t.ID, state: "upstream_failed"} // cycle guard
		ready, failed := run.base, false
		for _, u := range t.Upstream {
			if ut, ok := byID[u]; ok {
				uv := visit(ut)
				if uv.end.After(ready) {
					ready = uv.end
				}
				failed = failed || uv.state != "success"
			}
		}
		b := run.behaviors[t.ID]
		v := taskState{id: t.ID, state: "success", start: ready.Add(b.Queued), end: ready.Add(b.Queued + b.Running)}
		switch {
		case failed:
			v = taskState{id: t.ID, state: "upstream_failed", end: ready}
		case b.Fail != "":
			v.state, v.note = "failed", b.Fail
		}
		out[t.ID] = v
		return v
	}
	for _, t := range run.tasks {
		visit(t)
	}
	return out
}

// taskStates are the run's task instances now, in the DAG's task order.
func (s *Server) taskStates(run *dagRun) []taskState {
	now := s.now()
	plan := run.schedule()
	var out []taskState
	if run.base.IsZero() { // waiting for its DAG to be unpaused
		for _, t := range run.tasks {
			v := taskState{id: t.ID}
			if !run.markedAt.IsZero() && !now.Before(run.markedAt) {
				v.state, v.end = "skipped", run.markedAt
			}
			out = append(out, v)
		}
		return out
	}
	for _, t := range run.tasks {
		v := plan[t.ID]
		if !run.markedAt.IsZero() && !now.Before(run.markedAt) && (v.end.IsZero() || run.markedAt.Before(v.end)) {
			switch {
			case !v.start.IsZero() && !run.markedAt.Before(v.start):
				v = taskState{id: t.ID, state: run.markedWith, start: v.start, end: run.markedAt}
			default:
				v = taskState{id: t.ID, state: "skipped", end: run.markedAt}
			}
			if run.markedWith == "success" {
				v.state = "success"
			}
			out = append(out, v)
			continue
		}
		switch {
		case v.state == "upstream_failed" && now.Before(v.end):
			v = taskState{id: t.ID}
		case v.state == "upstream_failed":
		case now.Before(v.start.Add(-run.behaviors[t.ID].Queued)):
			v = taskState{id: t.ID}
		case now.Before(v.start):
			v = taskState{id: t.ID, state: "queued"}
		case now.Before(v.end):
			v = taskState{id: t.ID, state: "running", start: v.start}
		}
		out = append(out, v)
	}
	return out
}

// state is the run's state now and when it started and ended.
func (s *Server) state(run *dagRun) (string, time.Time, time.Time) {
	tasks := s.taskStates(run)
	var start, end time.Time
	ended, failed := true, false
	for _, t := range tasks {
		if !t.start.IsZero() && (start.IsZero() || t.start.Before(start)) {
			start = t.start
		}
		switch t.state {
		case "success", "skipped":
		case "failed", "upstream_failed":
			failed = true
		default:
			ended = false
		}
		if t.end.After(end) {
			end = t.end
		}
	}
	switch {
	case !run.markedAt.IsZero() && !s.now().Before(run.markedAt):
		if start.IsZero() {
			start = run.markedAt
		}
		return run.markedWith, start, run.markedAt
	case !ended && start.IsZero():
		return "queued", time.Time{}, time.Time{}
	case !ended:
		return "running", start, time.Time{}
	case failed:
		return "failed", start, end
	}
	return "success", start, end
}

func (s *Server) runJSON(d *dag, run *dagRun) map[string]any {
	state, start, end := s.state(run)
	out := map[string]any{
		"dag_run_id": run.id, "dag_id": d.id, "state": state, "conf": run.conf, "run_type": "manual",
		"start_date": timeOrNull(start), "end_date": timeOrNull(end), "note": nil,
		"logical_date": timeOrNull(run.logical), "data_interval_start": timeOrNull(run.logical), "data_interval_end": timeOrNull(run.logical),
		"last_scheduling_decision": nil,
	}
	if s.version == "v2" {
		out["queued_at"] = run.created.Format(time.RFC3339Nano)
		out["run_after"] = run.created.Format(time.RFC3339Nano)
		out["triggered_by"] = "rest_api"
	} else {
		out["execution_date"] = timeOrNull(run.logical)
		out["external_trigger"] = true
	}
	if run.conf == nil {
		out["conf"] = map[string]any{}
	}
	return out
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, dagID string) {
	d := s.dags[dagID]
	if d == nil {
		problem(w, http.StatusNotFound, fmt.Sprintf("DAG with dag_id: '%s' not found", dagID))
		return
	}
	q := r.URL.Query()
	limit, offset := 100, 0
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 {
		limit = min(v, 100) // maximum_page_limit
	}
	if v := q.Get("offset"); v != "" {
		offset, _ = strconv.Atoi(v)
	}
	states := map[string]bool{}
	for _, st := range q["state"] {
		for _, x := range strings.Split(st, ",") {
			states[x] = true
		}
	}
	runs := d.sortedRuns()
	type keyed struct {
		run *dagRun
		key time.Time
	}
	var list []keyed
	for _, run := range runs {
		st, start, _ := s.state(run)
		if len(states) > 0 && !states[st] {
			continue
		}
		k := run.created
		switch strings.TrimPrefix(q.Get("order_by"), "-") {
		case "start_date":
			k = start
		case "execution_date", "logical_date":
			k = run.logical
		}
		list = append(list, keyed{run, k})
	}
	desc := strings.HasPrefix(q.Get("order_by"), "-")
	sort.SliceStable(list, func(a, b int) bool {
		if desc {
			return list[a].key.After(list[b].key)
		}
		return list[a].key.Before(list[b].key)
	})
	total := len(list)
	list = list[min(offset, len(list)):]
	list = list[:min(limit, len(list))]
	out := []map[string]any{}
	for _, k := range list {
		out = append(out, s.runJSON(d, k.run))
	}
	writeJSON(w, map[string]any{"dag_runs": out, "total_entries": total})
}

func timeOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
