package test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// ghRunner runs the shell steps of a GitHub Actions workflow file in order, the
// way a GitHub-hosted runner would, on this machine: each run: step with
// `bash --noprofile --norc -eo pipefail`, in the workspace, with the workflow's,
// the job's and the step's env, GitHub's default variables, $GITHUB_PATH and
// $GITHUB_ENV carried to the next steps, and the expressions ${{ secrets.X }},
// ${{ vars.X }}, ${{ github.X }} and ${{ inputs.X }} (with ||) replaced by the
// test's values. An expression, a context key or an action it does not know
// fails the test, so the examples cannot use what the test does not check.
//
// Steps that only set up the runner are not run; the runner does the
// equivalent here instead, and checks the step still is what it replaces:
//   - actions/checkout clones the project's remote into the workspace and checks
//     out the event's commit (fetch-depth 0: the whole history);
//   - actions/setup-go: the Go on this machine (go version must work);
//   - the step with id install-shipline (`go install` of the CLI from the module
//     proxy) puts the shipline binary the test built from this tree on PATH;
//   - the step with id install-build-tools (apt-get of Python's build tools)
//     checks they are installed here.
type ghRunner struct {
	t         *testing.T
	workspace string
	temp      string
	home      string
	remote    string // the git remote actions/checkout clones
	shipline  string // the directory holding the shipline binary built by the test
	secrets   map[string]string
	vars      map[string]string
	github    map[string]string // github.* context: event_name, ref, ref_name, sha, ...
	inputs    map[string]string
}

// ghWorkflow is what the runner reads of a workflow file.
type ghWorkflow struct {
	Env  map[string]string `yaml:"env"`
	Jobs map[string]ghJob  `yaml:"jobs"`
}

type ghJob struct {
	If    string            `yaml:"if"`
	Env   map[string]string `yaml:"env"`
	Steps []ghStep          `yaml:"steps"`
}

type ghStep struct {
	Name  string            `yaml:"name"`
	ID    string            `yaml:"id"`
	If    string            `yaml:"if"`
	Uses  string            `yaml:"uses"`
	Run   string            `yaml:"run"`
	Shell string            `yaml:"shell"`
	Env   map[string]string `yaml:"env"`
}

func (s ghStep) title() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Uses != "":
		return s.Uses
	}
	return strings.SplitN(s.Run, "\n", 2)[0]
}

// ghResult is how a workflow run went: the output of every step run, and the
// first step that failed (its error), like a job log.
type ghResult struct {
	Log    string
	Failed string // the failing step's title; "" when every step passed
	Err    error
}

var ghExpr = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// eval evaluates one expression: operands joined by ||, each a quoted string
// or secrets.X, vars.X, github.X or inputs.X; the first non-empty one wins.
func (r *ghRunner) eval(expr string) (string, error) {
	for _, operand := range strings.Split(expr, "||") {
		operand = strings.TrimSpace(operand)
		if len(operand) >= 2 && operand[0] == '\'' && operand[len(operand)-1] == '\'' {
			return operand[1 : len(operand)-1], nil
		}
		ctx, key, ok := strings.Cut(operand, ".")
		m, known := map[string]map[string]string{"secrets": r.secrets, "vars": r.vars, "github": r.github, "inputs": r.inputs}[ctx]
		if !ok || !known {
			return "", fmt.Errorf("expression %q: the test runner knows secrets, vars, github and inputs, not %q", expr, operand)
		}
		v, set := m[key]
		if !set && ctx == "github" {
			return "", fmt.Errorf("expression %q: github.%s has no test value; add it to the runner", expr, key)
		}
		if v != "" {
			return v, nil
		}
	}
	return "", nil
}

func (r *ghRunner) substitute(s string) string {
	r.t.Helper()
	return ghExpr.ReplaceAllStringFunc(s, func(m string) string {
		v, err := r.eval(ghExpr.FindStringSubmatch(m)[1])
		if err != nil {
			r.t.Fatal(err)
		}
		return v
	})
}

