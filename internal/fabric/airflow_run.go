package fabric

// Runs of the DAGs Shipline deployed to an airflow fabric, through Airflow's
// stable REST API at airflow_url (v2 of Airflow 3, else v1 of Airflow 2, like
// setPaused). Without airflow_url there is no way to trigger or read runs:
// every run operation is a permanent FabricConfig error saying so.
//
// Choices:
//   - The run's key becomes the dag_run_id (AirflowRunID: Airflow accepts
//     only [A-Za-z0-9_.~:+-], so other characters become "_" and a hash of
//     the key keeps such IDs apart). A retried trigger gets 409 Conflict for
//     that dag_run_id, which means "already started": the existing run is
//     returned. The trigger sends logical_date (v2 requires the field) as the
//     time of the call, so runs list by it, newest first.
//   - conf carries the parameters, plus shipline_triggered_by and
//     shipline_version (the version in the deployed DAG file's header when
//     the run was triggered); both are read back from the run's conf.
//   - Cancel is Airflow's way: PATCH the dag run's state to failed (Airflow
//     has no "cancelled" state; unfinished tasks are failed or skipped).
//     Such a run reads back as failed.
//   - A failing task's note (Airflow keeps no error text on a task
//     instance) is its message; a run's message names its failed tasks.
//   - A paused DAG is not triggered: Airflow would leave the run queued
//     until the DAG is unpaused, so the start is refused, saying so.
//   - ListRuns reads the runs without their tasks (one call); GetRun reads
//     the run and its task instances.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/shipline/shipline/internal/apperr"
)

// Conf keys Shipline adds to the dag runs it triggers.
const (
	ConfTriggeredBy = "shipline_triggered_by"
	ConfVersion     = "shipline_version"
)

var airflowRunIDChars = regexp.MustCompile(`[^A-Za-z0-9_.~:+-]`)

// AirflowRunID is the dag_run_id for a run key.
func AirflowRunID(key string) string {
	id := airflowRunIDChars.ReplaceAllString(key, "_")
	if id == key && len(id) <= 200 {
		return id
	}
	sum := sha256.Sum256([]byte(key))
	return id[:min(len(id), 200)] + "-" + hex.EncodeToString(sum[:8])
}

var _ Runner = (*airflowFabric)(nil)

// runAPI returns the REST API, or the error saying runs need airflow_url.
func (a *airflowFabric) runAPI(project, job string) (*airflowAPI, error) {
	if a.api == nil {
		return nil, &apperr.Error{Type: apperr.FabricConfig,
			Msg: fmt.Sprintf("airflow fabric %q cannot run %s/%s: runs go through Airflow's REST API and the fabric has no airflow_url; set airflow_url (and airflow_user_env, airflow_password_env) on the fabric in platform.yaml", a.name, project, job)}
	}
	return a.api, nil
}

// deployedDAG returns the dag_id its deployed file defines and the file's
// version; a DAG Shipline has not written is a permanent error.
func (a *airflowFabric) deployedDAG(ctx context.Context, project, job string) (string, string, error) {
	if err := checkJobNames(JobSpec{Project: project, Job: job}); err != nil {
		return "", "", err
	}
	spec := JobSpec{Project: project, Job: job}
	id := dagID(spec)
	data, err := a.dags.Read(ctx, id+".py")
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", &apperr.Error{Type: apperr.FabricRejected,
			Msg: fmt.Sprintf("airflow fabric %q: DAG %s is not deployed (no %s.py in %s); deploy job %s of project %s to this fabric first", a.name, id, id, a.dags.Where(""), job, project), Cause: ErrJobNotDeployed}
	}
	if err != nil {
		return "", "", fmt.Errorf("fabric %q: %w", a.name, err)
	}
	dag, err := a.checkDAG(ctx, spec, id+".py", data)
	if err != nil {
		return "", "", fmt.Errorf("fabric %q: the deployed DAG %s: %w", a.name, a.dags.Where(id+".py"), err)
	}
	return dag.ID, dagFileVersion(data), nil
}

