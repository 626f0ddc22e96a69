package test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/shipline/shipline/test/dbemu"
)

// `shipline check` without --platform asks the worker: a pull request's
// tree (v1.0.0 released and deployed, plus an edited manifest with a new
// job) is built and tested by the CLI, then rendered, checked and planned
// by the worker against the Databricks emulator and a local fabric. The
// plan says update for the deployed jobs and create for the new one; the
// workspace receives only reads, its jobs and files, the local fabric and
// the remote's tags stay as they were.
func TestCheckPlansOnTheWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server and runs real builds")
	}
	emu := dbemu.Start(dbemu.Options{Volumes: []string{volume}, Tokens: []string{goodToken}})
	t.Cleanup(emu.Close)
	t.Setenv(devTokenEnv, goodToken)
	t.Setenv("GITHUB_ACTIONS", "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())

	root := t.TempDir()
	overlay := filepath.Join(root, "overlay")
	man := `name: demo
variables: {schema: dev_demo, min_orders: "1"}
pipelines:
  ingest_orders: {path: pipelines/ingest_orders, language: python}
  score_churn:   {path: pipelines/score_churn, language: python}
jobs:
  daily_orders: {scheduler: databricks, fabric: dev, pipelines: [ingest_orders, score_churn], definition: jobs/daily_orders/job.json}
  orders_dag:   {scheduler: airflow, fabric: local, pipelines: [ingest_orders], definition: jobs/orders_dag/dag.py}
`
	writeTree(t, overlay, map[string]string{"shipline.yaml": man})
	remote, work := fixtureProject(t, root, filepath.Join("..", "examples", "demo"), overlay)
	localRoot := filepath.Join(root, "local")
	cfg := fmt.Sprintf(`
state_dir: state
teams:
  developers: {members: [alice]}
projects:
  demo: {repo: %s, admins: [alice]}
fabrics:
  dev:   {kind: databricks, owner: developers, host: %s, token_env: %s, artifact_root: %s}
  local: {kind: local, owner: developers, root: %s}
`, remote, emu.URL, devTokenEnv, volume, localRoot)
	cfgPath := filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, cfgPath, 0)
	if code, out, errOut := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, errOut)
	}
	jobs := emu.Jobs()
	if len(jobs) != 1 {
		t.Fatalf("release deployed %d Databricks jobs, want 1", len(jobs))
	}

	// The pull request adds a job.
	writeTree(t, work, map[string]string{"shipline.yaml": man +
		"  weekly_orders: {scheduler: databricks, fabric: dev, pipelines: [ingest_orders, score_churn], definition: jobs/daily_orders/job.json}\n"})
	jobsBefore, filesBefore, localBefore := fmt.Sprintf("%+v", emu.Jobs()), fmt.Sprint(emu.Files()), treeSnapshot(t, localRoot)
	emu.ResetRequests()

	code, out, errOut := s.shipline("check", work)
	if code != 0 {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"render:   ok: 3 jobs rendered and checked on the worker at " + s.address,
		"plan:     ok: read-only against dev, local: 1 to create, 2 to update, 0 unchanged",
		fmt.Sprintf("dev            daily_orders       update (%d): replaces v1.0.0", jobs[0].ID),
		"dev            weekly_orders      create",
		"local          orders_dag         update",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
	for _, r := range emu.Requests() {
		if r.Method != "GET" {
			t.Errorf("the check sent %s %s to the workspace", r.Method, r.Path)
		}
	}
	if got := fmt.Sprintf("%+v", emu.Jobs()); got != jobsBefore {
		t.Errorf("the workspace's jobs changed:\nbefore %s\nafter  %s", jobsBefore, got)
	}
	if got := fmt.Sprint(emu.Files()); got != filesBefore {
		t.Errorf("the workspace's files changed:\nbefore %s\nafter  %s", filesBefore, got)
	}
	if got := treeSnapshot(t, localRoot); fmt.Sprint(got) != fmt.Sprint(localBefore) {
		t.Errorf("the local fabric changed:\nbefore %v\nafter  %v", localBefore, got)
	}
	if tags := git(t, remote, "tag", "--list"); tags != "v1.0.0" {
		t.Errorf("the remote's tags are %q, want only v1.0.0", tags)
	}
}

// treeSnapshot lists every file under dir with its mode, content and time.
func treeSnapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		data := []byte{}
		if fi.Mode().IsRegular() {
			if data, err = os.ReadFile(p); err != nil {
				return err
			}
		}
		out = append(out, fmt.Sprintf("%s %v %x %d", p, fi.Mode(), data, fi.ModTime().UnixNano()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}
