package fabric

// Runs of the Databricks-style jobs deployed to a local fabric. Each task must
// be a python_wheel_task: its deployed wheels (libraries[].whl) are installed
// into a fresh virtualenv (python3 -m venv, pip install --no-index) and its
// entry point is called the way Databricks resolves it (the named entry point
// in the wheel's metadata, else package_name.entry_point()), with the task's
// parameters followed by --key=value for its named_parameters and the run's
// parameters. Tasks run one at a time in dependency order. DAG jobs cannot
// run here: there is no Airflow scheduler behind a local fabric.
//
// A run lives in <root>/.shipline-runs/<project>/<job>/<run id>/:
//
//	spec.json    what to run (written once, before the start)
//	run.json     the record: state, result, message, times, tasks
//	stdout.log   the output of the installation and the tasks
//	venv/        the run's virtualenv
//
// The run ID is a hash of the run's key, so a retried start finds the run the
// first one created. A supervisor process (local_run.py, run by the python3
// that checks DAGs) holds <run dir>/lock while it works and detaches into its
// own session: the run outlives the worker, and a cancel signals its process
// group. A record that is not terminated while nobody holds the lock belongs
// to a run whose supervisor died (the machine restarted): it reads as failed.

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/shipline/shipline/internal/apperr"
)

//go:embed local_run.py
var localRunSupervisor string

var _ Runner = (*localFabric)(nil)

// localRunRecord is run.json.
type localRunRecord struct {
	ID            string                     `json:"id"`
	Project       string                     `json:"project"`
	Job           string                     `json:"job"`
	Key           string                     `json:"key"`
	State         RunState                   `json:"state"`
	Result        RunResult                  `json:"result,omitempty"`
	Message       string                     `json:"message,omitempty"`
	CreatedAt     time.Time                  `json:"created_at"`
	EndedAt       string                     `json:"ended_at,omitempty"`
	TriggeredBy   string                     `json:"triggered_by,omitempty"`
	Version       string                     `json:"version,omitempty"`
	Params        map[string]string          `json:"params,omitempty"`
	SupervisorPID int                        `json:"supervisor_pid,omitempty"`
	Tasks         map[string]localTaskRecord `json:"tasks"`
}

type localTaskRecord struct {
	State     RunState  `json:"state"`
	Result    RunResult `json:"result,omitempty"`
	Message   string    `json:"message,omitempty"`
	StartedAt string    `json:"started_at,omitempty"`
	EndedAt   string    `json:"ended_at,omitempty"`
}

// localRunSpec is spec.json.
type localRunSpec struct {
	Python string          `json:"python"`
	Wheels []string        `json:"wheels"`
	Tasks  []localTaskSpec `json:"tasks"` // in dependency order
}

type localTaskSpec struct {
	Key         string   `json:"key"`
	DependsOn   []string `json:"depends_on"`
	PackageName string   `json:"package_name"`
	EntryPoint  string   `json:"entry_point"`
	Args        []string `json:"args"`
}

func (l *localFabric) runsDir(project, job string) string {
	return filepath.Join(l.root, ".shipline-runs", project, job)
}

// localRunID is the run ID for a key.
func localRunID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "run-" + hex.EncodeToString(sum[:8])
}

// StartRun creates the run's record and starts its supervisor, once per key.
func (l *localFabric) StartRun(ctx context.Context, r RunRequest) (RunRef, error) {
	if r.Key == "" {
		return RunRef{}, &apperr.Error{Type: apperr.InvalidInput, Msg: fmt.Sprintf("run of %s/%s on fabric %q: an idempotency key is required", r.Project, r.Job, l.name)}
	}
	id := localRunID(r.Key)
	dir := filepath.Join(l.runsDir(r.Project, r.Job), id)
	ref := RunRef{ID: id, URL: "file://" + filepath.Join(dir, "stdout.log")}
	rec, err := readLocalRun(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if rec, err = l.createRun(r, id, dir); err != nil {
			return RunRef{}, err
		}
	case err != nil:
		return RunRef{}, err
	}
	if rec.State == RunTerminated || rec.SupervisorPID != 0 {
		return ref, nil // started before
	}
	// Created but its supervisor never ran (the start was cut short):
	// start it; its lock makes a second supervisor exit at once.
	if err := startSupervisor(ctx, dir); err != nil {
		return RunRef{}, fmt.Errorf("local fabric %q: start run %s of %s/%s: %w", l.name, id, r.Project, r.Job, err)
	}
	return ref, nil
}

