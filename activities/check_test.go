package activities

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/platform"
)

const checkManifest = `name: demo
variables: {doc: "line one\nline two\nline three"}
pipelines:
  ingest: {path: pipelines/ingest, language: python}
jobs:
  daily:
    scheduler: databricks
    fabric: dev
    pipelines: [ingest]
    definition: jobs/daily/job.json
  dag:
    scheduler: airflow
    fabric: af
    pipelines: [ingest]
    definition: jobs/dag/dag.py
  other:
    scheduler: airflow
    fabric: local
    pipelines: [ingest]
    definition: jobs/other/dag.py
`

// CheckJobs renders every job for its fabric and checks it offline: a good
// Databricks job and two broken DAGs give one InvalidDefinition listing both
// DAGs by their source file and line, and nothing reaches any fabric.
func TestCheckJobsListsEveryProblemAndWritesNothing(t *testing.T) {
	d, emu, localRoot, dags := deleteFixture(t)
	remote := newTestRemote(t)
	files := map[string]string{
		"shipline.yaml":                   checkManifest,
		"pipelines/ingest/pyproject.toml": "[project]\nname = \"ingest\"\n",
		"jobs/daily/job.json":             `{"name": "daily", "tasks": [{"task_key": "t", "libraries": [{"whl": "${artifact.ingest}"}]}]}`,
		// The three-line variable on line 3 adds two rendered lines: the
		// error is on line 6 of the source (8 of the rendered DAG).
		"jobs/dag/dag.py":   "from airflow import DAG\n\nDOC = \"\"\"${var.doc}\"\"\"\nwith DAG(dag_id=\"${project.name}__dag\") as dag:\n    WHEEL = \"${artifact.ingest}\"\n    print(WHEEL))\n",
		"jobs/other/dag.py": "from airflow import DAG\n\nwith DAG(dag_id=\"orders\" + VERSION) as dag:\n    pass\n",
	}
	bad := remote.commit(t, files)
	files["jobs/dag/dag.py"] = "from airflow import DAG\n\nDOC = \"\"\"${var.doc}\"\"\"\nwith DAG(dag_id=\"${project.name}__dag\") as dag:\n    WHEEL = \"${artifact.ingest}\"\n"
	files["jobs/other/dag.py"] = "from airflow import DAG\n\nwith DAG(dag_id=\"${project.name}__other\") as dag:\n    pass\n"
	good := remote.commit(t, files)
	d.Platform.Projects["demo"] = platform.Project{Name: "demo", Repo: "file://" + remote.bare, Admins: []string{"alice"}}
	d.Git = &Git{Platform: d.Platform, Getenv: d.Getenv}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(d)
	jobs := []ResolvedJob{
		{Name: "daily", Scheduler: "databricks", Fabric: "dev", Pipelines: []string{"ingest"}, Definition: "jobs/daily/job.json"},
		{Name: "dag", Scheduler: "airflow", Fabric: "af", Pipelines: []string{"ingest"}, Definition: "jobs/dag/dag.py"},
		{Name: "other", Scheduler: "airflow", Fabric: "local", Pipelines: []string{"ingest"}, Definition: "jobs/other/dag.py"},
	}
	check := func(commit string) (CheckJobsOutput, error) {
		t.Helper()
		val, err := env.ExecuteActivity(d.CheckJobs, CheckJobsInput{Project: "demo", Version: "v1.0.0", Commit: commit,
			DeploymentID: "deploy/demo/v1.0.0/1", Jobs: jobs, Files: map[string]string{"ingest": "ingest-1.0-py3-none-any.whl"}})
		var out CheckJobsOutput
		if err == nil {
			err = val.Get(&out)
		}
		return out, err
	}

	_, err := check(bad)
	ae := appError(t, err, apperr.InvalidDefinition)
	for _, want := range []string{
		"2 of 3 job definitions are invalid; nothing was written to any fabric",
		"job dag on fabric af: jobs/dag/dag.py:6:",
		"SyntaxError: unmatched ')'",
		`job other on fabric local: jobs/other/dag.py:3: error: the dag_id is not a string literal, so Shipline cannot check who owns it`,
		"release a new version",
	} {
		if !strings.Contains(ae.Error(), want) {
			t.Errorf("message lacks %q:\n%s", want, ae.Error())
		}
	}
	if strings.Contains(ae.Error(), "job daily") || strings.Contains(ae.Error(), "demo__dag.py") {
		t.Errorf("message names the valid job or the rendered copy:\n%s", ae.Error())
	}

	out, err := check(good)
	if err != nil || out.Checked != 3 {
		t.Fatalf("good definitions: %+v, %v", out, err)
	}
	for _, r := range emu.Requests() {
		if r.Method != "GET" {
			t.Errorf("the check sent %s %s to the Databricks fabric", r.Method, r.Path)
		}
	}
	for _, dir := range []string{localRoot, dags} {
		entries, _ := os.ReadDir(dir)
		if len(entries) != 0 {
			t.Errorf("the check wrote into %s: %v", dir, entries)
		}
	}
	// A dag_id another project owns on a fabric is refused here, before any
	// upload, with the error the schedule step would give.
	owner := filepath.Join(dags, ".shipline", "owners", "demo__dag.json")
	if err := os.MkdirAll(filepath.Dir(owner), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(owner, []byte(`{"dag_id": "demo__dag", "project": "sales", "job": "report"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = check(good)
	ae = appError(t, err, apperr.DagIDOwned)
	for _, want := range []string{
		"job dag on fabric af cannot claim its dag_id:",
		`dag_id "demo__dag" belongs to job report of project sales`,
		owner,
		"give the DAG in jobs/dag/dag.py another dag_id",
	} {
		if !strings.Contains(ae.Error(), want) {
			t.Errorf("message lacks %q:\n%s", want, ae.Error())
		}
	}
}

// A release validates the DAGs at its commit: one that does not compile is an
// error naming its source file and line, before anything is tagged.
func TestValidateManifestCompilesDAGs(t *testing.T) {
	remote := newTestRemote(t)
	commit := remote.commit(t, map[string]string{
		"shipline.yaml": `name: demo
pipelines:
  ingest: {path: pipelines/ingest, language: python}
jobs:
  dag:
    scheduler: airflow
    fabric: dev
    pipelines: [ingest]
    definition: jobs/dag/dag.py
`,
		"pipelines/ingest/pyproject.toml": "[project]\nname = \"ingest\"\n",
		"jobs/dag/dag.py":                 "from airflow import DAG\n\nwith DAG(dag_id=\"${project.name}__dag\") as dag\n    pass\n",
	})
	g := gitActivities(t, remote.bare, nil)
	g.Platform.Fabrics["dev"] = platform.Fabric{Name: "dev", Kind: fabric.KindLocal, Owner: "developers", Settings: fabric.LocalSettings{Root: t.TempDir()}}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(g)
	val, err := env.ExecuteActivity(g.ValidateManifest, ValidateManifestInput{Project: "demo", Commit: commit})
	if err != nil {
		t.Fatal(err)
	}
	var out ValidateManifestOutput
	if err := val.Get(&out); err != nil {
		t.Fatal(err)
	}
	if !out.Diagnostics.HasErrors() || out.Diagnostics[0].File != "jobs/dag/dag.py" || out.Diagnostics[0].Line != 3 ||
		!strings.Contains(out.Diagnostics[0].Summary, "does not compile") {
		t.Fatalf("diagnostics:\n%s", out.Diagnostics.Error())
	}
}
