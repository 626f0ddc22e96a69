package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/metrics/metricstest"
	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/test/testkit"
)

// A release with auto_deploy, a redeploy and a refused deploy on a worker
// serving metrics: Shipline's metrics count what happened.
func TestMetricsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server and runs real builds")
	}
	emu := dbemu.Start(dbemu.Options{Volumes: []string{volume}, Tokens: []string{goodToken}, Seed: 7})
	t.Cleanup(emu.Close)
	t.Setenv(devTokenEnv, goodToken)

	root := t.TempDir()
	remote, _ := fixtureProject(t, root, projectTrees...)
	dags := filepath.Join(root, "airflow", "dags")
	mkdirs(t, dags)
	cfgPath := filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
temporal: {namespace: default, task_queue: shipline}
state_dir: %s
teams:
  developers:   {members: [alice, bob]}
  prod_support: {members: [carol]}
projects:
  demo: {repo: %s, admins: [alice], auto_deploy: true}
fabrics:
  dev:         {kind: databricks, owner: developers, host: %s, token_env: %s, artifact_root: %s, pause_schedules: true}
  prod:        {kind: databricks, owner: prod_support, host: %s, token_env: %s, artifact_root: %s}
  airflow-dev: {kind: airflow, owner: developers, dags_folder: %s, artifact_fabric: dev}
`, filepath.Join(root, "state"), remote, emu.URL, devTokenEnv, volume, emu.URL, devTokenEnv, volume, dags)), 0o644); err != nil {
		t.Fatal(err)
	}
	s, metricsURL := startMetricsStack(t, cfgPath)

	if code, out, errOut := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release+deploy: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := s.shipline("deploy", "v1.0.0", "--project", "demo", "--as", "bob", "--wait"); code != 0 {
		t.Fatalf("redeploy: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, _ := s.shipline("deploy", "v1.0.0", "--project", "demo", "--as", "bob", "--fabric", "prod", "--wait"); code != 1 {
		t.Fatalf("deploy to prod as bob: exit %d, want 1 (refused)", code)
	}

	fams := metricstest.MustScrape(t, metricsURL)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"shipline_deploys_total", []string{"outcome=succeeded"}, 2},
		{"shipline_deploys_total", []string{"outcome=refused"}, 1},
		{"shipline_deploys_total", []string{"outcome=failed"}, 0},
		{"shipline_deploys_total", []string{"outcome=parked"}, 0},
		// Three pipelines (two Python wheels, one Java jar): built and
		// tested by the release before its tag, then from the cache in the
		// release's deploy and in the redeploy.
		{"shipline_build_cache_total", []string{"result=miss"}, 3},
		{"shipline_build_cache_total", []string{"result=hit"}, 6},
		{"shipline_build_duration_seconds", []string{"language=python"}, 2},
		{"shipline_build_duration_seconds", []string{"language=java"}, 1},
		// The Databricks job is created, then left unchanged; so is the DAG.
		{"shipline_job_upserts_total", []string{"fabric_kind=databricks", "action=created"}, 1},
		{"shipline_job_upserts_total", []string{"fabric_kind=databricks", "action=unchanged"}, 1},
		{"shipline_job_upserts_total", []string{"fabric_kind=airflow", "action=created"}, 1},
		{"shipline_job_upserts_total", []string{"fabric_kind=airflow", "action=unchanged"}, 1},
	} {
		if got := fams.Value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := fams.Value("shipline_upload_duration_seconds", "fabric_kind=databricks"); got < 2 {
		t.Errorf("databricks uploads timed = %v, want at least 2 (one per deploy)", got)
	}
	for _, name := range []string{"temporal_workflow_completed", "temporal_activity_execution_latency", "temporal_long_request"} {
		if fams.Value(name, "namespace=default") == 0 {
			t.Errorf("SDK metric %s not recorded; SDK families %v", name, fams.Names("temporal_"))
		}
	}
}

// startMetricsStack is startStack with the worker's metrics served on a free
// port; it returns the stack and the metrics URL.
func startMetricsStack(t *testing.T, cfgPath string) (*stack, string) {
	t.Helper()
	k := testkit.Start(t, cfgPath, testkit.Options{MetricsAddr: "127.0.0.1:0"})
	if !strings.HasSuffix(k.MetricsURL, "/metrics") {
		t.Fatalf("MetricsURL = %q", k.MetricsURL)
	}
	return &stack{t: t, kit: k, cfg: k.Config, cfgPath: cfgPath, address: k.Address, uiURL: k.UIURL, tempPort: k.TemporalPort}, k.MetricsURL
}