// call sends a request to /api/<version>/<rest>, trying v2 then v1 (or the
// version that answered before). A 404 where the version exists is returned
// as such.
func (api *airflowAPI) call(ctx context.Context, method, rest, body string) (int, []byte, string, error) {
	versions := []string{"v2", "v1"}
	api.mu.Lock()
	if api.version != "" {
		versions = []string{api.version}
	}
	api.mu.Unlock()
	for _, v := range versions {
		path := "/api/" + v + "/" + rest
		status, data, err := api.doRaw(ctx, method, path, body, v == "v2")
		if err != nil {
			return 0, nil, v, &apperr.Error{Type: apperr.FabricUnavailable, Cause: err,
				Msg: fmt.Sprintf("fabric %q: %s %s%s: %v (will retry)", api.fabric, method, api.base, path, err)}
		}
		if status == http.StatusNotFound {
			vs, _, err := api.do(ctx, http.MethodGet, "/api/"+v+"/version", "", false)
			if err != nil {
				return 0, nil, v, &apperr.Error{Type: apperr.FabricUnavailable, Cause: err, Msg: fmt.Sprintf("fabric %q: %v (will retry)", api.fabric, err)}
			}
			if vs == http.StatusNotFound {
				continue
			}
		}
		api.mu.Lock()
		api.version = v
		api.mu.Unlock()
		return status, data, v, nil
	}
	return 0, nil, "", &apperr.Error{Type: apperr.FabricConfig,
		Msg: fmt.Sprintf("fabric %q: no Airflow REST API at %s (neither /api/v2 nor /api/v1 answers): fix airflow_url in platform.yaml", api.fabric, api.base)}
}

// apiVersion returns the API version the server has ("v2" or "v1").
func (api *airflowAPI) apiVersion(ctx context.Context) (string, error) {
	api.mu.Lock()
	v := api.version
	api.mu.Unlock()
	if v != "" {
		return v, nil
	}
	for _, v := range []string{"v2", "v1"} {
		status, _, err := api.do(ctx, http.MethodGet, "/api/"+v+"/version", "", false)
		if err != nil {
			return "", &apperr.Error{Type: apperr.FabricUnavailable, Cause: err, Msg: fmt.Sprintf("fabric %q: %v (will retry)", api.fabric, err)}
		}
		if status != http.StatusNotFound {
			return v, nil
		}
	}
	return "", &apperr.Error{Type: apperr.FabricConfig,
		Msg: fmt.Sprintf("fabric %q: no Airflow REST API at %s (neither /api/v2 nor /api/v1 answers): fix airflow_url in platform.yaml", api.fabric, api.base)}
}

// airflowDagRun is a dag run as both API versions answer it.
type airflowDagRun struct {
	DagRunID  string         `json:"dag_run_id"`
	State     string         `json:"state"`
	StartDate *time.Time     `json:"start_date"`
	EndDate   *time.Time     `json:"end_date"`
	QueuedAt  *time.Time     `json:"queued_at"`
	Logical   *time.Time     `json:"logical_date"`
	Conf      map[string]any `json:"conf"`
}

// StartRun triggers the DAG with the key's dag_run_id (see the file comment).
func (a *airflowFabric) StartRun(ctx context.Context, r RunRequest) (RunRef, error) {
	api, err := a.runAPI(r.Project, r.Job)
	if err != nil {
		return RunRef{}, err
	}
	if r.Key == "" {
		return RunRef{}, &apperr.Error{Type: apperr.InvalidInput, Msg: fmt.Sprintf("run of %s/%s on fabric %q: an idempotency key is required", r.Project, r.Job, a.name)}
	}
	dag, version, err := a.deployedDAG(ctx, r.Project, r.Job)
	if err != nil {
		return RunRef{}, err
	}
	conf := map[string]any{}
	for k, v := range r.Params {
		conf[k] = v
	}
	if r.TriggeredBy != "" {
		conf[ConfTriggeredBy] = r.TriggeredBy
	}
	if version != "" {
		conf[ConfVersion] = version
	}
	if err := a.refusePaused(ctx, api, dag, r.Job); err != nil {
		return RunRef{}, err
	}
	id := AirflowRunID(r.Key)
	body, _ := json.Marshal(map[string]any{"dag_run_id": id, "logical_date": time.Now().UTC().Format(time.RFC3339Nano), "conf": conf})
	rest := "dags/" + url.PathEscape(dag) + "/dagRuns"
	status, data, v, err := api.call(ctx, http.MethodPost, rest, string(body))
	switch {
	case err != nil:
		return RunRef{}, err
	case status == http.StatusConflict: // already started by an earlier try
		run, err := a.GetRun(ctx, r.Project, r.Job, id)
		if err != nil {
			return RunRef{}, err
		}
		return RunRef{ID: run.ID, URL: run.URL}, nil
	case status == http.StatusNotFound:
		return RunRef{}, &apperr.Error{Type: apperr.DagNotParsed,
			Msg: fmt.Sprintf("fabric %q: Airflow does not know DAG %s yet (the scheduler has not parsed the file); will retry", a.name, dag)}
	case status/100 != 2:
		return RunRef{}, api.statusError(status, airflowErrorText(data), "POST "+api.base+"/api/"+v+"/"+rest)
	}
	return RunRef{ID: id, URL: api.runURL(v, dag, id)}, nil
}

