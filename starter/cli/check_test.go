package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/workflows"
)

// checkFixture is the demo example committed in a fresh git repository,
// under proj/ (so annotations must name repository-relative paths), with a
// platform.yaml beside it.
type checkFixture struct {
	repo, proj, platform, root string
}

const checkTokenEnv = "SHIPLINE_CHECK_TEST_TOKEN"

// newCheckFixture copies examples/demo, applies edits (file → content,
// relative to the project) and commits it. The DAG takes its retries from a
// variable outside a string, which fabric local-qa sets to a value that
// breaks it. dailyFabric is daily_orders' fabric; emuURL, when set, defines
// the databricks fabric dbx on the emulator.
func newCheckFixture(t *testing.T, dailyFabric, emuURL string, edits map[string]string) checkFixture {
	t.Helper()
	root := t.TempDir()
	f := checkFixture{root: root, repo: filepath.Join(root, "repo"), platform: filepath.Join(root, "platform.yaml")}
	f.proj = filepath.Join(f.repo, "proj")
	src := filepath.Join("..", "..", "examples", "demo")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if d.Name() == "__pycache__" || strings.HasSuffix(d.Name(), ".egg-info") || d.Name() == "build" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(f.proj, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(f.proj, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	dag := filepath.Join(f.proj, "jobs", "orders_dag", "dag.py")
	data, err := os.ReadFile(dag)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "    catchup=False,\n", "    catchup=False,\n    default_args={\"retries\": ${var.retries}},\n", 1)
	if text == string(data) {
		t.Fatal("the example DAG has no catchup=False line")
	}
	man := fmt.Sprintf(`name: demo
variables: {schema: dev_demo, min_orders: "1", retries: "2"}
pipelines:
  ingest_orders: {path: pipelines/ingest_orders, language: python}
  score_churn:   {path: pipelines/score_churn, language: python}
jobs:
  daily_orders: {scheduler: databricks, fabric: %s, pipelines: [ingest_orders, score_churn], definition: jobs/daily_orders/job.json}
  orders_dag:   {scheduler: airflow, fabric: local-dev, pipelines: [ingest_orders], definition: jobs/orders_dag/dag.py}
fabrics:
  local-qa: {variables: {schema: qa_demo}}
`, dailyFabric)
	files := map[string]string{"shipline.yaml": man, "jobs/orders_dag/dag.py": text}
	for k, v := range edits {
		files[k] = v
	}
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(f.proj, filepath.FromSlash(name))), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.proj, filepath.FromSlash(name)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, f.repo, "init", "-q", "-b", "main")
	git(t, f.repo, "add", "-A")
	git(t, f.repo, "commit", "-q", "-m", "demo")

	fabrics := fmt.Sprintf(`
  local-dev: {kind: local, owner: developers, root: %s, pause_schedules: true}
  local-qa:  {kind: local, owner: developers, root: %s, variables: {retries: "two tries"}}`,
		filepath.Join(root, "fabrics", "dev"), filepath.Join(root, "fabrics", "qa"))
	if emuURL != "" {
		fabrics += fmt.Sprintf("\n  dbx: {kind: databricks, owner: developers, host: %s, token_env: %s, artifact_root: /Volumes/main/shipline/artifacts}", emuURL, checkTokenEnv)
	}
	cfg := fmt.Sprintf("state_dir: %s\nteams:\n  developers: {members: [alice]}\nprojects:\n  demo: {repo: %s, admins: [alice]}\nfabrics:%s\n",
		filepath.Join(root, "state"), f.repo, fabrics)
	if err := os.WriteFile(f.platform, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=Alice", "GIT_AUTHOR_EMAIL=alice@example.com",
		"GIT_COMMITTER_NAME=Alice", "GIT_COMMITTER_EMAIL=alice@example.com",
		"GIT_AUTHOR_DATE=2026-01-01T10:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T10:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// checkGolden runs `shipline check` and compares its output, with the
// fixture's temporary directory written $TMP, with testdata/golden/NAME.
func checkGolden(t *testing.T, name string, f checkFixture, args ...string) (int, string, string) {
	t.Helper()
	return checkGoldenWith(t, name, f, newFake(), args...)
}

func checkGoldenWith(t *testing.T, name string, f checkFixture, fc *fakeClient, args ...string) (int, string, string) {
	t.Helper()
	code, out, errOut := shipline(t, fc, args...)
	norm := func(s string) string { return strings.ReplaceAll(s, f.root, "$TMP") }
	got := fmt.Sprintf("$ shipline %s\nexit %d\n--- stdout\n%s--- stderr\n%s", norm(strings.Join(args, " ")), code, norm(out), norm(errOut))
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return code, out, errOut
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./starter/cli -run %s -update` to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (rerun with -update if the change is intended):\n--- got\n%s--- want\n%s", name, path, got, want)
	}
	return code, out, errOut
}

func skipWithoutPythonBuild(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds real wheels")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import build, pytest").Run(); err != nil {
		t.Skip("needs /usr/bin/python3 with build and pytest")
	}
}

// A clean project passes: validated against platform.yaml, both pipelines
// built and tested, both jobs rendered and checked, and the plan says what a
// deploy would create on the local fabric. A second check of the unchanged
// tree takes both pipelines from the cache and builds nothing.
func TestCheckPassesAndReusesTheCache(t *testing.T) {
	skipWithoutPythonBuild(t)
	t.Setenv("GITHUB_ACTIONS", "")
	f := newCheckFixture(t, "local-dev", "", nil)
	code, out, _ := checkGolden(t, "check_pass_text", f, "check", f.proj, "--platform", f.platform)
	if code != ExitOK || !strings.Contains(out, "built and tested: ingest_orders-") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	logs := filepath.Join(f.root, "state", "logs", "builds")
	before := dirSnapshot(t, logs)
	code, out, _ = checkGolden(t, "check_pass_cached_json", f, "--output", "json", "check", f.proj, "--ref", "main", "--platform", f.platform)
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if code != ExitOK || !rep.Passed || len(rep.Pipelines) != 2 {
		t.Fatalf("exit %d: %+v", code, rep)
	}
	for _, p := range rep.Pipelines {
		if p.Status != "cached" {
			t.Errorf("pipeline %s: %s on an unchanged tree, want cached", p.Pipeline, p.Status)
		}
	}
	if after := dirSnapshot(t, logs); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a check of an unchanged tree wrote build logs:\nbefore %v\nafter  %v", before, after)
	}
}

// An invalid manifest fails the check (exit 1) at validate, skips the rest,
// and on GitHub Actions prints an error annotation at the manifest's
// repository-relative file, line and column.
func TestCheckInvalidManifestAnnotates(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	f := newCheckFixture(t, "local-dev", "", nil)
	man, err := os.ReadFile(filepath.Join(f.proj, "shipline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(man), "pipelines: [ingest_orders]", "pipelines: [ingest_ordrs]", 1)
	if err := os.WriteFile(filepath.Join(f.proj, "shipline.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := checkGolden(t, "check_invalid_manifest", f, "check", f.proj)
	if code != ExitFailed {
		t.Errorf("exit %d, want 1", code)
	}
	line := 1 + strings.Count(bad[:strings.Index(bad, "ingest_ordrs")], "\n")
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^::error file=proj/shipline.yaml,line=%d,col=\d+,title=shipline check%%3A validate::.*ingest_ordrs`, line)).MatchString(out) {
		t.Errorf("no annotation at proj/shipline.yaml:%d:\n%s", line, out)
	}
	if !strings.Contains(out, "::warning title=shipline check%3A build skipped::build: skipped — validation failed in shipline.yaml, jobs/orders_dag/dag.py (see above)") {
		t.Errorf("the skipped build is not a warning:\n%s", out)
	}

	// With --output json, stdout stays one JSON document: the annotations go to stderr.
	code, out, errOut := shipline(t, newFake(), "--output", "json", "check", f.proj)
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != ExitFailed || rep.Passed || rep.Steps[0].Status != stepFailed {
		t.Errorf("exit %d, json %v: %+v\n%s", code, err, rep, out)
	}
	if !strings.Contains(errOut, "::error file=proj/shipline.yaml,line=") {
		t.Errorf("no annotation on stderr with --output json:\n%s", errOut)
	}

	// With an invalid platform.yaml too, the project is still checked on
	// its own: both files' errors are reported and nothing is built.
	if err := os.WriteFile(f.platform, []byte("fabrics: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = shipline(t, newFake(), "check", f.proj, "--platform", f.platform)
	if code != ExitFailed || !strings.Contains(out, "::error file=proj/shipline.yaml,line=") || !strings.Contains(out, "build:    skipped — validation failed in shipline.yaml, jobs/orders_dag/dag.py (see above)") {
		t.Errorf("exit %d; with an invalid platform.yaml the manifest's errors are missing or a build ran:\n%s", code, out)
	}
}

// A DAG that does not compile fails validation; build, render and plan are
// skipped naming the DAG, not shipline.yaml, which is fine.
func TestCheckBadDAGSkipsNamingTheDAG(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	f := newCheckFixture(t, "local-dev", "", map[string]string{"jobs/orders_dag/dag.py": "from airflow import DAG\ndef broken(:\n"})
	code, out, errOut := shipline(t, newFake(), "check", f.proj)
	if code != ExitFailed || !strings.Contains(errOut, "failed at validate") {
		t.Fatalf("exit %d, want 1 at validate\n%s%s", code, out, errOut)
	}
	for _, step := range []string{"build:    ", "render:   ", "plan:     "} {
		if want := step + "skipped — validation failed in jobs/orders_dag/dag.py (see above)"; !strings.Contains(out, want) {
			t.Errorf("want %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "shipline.yaml is invalid") {
		t.Errorf("the skip blames shipline.yaml:\n%s", out)
	}
}

// A --fabric that shipline.yaml does not name is bad usage (exit 2) before
// anything is built, whether render and plan would run with --platform, on
// the worker or not at all; the message names the fabrics the jobs target.
func TestCheckUnknownFabricOnEveryPath(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	f := newCheckFixture(t, "local-dev", "", nil)
	unreachable := &globals{dial: func(*globals) (client.Client, error) {
		return nil, errors.New("failed reaching server: connection refused")
	}}
	want := "--fabric nope is not a fabric of shipline.yaml: its jobs target local-dev and it has overrides for local-qa"
	for name, run1 := range map[string]func() (int, string, string){
		"no worker": func() (int, string, string) {
			var out, errb strings.Builder
			unreachable.stdout, unreachable.stderr = &out, &errb
			code := run(newAppWith(unreachable), []string{"shipline", "--address", "127.0.0.1:1", "check", f.proj, "--fabric", "nope"}, &errb)
			return code, out.String(), errb.String()
		},
		"worker": func() (int, string, string) { return shipline(t, newFake(), "check", f.proj, "--fabric", "nope") },
	} {
		code, out, errOut := run1()
		if code != ExitInvalid || !strings.Contains(errOut, want) {
			t.Errorf("%s: exit %d, want 2 with %q\n%s%s", name, code, want, out, errOut)
		}
		if strings.Contains(out, "build:") {
			t.Errorf("%s: the check ran its steps:\n%s", name, out)
		}
	}
	// With --platform, platform.yaml's own check answers first.
	if code, out, errOut := shipline(t, newFake(), "check", f.proj, "--platform", f.platform, "--fabric", "nope"); code != ExitInvalid || !strings.Contains(errOut, "--fabric nope is not defined in") {
		t.Errorf("--platform: exit %d, want 2\n%s%s", code, out, errOut)
	}
}

// A failing pytest fails the check (exit 1), naming the pipeline and the
// test, with an annotation at the test file's failing line.
func TestCheckFailingTestNamesPipelineAndTest(t *testing.T) {
	skipWithoutPythonBuild(t)
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	test := "from ingest_orders.main import parse_orders\n\n\ndef test_ok():\n    assert parse_orders(\"order_id,customer,amount\\n\") == []\n\n\ndef test_amounts_sum():\n    rows = parse_orders(\"order_id,customer,amount\\n1,ann,10.5\\n\")\n    assert rows[0][\"amount\"] == 11\n"
	f := newCheckFixture(t, "local-dev", "", map[string]string{"pipelines/ingest_orders/tests/test_parse.py": test})
	noWorker := newFake()
	noWorker.pollers["shipline"] = 0
	code, out, errOut := shipline(t, noWorker, "check", f.proj)
	if code != ExitFailed {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, `render:   skipped — no --platform FILE given and no worker polls task queue "shipline" at 127.0.0.1:7233`) {
		t.Errorf("the skipped render does not say why:\n%s", out)
	}
	if !strings.Contains(out, "ingest_orders      TESTS FAILED: tests/test_parse.py::test_amounts_sum") {
		t.Errorf("the report does not name the pipeline and the test:\n%s", out)
	}
	if !strings.Contains(out, "::error file=proj/pipelines/ingest_orders/tests/test_parse.py,line=10,title=shipline check%3A tests of ingest_orders::pipeline ingest_orders: test tests/test_parse.py::test_amounts_sum failed") {
		t.Errorf("no annotation at the failing line:\n%s", out)
	}
	// The advice fits a pull request: there is no release to make.
	if !strings.Contains(out, "fix the failing tests, commit and push") || strings.Contains(out+errOut, "release a new version") {
		t.Errorf("the failing tests' advice should be to fix, commit and push:\n%s\n%s", out, errOut)
	}
	if !strings.Contains(out, "score_churn        built and tested") || !strings.Contains(errOut, "failed at build") {
		t.Errorf("the other pipeline should build, the check fail at build:\n%s\n%s", out, errOut)
	}
}

// A DAG that is valid on its own fabric but not on the one --fabric names
// (whose variables break it) passes validation and fails the render step's
// compile check (exit 1) at the DAG's source line; the plan skips it.
func TestCheckBadDAGForTheFabric(t *testing.T) {
	skipWithoutPythonBuild(t)
	t.Setenv("GITHUB_ACTIONS", "true")
	f := newCheckFixture(t, "local-dev", "", nil)
	code, out, errOut := shipline(t, newFake(), "check", f.proj, "--platform", f.platform, "--fabric", "local-qa")
	if code != ExitFailed || !strings.Contains(errOut, "failed at render") {
		t.Fatalf("exit %d, want 1 at render\n%s\n%s", code, out, errOut)
	}
	dag, _ := os.ReadFile(filepath.Join(f.proj, "jobs", "orders_dag", "dag.py"))
	line := 1 + strings.Count(string(dag)[:strings.Index(string(dag), "default_args")], "\n")
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^::error file=proj/jobs/orders_dag/dag.py,line=%d[,:].*job orders_dag on fabric local-qa`, line)).MatchString(out) {
		t.Errorf("no annotation at dag.py:%d:\n%s", line, out)
	}
	if !strings.Contains(out, "validate: ok") || !strings.Contains(out, "orders_dag         skipped (its definition is invalid)") {
		t.Errorf("validate should pass and the plan skip the DAG:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(f.root, "fabrics", "qa")); !os.IsNotExist(err) {
		t.Errorf("the check wrote to fabric local-qa: %v", err)
	}
}

// The plan reads the local fabric without writing: a job deployed there
// before shows as an update (a new version replaces it), the other as a
// create, and the fabric's files are byte-for-byte as they were.
func TestCheckPlansAgainstLocalFabricWithoutWriting(t *testing.T) {
	skipWithoutPythonBuild(t)
	t.Setenv("GITHUB_ACTIONS", "")
	f := newCheckFixture(t, "local-dev", "", nil)
	deployed := deployJob(t, f, "local-dev", "daily_orders")
	fabricDir := filepath.Join(f.root, "fabrics", "dev")
	before := dirSnapshot(t, fabricDir)
	code, out, errOut := shipline(t, newFake(), "check", f.proj, "--platform", f.platform)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"plan:     ok: read-only against local-dev: 1 to create, 1 to update, 0 unchanged",
		"local-dev      daily_orders       update (" + deployed + "): replaces v1.0.0",
		"local-dev      orders_dag         create",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
	if after := dirSnapshot(t, fabricDir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the check changed the fabric:\nbefore %v\nafter  %v", before, after)
	}
}

// The plan reads the Databricks emulator through the real SDK: the job
// deployed before is an update, and the check sends only reads (no create,
// reset, delete or upload) and leaves the workspace's jobs as they were.
func TestCheckPlansAgainstDatabricksWithoutWriting(t *testing.T) {
	skipWithoutPythonBuild(t)
	t.Setenv("GITHUB_ACTIONS", "")
	emu := dbemu.Start(dbemu.Options{Volumes: []string{"/Volumes/main/shipline/artifacts"}, Tokens: []string{"dapi-check"}})
	t.Cleanup(emu.Close)
	t.Setenv(checkTokenEnv, "dapi-check")
	f := newCheckFixture(t, "dbx", emu.URL, nil)
	id := deployJob(t, f, "dbx", "daily_orders")
	jobsBefore := fmt.Sprintf("%+v", emu.Jobs())
	filesBefore := fmt.Sprint(emu.Files())
	emu.ResetRequests()
	code, out, errOut := shipline(t, newFake(), "check", f.proj, "--platform", f.platform)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"plan:     ok: read-only against dbx, local-dev: 1 to create, 1 to update, 0 unchanged",
		"dbx            daily_orders       update (" + id + "): replaces v1.0.0",
		"local-dev      orders_dag         create",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
	reads := 0
	for _, r := range emu.Requests() {
		if r.Method != "GET" && !strings.HasSuffix(r.Path, "/jobs/list") && !strings.HasSuffix(r.Path, "/jobs/get") {
			t.Errorf("the check sent %s %s", r.Method, r.Path)
		}
		reads++
	}
	if reads == 0 {
		t.Error("the plan never read the workspace")
	}
	if got := fmt.Sprintf("%+v", emu.Jobs()); got != jobsBefore {
		t.Errorf("jobs changed:\nbefore %s\nafter  %s", jobsBefore, got)
	}
	if got := fmt.Sprint(emu.Files()); got != filesBefore {
		t.Errorf("files changed:\nbefore %s\nafter  %s", filesBefore, got)
	}
}

// deployJob puts one job of the fixture on a fabric as release v1.0.0
// would (rendered by the deploy's own code), returning its ID.
func deployJob(t *testing.T, f checkFixture, fab, job string) string {
	t.Helper()
	cfg, diags := platform.Load(f.platform)
	if diags.HasErrors() {
		t.Fatal(diags)
	}

	jobs, err := activities.JobsFor(cfg, mustManifest(t, f.proj), "demo", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if j.Name != job {
			continue
		}
		fb, err := fabric.Open(cfg, fab, os.Getenv)
		if err != nil {
			t.Fatal(err)
		}
		paths := map[string]string{}
		for _, p := range j.Pipelines {
			paths[p] = fb.ArtifactPath("demo", "v1.0.0", p, p+"-1.0.0-py3-none-any.whl")
		}
		spec, err := activities.RenderFrom(cfg, os.DirFS(f.proj), activities.UpsertJobInput{Project: "demo", Version: "v1.0.0",
			Commit: strings.Repeat("1", 40), DeploymentID: "deploy/demo/v1.0.0/x", Job: j, Artifacts: paths})
		if err != nil {
			t.Fatal(err)
		}
		res, err := fb.UpsertJob(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	t.Fatalf("no job %s", job)
	return ""
}

// dirSnapshot lists every file under dir with its size, mode and content hash.
func dirSnapshot(t *testing.T, dir string) []string {
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
		out = append(out, fmt.Sprintf("%s %v %d %x %d", p, fi.Mode(), fi.Size(), data, fi.ModTime().UnixNano()))
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// Annotations escape as GitHub's runner reads them: % CR LF in messages,
// and also : and , in properties.
func TestAnnotationEscaping(t *testing.T) {
	a := annotation{Level: "error", File: "a,b:c.yaml", Line: 3, Col: 7, Title: "t: x", Message: "100% bad\r\nnext line"}
	if got, want := a.String(), "::error file=a%2Cb%3Ac.yaml,line=3,col=7,title=t%3A x::100%25 bad%0D%0Anext line"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got, want := (annotation{Level: "warning", Message: "plan: skipped"}).String(), "::warning::plan: skipped"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// pytest's output names each failing test and, in its traceback section,
// the line of the test file where it failed.
func TestFailedTestsFromPytestOutput(t *testing.T) {
	out := `.F.F                                                                    [100%]
=================================== FAILURES ===================================
_______________________________ test_amounts_sum _______________________________

    def test_amounts_sum():
>       assert helper() == 11
tests/test_parse.py:10: in test_amounts_sum
    assert helper() == 11
tests/test_parse.py:4: in helper
E   AssertionError
tests/test_parse.py:12: AssertionError
____________________________ TestRows.test_empty[1] ____________________________
tests/test_rows.py:20: AssertionError
=========================== short test summary info ============================
FAILED tests/test_parse.py::test_amounts_sum - AssertionError
FAILED tests/test_rows.py::TestRows::test_empty[1] - assert 1 == 0
2 failed, 2 passed in 0.05s`
	got := failedTests(out)
	want := []failedTest{
		{ID: "tests/test_parse.py::test_amounts_sum", Reason: "AssertionError", File: "tests/test_parse.py", Line: 12},
		{ID: "tests/test_rows.py::TestRows::test_empty[1]", Reason: "assert 1 == 0", File: "tests/test_rows.py", Line: 20},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func mustManifest(t *testing.T, dir string) *manifest.Manifest {
	t.Helper()
	m, diags := manifest.Load(os.DirFS(dir))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return m
}

// Bad usage exits 2 before anything is built: no such directory, a ref the
// repository does not have, a --fabric platform.yaml does not define.
func TestCheckUsageErrors(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	f := newCheckFixture(t, "local-dev", "", nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check", filepath.Join(f.root, "nope")}, "is not a directory"},
		{[]string{"check", f.proj, "--ref", "no-such-branch"}, `"no-such-branch" is not a branch, tag or commit`},
		{[]string{"check", f.proj, "--platform", f.platform, "--fabric", "moon"}, "--fabric moon is not defined"},
		{[]string{"check", f.proj, "--platform", filepath.Join(f.root, "missing.yaml")}, "is not a file"},
		{[]string{"check", f.proj, f.proj}, "one directory"},
	} {
		code, out, errOut := shipline(t, newFake(), tc.args...)
		if code != ExitInvalid || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want 2 with %q\n%s%s", tc.args, code, tc.want, out, errOut)
		}
		if _, err := os.Stat(filepath.Join(f.root, "state", "cache")); err == nil {
			t.Errorf("%v built something", tc.args)
		}
	}
}

// Without --platform and without a reachable Temporal, render and plan are
// skipped, saying why (a warning on GitHub), and the check still passes on
// what it could check.
func TestCheckWithoutPlatformOrTemporalSkips(t *testing.T) {
	skipWithoutPythonBuild(t)
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	f := newCheckFixture(t, "local-dev", "", nil)
	var out, errb strings.Builder
	g := &globals{stdout: &out, stderr: &errb, dial: func(*globals) (client.Client, error) {
		return nil, errors.New("failed reaching server: connection refused")
	}}
	code := run(newAppWith(g), []string{"shipline", "--address", "127.0.0.1:1", "check", f.proj}, &errb)
	want := "render:   skipped — no --platform FILE given and no Temporal reachable at 127.0.0.1:1 (failed reaching server: connection refused)"
	if code != ExitOK || !strings.Contains(out.String(), want) {
		t.Errorf("exit %d, want 0 with %q:\n%s%s", code, want, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "::warning title=shipline check%3A plan skipped::plan: skipped — no --platform FILE given and no Temporal reachable at 127.0.0.1%3A1") &&
		!strings.Contains(out.String(), "::warning title=shipline check%3A plan skipped::plan: skipped — no --platform FILE given and no Temporal reachable at 127.0.0.1:1") {
		t.Errorf("no warning annotation for the skipped plan:\n%s", out.String())
	}
}

// Without --platform, a reachable worker renders and plans: the CLI sends
// the manifest and the definitions with the artifacts it built to the
// project entity's check read and reports the answer as its own steps.
func TestGoldenCheckOnWorker(t *testing.T) {
	skipWithoutPythonBuild(t)
	t.Setenv("GITHUB_ACTIONS", "")
	f := newCheckFixture(t, "local-dev", "", nil)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(f.root, "cache"))
	w := newFake()
	w.reads[workflows.CheckUpdate] = activities.CheckTreeOutput{Jobs: []activities.CheckedJob{
		{Job: "orders_dag", Fabric: "local-dev", Render: "failed", Plan: "skipped", Definition: "jobs/orders_dag/dag.py",
			Error:       "the DAG does not compile",
			Diagnostics: diag.List{diag.Errorf("jobs/orders_dag/dag.py", 12, 5, "fix the DAG", "the DAG does not compile")}},
		{Job: "daily_orders", Fabric: "local-dev", Render: "ok", Plan: "update", ID: "42", Detail: "replaces v1.0.0", Definition: "jobs/daily_orders/job.json"},
	}}
	code, _, _ := checkGoldenWith(t, "check_on_worker", f, w, "check", f.proj)
	if code != ExitFailed {
		t.Errorf("exit %d, want 1 (a definition is invalid)", code)
	}
}

// The project's libraries are built and tested by check as a release builds
// them before publishing (nothing is published): a failing library test
// fails the check naming the library and the test; once fixed it passes.
func TestCheckBuildsAndTestsLibraries(t *testing.T) {
	skipWithoutPythonBuild(t)
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	f := newCheckFixture(t, "local-dev", "", map[string]string{
		"libs/common/pyproject.toml":         "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"common\"\nversion = \"0.0.0\"\n\n[tool.setuptools.packages.find]\nwhere = [\"src\"]\n",
		"libs/common/src/common/__init__.py": "def greeting(name):\n    return 'hello ' + name\n",
		"libs/common/tests/test_common.py":   "from common import greeting\n\n\ndef test_greeting():\n    assert greeting('x') == 'hi x'\n",
	})
	man := filepath.Join(f.proj, "shipline.yaml")
	data, err := os.ReadFile(man)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(man, append(data, "libraries:\n  common: {path: libs/common, language: python, index: internal}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	noWorker := newFake()
	noWorker.pollers["shipline"] = 0
	code, out, errOut := shipline(t, noWorker, "check", f.proj)
	if code != ExitFailed {
		t.Fatalf("exit %d, want 1 (the library's test fails)\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"common (library)   TESTS FAILED: tests/test_common.py::test_greeting",
		"::error file=proj/libs/common/tests/test_common.py,line=5,title=shipline check%3A tests of common::library common: test tests/test_common.py::test_greeting failed",
		"1 of 3 failed (2 pipelines and 1 library)",
		"ingest_orders      built and tested",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	test := filepath.Join(f.proj, "libs", "common", "tests", "test_common.py")
	if err := os.WriteFile(test, []byte("from common import greeting\n\n\ndef test_greeting():\n    assert greeting('x') == 'hello x'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = shipline(t, noWorker, "check", f.proj)
	if code != ExitOK {
		t.Fatalf("exit %d after the fix, want 0\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "common (library)   built and tested: common-0.0.0-py3-none-any.whl") || !strings.Contains(out, "2 pipelines and 1 library built and tested, 2 from the cache") {
		t.Errorf("the fixed library is not built and tested:\n%s", out)
	}
}

// Without --platform, check sends the worker what its validation of the
// project reads: besides shipline.yaml and the definitions, each library's
// directory and a Python library's pyproject.toml. The worker's own check
// (activities' CheckTree, run here on what the CLI sent) then accepts a
// project with a library, as `check --platform` does, instead of reporting
// the library's directory as missing.
func TestCheckOnWorkerSendsTheLibraries(t *testing.T) {
	skipWithoutPythonBuild(t)
	t.Setenv("GITHUB_ACTIONS", "")
	f := newCheckFixture(t, "local-dev", "", map[string]string{
		"libs/common/pyproject.toml":         "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"common\"\nversion = \"0.0.0\"\n\n[tool.setuptools.packages.find]\nwhere = [\"src\"]\n",
		"libs/common/src/common/__init__.py": "def greeting(name):\n    return 'hello ' + name\n",
	})
	t.Setenv("XDG_CACHE_HOME", filepath.Join(f.root, "cache"))
	man := filepath.Join(f.proj, "shipline.yaml")
	data, err := os.ReadFile(man)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(man, append(data, "libraries:\n  common: {path: libs/common, language: python, index: internal}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	index := fmt.Sprintf("package_indexes:\n  internal: {kind: simple, url: %q}\n", "file://"+filepath.ToSlash(filepath.Join(f.root, "pypi")))
	pf, err := os.OpenFile(f.platform, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pf.WriteString(index); err != nil {
		t.Fatal(err)
	}
	pf.Close()

	w := newFake()
	w.reads[workflows.CheckUpdate] = activities.CheckTreeOutput{Jobs: []activities.CheckedJob{}}
	if code, out, errOut := shipline(t, w, "check", f.proj); code != ExitOK {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	sent := w.readArgs[workflows.CheckUpdate]
	if len(sent) != 1 {
		t.Fatalf("check sent %d check reads, want 1", len(sent))
	}
	in, ok := sent[0].(activities.CheckTreeInput)
	if !ok {
		t.Fatalf("check read input is %T", sent[0])
	}
	if !slices.Contains(in.Dirs, "libs/common") || in.Files["libs/common/pyproject.toml"] == "" {
		t.Errorf("check did not send the library: dirs %v, files %v", in.Dirs, slices.Sorted(maps.Keys(in.Files)))
	}

	cfg, diags := platform.Load(f.platform)
	if diags.HasErrors() {
		t.Fatalf("platform.yaml: %v", diags)
	}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	d := &activities.Deploy{Platform: cfg}
	env.RegisterActivity(d.CheckTree)
	val, err := env.ExecuteActivity(d.CheckTree, in)
	if err != nil {
		t.Fatal(err)
	}
	var out activities.CheckTreeOutput
	if err := val.Get(&out); err != nil {
		t.Fatal(err)
	}
	if out.Diagnostics.HasErrors() || out.Error != "" {
		t.Errorf("the worker's check of what the CLI sent fails: %v %s", out.Diagnostics, out.Error)
	}
}
