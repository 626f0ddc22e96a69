package fabric

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/templating"
)

// The airflow fabric writes rendered DAGs into dags_folder as
// <project>__<job>.py. A DAG is written only after it compiles with the
// worker's python3 and defines dag_id <project>__<job> (checked statically, no
// Airflow needed); the write is atomic, so the scheduler never sees half a file.
//
// Artifacts go to artifact_fabric (a databricks or local fabric) when set;
// otherwise to <dags_folder>/../shipline-artifacts/<project>/<version>/<pipeline>/<file>,
// for an Airflow whose workers share the DAGs' file system.
//
// Pausing: with airflow_url set, the DAG's is_paused is set through the REST API
// after each upsert (v2 of Airflow 3, else v1 of Airflow 2): to JobSpec.Paused
// when set, else to the DAG's own is_paused_upon_creation (a literal True or
// False; absent: unpaused, as a Databricks schedule without pause_status; an
// expression Shipline cannot evaluate: left to Airflow, no call). Without
// airflow_url the DAG file alone decides: Airflow applies its
// is_paused_upon_creation (or the dags_are_paused_at_creation setting) the
// first time it parses the DAG.
type airflowFabric struct {
	name      string
	dags      dagFolder
	artifacts artifactStore
	api       *airflowAPI // nil without airflow_url
	env       Env
	checked   sync.Map // sha256 of a DAG file's content → its dagInfo
}

// KindAirflow is an Airflow deployment whose DAG folder the worker writes.
const KindAirflow platform.FabricKind = "airflow"

// AirflowSettings are an airflow fabric's platform.yaml keys.
type AirflowSettings struct {
	DagsFolder     string `json:"dags_folder"`
	ArtifactFabric string `json:"artifact_fabric,omitempty"`
	AirflowURL     string `json:"airflow_url,omitempty"`
	UserEnv        string `json:"airflow_user_env,omitempty"`
	PasswordEnv    string `json:"airflow_password_env,omitempty"`
}

var airflowKind = Kind{
	KindSpec: platform.KindSpec{
		Name:       KindAirflow,
		Keys:       []string{"dags_folder", "artifact_fabric", "airflow_url", "airflow_user_env", "airflow_password_env"},
		Schedulers: []string{string(manifest.Airflow)},
		Decode:     decodeAirflow,
		SeesRuns: func(f platform.Fabric) bool { // runs are read through the REST API
			s, err := settingsOf[AirflowSettings](f)
			return err == nil && s.AirflowURL != ""
		},
	},
	Open: func(cfg *platform.Config, f platform.Fabric, env Env) (Fabric, error) {
		s, err := settingsOf[AirflowSettings](f)
		if err != nil {
			return nil, err
		}
		return newAirflow(cfg, f.Name, s, env)
	},
}

// decodeAirflow reads and checks an airflow fabric's keys.
func decodeAirflow(d *platform.KindDecoder) any {
	var s AirflowSettings
	name := d.Fabric()
	if d.Require("dags_folder", "add dags_folder: the directory Airflow loads DAGs from") {
		s.DagsFolder = d.Path("dags_folder")
	}
	s.ArtifactFabric, _ = d.String("artifact_fabric", "name a databricks or local fabric, or remove artifact_fabric")
	if s.ArtifactFabric != "" {
		d.Later(func(c *platform.Config, errorf func(key, fix, format string, args ...any)) {
			t, ok := c.Fabrics[s.ArtifactFabric]
			switch {
			case !ok:
				errorf("artifact_fabric", "name a databricks or local fabric"+definedFabrics(c),
					"fabric %q: artifact_fabric %q is not a defined fabric", name, s.ArtifactFabric)
			case t.Kind != KindDatabricks && t.Kind != KindLocal:
				errorf("artifact_fabric", "name a databricks or local fabric: the DAG's tasks read artifacts from there",
					"fabric %q: artifact_fabric %q is of kind %s", name, s.ArtifactFabric, t.Kind)
			}
		})
	}
	if d.Has("airflow_url") {
		s.AirflowURL = d.HTTPURL("airflow_url", "write the Airflow web server's URL, e.g. https://airflow.example.com")
	}
	s.UserEnv = d.Env("airflow_user_env", "AIRFLOW_USER")
	s.PasswordEnv = d.Env("airflow_password_env", "AIRFLOW_PASSWORD")
	// Without the REST API Shipline cannot see the DAG's runs: a setting
	// about them would silently do nothing.
	for _, key := range []string{"active_runs", "active_runs_timeout"} {
		if d.Has(key) && !d.Has("airflow_url") {
			d.Errorf(key, "add airflow_url: (the web server's REST API, where Shipline reads the DAG's runs), or remove "+key,
				"airflow fabric %q sets %s but has no airflow_url: Shipline cannot see its runs", name, key)
		}
	}
	return s
}

