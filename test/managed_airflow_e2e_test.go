package test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/test/afemu"
)

const composerTokenEnv = "SHIPLINE_E2E_COMPOSER_TOKEN"

// TestManagedAirflowEndToEnd releases the demo onto a managed-airflow fabric
// whose DAG folder and artifacts are a file:// bucket, with the Airflow REST
// stand-in behind a bearer token for pause and unpause; then a second project
// whose DAG claims the demo's dag_id is refused, naming the owner.
func TestManagedAirflowEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server and runs real builds")
	}
	af := afemu.Start(afemu.Options{Version: "v2", Token: "composer-token"})
	t.Cleanup(af.Close)
	af.AddDAG("demo__orders_dag", afemu.Task{ID: "ingest_orders"}) // the scheduler has parsed it
	af.SetPaused("demo__orders_dag", true)
	t.Setenv(composerTokenEnv, "composer-token")

	root := t.TempDir()
	bucket := filepath.Join(root, "composer-bucket")
	// The demo, its DAG bound for the composer fabric.
	demoRemote, demoWork := fixtureProject(t, filepath.Join(root, "demo"), filepath.Join("..", "examples", "demo"))
	manifest, err := os.ReadFile(filepath.Join(demoWork, "shipline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pushFiles(t, demoWork, demoRemote, map[string]string{
		"shipline.yaml": strings.Replace(string(manifest), "scheduler: airflow\n    fabric: local-dev", "scheduler: airflow\n    fabric: composer", 1),
	})
	// A second project whose DAG keeps the dag_id its author wrote: the demo's.
	salesRemote, salesWork := fixtureProject(t, filepath.Join(root, "sales"), filepath.Join("..", "examples", "demo"))
	dag, err := os.ReadFile(filepath.Join(salesWork, "jobs", "orders_dag", "dag.py"))
	if err != nil {
		t.Fatal(err)
	}
	pushFiles(t, salesWork, salesRemote, map[string]string{
		"shipline.yaml": "name: sales\nvariables: {schema: sales}\npipelines:\n  ingest_orders: {path: pipelines/ingest_orders, language: python}\n" +
			"jobs:\n  orders_report:\n    scheduler: airflow\n    fabric: composer\n    pipelines: [ingest_orders]\n    definition: jobs/orders_dag/dag.py\n",
		"jobs/orders_dag/dag.py": strings.Replace(string(dag), `dag_id="${project.name}__orders_dag"`, `dag_id="demo__orders_dag"`, 1),
	})

	dagsURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(bucket, "dags"))}).String()
	cfg := fmt.Sprintf(`
temporal: {namespace: default, task_queue: shipline}
state_dir: state
teams:
  developers: {members: [alice, bob]}
projects:
  demo:  {repo: %s, admins: [alice], auto_deploy: true}
  sales: {repo: %s, admins: [bob], auto_deploy: true}
fabrics:
  local-dev:  {kind: local, owner: developers, root: fabrics/dev}
  local-qa:   {kind: local, owner: developers, root: fabrics/qa}
  local-prod: {kind: local, owner: developers, root: fabrics/prod}
  composer:   {kind: managed-airflow, owner: developers, dags_folder: '%s', airflow_url: '%s', token_env: %s}
`, demoRemote, salesRemote, dagsURL, af.URL, composerTokenEnv)
	cfgPath := filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, cfgPath, 0)

	// 1. The demo's release deploys its DAG and wheel into the bucket and
	// unpauses the DAG through the REST API.
	code, out, errOut := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait")
	if code != 0 || !strings.Contains(out, "deployed v1.0.0 of demo to composer, local-dev (2 jobs)") {
		t.Fatalf("release+deploy: exit %d\n%s\n%s", code, out, errOut)
	}
	dagPath := filepath.Join(bucket, "dags", "demo__orders_dag.py")
	if out, err := exec.Command("/usr/bin/python3", "-m", "py_compile", dagPath).CombinedOutput(); err != nil {
		t.Fatalf("DAG %s does not compile: %v\n%s", dagPath, err, out)
	}
	dagText, _ := os.ReadFile(dagPath)
	wheels, _ := filepath.Glob(filepath.Join(bucket, "data", "shipline", "demo", "v1.0.0", "ingest_orders", "ingest_orders-*.whl"))
	if len(wheels) != 1 || !strings.Contains(string(dagText), wheels[0]) || !strings.Contains(string(dagText), `dag_id="demo__orders_dag"`) {
		t.Fatalf("wheels in the bucket %v; DAG:\n%s", wheels, dagText)
	}
	var owner struct{ Project, Job string }
	if data, err := os.ReadFile(filepath.Join(bucket, "dags", ".shipline", "owners", "demo__orders_dag.json")); err != nil || json.Unmarshal(data, &owner) != nil ||
		owner.Project != "demo" || owner.Job != "orders_dag" {
		t.Fatalf("ownership record: %+v, %v", owner, err)
	}
	if af.Paused("demo__orders_dag") {
		t.Error("the DAG is still paused: the REST API was not called")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(bucket, "dags", ".shipline-tmp", "*")); len(leftovers) != 0 {
		t.Errorf("temporary keys left: %v", leftovers)
	}
	code, out, _ = s.shipline("deployments", "--project", "demo", "--fabric", "composer")
	if code != 0 || !strings.Contains(out, "orders_dag") || strings.Contains(out, "drift") || strings.Contains(out, "missing") {
		t.Errorf("deployments on composer: exit %d\n%s", code, out)
	}

	// 2. The second project's DAG with the same dag_id is refused at the
	// check step, before anything is uploaded; the demo's stays.
	code, out, errOut = s.shipline("--output", "json", "release", "v1.0.0", "--project", "sales", "--as", "bob", "--wait")
	if code == 0 {
		t.Fatalf("a second owner of dag_id demo__orders_dag was accepted:\n%s", out)
	}
	reason := errOut
	if !strings.Contains(reason, "deploy/sales/v1.0.0/release is parked at check") {
		t.Errorf("the sales deployment did not park at check:\n%s", reason)
	}
	for _, want := range []string{`dag_id "demo__orders_dag" belongs to job orders_dag of project demo`, `fabric "composer"`,
		"job orders_report of project sales cannot deploy", "give the DAG in jobs/orders_dag/dag.py another dag_id"} {
		if !strings.Contains(reason, want) {
			t.Errorf("refusal lacks %q:\n%s", want, reason)
		}
	}
	if _, err := os.Stat(filepath.Join(bucket, "dags", "sales__orders_report.py")); !os.IsNotExist(err) {
		t.Errorf("the refused DAG reached the bucket: %v", err)
	}
	if uploaded, _ := filepath.Glob(filepath.Join(bucket, "data", "shipline", "sales", "*")); len(uploaded) != 0 {
		t.Errorf("the refused deployment uploaded artifacts: %v", uploaded)
	}
	if now, _ := os.ReadFile(dagPath); string(now) != string(dagText) {
		t.Error("the demo's DAG changed")
	}

	// 3. A plan says so too, before any deploy tries.
	code, out, errOut = s.shipline("plan", "v1.0.0", "--project", "sales", "--as", "bob")
	if code == 0 || !strings.Contains(out+errOut, `dag_id "demo__orders_dag" belongs to job orders_dag of project demo`) ||
		!strings.Contains(out+errOut, "job orders_report on fabric composer cannot claim its dag_id") || strings.Contains(out+errOut, "read job") {
		t.Errorf("plan of the second owner: exit %d\n%s\n%s", code, out, errOut)
	}
}

// pushFiles writes files into the work tree, commits and pushes them.
func pushFiles(t *testing.T, work, remote string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(work, filepath.FromSlash(name))
		mkdirs(t, filepath.Dir(p))
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, work, "add", ".")
	git(t, work, "commit", "-q", "-m", "target the composer fabric")
	git(t, work, "push", "-q", remote, "main")
}