// refusePaused refuses to trigger a paused DAG: Airflow does not schedule the
// tasks of a paused DAG's runs, so the run would wait, queued, until someone
// unpauses it.
func (a *airflowFabric) refusePaused(ctx context.Context, api *airflowAPI, dag, job string) error {
	var info struct {
		IsPaused bool `json:"is_paused"`
	}
	_, found, err := a.get(ctx, api, "dags/"+url.PathEscape(dag), &info)
	switch {
	case err != nil:
		return err
	case !found:
		return &apperr.Error{Type: apperr.DagNotParsed,
			Msg: fmt.Sprintf("fabric %q: Airflow does not know DAG %s yet (the scheduler has not parsed the file); will retry", a.name, dag)}
	case info.IsPaused:
		return &apperr.Error{Type: apperr.FabricRejected,
			Msg: fmt.Sprintf("airflow fabric %q: DAG %s is paused, and Airflow does not run the tasks of a paused DAG (the run would stay queued); unpause it (fabrics.%s.jobs.%s.paused: false in shipline.yaml, or no pause_schedules on the fabric in platform.yaml) and deploy again", a.name, dag, a.name, job)}
	}
	return nil
}

func (api *airflowAPI) runURL(v, dag, id string) string {
	if v == "v1" {
		return fmt.Sprintf("%s/dags/%s/grid?dag_run_id=%s", api.base, url.PathEscape(dag), url.QueryEscape(id))
	}
	return fmt.Sprintf("%s/dags/%s/runs/%s", api.base, url.PathEscape(dag), url.PathEscape(id))
}

// get GETs rest and decodes the answer into out; found is false on 404.
func (a *airflowFabric) get(ctx context.Context, api *airflowAPI, rest string, out any) (string, bool, error) {
	status, data, v, err := api.call(ctx, http.MethodGet, rest, "")
	switch {
	case err != nil:
		return v, false, err
	case status == http.StatusNotFound:
		return v, false, nil
	case status/100 != 2:
		return v, false, api.statusError(status, airflowErrorText(data), "GET "+api.base+"/api/"+v+"/"+rest)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return v, false, &apperr.Error{Type: apperr.FabricUnavailable, Msg: fmt.Sprintf("fabric %q: unreadable answer to GET %s: %v (will retry)", a.name, rest, err)}
	}
	return v, true, nil
}

// GetRun reads the dag run and its task instances.
func (a *airflowFabric) GetRun(ctx context.Context, project, job, runID string) (Run, error) {
	api, err := a.runAPI(project, job)
	if err != nil {
		return Run{}, err
	}
	dag, _, err := a.deployedDAG(ctx, project, job)
	if err != nil {
		return Run{}, err
	}
	rest := "dags/" + url.PathEscape(dag) + "/dagRuns/" + url.PathEscape(runID)
	var dr airflowDagRun
	v, found, err := a.get(ctx, api, rest, &dr)
	if err != nil {
		return Run{}, err
	}
	if !found {
		return Run{}, &apperr.Error{Type: apperr.FabricRejected,
			Msg: fmt.Sprintf("airflow fabric %q: run %s of DAG %s does not exist; list the job's runs with `shipline runs`", a.name, runID, dag)}
	}
	type taskInstance struct {
		TaskID string  `json:"task_id"`
		State  *string `json:"state"`
		Note   *string `json:"note"`
	}
	var all []taskInstance
	for { // pages of 100, Airflow's default maximum_page_limit
		var page struct {
			TaskInstances []taskInstance `json:"task_instances"`
			TotalEntries  int            `json:"total_entries"`
		}
		if _, _, err := a.get(ctx, api, fmt.Sprintf("%s/taskInstances?limit=100&offset=%d", rest, len(all)), &page); err != nil {
			return Run{}, err
		}
		all = append(all, page.TaskInstances...)
		if len(page.TaskInstances) == 0 || len(all) >= page.TotalEntries {
			break
		}
	}
	run := api.runOf(v, dag, dr)
	var failed []string
	for _, ti := range all {
		st := ""
		if ti.State != nil {
			st = *ti.State
		}
		t := TaskRun{Key: ti.TaskID}
		t.State, t.Result = airflowState(st)
		if ti.Note != nil {
			t.Message = *ti.Note
		}
		if st == "failed" {
			f := "task " + ti.TaskID + " failed"
			if t.Message != "" {
				f += ": " + t.Message
			}
			failed = append(failed, f)
		}
		run.Tasks = append(run.Tasks, t)
	}
	if run.Result == RunFailed && len(failed) > 0 {
		run.Message = strings.Join(failed, "; ")
	}
	return run, nil
}

