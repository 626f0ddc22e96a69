package test

// Helpers of the hardening end-to-end tests (crash, faults, concurrency): a
// Temporal server running in the test process, the Shipline worker either in
// the test process or as a separate, killable process, the Databricks
// emulator (optionally behind a proxy that drops connections), and generated
// projects made of small Python pipelines and two Databricks jobs.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shipline/shipline/internal/devserver"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/workerapp"
	"github.com/shipline/shipline/starter/cli"
	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/workflows"
)

// hardTokenEnv holds the emulated workspace's token for the worker.
const hardTokenEnv = "SHIPLINE_HARD_DEV_TOKEN"

// hardEnv is one hardening test's world.
type hardEnv struct {
	t        *testing.T
	root     string
	emu      *dbemu.Emulator
	emuURL   string
	flaky    *flakyProxy
	cfgPath  string
	cfg      *platform.Config
	srv      *devserver.Server
	client   client.Client
	projects map[string]*genProject
}

// hardOptions configure newHardEnv.
type hardOptions struct {
	Projects []string // project names; each gets its own git remote
	Seed     int64    // emulator and proxy RNG seed
}

// genProject is a generated project: a bare remote and a work tree pushing to it.
type genProject struct {
	name, remote, work string
	rev                int // bumped by each change
}

