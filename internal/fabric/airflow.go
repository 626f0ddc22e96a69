package fabric

import (
	"bytes"
	"context"
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
	"strings"
	"sync"
	"time"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/diag"
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
	dags      string
	artifacts artifactStore
	api       *airflowAPI // nil without airflow_url
	env       Env
}

// artifactStore is the artifact half of a Fabric.
type artifactStore interface {
	ArtifactPath(project, version, pipeline, file string) string
	Upload(ctx context.Context, project, version string, a Artifact) (Upload, error)
}

func newAirflow(cfg *platform.Config, f platform.Fabric, env Env) (Fabric, error) {
	if env == nil {
		env = os.Getenv
	}
	a := &airflowFabric{name: f.Name, dags: f.DagsFolder, env: env}
	if f.ArtifactFabric != "" {
		if f.ArtifactFabric == f.Name {
			return nil, &apperr.Error{Type: apperr.FabricConfig,
				Msg: fmt.Sprintf("fabric %q: artifact_fabric names itself; name a databricks or local fabric", f.Name)}
		}
		store, err := Open(cfg, f.ArtifactFabric, env)
		if err != nil {
			return nil, fmt.Errorf("fabric %q: artifact_fabric: %w", f.Name, err)
		}
		a.artifacts = store
	} else {
		a.artifacts = artifactDir(filepath.Join(filepath.Dir(f.DagsFolder), "shipline-artifacts"))
	}
	if f.AirflowURL != "" {
		a.api = &airflowAPI{
			fabric: f.Name, base: strings.TrimRight(f.AirflowURL, "/"),
			userEnv: f.AirflowUserEnv, passEnv: f.AirflowPassEnv, env: env,
			client: &http.Client{Timeout: 30 * time.Second},
		}
	}
	return a, nil
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
	if st, err := os.Stat(a.dags); err != nil || !st.IsDir() {
		return JobResult{}, &apperr.Error{Type: apperr.FabricConfig,
			Msg: fmt.Sprintf("fabric %q: dags_folder %s is not a directory; create it or fix dags_folder in platform.yaml", a.name, a.dags)}
	}
	name := dagID(j) + ".py"
	var (
		dag     dagInfo
		checked bool
	)
	res, err := upsertFile(a.dags, name, dagFileContent(j), func(tmp string) (err error) {
		dag, err = checkDAGFile(ctx, pythonBin(a.env), tmp, sourceOf(j, name), dagID(j))
		checked = err == nil
		return err
	})
	if err != nil || a.api == nil {
		return res, err
	}
	paused := j.Paused
	if paused == nil {
		if !checked { // unchanged file: read its own setting
			if dag, err = checkDAGFile(ctx, pythonBin(a.env), filepath.Join(a.dags, name), sourceOf(j, name), dagID(j)); err != nil {
				return JobResult{}, err
			}
		}
		if dag.PausedDynamic {
			return res, nil
		}
		paused = dag.PausedUponCreation
	}
	if err := a.api.setPaused(ctx, dagID(j), paused != nil && *paused); err != nil {
		return JobResult{}, err
	}
	return res, nil
}

// InspectJob compares the DAG file with what the spec renders to.
func (a *airflowFabric) InspectJob(_ context.Context, j JobSpec) (LiveJob, error) {
	if err := checkJobNames(j); err != nil {
		return LiveJob{}, err
	}
	return inspectFile(filepath.Join(a.dags, dagID(j)+".py"), dagFileContent(j), dagFileVersion)
}

// dagID is the dag_id a job's DAG must define.
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

// dagInfo is what a checked DAG file says about itself.
type dagInfo struct {
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
// header line): it must compile and every DAG it defines must have dag_id
// want. Failures are permanent InvalidDefinition errors wrapping a diag.List
// whose entries name the source file:line:col (see dagSource). It returns the
// file's own pause setting.
func checkDAGFile(ctx context.Context, python, path string, src dagSource, want string) (dagInfo, error) {
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
		return invalid(0, 0, fmt.Sprintf("define one with dag_id=%q, e.g. with DAG(dag_id=\"${project.name}__<job>\", ...)", want), "defines no DAG")
	}
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
			return invalid(d.Line, 0, fmt.Sprintf("write dag_id=%q (or \"${project.name}__<job>\")", want),
				"the dag_id is not a string literal, so Shipline cannot check it")
		case *d.ID != want:
			return invalid(d.Line, 0, fmt.Sprintf("name the DAG dag_id=%q (or \"${project.name}__<job>\"): one DAG per job file, named <project>__<job>", want),
				"defines dag_id %q, expected %q", *d.ID, want)
		}
	}
	return info, nil
}

// airflowAPI sets DAGs' pause state through Airflow's stable REST API.
type airflowAPI struct {
	fabric           string
	base             string
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
		if a.userEnv == "" {
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