func (api *airflowAPI) runOf(v, dag string, dr airflowDagRun) Run {
	r := Run{ID: dr.DagRunID, URL: api.runURL(v, dag, dr.DagRunID)}
	r.State, r.Result = airflowState(dr.State)
	switch {
	case dr.StartDate != nil:
		r.StartedAt = dr.StartDate.UTC()
	case dr.QueuedAt != nil:
		r.StartedAt = dr.QueuedAt.UTC()
	case dr.Logical != nil:
		r.StartedAt = dr.Logical.UTC()
	}
	if dr.EndDate != nil {
		r.EndedAt = dr.EndDate.UTC()
	}
	r.TriggeredBy, _ = dr.Conf[ConfTriggeredBy].(string)
	r.Version, _ = dr.Conf[ConfVersion].(string)
	return r
}

// airflowState maps a dag run's or task instance's state.
func airflowState(s string) (RunState, RunResult) {
	switch s {
	case "running":
		return RunRunning, ""
	case "success":
		return RunTerminated, RunSucceeded
	case "failed", "upstream_failed":
		return RunTerminated, RunFailed
	case "skipped", "removed":
		return RunTerminated, RunSkipped
	}
	return RunPending, "" // queued, scheduled, deferred, up_for_retry, none, ...
}

// ListRuns lists the DAG's runs, newest first (by logical date).
func (a *airflowFabric) ListRuns(ctx context.Context, project, job string, limit int) ([]Run, error) {
	if limit <= 0 {
		limit = 25
	}
	return a.listRuns(ctx, project, job, fmt.Sprintf("limit=%d", limit))
}

// ActiveRuns lists the DAG's queued and running runs, newest first.
func (a *airflowFabric) ActiveRuns(ctx context.Context, project, job string) ([]Run, error) {
	return a.listRuns(ctx, project, job, "limit=100&state=queued&state=running")
}

func (a *airflowFabric) listRuns(ctx context.Context, project, job, query string) ([]Run, error) {
	api, err := a.runAPI(project, job)
	if err != nil {
		return nil, err
	}
	dag, _, err := a.deployedDAG(ctx, project, job)
	if err != nil {
		return nil, err
	}
	rest := "dags/" + url.PathEscape(dag) + "/dagRuns?" + query
	// v1 orders by execution_date, v2 by logical_date: the same field renamed.
	v, err := api.apiVersion(ctx)
	if err != nil {
		return nil, err
	}
	order := "&order_by=-logical_date"
	if v == "v1" {
		order = "&order_by=-execution_date"
	}
	var page struct {
		DagRuns []airflowDagRun `json:"dag_runs"`
	}
	v, found, err := a.get(ctx, api, rest+order, &page)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, &apperr.Error{Type: apperr.DagNotParsed,
			Msg: fmt.Sprintf("fabric %q: Airflow does not know DAG %s yet (the scheduler has not parsed the file); will retry", a.name, dag)}
	}
	out := make([]Run, 0, len(page.DagRuns))
	for _, dr := range page.DagRuns {
		out = append(out, api.runOf(v, dag, dr))
	}
	return out, nil
}

// CancelRun marks a run that has not ended as failed.
func (a *airflowFabric) CancelRun(ctx context.Context, project, job, runID string) error {
	run, err := a.GetRun(ctx, project, job, runID)
	if err != nil || !run.Active() {
		return err
	}
	api, _ := a.runAPI(project, job)
	dag, _, err := a.deployedDAG(ctx, project, job)
	if err != nil {
		return err
	}
	rest := "dags/" + url.PathEscape(dag) + "/dagRuns/" + url.PathEscape(runID)
	status, data, v, err := api.call(ctx, http.MethodPatch, rest, `{"state":"failed"}`)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return api.statusError(status, airflowErrorText(data), "PATCH "+api.base+"/api/"+v+"/"+rest)
	}
	return nil
}
