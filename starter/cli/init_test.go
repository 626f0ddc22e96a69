package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/scaffold"
)

// initRepo copies a fixture repository into a fresh directory named name
// (init takes the project's name from it), without the files listed in drop.
func initRepo(t *testing.T, src, name string, drop ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if d.Name() == "__pycache__" || d.Name() == ".shipline" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range drop {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// goldenInit compares init's exit code, output and written shipline.yaml with
// testdata/golden/NAME.golden (the repository's directory shown as <DIR>).
func goldenInit(t *testing.T, name, dir string, code int, stdout, stderr string) {
	t.Helper()
	written, err := os.ReadFile(filepath.Join(dir, "shipline.yaml"))
	if err != nil && code == ExitOK {
		t.Fatalf("init exited 0 but wrote no shipline.yaml: %v", err)
	}
	got := strings.ReplaceAll("exit "+strconv.Itoa(code)+"\n--- stdout\n"+stdout+"--- stderr\n"+stderr+"--- shipline.yaml\n"+string(written), dir, "<DIR>")
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./starter/cli -run %s -update` to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (rerun with -update if the change is intended):\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

// init on repositories of each kind: what it writes passes `validate`, and its
// output and file are the golden ones.
func TestInitWritesAManifestValidateAccepts(t *testing.T) {
	for _, tc := range []struct {
		golden, src, name string
		drop              []string
		pipelines, jobs   int
	}{
		// The README's example project, without its shipline.yaml: init finds
		// what the hand-written one declares.
		{"init_demo", filepath.Join("..", "..", "examples", "demo"), "demo", []string{"shipline.yaml"}, 2, 2},
		// Maven (java) and sbt (scala) projects and a Databricks job running both.
		{"init_jvm", filepath.Join("testdata", "init", "jvm"), "jvm", nil, 2, 1},
		// Python (setup.py, poetry), a Maven aggregator with a scala module,
		// DAGs and jobs that can and cannot be enabled, files that are not jobs.
		{"init_mixed", filepath.Join("testdata", "init", "mixed"), "mixed", nil, 3, 3},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			dir := initRepo(t, tc.src, tc.name, tc.drop...)
			code, stdout, stderr := shipline(t, newFake(), "init", dir)
			goldenInit(t, tc.golden, dir, code, stdout, stderr)
			if code != ExitOK {
				t.Fatalf("init: exit %d\n%s", code, stderr)
			}
			code, stdout, stderr = shipline(t, newFake(), "--output", "json", "validate", dir)
			var res validateResult
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("validate output: %v\n%s", err, stdout)
			}
			if code != ExitOK || !res.Valid || res.Pipelines != tc.pipelines || res.Jobs != tc.jobs {
				t.Fatalf("validate of init's shipline.yaml: exit %d, %+v\n%s", code, res, stderr)
			}
		})
	}
}

// The demo's generated manifest declares what the hand-written one does:
// the same pipelines and, per job, the same scheduler, pipelines and definition.
func TestInitFindsWhatTheDemoDeclares(t *testing.T) {
	dir := initRepo(t, filepath.Join("..", "..", "examples", "demo"), "demo", "shipline.yaml")
	res, err := scaffold.Init(os.DirFS(dir), scaffold.Options{DirName: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range res.Pipelines {
		got = append(got, p.Name+" "+p.Path+" "+string(p.Language))
	}
	for _, j := range res.Jobs {
		got = append(got, j.Name+" "+string(j.Scheduler)+" "+strings.Join(j.Pipelines, ",")+" "+j.Definition+" "+j.Disabled)
	}
	want := []string{
		"ingest_orders pipelines/ingest_orders python",
		"score_churn pipelines/score_churn python",
		"daily_orders databricks ingest_orders,score_churn jobs/daily_orders/job.json ",
		"orders_dag airflow ingest_orders jobs/orders_dag/dag.py ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A repository with nothing to build: a clear message, exit 1, nothing written.
func TestInitNothingFound(t *testing.T) {
	dir := initRepo(t, filepath.Join("testdata", "init", "empty"), "empty")
	code, stdout, stderr := shipline(t, newFake(), "init", dir)
	goldenInit(t, "init_empty", dir, code, stdout, stderr)
	if code != ExitFailed || !strings.Contains(stderr, "no pipeline found") || !strings.Contains(stderr, "jobs/report.json") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "shipline.yaml")); err == nil {
		t.Fatal("init wrote shipline.yaml for a repository with no pipeline")
	}
}

// A repository with pipelines and no job definitions: init says it found no
// jobs and what it looked for, not "found 0 jobs:" over an empty list.
func TestInitNoJobs(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"pipelines/ingest/pyproject.toml":         "[project]\nname = \"ingest\"\nversion = \"1.0.0\"\n",
		"pipelines/ingest/src/ingest/__init__.py": "",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := shipline(t, newFake(), "init", dir)
	if code != ExitOK || !strings.Contains(stdout, "found no jobs (looked for Databricks Jobs API job settings in .json files and Airflow DAGs") || strings.Contains(stdout, "found 0 jobs") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
}

// An existing shipline.yaml is kept unless --force; the output is the same
// on every run.
func TestInitRefusesToOverwrite(t *testing.T) {
	dir := initRepo(t, filepath.Join("..", "..", "examples", "demo"), "demo")
	file := filepath.Join(dir, "shipline.yaml")
	before, _ := os.ReadFile(file)
	code, _, stderr := shipline(t, newFake(), "init", dir)
	if code != ExitFailed || !strings.Contains(stderr, "already exists") || !strings.Contains(stderr, "--force") {
		t.Fatalf("init over an existing shipline.yaml: exit %d, stderr %q", code, stderr)
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Fatal("init changed an existing shipline.yaml without --force")
	}
	if code, _, stderr := shipline(t, newFake(), "init", "--force", dir); code != ExitOK {
		t.Fatalf("init --force: exit %d\n%s", code, stderr)
	}
	first, _ := os.ReadFile(file)
	if code, _, stderr := shipline(t, newFake(), "init", "--force", dir); code != ExitOK {
		t.Fatalf("init --force again: exit %d\n%s", code, stderr)
	}
	if second, _ := os.ReadFile(file); string(second) != string(first) || !strings.Contains(string(first), "orders_dag:") {
		t.Fatalf("two runs wrote different files:\n%s\n---\n%s", first, second)
	}
}

// --name sets the project's name: a DAG's literal dag_id "<name>__<job>" is
// read with it.
func TestInitName(t *testing.T) {
	dir := initRepo(t, filepath.Join("testdata", "init", "mixed"), "elsewhere")
	code, stdout, stderr := shipline(t, newFake(), "--output", "json", "init", "--name", "mixed", dir)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var res scaffold.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	enabled := map[string]bool{}
	for _, j := range res.Jobs {
		enabled[j.Name] = j.Disabled == ""
	}
	if res.Project != "mixed" || !enabled["customers_load"] {
		t.Fatalf("project %q, jobs %+v", res.Project, res.Jobs)
	}
	if code, _, stderr := shipline(t, newFake(), "init", "--force", "--name", "Not Valid", dir); code != ExitFailed || !strings.Contains(stderr, "--name") {
		t.Fatalf("invalid --name: exit %d, %q", code, stderr)
	}
}
