package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/test/dbemu"
)

// A deploy renders and checks every job for every target fabric before it
// writes anything. The release validated its DAG for the job's own fabric;
// deployed with --fabric local, whose variables break the DAG, the deployment
// fails at check with the source file:line, and the local fabric receives
// neither artifacts nor the (valid) Databricks job.
func TestDeployChecksEveryDefinitionBeforeWriting(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server and runs real builds")
	}
	emu := dbemu.Start(dbemu.Options{Volumes: []string{volume}, Tokens: []string{goodToken}})
	t.Cleanup(emu.Close)
	t.Setenv(devTokenEnv, goodToken)

	root := t.TempDir()
	overlay := filepath.Join(root, "overlay")
	dag, err := os.ReadFile(filepath.Join("..", "examples", "demo", "jobs", "orders_dag", "dag.py"))
	if err != nil {
		t.Fatal(err)
	}
	// The project's own manifest: the example's pipelines and definitions, its
	// jobs on a Databricks and an Airflow fabric.
	man := `name: demo
variables: {schema: dev_demo, min_orders: "1", retries: "2"}
pipelines:
  ingest_orders: {path: pipelines/ingest_orders, language: python}
  score_churn:   {path: pipelines/score_churn, language: python}
jobs:
  daily_orders: {scheduler: databricks, fabric: dev, pipelines: [ingest_orders, score_churn], definition: jobs/daily_orders/job.json}
  orders_dag:   {scheduler: airflow, fabric: airflow-dev, pipelines: [ingest_orders], definition: jobs/orders_dag/dag.py}
`
	// The DAG takes its retries from a variable, outside a string.
	dagText := strings.Replace(string(dag), "    catchup=False,\n", "    catchup=False,\n    default_args={\"retries\": ${var.retries}},\n", 1)
	if dagText == string(dag) {
		t.Fatal("the example DAG has no catchup=False line to add default_args after")
	}
	dagLine := 1 + strings.Count(dagText[:strings.Index(dagText, "default_args")], "\n")
	writeTree(t, overlay, map[string]string{"shipline.yaml": man, "jobs/orders_dag/dag.py": dagText})
	remote, _ := fixtureProject(t, root, filepath.Join("..", "examples", "demo"), overlay)
	dags, localRoot := filepath.Join(root, "airflow", "dags"), filepath.Join(root, "local")
	mkdirs(t, dags)
	cfg := fmt.Sprintf(`
state_dir: state
teams:
  developers: {members: [alice, bob]}
projects:
  demo: {repo: %s, admins: [alice], auto_deploy: false}
fabrics:
  dev:         {kind: databricks, owner: developers, host: %s, token_env: %s, artifact_root: %s}
  airflow-dev: {kind: airflow, owner: developers, dags_folder: %s, artifact_fabric: dev}
  local:       {kind: local, owner: developers, root: %s, variables: {retries: "two tries"}}
`, remote, emu.URL, devTokenEnv, volume, dags, localRoot)
	cfgPath := filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, cfgPath, 0)

	if code, out, errOut := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut := s.shipline("deploy", "v1.0.0", "--project", "demo", "--fabric", "local", "--as", "bob", "--wait")
	all := out + errOut
	if code != 1 || !strings.Contains(all, fmt.Sprintf("jobs/orders_dag/dag.py:%d", dagLine)) || !strings.Contains(all, "nothing was written to any fabric") {
		t.Fatalf("deploy: exit %d, want 1 naming jobs/orders_dag/dag.py:%d\n%s", code, dagLine, all)
	}
	if entries, _ := os.ReadDir(localRoot); len(entries) != 0 {
		t.Errorf("the local fabric received %v despite the invalid DAG", entries)
	}
	if n := emu.CountRequests("POST", "/api/2.2/jobs/create"); n != 0 {
		t.Errorf("%d Databricks jobs created", n)
	}
}

// writeTree writes files (slash paths) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		mkdirs(t, filepath.Dir(p))
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
