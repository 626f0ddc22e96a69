package test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/internal/build"
	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/workflows"
)

const (
	volume      = "/Volumes/main/shipline/artifacts"
	devTokenEnv = "SHIPLINE_E2E_DEV_TOKEN"
	goodToken   = "dapi-e2e-good"
)

// deployFixture is a project with Python and Java pipelines, a Databricks job
// on an emulated workspace and an Airflow DAG, served by the embedded stack.
type deployFixture struct {
	s       *stack
	emu     *dbemu.Emulator
	remote  string
	dags    string
	workDir string
}

func newDeployFixture(t *testing.T) *deployFixture {
	t.Helper()
	emu := dbemu.Start(dbemu.Options{Volumes: []string{volume}, Tokens: []string{goodToken}, Seed: 7})
	t.Cleanup(emu.Close)
	t.Setenv(devTokenEnv, goodToken)

	root := t.TempDir()
	remote, work := fixtureProject(t, root, projectTrees...)
	dags := filepath.Join(root, "airflow", "dags")
	mkdirs(t, dags)

	cfg := fmt.Sprintf(`
temporal: {namespace: default, task_queue: shipline}
state_dir: state
teams:
  developers:   {members: [alice, bob]}
  prod_support: {members: [carol]}
projects:
  demo: {repo: %s, admins: [alice], auto_deploy: true}
fabrics:
  dev:         {kind: databricks, owner: developers, host: %s, token_env: %s, artifact_root: %s, pause_schedules: true}
  prod:        {kind: databricks, owner: prod_support, host: %s, token_env: %s, artifact_root: %s}
  airflow-dev: {kind: airflow, owner: developers, dags_folder: %s, artifact_fabric: dev}
`, remote, emu.URL, devTokenEnv, volume, emu.URL, devTokenEnv, volume, dags)
	cfgPath := filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return &deployFixture{s: startStack(t, cfgPath, 0), emu: emu, remote: remote, dags: dags, workDir: work}
}

// job returns the single emulated Databricks job of daily_orders.
func (f *deployFixture) job(t *testing.T) (dbemu.Job, map[string]any) {
	t.Helper()
	jobs := f.emu.JobsTagged(map[string]string{"shipline_project": "demo", "shipline_job": "daily_orders"})
	if len(jobs) != 1 {
		t.Fatalf("%d Databricks jobs for demo/daily_orders, want exactly 1", len(jobs))
	}
	var settings map[string]any
	if err := json.Unmarshal(jobs[0].Settings, &settings); err != nil {
		t.Fatal(err)
	}
	return jobs[0], settings
}

// deploy runs `shipline deploy ... --wait --output json` and returns exit code and state.
func (f *deployFixture) deploy(t *testing.T, args ...string) (int, startResultJSON) {
	t.Helper()
	code, out, _ := f.s.shipline(append([]string{"--output", "json", "deploy", "v1.0.0", "--project", "demo", "--wait"}, args...)...)
	var res startResultJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil && code == 0 {
		t.Fatalf("deploy output is not JSON: %v\n%s", err, out)
	}
	return code, res
}

type startResultJSON struct {
	WorkflowID string                `json:"workflow_id"`
	State      workflows.DeployState `json:"state"`
}

func TestDeployEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server and runs real builds")
	}
	f := newDeployFixture(t)

	// 1. release + auto_deploy: Python wheels and a Java jar built, uploaded to the
	// emulated volume, the Databricks job created, the DAG written.
	code, out, errOut := f.s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait")
	if code != 0 || !strings.Contains(out, "deployed v1.0.0 of demo to airflow-dev, dev (2 jobs)") {
		t.Fatalf("release+deploy: exit %d\n%s\n%s", code, out, errOut)
	}
	job, settings := f.job(t)
	libs := libraries(settings)
	// Each artifact's version carries its pipeline directory's content label.
	label := func(p string) string { return build.ContentLabel(git(t, f.workDir, "rev-parse", "HEAD:pipelines/"+p)) }
	enrichJar := "enrich-" + label("enrich") + ".jar"
	for _, want := range []string{
		volume + "/demo/v1.0.0/ingest_orders/ingest_orders-1.0.0+" + label("ingest_orders") + "-py3-none-any.whl",
		volume + "/demo/v1.0.0/score_churn/score_churn-1.0.0+" + label("score_churn") + "-py3-none-any.whl",
		volume + "/demo/v1.0.0/enrich/" + enrichJar,
	} {
		if !strings.Contains(libs, want) {
			t.Errorf("job libraries %s lack %s", libs, want)
		}
		data, ok := f.emu.File(want)
		if !ok || len(data) == 0 {
			t.Errorf("artifact %s is not on the volume", want)
		}
	}
	if tags := job.Tags(); tags["shipline_version"] != "v1.0.0" {
		t.Errorf("job tags = %v", tags)
	}
	if ps := pauseStatus(settings); ps != "PAUSED" {
		t.Errorf("pause_schedules fabric: schedule pause_status = %q, want PAUSED", ps)
	}
	dag := filepath.Join(f.dags, "demo__orders_dag.py")
	if out, err := exec.Command("/usr/bin/python3", "-m", "py_compile", dag).CombinedOutput(); err != nil {
		t.Fatalf("DAG %s does not compile: %v\n%s", dag, err, out)
	}
	dagText, _ := os.ReadFile(dag)
	if !strings.Contains(string(dagText), `dag_id="demo__orders_dag"`) || !strings.Contains(string(dagText), volume+"/demo/v1.0.0/ingest_orders/") {
		t.Errorf("DAG content:\n%s", dagText)
	}

	// 2. A redeploy builds nothing and leaves the job ID unchanged.
	code, res := f.deploy(t, "--as", "bob")
	if code != 0 || res.State.Status != workflows.StatusSucceeded {
		t.Fatalf("redeploy: exit %d state %+v", code, res.State)
	}
	for name, b := range res.State.Builds {
		if !b.Cached {
			t.Errorf("redeploy rebuilt %s", name)
		}
	}
	if again, _ := f.job(t); again.ID != job.ID {
		t.Fatalf("redeploy changed the job ID %d → %d", job.ID, again.ID)
	}
	code, out, _ = f.s.shipline("plan", "v1.0.0", "--project", "demo", "--as", "bob")
	if code != 0 || !strings.Contains(out, "from cache: "+enrichJar) || !strings.Contains(out, "daily_orders       unchanged") {
		t.Errorf("plan after redeploy: exit %d\n%s", code, out)
	}

	// 3. A job deleted by hand shows as drift and is recreated by the next deploy.
	f.emu.DeleteJob(job.ID)
	code, out, _ = f.s.shipline("deployments", "--project", "demo")
	if code != 0 || !strings.Contains(out, "missing (deleted on the fabric)") || !strings.Contains(out, "orders_dag") {
		t.Errorf("deployments after a hand delete: exit %d\n%s", code, out)
	}
	if code, _ := f.deploy(t, "--as", "bob"); code != 0 {
		t.Fatalf("deploy after a hand delete: exit %d", code)
	}
	recreated, _ := f.job(t)
	if recreated.ID == job.ID {
		t.Fatal("job not recreated")
	}

	// 4. A bad token parks the deployment with the API's message; fixing it and resuming finishes it.
	t.Setenv(devTokenEnv, "dapi-e2e-wrong")
	code, res = f.deploy(t, "--as", "bob")
	if code != 1 || res.State.Status != workflows.StatusParked || res.State.Parked == nil {
		t.Fatalf("bad token: exit %d state %+v", code, res.State)
	}
	if !strings.Contains(res.State.Parked.Reason, devTokenEnv) || strings.Contains(res.State.Parked.Reason, "dapi-e2e-wrong") {
		t.Errorf("parked reason should name the env var and never the token: %q", res.State.Parked.Reason)
	}
	t.Setenv(devTokenEnv, goodToken)
	code, out, errOut = f.s.shipline("resume", res.WorkflowID, "--as", "bob", "--wait")
	if code != 0 || !strings.Contains(out, "deployed v1.0.0") {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, errOut)
	}

	// 5. 30 % of Databricks calls fail with 429/503: the deploy still finishes, no duplicate job.
	f.emu.RandomFaults(0.3, []int{429, 503})
	code, res = f.deploy(t, "--as", "bob")
	f.emu.ClearFaults()
	if code != 0 {
		t.Fatalf("flaky API deploy: exit %d state %+v", code, res.State)
	}
	f.job(t)

	// 6. Access: mallory is in no owner team; --fabric prod cannot run the Airflow job.
	code, _, errOut = f.s.shipline("deploy", "v1.0.0", "--project", "demo", "--as", "mallory", "--wait")
	if code != 1 || !strings.Contains(errOut, "owned by team developers") {
		t.Fatalf("deploy as mallory: exit %d %q", code, errOut)
	}
	code, _, errOut = f.s.shipline("deploy", "v1.0.0", "--project", "demo", "--as", "carol", "--fabric", "prod", "--wait")
	if code != 1 || !strings.Contains(errOut, "job orders_dag runs on airflow, but fabric prod is a databricks fabric") {
		t.Fatalf("deploy --fabric prod: exit %d %q", code, errOut)
	}

	// 7. History lists every deployment with its outcome; logs print the build logs.
	code, out, _ = f.s.shipline("history", "--project", "demo", "--output", "json")
	var hist []map[string]any
	if err := json.Unmarshal([]byte(out), &hist); err != nil || code != 0 {
		t.Fatalf("history: %v\n%s", err, out)
	}
	statuses := map[string]int{}
	for _, h := range hist {
		statuses[h["status"].(string)]++
	}
	if statuses["succeeded"] != 5 || statuses["refused"] != 2 {
		t.Errorf("history statuses = %v (want 5 succeeded, 2 refused)", statuses)
	}
	code, out, _ = f.s.shipline("logs", workflows.DeployID("demo", "v1.0.0", "release"))
	if code != 0 || !strings.Contains(out, "javac") || !strings.Contains(out, "build") {
		t.Errorf("logs: exit %d\n%.2000s", code, out)
	}
	checkArtifactsMatchCache(t, f)
}

