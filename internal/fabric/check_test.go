package fabric

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/templating"
)

// A DAG rendered from jobs/orders/dag.py that does not compile is reported at
// its line in that file, also when a variable's value added lines before it,
// by the offline check and by the airflow fabric's upsert (which writes nothing).
func TestRenderedDAGErrorsNameTheSourceLine(t *testing.T) {
	requirePython(t)
	src := "from airflow import DAG\nDOC = '''${var.doc}'''\nwith DAG(dag_id=\"${project.name}__orders\") as dag:\n    x = (1,\n"
	spec, err := RenderJobSpec(RenderInput{Project: "demo", Version: "v1.0.0", Fabric: "af",
		Job:        manifest.Job{Name: "orders", Scheduler: manifest.Airflow, Definition: "jobs/orders/dag.py"},
		Definition: []byte(src), Variables: map[string]string{"doc": "one\ntwo\nthree"}}, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(spec.Definition), "\n"); n != 6 {
		t.Fatalf("rendered %d lines, want 6 (the value adds two)", n)
	}
	cfg, dags, _ := airflowConfig(t, "")
	upsert := func() error { _, err := openAirflow(t, cfg).UpsertJob(context.Background(), spec); return err }
	for name, run := range map[string]func() error{
		"check":  func() error { return CheckDAG(context.Background(), nil, spec) },
		"upsert": upsert,
	} {
		fe := permanentKind(t, run(), apperr.InvalidDefinition)
		// Python reports the unclosed "(" of source line 4 (rendered line 6).
		if !strings.Contains(fe.Msg, "jobs/orders/dag.py:4:") || strings.Contains(fe.Msg, "demo__orders.py") ||
			!strings.Contains(fe.Msg, "SyntaxError") {
			t.Errorf("%s: message: %s", name, fe.Msg)
		}
	}
	if names := dirNames(t, dags); len(names) != 0 {
		t.Errorf("dags folder holds %v", names)
	}
}

// A filled-in line keeps its line but not its column (the value shifted it).
func TestDAGSourcePos(t *testing.T) {
	s := dagSource{file: "jobs/x/dag.py", lines: []templating.Line{{Source: 1}, {Source: 2, Filled: true}, {Source: 2, Filled: true}, {Source: 3}}}
	for _, tc := range []struct{ line, col, wantLine, wantCol int }{
		{2, 5, 1, 5}, {3, 5, 2, 0}, {4, 9, 2, 0}, {5, 7, 3, 7}, {9, 1, 8, 1},
	} {
		if l, c := s.pos(tc.line, tc.col); l != tc.wantLine || c != tc.wantCol {
			t.Errorf("pos(%d, %d) = %d:%d, want %d:%d", tc.line, tc.col, l, c, tc.wantLine, tc.wantCol)
		}
	}
}

// validate compiles a project's DAGs for their fabrics; without Python it
// says so in one warning instead of failing.
func TestCheckProjectDAGs(t *testing.T) {
	requirePython(t)
	fsys := fstest.MapFS{
		"shipline.yaml": {Data: []byte("name: demo\npipelines:\n  p: {path: p, language: python}\njobs:\n" +
			"  good: {scheduler: airflow, fabric: af, pipelines: [p], definition: jobs/good.py}\n" +
			"  bad: {scheduler: airflow, fabric: af, pipelines: [p], definition: jobs/bad.py}\n")},
		"p/pyproject.toml": {Data: []byte("[project]\nname = \"p\"\n")},
		"jobs/good.py":     {Data: []byte("from airflow import DAG\nDAG(dag_id=\"${project.name}__good\", tags=[\"${artifact.p}\"])\n")},
		"jobs/bad.py":      {Data: []byte("from airflow import DAG\nDAG(dag_id=\"${project.name}__good\")\n")},
	}
	m, diags := manifest.Load(fsys)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got := CheckProjectDAGs(context.Background(), fsys, m, nil, "", nil)
	if len(got) != 1 || got[0].File != "jobs/good.py" || !strings.Contains(got[0].Summary, `job "good" defines dag_id "demo__good", like job "bad", for fabric "af"`) {
		t.Fatalf("diagnostics:\n%s", got.Error())
	}
	noPython := func(k string) string { return map[string]string{"SHIPLINE_PYTHON": "/nonexistent/python3"}[k] }
	got = CheckProjectDAGs(context.Background(), fsys, m, nil, "", noPython)
	if len(got) != 1 || got.HasErrors() || !strings.Contains(got[0].Summary, `no Python interpreter "/nonexistent/python3"`) {
		t.Fatalf("without python:\n%s", got.Error())
	}
}
