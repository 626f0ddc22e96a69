package scaffold

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestDagIDs(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`with DAG("a__b", schedule=None) as d: pass`, "a__b"},
		{"with DAG(\n    dag_id=\"${project.name}__orders\",\n) as d: pass", "${project.name}__orders"},
		{"DAG_ID = 'orders_daily'\nwith DAG(dag_id=DAG_ID, catchup=False) as d: pass", "orders_daily"},
		{"@dag(schedule=None)\ndef nightly():\n    pass", "nightly"},
		{"@dag(dag_id='x__y')\ndef ignored():\n    pass", "x__y"},
		{"DAG(f\"{name}\")", ""},
		{"first = DAG('a')\nsecond = DAG('b')", "a,b"},
	} {
		if got := strings.Join(dagIDs(tc.src), ","); got != tc.want {
			t.Errorf("dagIDs(%q) = %q, want %q", tc.src, got, tc.want)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"Orders ETL": "orders_etl", "2024-jobs": "job_2024-jobs", "demo": "demo", "__x__": "x", "": "job",
	} {
		if got := sanitizeName(in, "job"); got != want {
			t.Errorf("sanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// A pipeline nested in another is part of it; a pyproject.toml with tool
// settings only is not a pipeline; a Maven aggregator is not one, its modules are.
func TestFindPipelines(t *testing.T) {
	fsys := fstest.MapFS{
		"pyproject.toml":                      {Data: []byte("[tool.black]\nline-length = 100\n")},
		"a/pyproject.toml":                    {Data: []byte("[project]\nname = \"A-Lib\"\n[project.scripts]\nrun-a = \"a.cli:main\"\n")},
		"a/src/a_lib/__init__.py":             {},
		"a/vendor/b/setup.py":                 {Data: []byte("setup(name='b')")},
		"parent/pom.xml":                      {Data: []byte("<project><artifactId>p</artifactId><packaging>pom</packaging></project>")},
		"parent/mod/pom.xml":                  {Data: []byte("<project><artifactId>mod</artifactId><version>1.2</version></project>")},
		"parent/mod/src/main/java/x/y/Z.java": {},
	}
	found, err := walk(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range findPipelines(fsys, found.dirs) {
		got = append(got, p.Name+" "+p.Path+" "+string(p.Language)+" "+p.Artifact+" "+strings.Join(p.Names, ",")+" "+strings.Join(p.Scripts, ",")+" "+strings.Join(p.Packages, ","))
	}
	want := "a a python  a_lib run_a \nmod parent/mod java target/mod-1.2.jar mod  x.y"
	if strings.Join(got, "\n") != want {
		t.Fatalf("pipelines:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
}

// Two DAGs with the same dag_id (once ${project.name} is filled in): the
// second is commented out, saying why (a fabric takes one owner per dag_id).
func TestDuplicateDagJobs(t *testing.T) {
	dag := func(id string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("from airflow import DAG\n\nwith DAG(dag_id=\"" + id + "\") as d:\n    pass  # ${artifact.p}\n")}
	}
	fsys := fstest.MapFS{
		"p/pyproject.toml": {Data: []byte("[project]\nname = \"p\"\n")},
		"a/dag.py":         dag("${project.name}__load"),
		"b/dag.py":         dag("demo__load"),
	}
	r, err := Init(fsys, Options{DirName: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	byDef := map[string]Job{}
	for _, j := range r.Jobs {
		byDef[j.Definition] = j
	}
	if a, b := byDef["a/dag.py"], byDef["b/dag.py"]; len(r.Jobs) != 2 || a.Name != "load" || a.Disabled != "" ||
		!strings.Contains(b.Disabled, `dag_id "demo__load" is the DAG's of a/dag.py already`) {
		t.Fatalf("jobs %+v", r.Jobs)
	}
}