// definedFabrics renders " (fabrics: a, b)" for fixes.
func definedFabrics(c *platform.Config) string {
	names := make([]string, 0, len(c.Fabrics))
	for n := range c.Fabrics {
		names = append(names, n)
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return " (fabrics: " + strings.Join(names, ", ") + ")"
}

// artifactStore is the artifact half of a Fabric.
type artifactStore interface {
	ArtifactPath(project, version, pipeline, file string) string
	Upload(ctx context.Context, project, version string, a Artifact) (Upload, error)
}

func newAirflow(cfg *platform.Config, name string, s AirflowSettings, env Env) (*airflowFabric, error) {
	if env == nil {
		env = os.Getenv
	}
	var store artifactStore
	if s.ArtifactFabric != "" {
		if s.ArtifactFabric == name {
			return nil, &apperr.Error{Type: apperr.FabricConfig,
				Msg: fmt.Sprintf("fabric %q: artifact_fabric names itself; name a databricks or local fabric", name)}
		}
		f, err := Open(cfg, s.ArtifactFabric, env)
		if err != nil {
			return nil, fmt.Errorf("fabric %q: artifact_fabric: %w", name, err)
		}
		store = f
	} else {
		store = artifactDir(filepath.Join(filepath.Dir(s.DagsFolder), "shipline-artifacts"))
	}
	var api *airflowAPI
	if s.AirflowURL != "" {
		api = newAirflowAPI(name, s.AirflowURL, airflowAuth{UserEnv: s.UserEnv, PasswordEnv: s.PasswordEnv}, env)
	}
	return newAirflowOn(name, dagDir(s.DagsFolder), store, api, env), nil
}

// newAirflowOn is an Airflow fabric whose DAGs live in dags and artifacts in
// store; api (nil without a REST API) pauses, unpauses and runs the DAGs.
func newAirflowOn(name string, dags dagFolder, store artifactStore, api *airflowAPI, env Env) *airflowFabric {
	if env == nil {
		env = os.Getenv
	}
	return &airflowFabric{name: name, dags: dags, artifacts: store, api: api, env: env}
}

// airflowAuth names the environment variables holding the REST API's
// credentials: a bearer token, or a user and password (basic auth, or
// exchanged for a token by Airflow 3).
type airflowAuth struct {
	TokenEnv, UserEnv, PasswordEnv string
}

func newAirflowAPI(fabric, base string, auth airflowAuth, env Env) *airflowAPI {
	return &airflowAPI{
		fabric: fabric, base: strings.TrimRight(base, "/"),
		tokenEnv: auth.TokenEnv, userEnv: auth.UserEnv, passEnv: auth.PasswordEnv, env: env,
		client: &http.Client{Timeout: 30 * time.Second},
	}
}

func (a *airflowFabric) Name() string { return a.name }

func (a *airflowFabric) ArtifactPath(project, version, pipeline, file string) string {
	return a.artifacts.ArtifactPath(project, version, pipeline, file)
}

func (a *airflowFabric) Upload(ctx context.Context, project, version string, art Artifact) (Upload, error) {
	return a.artifacts.Upload(ctx, project, version, art)
}

// UpsertJob writes the DAG (see the type's comment), then sets its pause state
// through the REST API when the fabric has one. A DAG the scheduler has not
// parsed yet is a transient error: the activity retries until it has.
func (a *airflowFabric) UpsertJob(ctx context.Context, j JobSpec) (JobResult, error) {
	if err := checkJobNames(j); err != nil {
		return JobResult{}, err
	}
	if err := a.dags.Ready(ctx); err != nil {
		return JobResult{}, a.folderError(err)
	}
	name := dagID(j) + ".py"
	want := dagFileContent(j)
	res := JobResult{ID: a.dags.Where(name), Action: JobCreated}
	have, err := a.dags.Read(ctx, name)
	switch {
	case err == nil && bytes.Equal(have, want):
		res.Action = JobUnchanged
	case err == nil:
		res.Action = JobUpdated
	case !errors.Is(err, fs.ErrNotExist):
		return JobResult{}, fmt.Errorf("fabric %q: read %s: %w", a.name, res.ID, err)
	}
	// Checked on a copy on the worker, before the folder sees it; then its
	// dag_id is claimed for the job (dag_owners.go).
	dag, err := a.checkDAG(ctx, j, name, want)
	if err != nil {
		return JobResult{}, err
	}
	if err := claimDAG(ctx, a.name, a.dags, dag.ID, j.Project, j.Job, j.Source); err != nil {
		return JobResult{}, err
	}
	if res.Action != JobUnchanged {
		if err := a.dags.Replace(ctx, name, want); err != nil {
			return JobResult{}, fmt.Errorf("fabric %q: write %s: %w", a.name, res.ID, err)
		}
	}
	if res.Action == JobUpdated { // a new dag_id frees the old one
		if old, err := a.checkDAG(ctx, j, name, have); err == nil && old.ID != dag.ID {
			if err := releaseDAG(ctx, a.dags, old.ID, j.Project, j.Job); err != nil {
				return JobResult{}, err
			}
		}
	}
	if a.api == nil {
		return res, nil
	}
	paused := j.Paused
	if paused == nil {
		if dag.PausedDynamic {
			return res, nil
		}
		paused = dag.PausedUponCreation
	}
	if err := a.api.setPaused(ctx, dag.ID, paused != nil && *paused); err != nil {
		return JobResult{}, err
	}
	return res, nil
}

// checkDAG checks the DAG file content (see checkDAGFile) in a temporary
// file of the worker.
func (a *airflowFabric) checkDAG(ctx context.Context, j JobSpec, name string, content []byte) (dagInfo, error) {
	sum := sha256.Sum256(content)
	if d, ok := a.checked.Load(sum); ok { // the same bytes check the same
		return d.(dagInfo), nil
	}
	info, err := checkDAGContent(ctx, pythonBin(a.env), j, name, content)
	if err == nil {
		a.checked.Store(sum, info)
	}
	return info, err
}

// checkDAGContent checks a DAG file's content in a temporary file of the worker.
func checkDAGContent(ctx context.Context, python string, j JobSpec, name string, content []byte) (dagInfo, error) {
	tmp, err := os.CreateTemp("", "shipline-dag-*.py")
	if err != nil {
		return dagInfo{}, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(content)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return dagInfo{}, err
	}
	return checkDAGFile(ctx, python, tmp.Name(), sourceOf(j, name), dagID(j))
}

// folderError explains a DAG folder the fabric cannot use.
func (a *airflowFabric) folderError(err error) error {
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	return &apperr.Error{Type: apperr.FabricConfig, Cause: err,
		Msg: fmt.Sprintf("fabric %q: dags_folder %s cannot be used (%v); create it or fix dags_folder in platform.yaml", a.name, a.dags.Where(""), err)}
}

// InspectJob compares the DAG file with what the spec renders to.
func (a *airflowFabric) InspectJob(ctx context.Context, j JobSpec) (LiveJob, error) {
	if err := checkJobNames(j); err != nil {
		return LiveJob{}, err
	}
	name := dagID(j) + ".py"
	want := dagFileContent(j)
	have, err := a.dags.Read(ctx, name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return LiveJob{}, fmt.Errorf("fabric %q: read %s: %w", a.name, a.dags.Where(name), err)
	}
	return inspectContent(a.dags.Where(name), have, err == nil, want, dagFileVersion), nil
}

// DeleteJob removes the job's DAG file from the folder. Only the file goes:
// the scheduler marks the DAG inactive itself, and its runs' history in
// Airflow's database is kept (the REST API's DAG delete would erase it).
func (a *airflowFabric) DeleteJob(ctx context.Context, project, job string) (JobResult, error) {
	if err := checkJobNames(JobSpec{Project: project, Job: job}); err != nil {
		return JobResult{}, err
	}
	if err := a.dags.Ready(ctx); err != nil {
		return JobResult{}, a.folderError(err)
	}
	spec := JobSpec{Project: project, Job: job}
	name := dagID(spec) + ".py"
	var owned string // the dag_id the deployed file defines, to release
	if have, err := a.dags.Read(ctx, name); err == nil {
		if dag, err := a.checkDAG(ctx, spec, name, have); err == nil {
			owned = dag.ID
		}
	}
	removed, err := a.dags.Remove(ctx, name)
	if err != nil {
		return JobResult{}, err
	}
	if owned != "" {
		if err := releaseDAG(ctx, a.dags, owned, project, job); err != nil {
			return JobResult{}, err
		}
	}
	if !removed {
		return JobResult{Action: JobAbsent}, nil
	}
	return JobResult{ID: a.dags.Where(name), Action: JobDeleted}, nil
}

// DeleteArtifacts deletes from the artifact store (the artifact fabric, or
// the folder next to the DAGs).
func (a *airflowFabric) DeleteArtifacts(ctx context.Context, project, version string) (int, error) {
	del, ok := a.artifacts.(artifactDeleter)
	if !ok {
		return 0, &apperr.Error{Type: apperr.FabricConfig, Msg: fmt.Sprintf("fabric %q: its artifact store cannot delete artifacts", a.name)}
	}
	return del.DeleteArtifacts(ctx, project, version)
}

// dagFolder is where an Airflow fabric's DAG files live: a directory
// (dagDir) or an object store. Names are file names in the folder.
type dagFolder interface {
	// Where names a file of the folder (the folder itself for "") in
	// messages and job IDs.
	Where(name string) string
	// Ready fails when the folder cannot be used.
	Ready(ctx context.Context) error
	// Read returns a file's bytes; an error matching fs.ErrNotExist when absent.
	Read(ctx context.Context, name string) ([]byte, error)
	// Replace makes name hold data, atomically: a reader sees the old file
	// or the new one, whole.
	Replace(ctx context.Context, name string, data []byte) error
	// Remove deletes name; false when it was not there.
	Remove(ctx context.Context, name string) (bool, error)
	// Create writes name only when it does not exist, atomically (of two
	// creators one wins); false when it existed.
	Create(ctx context.Context, name string, data []byte) (bool, error)
}

// dagDir is a DAG folder on the worker's file system.
type dagDir string

func (d dagDir) Where(name string) string {
	if name == "" {
		return string(d)
	}
	return filepath.Join(string(d), name)
}

func (d dagDir) Ready(context.Context) error {
	if st, err := os.Stat(string(d)); err != nil || !st.IsDir() {
		return errors.New("not a directory")
	}
	return nil
}

func (d dagDir) Read(_ context.Context, name string) ([]byte, error) {
	return os.ReadFile(d.Where(name))
}

func (d dagDir) Replace(_ context.Context, name string, data []byte) error {
	return writeFileAtomic(string(d), name, data, nil)
}

func (d dagDir) Create(_ context.Context, name string, data []byte) (bool, error) {
	return createExclusive(string(d), name, data)
}

func (d dagDir) Remove(_ context.Context, name string) (bool, error) {
	res, err := removeJobFiles(filepath.Base(string(d)), d.Where(name))
	return res.Action == JobDeleted, err
}

// dagID names a job's DAG file, <project>__<job>.py, and is the dag_id
// fixes suggest; the DAG's own dag_id is its author's choice.
func dagID(j JobSpec) string { return j.Project + "__" + j.Job }

// dagHeader is the first line of every DAG file Shipline writes; it records
// the version for InspectJob. Python errors are reported in lines of the
// definition's source file (see dagSource).
const dagHeader = "# Generated by Shipline (project=%s job=%s version=%s). Edits are overwritten by the next deploy.\n"

var dagHeaderRE = regexp.MustCompile(`\A# Generated by Shipline \(project=\S+ job=\S+ version=(\S+)\)`)

func dagFileContent(j JobSpec) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, dagHeader, j.Project, j.Job, j.Version)
	b.Write(j.Definition)
	return b.Bytes()
}