// createRun checks the job can run here and writes spec.json and run.json;
// run.json is linked into place, so of two concurrent starts one creates it
// and the other reads it.
func (l *localFabric) createRun(r RunRequest, id, dir string) (localRunRecord, error) {
	spec, version, err := l.runSpec(r)
	if err != nil {
		return localRunRecord{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return localRunRecord{}, fmt.Errorf("local fabric %q: %w", l.name, err)
	}
	rec := localRunRecord{ID: id, Project: r.Project, Job: r.Job, Key: r.Key, State: RunPending, CreatedAt: time.Now().UTC(),
		TriggeredBy: r.TriggeredBy, Version: version, Params: r.Params, Tasks: map[string]localTaskRecord{}}
	for _, t := range spec.Tasks {
		rec.Tasks[t.Key] = localTaskRecord{State: RunPending}
	}
	specJSON, _ := json.MarshalIndent(spec, "", "  ")
	if err := writeFileAtomic(dir, "spec.json", specJSON, nil); err != nil {
		return localRunRecord{}, err
	}
	data, _ := json.MarshalIndent(rec, "", "  ")
	tmp, err := os.CreateTemp(dir, ".run.json.")
	if err != nil {
		return localRunRecord{}, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return localRunRecord{}, err
	}
	if err := os.Link(tmp.Name(), filepath.Join(dir, "run.json")); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readLocalRun(dir)
		}
		return localRunRecord{}, err
	}
	syncDir(dir)
	return rec, nil
}

// runSpec reads the deployed job and turns its tasks into what the
// supervisor runs; it refuses DAGs and tasks other than python_wheel_task.
func (l *localFabric) runSpec(r RunRequest) (localRunSpec, string, error) {
	if err := checkJobNames(JobSpec{Project: r.Project, Job: r.Job}); err != nil {
		return localRunSpec{}, "", err
	}
	base := r.Project + "__" + r.Job
	jobPath := filepath.Join(l.root, "jobs", base+".json")
	data, err := os.ReadFile(jobPath)
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(filepath.Join(l.root, "dags", base+".py")); derr == nil {
			return localRunSpec{}, "", &apperr.Error{Type: apperr.FabricRejected,
				Msg: fmt.Sprintf("local fabric %q cannot run %s/%s: it is an Airflow DAG, and a local fabric has no Airflow scheduler to run DAGs; run it on an airflow fabric", l.name, r.Project, r.Job)}
		}
		return localRunSpec{}, "", &apperr.Error{Type: apperr.FabricRejected,
			Msg: fmt.Sprintf("local fabric %q: job %s/%s is not deployed (no %s); deploy job %s of project %s to this fabric first", l.name, r.Project, r.Job, jobPath, r.Job, r.Project)}
	}
	if err != nil {
		return localRunSpec{}, "", fmt.Errorf("local fabric %q: %w", l.name, err)
	}
	var job struct {
		Tags  map[string]string `json:"tags"`
		Tasks []struct {
			TaskKey   string `json:"task_key"`
			DependsOn []struct {
				TaskKey string `json:"task_key"`
			} `json:"depends_on"`
			Wheel *struct {
				PackageName     string            `json:"package_name"`
				EntryPoint      string            `json:"entry_point"`
				Parameters      []string          `json:"parameters"`
				NamedParameters map[string]string `json:"named_parameters"`
			} `json:"python_wheel_task"`
			Libraries []struct {
				Whl string `json:"whl"`
			} `json:"libraries"`
		} `json:"tasks"`
	}
	bad := func(format string, a ...any) error {
		return &apperr.Error{Type: apperr.InvalidDefinition, Msg: fmt.Sprintf("local fabric %q cannot run %s/%s (%s): ", l.name, r.Project, r.Job, jobPath) + fmt.Sprintf(format, a...)}
	}
	if err := json.Unmarshal(data, &job); err != nil {
		return localRunSpec{}, "", bad("the job file is not a Jobs API payload: %v", err)
	}
	if len(job.Tasks) == 0 {
		return localRunSpec{}, "", bad("the job has no tasks")
	}
	spec := localRunSpec{Python: pythonBin(nil)}
	seen := map[string]bool{}
	byKey := map[string]int{}
	for i, t := range job.Tasks {
		if t.Wheel == nil {
			return localRunSpec{}, "", bad("task %q is not a python_wheel_task; a local fabric runs only python_wheel_task tasks", t.TaskKey)
		}
		if t.Wheel.PackageName == "" || t.Wheel.EntryPoint == "" {
			return localRunSpec{}, "", bad("task %q: python_wheel_task needs package_name and entry_point", t.TaskKey)
		}
		byKey[t.TaskKey] = i
		args := append([]string(nil), t.Wheel.Parameters...)
		named := map[string]string{}
		for k, v := range t.Wheel.NamedParameters {
			named[k] = v
		}
		for k, v := range r.Params {
			named[k] = v
		}
		keys := make([]string, 0, len(named))
		for k := range named {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			args = append(args, "--"+k+"="+named[k])
		}
		ts := localTaskSpec{Key: t.TaskKey, PackageName: t.Wheel.PackageName, EntryPoint: t.Wheel.EntryPoint, Args: args, DependsOn: []string{}}
		for _, d := range t.DependsOn {
			ts.DependsOn = append(ts.DependsOn, d.TaskKey)
		}
		spec.Tasks = append(spec.Tasks, ts)
		for _, lib := range t.Libraries {
			if lib.Whl == "" || seen[lib.Whl] {
				continue
			}
			if st, err := os.Stat(lib.Whl); err != nil || st.IsDir() {
				return localRunSpec{}, "", bad("task %q: wheel %s is not a file on this fabric; deploy the job again", t.TaskKey, lib.Whl)
			}
			seen[lib.Whl] = true
			spec.Wheels = append(spec.Wheels, lib.Whl)
		}
	}
	ordered, err := topoOrder(spec.Tasks, byKey)
	if err != nil {
		return localRunSpec{}, "", bad("%v", err)
	}
	spec.Tasks = ordered
	return spec, job.Tags[TagVersion], nil
}