// newHardEnv creates the projects, the emulator (behind a flaky proxy that
// starts healthy), platform.yaml and the Temporal server. Start a worker with
// inProcessWorker or newWorkerProcess.
func newHardEnv(t *testing.T, o hardOptions) *hardEnv {
	t.Helper()
	h := &hardEnv{t: t, root: t.TempDir(), projects: map[string]*genProject{}}
	h.emu = dbemu.New(dbemu.Options{Volumes: []string{volume}, Tokens: []string{goodToken}, Seed: o.Seed})
	h.flaky = &flakyProxy{next: h.emu, rng: rand.New(rand.NewSource(o.Seed + 1))}
	srv := httptest.NewServer(h.flaky)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	h.emuURL = srv.URL
	t.Setenv(hardTokenEnv, goodToken)

	var projects strings.Builder
	for _, name := range o.Projects {
		p := h.newProject(name)
		h.projects[name] = p
		fmt.Fprintf(&projects, "  %s: {repo: %s, admins: [alice], auto_deploy: true}\n", name, p.remote)
	}
	cfg := fmt.Sprintf(`
temporal: {namespace: default, task_queue: shipline}
state_dir: state
teams:
  developers: {members: [alice, bob]}
projects:
%sfabrics:
  dev: {kind: databricks, owner: developers, host: %s, token_env: %s, artifact_root: %s, pause_schedules: true}
`, projects.String(), h.emuURL, hardTokenEnv, volume)
	h.cfgPath = filepath.Join(h.root, "platform.yaml")
	if err := os.WriteFile(h.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, diags := platform.Load(h.cfgPath)
	if diags.HasErrors() {
		t.Fatalf("platform config:\n%s", diags.Error())
	}
	h.cfg = loaded

	srvT, err := devserver.Start(context.Background(), devserver.Options{
		DBFile: filepath.Join(h.root, "temporal", "temporal.db"), Port: freePort(t), UIPort: -1,
		SearchAttributes: workerapp.SearchAttributes(),
	})
	if err != nil {
		t.Fatalf("start the Temporal server: %v", err)
	}
	h.srv = srvT
	t.Cleanup(srvT.Stop)
	h.cfg.Temporal.Address = srvT.Address()
	c, err := client.Dial(client.Options{HostPort: srvT.Address(), Namespace: "default", Logger: quietSDKLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	h.client = c
	t.Cleanup(c.Close) // runs before srv.Stop (cleanups are LIFO)
	return h
}

// newProject writes a project with two small Python pipelines (one with a
// pytest test) and two Databricks jobs on fabric dev, and pushes it.
func (h *hardEnv) newProject(name string) *genProject {
	t := h.t
	p := &genProject{name: name, remote: filepath.Join(h.root, "remotes", name+".git"), work: filepath.Join(h.root, "work", name)}
	for _, d := range []string{p.remote, p.work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	git(t, p.remote, "init", "--bare", "-q", "-b", "main")
	files := map[string]string{
		"shipline.yaml": fmt.Sprintf(`name: %s
variables: {schema: dev_%s, revision: "0"}
pipelines:
  ingest: {path: pipelines/ingest, language: python}
  score:  {path: pipelines/score, language: python}
jobs:
  daily:  {scheduler: databricks, fabric: dev, pipelines: [ingest, score], definition: jobs/daily.json}
  hourly: {scheduler: databricks, fabric: dev, pipelines: [ingest], definition: jobs/hourly.json}
`, name, strings.ReplaceAll(name, "-", "_")),
		"jobs/daily.json":  jobJSON("daily", "ingest", "score"),
		"jobs/hourly.json": jobJSON("hourly", "ingest"),
	}
	for _, pl := range []string{"ingest", "score"} {
		files["pipelines/"+pl+"/pyproject.toml"] = fmt.Sprintf(`[build-system]
requires = ["setuptools>=61", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "%s"
version = "1.0.0"
requires-python = ">=3.9"

[tool.setuptools.packages.find]
where = ["src"]
`, pl)
		files["pipelines/"+pl+"/src/"+pl+"/__init__.py"] = pipelineSource(name, pl, 0)
	}
	files["pipelines/score/tests/test_score.py"] = "from score import revision\n\n\ndef test_revision():\n    assert revision() >= 0\n"
	for rel, content := range files {
		writeFile(t, filepath.Join(p.work, rel), content)
	}
	git(t, p.work, "init", "-q", "-b", "main")
	git(t, p.work, "add", ".")
	git(t, p.work, "commit", "-q", "-m", "project "+name)
	git(t, p.work, "push", "-q", p.remote, "main")
	return p
}

func jobJSON(job string, pipelines ...string) string {
	var tasks []string
	for _, p := range pipelines {
		tasks = append(tasks, fmt.Sprintf(`{"task_key": "%s", "job_cluster_key": "main",
      "python_wheel_task": {"package_name": "%s", "entry_point": "main", "parameters": ["--schema", "${var.schema}"]},
      "libraries": [{"whl": "${artifact.%s}"}]}`, p, p, p))
	}
	return fmt.Sprintf(`{
  "name": "${project.name}-%s",
  "description": "Release ${release.version} (${release.commit}), revision ${var.revision}.",
  "max_concurrent_runs": 1,
  "schedule": {"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "UTC", "pause_status": "PAUSED"},
  "job_clusters": [{"job_cluster_key": "main", "new_cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_D4ds_v5", "num_workers": 1}}],
  "tasks": [%s]
}
`, job, strings.Join(tasks, ",\n    "))
}

func pipelineSource(project, pipeline string, rev int) string {
	return fmt.Sprintf("\"\"\"Pipeline %s of %s.\"\"\"\n\nREVISION = %d\n\n\ndef revision():\n    return REVISION\n\n\ndef main():\n    print(%q, REVISION)\n    return 0\n",
		pipeline, project, rev, project+"/"+pipeline)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// change commits a new revision of the project: with rebuild, the ingest
// pipeline's code changes (a new build); else only a variable of the jobs.
func (h *hardEnv) change(project string, rebuild bool) {
	p := h.projects[project]
	p.rev++
	if rebuild {
		writeFile(h.t, filepath.Join(p.work, "pipelines/ingest/src/ingest/__init__.py"), pipelineSource(project, "ingest", p.rev))
	}
	man, err := os.ReadFile(filepath.Join(p.work, "shipline.yaml"))
	if err != nil {
		h.t.Fatal(err)
	}
	text := string(man)
	i := strings.Index(text, `revision: "`)
	j := strings.Index(text[i+11:], `"`)
	text = text[:i] + fmt.Sprintf(`revision: "%d"`, p.rev) + text[i+11+j+1:]
	writeFile(h.t, filepath.Join(p.work, "shipline.yaml"), text)
	git(h.t, p.work, "commit", "-q", "-am", fmt.Sprintf("revision %d", p.rev))
	git(h.t, p.work, "push", "-q", p.remote, "main")
}

// release tags main as version (without deploying) through the real CLI.
func (h *hardEnv) release(project, version string) {
	h.t.Helper()
	code, out, errOut := h.shipline("release", version, "--project", project, "--as", "alice", "--no-deploy", "--wait")
	if code != 0 {
		h.t.Fatalf("release %s %s: exit %d\n%s\n%s", project, version, code, out, errOut)
	}
}

// shipline runs the real CLI against the test's server; it logs the call and its output.
func (h *hardEnv) shipline(args ...string) (int, string, string) {
	code, out, errOut := h.shiplineQuiet(args...)
	h.t.Logf("$ shipline %s  → exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	return code, out, errOut
}

// shiplineQuiet runs the CLI without logging (for polls).
func (h *hardEnv) shiplineQuiet(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	full := append([]string{"shipline", "--address", h.srv.Address(), "--ui-url", "http://127.0.0.1:1"}, args...)
	code := cli.Main(full, &out, &errb)
	return code, out.String(), errb.String()
}

// startDeploy starts `shipline deploy VERSION --project P --as bob` (no wait) and returns its workflow ID.
func (h *hardEnv) startDeploy(project, version string) string {
	h.t.Helper()
	code, out, errOut := h.shiplineQuiet("--output", "json", "deploy", version, "--project", project, "--as", "bob")
	var res startResultJSON
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.WorkflowID == "" {
		h.t.Fatalf("deploy %s %s: exit %d\n%s\n%s", project, version, code, out, errOut)
	}
	return res.WorkflowID
}

// deployState queries a deployment's state; ok is false when no worker answered in time.
func (h *hardEnv) deployState(id string) (workflows.DeployState, bool) {
	var s workflows.DeployState
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := h.client.QueryWorkflow(ctx, id, "", workflows.StateQuery)
	if err != nil || v.Get(&s) != nil {
		return s, false
	}
	return s, true
}

// fabricState queries the Fabric entity of (project, fabric).
func (h *hardEnv) fabricState(project, fabric string) workflows.FabricState {
	h.t.Helper()
	var s workflows.FabricState
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := h.client.QueryWorkflow(ctx, workflows.FabricID(project, fabric), "", workflows.StateQuery)
		cancel()
		if err == nil && v.Get(&s) == nil {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("query %s: %v", workflows.FabricID(project, fabric), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func ended(s workflows.Status) bool {
	switch s {
	case workflows.StatusSucceeded, workflows.StatusFailed, workflows.StatusRefused, workflows.StatusCancelled, workflows.StatusParked,
		workflows.StatusSuperseded:
		return true
	}
	return false
}

// waitDeploy polls a deployment until it succeeds, fails, ends or parks, for
// at most limit; it fails the test when the limit passes.
func (h *hardEnv) waitDeploy(id string, limit time.Duration) workflows.DeployState {
	h.t.Helper()
	deadline := time.Now().Add(limit)
	var last workflows.DeployState
	for time.Now().Before(deadline) {
		if s, ok := h.deployState(id); ok {
			last = s
			if ended(s.Status) {
				return s
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	h.t.Fatalf("%s did not end within %s; last state: %s — %s", id, limit, last.Status, last.Summary)
	return last
}

// activityAttempts returns, per activity type, the highest attempt that
// started in a workflow's history (1 when no activity of the type was retried).
func (h *hardEnv) activityAttempts(id string) map[string]int {
	h.t.Helper()
	types := map[int64]string{} // scheduled event ID → activity type
	out := map[string]int{}
	it := h.client.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			h.t.Fatalf("history of %s: %v", id, err)
		}
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			types[e.EventId] = a.ActivityType.GetName()
		}
		if a := e.GetActivityTaskStartedEventAttributes(); a != nil {
			name := types[a.ScheduledEventId]
			out[name] = max(out[name], int(a.Attempt))
		}
	}
	return out
}

// deployExecutions lists every Deploy workflow execution through visibility.
func (h *hardEnv) deployExecutions() map[string]enumspb.WorkflowExecutionStatus {
	h.t.Helper()
	out := map[string]enumspb.WorkflowExecutionStatus{}
	var token []byte
	for {
		resp, err := h.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", Query: "WorkflowType = '" + workflows.DeployWorkflow + "'", NextPageToken: token, PageSize: 100,
		})
		if err != nil {
			h.t.Fatalf("list Deploy workflows: %v", err)
		}
		for _, e := range resp.Executions {
			out[e.Execution.WorkflowId] = e.Status
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return out
		}
	}
}

// checkOneJobEach checks the emulator holds exactly one job per (project, job)
// of every project, tagged with the version the project's fabric entity
// records, and that the entity's queue is empty. It returns project → version.
func (h *hardEnv) checkOneJobEach() map[string]string {
	h.t.Helper()
	versions := map[string]string{}
	names := mapsKeys(h.projects)
	slices.Sort(names)
	for _, name := range names {
		fs := h.fabricState(name, "dev")
		if len(fs.Queue) != 0 {
			h.t.Errorf("fabric/%s/dev still has a queue: %+v", name, fs.Queue)
		}
		for _, job := range []string{"daily", "hourly"} {
			jobs := h.emu.JobsTagged(map[string]string{"shipline_project": name, "shipline_job": job})
			if len(jobs) != 1 {
				h.t.Errorf("%d Databricks jobs for %s/%s, want exactly 1", len(jobs), name, job)
				continue
			}
			rec, ok := fs.Jobs[job]
			if !ok {
				h.t.Errorf("fabric/%s/dev records no job %s", name, job)
				continue
			}
			if got := jobs[0].Tags()["shipline_version"]; got != rec.Version {
				h.t.Errorf("%s/%s: the workspace runs %s, the fabric entity records %s", name, job, got, rec.Version)
			}
			if fmt.Sprint(jobs[0].ID) != rec.ID {
				h.t.Errorf("%s/%s: the workspace's job is %d, the fabric entity records %s", name, job, jobs[0].ID, rec.ID)
			}
			versions[name] = rec.Version
		}
	}
	return versions
}

// checkArtifacts checks every artifact on the emulated volume has the bytes
// of an artifact in the build cache (sha256).
func (h *hardEnv) checkArtifacts() int {
	h.t.Helper()
	cache := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(h.cfg.StateDir, "cache"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".whl") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		cache[sha(data)] = true
		return nil
	})
	if err != nil {
		h.t.Fatalf("read the build cache: %v", err)
	}
	n := 0
	for _, path := range h.emu.Files() {
		if !strings.HasPrefix(path, volume+"/") {
			continue
		}
		data, _ := h.emu.File(path)
		n++
		if !cache[sha(data)] {
			h.t.Errorf("uploaded %s (sha256 %s, %d bytes) matches no artifact of the build cache", path, sha(data)[:12], len(data))
		}
	}
	return n
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func mapsKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// inProcessWorker runs the Shipline worker in the test process against the
// test's server until the test ends.
func (h *hardEnv) inProcessWorker() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- workerapp.Run(ctx, workerapp.Options{
			Config: h.cfg, Logger: zaptest.NewLogger(h.t, zaptest.Level(zap.ErrorLevel)),
			Ready: func(workerapp.Info) { close(ready) },
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		h.t.Fatalf("worker stopped before it was ready: %v", err)
	case <-time.After(2 * time.Minute):
		h.t.Fatal("worker not ready after 2 minutes")
	}
	h.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			h.t.Error("worker did not stop within a minute")
		}
	})
}

// workerProcess is shipline-worker running as a separate process (its own
// process group, so a kill takes its build tools with it).
type workerProcess struct {
	t       *testing.T
	bin     string
	args    []string
	env     []string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	starts  int
}

// buildWorkerBinary builds ./worker into dir.
func buildWorkerBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "shipline-worker")
	cmd := exec.Command("go", "build", "-o", bin, "./worker")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./worker: %v\n%s", err, out)
	}
	return bin
}