func dagFileVersion(data []byte) string {
	if m := dagHeaderRE.FindSubmatch(data); m != nil {
		return string(m[1])
	}
	return ""
}

// pythonBin is the interpreter that checks DAGs: $SHIPLINE_PYTHON, else
// /usr/bin/python3 (a python3 on PATH may be a per-user shim), else python3 on
// PATH. env nil reads the process environment.
func pythonBin(env Env) string {
	if env == nil {
		env = os.Getenv
	}
	if p := env("SHIPLINE_PYTHON"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}

// dagCheckScript compiles a file exactly as py_compile does (compile(), but
// without writing a .pyc next to it) and lists the dag_ids it defines:
// DAG(...)/x.DAG(...) calls (first argument or dag_id=) and @dag functions.
// A dag_id that is a string literal, or a module-level name bound to one, is
// known; any other expression is reported as dynamic. With each DAG it
// reports is_paused_upon_creation: true/false when a literal, "dynamic" for
// any other expression, null when absent.
const dagCheckScript = `
import ast, json, sys
path = sys.argv[1]
def done(d):
    sys.stdout.write(json.dumps(d))
    sys.exit(0)
try:
    with open(path, "rb") as f:
        src = f.read()
    compile(src, path, "exec", dont_inherit=True)
    tree = ast.parse(src, path)
except SyntaxError as e:
    done({"error": {"type": type(e).__name__, "msg": str(e.msg), "line": e.lineno or 0, "col": e.offset or 0, "text": (e.text or "").strip()}})
except ValueError as e:
    done({"error": {"type": "ValueError", "msg": str(e), "line": 0, "col": 0, "text": ""}})
consts = {}
for n in tree.body:
    if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str):
        for t in n.targets:
            if isinstance(t, ast.Name):
                consts[t.id] = n.value.value
def name(f):
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return None
def value(n):
    if isinstance(n, ast.Constant) and isinstance(n.value, str):
        return n.value
    if isinstance(n, ast.Name):
        return consts.get(n.id)
    return None
dags = []
def paused(keywords):
    for k in keywords:
        if k.arg == "is_paused_upon_creation":
            if isinstance(k.value, ast.Constant) and isinstance(k.value.value, bool):
                return k.value.value
            return "dynamic"
    return None
def add(arg, line, keywords, default=None):
    v = value(arg) if arg is not None else default
    dags.append({"id": v, "line": line, "paused": paused(keywords)})
for n in ast.walk(tree):
    if isinstance(n, ast.Call) and name(n.func) == "DAG":
        arg = n.args[0] if n.args else None
        for k in n.keywords:
            if k.arg == "dag_id":
                arg = k.value
        add(arg, n.lineno, n.keywords)
    elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
        for d in n.decorator_list:
            call = d if isinstance(d, ast.Call) else None
            if name(call.func if call else d) != "dag":
                continue
            arg = None
            if call:
                arg = call.args[0] if call.args else None
                for k in call.keywords:
                    if k.arg == "dag_id":
                        arg = k.value
            if arg is not None and value(arg) == "":
                arg = None
            add(arg, d.lineno, call.keywords if call else [], n.name)
done({"dags": dags})
`

// dagCheck is the script's answer.
type dagCheck struct {
	Error *struct {
		Type string `json:"type"`
		Msg  string `json:"msg"`
		Line int    `json:"line"`
		Col  int    `json:"col"`
		Text string `json:"text"`
	} `json:"error"`
	DAGs []struct {
		ID     *string `json:"id"`
		Line   int     `json:"line"`
		Paused any     `json:"paused"` // true, false, "dynamic" or nil
	} `json:"dags"`
}

// dagIDRE is Airflow's rule for dag_ids (airflow.utils.helpers.KEY_REGEX,
// at most 250 characters).
var dagIDRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,250}$`)

// dagInfo is what a checked DAG file says about itself.
type dagInfo struct {
	// ID is the dag_id the file defines.
	ID string
	// PausedUponCreation is the file's literal is_paused_upon_creation, nil
	// when no DAG sets it.
	PausedUponCreation *bool
	// PausedDynamic is true when it is set by an expression Shipline cannot
	// evaluate.
	PausedDynamic bool
}

// dagSource says where the lines of a rendered DAG come from: the
// definition's path in the project and, for each rendered line (Shipline's
// header line not counted), its line there. Without lines the rendered lines
// are taken for the source's.
type dagSource struct {
	file  string
	lines []templating.Line
}

// sourceOf is the source of a job's DAG; name (the rendered file's name)
// stands in when the spec does not say.
func sourceOf(j JobSpec, name string) dagSource {
	if j.Source == "" {
		return dagSource{file: name}
	}
	return dagSource{file: j.Source, lines: j.SourceLines}
}

// pos maps a line and column of the rendered file (header included) to the
// source. The column is dropped (0) when something was filled in on the line.
func (s dagSource) pos(line, col int) (int, int) {
	if h := strings.Count(dagHeader, "\n"); line > h {
		line -= h
	}
	if line >= 1 && line <= len(s.lines) {
		l := s.lines[line-1]
		if l.Filled {
			col = 0
		}
		line = l.Source
	}
	return line, col
}

// checkDAGFile checks the DAG at path (a rendered file, with Shipline's
// header line): it must compile and define one DAG (one dag_id) whose dag_id
// is a string literal Airflow accepts; the author chooses it (renaming a DAG
// would lose its history in Airflow), and fixes suggest suggest. Failures are
// permanent InvalidDefinition errors wrapping a diag.List whose entries name
// the source file:line:col (see dagSource). It returns the dag_id and the
// file's own pause setting.
func checkDAGFile(ctx context.Context, python, path string, src dagSource, suggest string) (dagInfo, error) {
	cmd := exec.CommandContext(ctx, python, "-I", "-c", dagCheckScript, path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return dagInfo{}, &apperr.Error{Type: apperr.PythonUnavailable, Cause: err,
				Msg: fmt.Sprintf("check DAG %s: no Python interpreter %q on the worker: install python3 or set SHIPLINE_PYTHON", src.file, python)}
		}
		if ctx.Err() != nil {
			return dagInfo{}, ctx.Err()
		}
		return dagInfo{}, fmt.Errorf("check DAG %s with %s: %w: %s", src.file, python, err, strings.TrimSpace(stderr.String()))
	}
	var res dagCheck
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return dagInfo{}, fmt.Errorf("check DAG %s with %s: unexpected output %q: %w", src.file, python, stdout.String(), err)
	}
	invalid := func(line, col int, fix, format string, args ...any) (dagInfo, error) {
		line, col = src.pos(line, col)
		l := diag.List{diag.Errorf(src.file, line, col, fix, format, args...)}
		return dagInfo{}, &apperr.Error{Type: apperr.InvalidDefinition, Msg: l.Error(), Cause: l}
	}
	if e := res.Error; e != nil {
		msg := fmt.Sprintf("the DAG does not compile (%s): %s: %s", python, e.Type, e.Msg)
		if e.Text != "" {
			msg += "\n    " + e.Text
		}
		return invalid(e.Line, e.Col, "correct the Python syntax of the DAG", "%s", msg)
	}
	if len(res.DAGs) == 0 {
		return invalid(0, 0, fmt.Sprintf("define one, e.g. with DAG(dag_id=%q, ...)", suggest), "defines no DAG")
	}
	sort.SliceStable(res.DAGs, func(i, k int) bool { return res.DAGs[i].Line < res.DAGs[k].Line })
	var info dagInfo
	for _, d := range res.DAGs {
		switch p := d.Paused.(type) {
		case bool:
			if info.PausedUponCreation == nil {
				info.PausedUponCreation = &p
			}
		case string:
			info.PausedDynamic = true
		}
		switch {
		case d.ID == nil:
			return invalid(d.Line, 0, fmt.Sprintf("write the dag_id as a string, e.g. dag_id=%q (placeholders such as ${project.name} are filled in first)", suggest),
				"the dag_id is not a string literal, so Shipline cannot check who owns it")
		case !dagIDRE.MatchString(*d.ID):
			return invalid(d.Line, 0, "use at most 250 letters, digits, `_`, `-` and `.`, as Airflow requires",
				"dag_id %q is not a valid Airflow dag_id", *d.ID)
		case info.ID != "" && *d.ID != info.ID:
			return invalid(d.Line, 0, "define one DAG per job file: move the other DAG to a job of its own",
				"defines a second DAG, %q, beside %q", *d.ID, info.ID)
		}
		info.ID = *d.ID
	}
	return info, nil
}

// airflowAPI sets DAGs' pause state through Airflow's stable REST API.
type airflowAPI struct {
	fabric           string
	base             string
	tokenEnv         string // a bearer token, instead of user and password
	userEnv, passEnv string
	env              Env
	client           *http.Client

	mu      sync.Mutex
	token   string // Airflow 3 JWT, obtained on a 401 with credentials
	version string // "v2" or "v1" once a run call found out (see call)
}

// setPaused PATCHes /api/v2/dags/{dag_id} (Airflow 3), falling back to
// /api/v1/dags/{dag_id} (Airflow 2) when the v2 API does not exist. A 404 for
// the DAG on an existing API means the scheduler has not parsed the file yet:
// transient. 401/403 are permanent FabricAuth errors; other 4xx FabricRejected.
func (a *airflowAPI) setPaused(ctx context.Context, dag string, paused bool) error {
	body := fmt.Sprintf(`{"is_paused":%t}`, paused)
	for _, v := range []string{"v2", "v1"} {
		path := "/api/" + v + "/dags/" + url.PathEscape(dag) + "?update_mask=is_paused"
		status, msg, err := a.do(ctx, http.MethodPatch, path, body, v == "v2")
		if err != nil {
			return &apperr.Error{Type: apperr.FabricUnavailable, Cause: err,
				Msg: fmt.Sprintf("fabric %q: set is_paused of DAG %s: %v", a.fabric, dag, err)}
		}
		switch {
		case status >= 200 && status < 300:
			return nil
		case status == http.StatusNotFound:
			vs, _, err := a.do(ctx, http.MethodGet, "/api/"+v+"/version", "", false)
			if err != nil {
				return &apperr.Error{Type: apperr.FabricUnavailable, Cause: err, Msg: fmt.Sprintf("fabric %q: %v", a.fabric, err)}
			}
			if vs == http.StatusNotFound {
				continue // no such API version here
			}
			return &apperr.Error{Type: apperr.DagNotParsed,
				Msg: fmt.Sprintf("fabric %q: Airflow does not know DAG %s yet (the scheduler has not parsed the file); will retry", a.fabric, dag)}
		}
		return a.statusError(status, msg, fmt.Sprintf("PATCH %s%s", a.base, path))
	}
	return &apperr.Error{Type: apperr.FabricConfig,
		Msg: fmt.Sprintf("fabric %q: no Airflow REST API at %s (neither /api/v2 nor /api/v1 answers): fix airflow_url in platform.yaml", a.fabric, a.base)}
}

func (a *airflowAPI) statusError(status int, msg, what string) error {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		fix := fmt.Sprintf("check the credentials in $%s/$%s and that the user may edit DAGs", a.userEnv, a.passEnv)
		if a.tokenEnv != "" {
			fix = fmt.Sprintf("check the token in $%s and that it may edit DAGs", a.tokenEnv)
		} else if a.userEnv == "" {
			fix = "set airflow_user_env and airflow_password_env on the fabric in platform.yaml"
		}
		return &apperr.Error{Type: apperr.FabricAuth,
			Msg: fmt.Sprintf("fabric %q: %s: %d %s: %s", a.fabric, what, status, msg, fix)}
	case status == http.StatusTooManyRequests || status >= 500:
		return &apperr.Error{Type: apperr.FabricUnavailable, Msg: fmt.Sprintf("fabric %q: %s: %d %s", a.fabric, what, status, msg)}
	}
	return &apperr.Error{Type: apperr.FabricRejected, Msg: fmt.Sprintf("fabric %q: %s: %d %s", a.fabric, what, status, msg)}
}

// do sends one request and returns the status and a short error text. With
// credentials it uses basic auth (Airflow 2); when a v2 request gets a 401 it
// exchanges them at /auth/token for a JWT (Airflow 3) and retries once.
// Every call is sent once: the PATCH of is_paused is idempotent, so a lost
// answer is a transient error and the activity's retry sends it again; a
// token exchange whose answer is lost is transient too, never taken for
// refused credentials.
func (a *airflowAPI) do(ctx context.Context, method, path, body string, mayToken bool) (int, string, error) {
	status, data, err := a.doRaw(ctx, method, path, body, mayToken)
	return status, airflowErrorText(data), err
}

// doRaw is do returning the answer's body.
func (a *airflowAPI) doRaw(ctx context.Context, method, path, body string, mayToken bool) (int, []byte, error) {
	user, pass := a.credentials()
	status, data, err := a.send(ctx, method, path, body, user, pass)
	if err != nil || status != http.StatusUnauthorized || !mayToken || user == "" || a.bearer() != "" {
		return status, data, err
	}
	tok, err := a.fetchToken(ctx, user, pass)
	if err != nil {
		return 0, nil, err
	}
	if tok != "" {
		a.mu.Lock()
		a.token = tok
		a.mu.Unlock()
		return a.send(ctx, method, path, body, user, pass)
	}
	return status, data, nil
}

func (a *airflowAPI) bearer() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token
}

func (a *airflowAPI) credentials() (string, string) {
	if a.userEnv == "" {
		return "", ""
	}
	return a.env(a.userEnv), a.env(a.passEnv)
}

func (a *airflowAPI) send(ctx context.Context, method, path, body, user, pass string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	switch tok := a.bearer(); {
	case a.tokenEnv != "":
		req.Header.Set("Authorization", "Bearer "+a.env(a.tokenEnv))
	case tok != "":
		req.Header.Set("Authorization", "Bearer "+tok)
	case user != "":
		req.SetBasicAuth(user, pass)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, data, nil
}

// airflowErrorText extracts the message of an Airflow error body
// ({"detail": ..., "title": ...}), else a prefix of the body.
func airflowErrorText(data []byte) string {
	var e struct {
		Title  string `json:"title"`
		Detail any    `json:"detail"`
	}
	if json.Unmarshal(data, &e) == nil && (e.Title != "" || e.Detail != nil) {
		if e.Detail == nil {
			return e.Title
		}
		return strings.TrimSpace(fmt.Sprintf("%s %v", e.Title, e.Detail))
	}
	s := strings.TrimSpace(string(data))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// fetchToken exchanges credentials for an Airflow 3 API token: "" without
// an error when Airflow refuses them (or has no such endpoint), an error when
// the outcome is unknown (no answer, 429, 5xx).
func (a *airflowAPI) fetchToken(ctx context.Context, user, pass string) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": user, "password": pass})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/auth/token", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return "", a.statusError(resp.StatusCode, airflowErrorText(data), "POST "+a.base+"/auth/token")
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode/100 != 2 || json.Unmarshal(data, &out) != nil {
		return "", nil
	}
	return out.AccessToken, nil
}