// topoOrder orders tasks after their dependencies, keeping the file's order otherwise.
func topoOrder(tasks []localTaskSpec, byKey map[string]int) ([]localTaskSpec, error) {
	state := map[string]int{} // 1 visiting, 2 done
	var out []localTaskSpec
	var visit func(t localTaskSpec) error
	visit = func(t localTaskSpec) error {
		switch state[t.Key] {
		case 1:
			return fmt.Errorf("tasks depend on each other in a cycle through %q", t.Key)
		case 2:
			return nil
		}
		state[t.Key] = 1
		for _, d := range t.DependsOn {
			i, ok := byKey[d]
			if !ok {
				return fmt.Errorf("task %q depends on %q, which is not a task of the job", t.Key, d)
			}
			if err := visit(tasks[i]); err != nil {
				return err
			}
		}
		state[t.Key] = 2
		out = append(out, t)
		return nil
	}
	for _, t := range tasks {
		if err := visit(t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// startSupervisor runs local_run.py for dir; it returns once the supervisor
// holds the run's lock and has detached.
func startSupervisor(ctx context.Context, dir string) error {
	log, err := os.OpenFile(filepath.Join(dir, "stdout.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, pythonBin(nil), "-c", localRunSupervisor, dir)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = dir
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("supervisor %s: %w (see %s)", pythonBin(nil), err, filepath.Join(dir, "stdout.log"))
	}
	return nil
}

func readLocalRun(dir string) (localRunRecord, error) {
	var rec localRunRecord
	data, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("read %s: %w", filepath.Join(dir, "run.json"), err)
	}
	return rec, nil
}

// GetRun reads the run's record.
func (l *localFabric) GetRun(_ context.Context, project, job, runID string) (Run, error) {
	if err := checkSegment(runID); err != nil {
		return Run{}, err
	}
	dir := filepath.Join(l.runsDir(project, job), runID)
	rec, err := readLocalRun(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return Run{}, &apperr.Error{Type: apperr.FabricRejected,
			Msg: fmt.Sprintf("local fabric %q: run %s of %s/%s does not exist; list the job's runs with `shipline runs`", l.name, runID, project, job)}
	}
	if err != nil {
		return Run{}, err
	}
	return l.runOf(dir, rec), nil
}

// runOf converts a record; an unfinished record whose supervisor is gone
// reads as failed.
func (l *localFabric) runOf(dir string, rec localRunRecord) Run {
	r := Run{ID: rec.ID, URL: "file://" + filepath.Join(dir, "stdout.log"), State: rec.State, Result: rec.Result, Message: rec.Message,
		StartedAt: rec.CreatedAt, TriggeredBy: rec.TriggeredBy, Version: rec.Version}
	if t, err := time.Parse(time.RFC3339Nano, rec.EndedAt); err == nil {
		r.EndedAt = t.UTC()
	}
	if rec.State != RunTerminated && rec.SupervisorPID != 0 && !lockHeld(filepath.Join(dir, "lock")) {
		r.State, r.Result = RunTerminated, RunFailed
		r.Message = fmt.Sprintf("the run's supervisor process (pid %d) ended without recording a result (was the machine restarted?); see %s", rec.SupervisorPID, filepath.Join(dir, "stdout.log"))
	}
	keys := make([]string, 0, len(rec.Tasks))
	for k := range rec.Tasks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t := rec.Tasks[k]
		tr := TaskRun{Key: k, State: t.State, Result: t.Result, Message: t.Message}
		if r.State == RunTerminated && tr.State != RunTerminated {
			tr.State, tr.Result = RunTerminated, r.Result
		}
		r.Tasks = append(r.Tasks, tr)
	}
	return r
}

// ListRuns reads the job's run records, newest first.
func (l *localFabric) ListRuns(_ context.Context, project, job string, limit int) ([]Run, error) {
	if err := checkJobNames(JobSpec{Project: project, Job: job}); err != nil {
		return nil, err
	}
	base := l.runsDir(project, job)
	entries, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("local fabric %q: %w", l.name, err)
	}
	type dated struct {
		run     Run
		created time.Time
	}
	var all []dated
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(base, e.Name())
		rec, err := readLocalRun(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue // being created
		}
		if err != nil {
			return nil, err
		}
		all = append(all, dated{l.runOf(dir, rec), rec.CreatedAt})
	}
	sort.Slice(all, func(a, b int) bool {
		if !all[a].created.Equal(all[b].created) {
			return all[a].created.After(all[b].created)
		}
		return all[a].run.ID > all[b].run.ID
	})
	out := make([]Run, 0, len(all))
	for _, d := range all {
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, d.run)
	}
	return out, nil
}