// checkArtifactsMatchCache compares every uploaded artifact with the build cache's bytes.
func checkArtifactsMatchCache(t *testing.T, f *deployFixture) {
	t.Helper()
	for _, path := range f.emu.Files() {
		if !strings.HasPrefix(path, volume+"/demo/") {
			continue
		}
		data, _ := f.emu.File(path)
		sum := sha256.Sum256(data)
		name := filepath.Base(path)
		matches, _ := filepath.Glob(filepath.Join(f.s.cfg.StateDir, "cache", "*", "*", name))
		found := false
		for _, m := range matches {
			cached, _ := os.ReadFile(m)
			c := sha256.Sum256(cached)
			found = found || hex.EncodeToString(c[:]) == hex.EncodeToString(sum[:])
		}
		if !found {
			t.Errorf("uploaded %s does not match any cached artifact", path)
		}
	}
}

// TestDeployQueue checks that two deploys to one fabric never interleave and that
// the second says behind which deployment it waits.
func TestDeployQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	f := newDeployFixture(t)
	if code, _, _ := f.s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatal("release failed")
	}
	// Slow down job updates so the first deployment holds the fabric for a while.
	f.emu.Inject(dbemu.Fault{Method: "POST", Path: "/api/2.2/jobs/reset", Latency: 2 * time.Second})
	code, out1, _ := f.s.shipline("--output", "json", "deploy", "v1.0.0", "--project", "demo", "--as", "bob")
	if code != 0 {
		t.Fatal("first deploy did not start")
	}
	code, out2, _ := f.s.shipline("--output", "json", "deploy", "v1.0.0", "--project", "demo", "--as", "alice")
	if code != 0 {
		t.Fatal("second deploy did not start")
	}
	var first, second startResultJSON
	_ = json.Unmarshal([]byte(out1), &first)
	_ = json.Unmarshal([]byte(out2), &second)

	// Whichever joined the fabric's queue second waits, and says behind whom.
	sawQueued := false
	for i := 0; i < 200 && !sawQueued; i++ {
		for _, pair := range [][2]string{{second.WorkflowID, first.WorkflowID}, {first.WorkflowID, second.WorkflowID}} {
			code, out, _ := f.s.shipline("status", pair[0])
			sawQueued = sawQueued || (code == 0 && strings.Contains(out, "queued for fabric") && strings.Contains(out, "behind "+pair[1]))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !sawQueued {
		t.Errorf("neither deployment said it was queued behind the other")
	}
	for _, id := range []string{first.WorkflowID, second.WorkflowID} {
		if code, out, _ := f.s.shipline("status", id, "--watch"); code != 0 {
			t.Fatalf("%s did not succeed:\n%s", id, out)
		}
	}
	// Never interleaved: the deployment that finished first did so before the
	// other scheduled any job.
	var a, b workflows.DeployState
	for id, st := range map[string]*workflows.DeployState{first.WorkflowID: &a, second.WorkflowID: &b} {
		_, out, _ := f.s.shipline("--output", "json", "status", id)
		var res struct {
			State workflows.DeployState `json:"state"`
		}
		_ = json.Unmarshal([]byte(out), &res)
		*st = res.State
	}
	if b.Finished.Before(a.Finished) {
		a, b = b, a
	}
	if !a.Finished.Before(b.Jobs[0].At) {
		t.Errorf("interleaved: one finished %v, the other scheduled a job at %v", a.Finished, b.Jobs[0].At)
	}
	f.job(t)
}

func libraries(settings map[string]any) string {
	data, _ := json.Marshal(settings["tasks"])
	return string(data)
}

func pauseStatus(settings map[string]any) string {
	s, _ := settings["schedule"].(map[string]any)
	ps, _ := s["pause_status"].(string)
	return ps
}