// run runs the workflow file's one job.
func (r *ghRunner) run(file string) ghResult {
	r.t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		r.t.Fatal(err)
	}
	var wf ghWorkflow
	if err := yaml.Unmarshal(data, &wf); err != nil {
		r.t.Fatalf("%s: %v", file, err)
	}
	if len(wf.Jobs) != 1 {
		r.t.Fatalf("%s has %d jobs; the runner runs workflows of one job", file, len(wf.Jobs))
	}
	var job ghJob
	for _, j := range wf.Jobs {
		job = j
	}
	if job.If != "" {
		r.t.Fatalf("%s: the runner does not evaluate a job's if:", file)
	}
	for _, d := range []string{r.workspace, r.temp, r.home} {
		mkdirs(r.t, d)
	}
	files := map[string]string{}
	for _, name := range []string{"GITHUB_PATH", "GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"} {
		files[name] = filepath.Join(r.temp, "_runner_file_commands", strings.ToLower(name))
		mkdirs(r.t, filepath.Dir(files[name]))
		if err := os.WriteFile(files[name], nil, 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	env := map[string]string{}
	for k, v := range wf.Env {
		env[k] = r.substitute(v)
	}
	for k, v := range job.Env {
		env[k] = r.substitute(v)
	}
	var paths []string // from $GITHUB_PATH, newest first
	var log strings.Builder
	for _, st := range job.Steps {
		fmt.Fprintf(&log, "##[group]%s\n", st.title())
		if st.If != "" {
			r.t.Fatalf("%s: step %q: the runner does not evaluate if:", file, st.title())
		}
		out, err := r.step(st, env, paths, files)
		log.WriteString(out)
		if err != nil {
			fmt.Fprintf(&log, "##[error]%s: %v\n", st.title(), err)
			return ghResult{Log: log.String(), Failed: st.title(), Err: err}
		}
		paths = append(readLines(r.t, files["GITHUB_PATH"]), paths...)
		for _, l := range readLines(r.t, files["GITHUB_ENV"]) {
			k, v, ok := strings.Cut(l, "=")
			if !ok || strings.Contains(k, "<<") {
				r.t.Fatalf("%s: $GITHUB_ENV line %q: the runner reads NAME=value lines only", file, l)
			}
			env[k] = v
		}
		for _, f := range []string{files["GITHUB_PATH"], files["GITHUB_ENV"]} {
			_ = os.WriteFile(f, nil, 0o644)
		}
	}
	return ghResult{Log: log.String()}
}

// step runs (or, for runner set-up, replaces) one step and returns its output.
func (r *ghRunner) step(st ghStep, env map[string]string, paths []string, files map[string]string) (string, error) {
	r.t.Helper()
	action, _, _ := strings.Cut(st.Uses, "@")
	switch {
	case action == "actions/checkout":
		git(r.t, r.workspace, "clone", "-q", r.remote, ".")
		git(r.t, r.workspace, "checkout", "-q", "--detach", r.github["sha"])
		return fmt.Sprintf("(runner set-up) cloned %s at %s\n", r.remote, r.github["sha"]), nil
	case action == "actions/setup-go":
		out, err := exec.Command("go", "version").CombinedOutput()
		if err != nil {
			r.t.Fatalf("actions/setup-go: the Go here does not run: %v\n%s", err, out)
		}
		return "(runner set-up) " + string(out), nil
	case st.Uses != "":
		r.t.Fatalf("step %q uses %s, which the runner does not know how to replace", st.title(), st.Uses)
	case st.ID == "install-shipline":
		if !strings.Contains(st.Run, `go install "github.com/shipline/shipline/starter@`) || !strings.Contains(st.Run, "GITHUB_PATH") {
			r.t.Fatalf("step install-shipline no longer installs the CLI with go install and $GITHUB_PATH; update the runner:\n%s", st.Run)
		}
		if err := os.WriteFile(files["GITHUB_PATH"], []byte(r.shipline+"\n"), 0o644); err != nil {
			r.t.Fatal(err)
		}
		return "(runner set-up) shipline built from this tree: " + r.shipline + "\n", nil
	case st.ID == "install-build-tools":
		if !strings.Contains(st.Run, "python3-build") {
			r.t.Fatalf("step install-build-tools no longer installs python3-build; update the runner:\n%s", st.Run)
		}
		out, err := exec.Command("/usr/bin/python3", "-c", "import build, wheel, setuptools, pytest").CombinedOutput()
		if err != nil {
			r.t.Skipf("the pipelines' build tools are not installed here (Debian: python3-build python3-wheel python3-setuptools python3-pytest): %s", out)
		}
		return "(runner set-up) python3-build, python3-wheel, python3-setuptools and python3-pytest are installed\n", nil
	}
	if st.Shell != "" && st.Shell != "bash" {
		r.t.Fatalf("step %q: shell %s; the runner runs bash", st.title(), st.Shell)
	}
	stepEnv := maps.Clone(env)
	for k, v := range st.Env {
		stepEnv[k] = r.substitute(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", r.substitute(st.Run))
	cmd.Dir = r.workspace
	cmd.Env = r.environ(stepEnv, paths, files)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// environ is the process environment of a step: this machine's, without
// Shipline's and Temporal's own settings (a CI runner has none), plus GitHub's
// default variables and the step's env.
func (r *ghRunner) environ(env map[string]string, paths []string, files map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "SHIPLINE_"), strings.HasPrefix(k, "TEMPORAL_"), strings.HasPrefix(k, "GITHUB_"), k == "HOME", k == "CI":
			continue
		case k == "PATH":
			v = strings.Join(append(slices.Clone(paths), v), string(os.PathListSeparator))
		}
		out = append(out, k+"="+v)
	}
	def := map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true", "HOME": r.home, "RUNNER_TEMP": r.temp, "RUNNER_OS": "Linux",
		"GITHUB_WORKSPACE": r.workspace, "GITHUB_EVENT_NAME": r.github["event_name"], "GITHUB_REF": r.github["ref"],
		"GITHUB_REF_NAME": r.github["ref_name"], "GITHUB_SHA": r.github["sha"], "GITHUB_REPOSITORY": r.github["repository"],
		"GITHUB_SERVER_URL": r.github["server_url"], "GITHUB_RUN_ID": r.github["run_id"],
	}
	for name, f := range files {
		def[name] = f
	}
	for k, v := range env {
		def[k] = v
	}
	keys := make([]string, 0, len(def))
	for k := range def {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+def[k])
	}
	return out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