// ActiveRuns lists the runs that have not ended.
func (l *localFabric) ActiveRuns(ctx context.Context, project, job string) ([]Run, error) {
	all, err := l.ListRuns(ctx, project, job, 0)
	var out []Run
	for _, r := range all {
		if r.Active() {
			out = append(out, r)
		}
	}
	return out, err
}

// CancelRun signals the run's process group; the supervisor records the
// cancel. A run whose supervisor never started or is gone is recorded as
// cancelled here.
func (l *localFabric) CancelRun(ctx context.Context, project, job, runID string) error {
	run, err := l.GetRun(ctx, project, job, runID)
	if err != nil || !run.Active() {
		return err
	}
	dir := filepath.Join(l.runsDir(project, job), runID)
	rec, err := readLocalRun(dir)
	if err != nil {
		return err
	}
	signalled, err := signalRun(filepath.Join(dir, "lock"), rec.SupervisorPID)
	if err != nil || signalled {
		return err
	}
	// Nobody runs it: record the cancel, holding the lock so that a
	// supervisor starting now finds the run terminated.
	return withLock(filepath.Join(dir, "lock"), func() error {
		rec, err := readLocalRun(dir)
		if err != nil || rec.State == RunTerminated {
			return err
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		rec.State, rec.Result, rec.Message, rec.EndedAt = RunTerminated, RunCancelled, "run cancelled", now
		for k, t := range rec.Tasks {
			if t.State != RunTerminated {
				rec.Tasks[k] = localTaskRecord{State: RunTerminated, Result: RunCancelled, Message: "run cancelled", EndedAt: now}
			}
		}
		data, _ := json.MarshalIndent(rec, "", "  ")
		return writeFileAtomic(dir, "run.json", data, nil)
	})
}
