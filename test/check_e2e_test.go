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
	manifest, err := os.ReadFile(filepath.Join("..", "examples", "demo", "shipline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The DAG takes its retries from a variable, outside a string.
	dagText := strings.Replace(string(dag), "    catchup=False,\n", "    catchup=False,\n    default_args={\"retries\": ${var.retries}},\n", 1)
	dagLine := 1 + strings.Count(dagText[:strings.Index(dagText, "default_args")], "\n")
	man := strings.Replace(string(manifest), "  min_orders: \"1\"\n", "  min_orders: \"1\"\n  retries: \"2\"\n", 1)
	man = strings.Replace(man, "    fabric: local\n    pipelines: [ingest_orders, score_churn]", "    fabric: dev\n    pipelines: [ingest_orders, score_churn]", 1)
	man = strings.Replace(man, "    fabric: local\n    pipelines: [ingest_orders]\n", "    fabric: airflow-dev\n    pipelines: [ingest_orders]\n", 1)
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
  prod:        {kind: local, owner: developers, root: %s}
  local:       {kind: local, owner: developers, root: %s, variables: {retries: "two tries"}}
`, remote, emu.URL, devTokenEnv, volume, dags, filepath.Join(root, "prod"), localRoot)
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