// newWorkerProcess builds the worker and prepares to run it against the test's server.
func (h *hardEnv) newWorkerProcess() *workerProcess {
	dir := filepath.Join(h.root, "bin")
	w := &workerProcess{
		t: h.t, bin: buildWorkerBinary(h.t, dir),
		args:    []string{"--config", h.cfgPath, "--log-level", "warn"},
		env:     append(os.Environ(), "TEMPORAL_ADDRESS="+h.srv.Address(), hardTokenEnv+"="+goodToken),
		logPath: filepath.Join(h.root, "worker.log"),
	}
	h.t.Cleanup(w.stop)
	return w
}

// start runs the worker and waits (bounded) for its ready line.
func (w *workerProcess) start() {
	w.t.Helper()
	logf, err := os.OpenFile(w.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	w.starts++
	fmt.Fprintf(logf, "==== start %d at %s\n", w.starts, time.Now().Format(time.StampMilli))
	cmd := exec.Command(w.bin, w.args...)
	cmd.Env = w.env
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("start worker: %v", err)
	}
	w.cmd, w.exited = cmd, make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if strings.HasPrefix(sc.Text(), "shipline worker ready") {
				once.Do(func() { close(ready) })
			}
		}
		_ = cmd.Wait()
		logf.Close()
		close(w.exited)
	}()
	select {
	case <-ready:
	case <-w.exited:
		w.t.Fatalf("worker exited before it was ready:\n%s", w.logTail())
	case <-time.After(2 * time.Minute):
		w.t.Fatalf("worker not ready after 2 minutes:\n%s", w.logTail())
	}
}

// kill SIGKILLs the worker's process group and waits for it to be gone.
func (w *workerProcess) kill() {
	if w.cmd == nil {
		return
	}
	_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-w.exited:
	case <-time.After(30 * time.Second):
		w.t.Fatal("killed worker did not exit within 30s")
	}
	w.cmd = nil
}

// stop ends the worker gracefully (SIGTERM), killing it if it lingers.
func (w *workerProcess) stop() {
	if w.cmd == nil {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
		w.cmd = nil
	case <-time.After(30 * time.Second):
		w.kill()
	}
}

func (w *workerProcess) logTail() string {
	data, _ := os.ReadFile(w.logPath)
	if len(data) > 8000 {
		data = data[len(data)-8000:]
	}
	return string(data)
}

// flakyProxy sits in front of the emulator and drops a fraction of the
// connections, before the call reaches the emulator (nothing happened) or
// after it was handled (it happened, but the client cannot tell). The
// emulator's own RandomFaults answer 429/503.
type flakyProxy struct {
	next http.Handler

	mu      sync.Mutex
	rng     *rand.Rand
	p       float64 // fraction of calls dropped
	paths   []string
	dropped int
}

func (f *flakyProxy) setDrops(p float64, pathPrefixes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.p, f.paths = p, pathPrefixes
}

func (f *flakyProxy) drops() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropped
}

func (f *flakyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	match := len(f.paths) == 0
	for _, p := range f.paths {
		match = match || strings.HasPrefix(r.URL.Path, p)
	}
	drop, after := match && f.p > 0 && f.rng.Float64() < f.p, f.rng.Intn(2) == 0
	if drop {
		f.dropped++
	}
	f.mu.Unlock()
	if !drop {
		f.next.ServeHTTP(w, r)
		return
	}
	if after {
		f.next.ServeHTTP(&discardWriter{header: http.Header{}}, r)
	} else {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// quietSDKLogger drops the Temporal SDK's log lines of the test's own client.
type quietSDKLogger struct{}

func (quietSDKLogger) Debug(string, ...any) {}
func (quietSDKLogger) Info(string, ...any)  {}
func (quietSDKLogger) Warn(string, ...any)  {}
func (quietSDKLogger) Error(string, ...any) {}
