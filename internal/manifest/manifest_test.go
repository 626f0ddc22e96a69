// The platform config is read with the fabric kinds internal/fabric registers.
package manifest_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/shipline/shipline/internal/diag"
	_ "github.com/shipline/shipline/internal/fabric" // registers the fabric kinds
	. "github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
)

var update = flag.Bool("update", false, "rewrite the golden want.txt files")

// TestGolden loads each testdata/<case>/ project and compares the diagnostics
// with testdata/<case>/want.txt. A case with a platform.yaml is checked with
// Validate (Load + CheckPlatform) against it.
func TestGolden(t *testing.T) {
	cases, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if !c.IsDir() || c.Name() == "fuzz" { // testdata/fuzz holds the fuzz seeds
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata", c.Name())
			fsys := os.DirFS(dir)
			var diags diag.List
			if data, err := os.ReadFile(filepath.Join(dir, "platform.yaml")); err == nil {
				cfg, pd := platform.Parse("platform.yaml", data, dir)
				if pd.HasErrors() {
					t.Fatalf("invalid platform.yaml in the test case:\n%s", pd.Error())
				}
				_, diags = Validate(fsys, cfg, "")
			} else {
				_, diags = Load(fsys)
			}
			got := diags.Error() + "\n"
			if len(diags) == 0 {
				got = "ok\n"
			}
			wantFile := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", wantFile, got, want)
			}
		})
	}
}

func TestValidManifest(t *testing.T) {
	m, diags := Load(os.DirFS(filepath.Join("testdata", "valid")))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if m.Name != "customer360" || m.Variables["schema"] != "dev_customer360" {
		t.Fatalf("name/variables: %+v", m)
	}
	sc := m.Pipelines["score_churn"]
	if sc.Name != "score_churn" || sc.Language != Scala || sc.Build != "sbt -batch package" || sc.Artifact != "target/scala-2.12/*.jar" {
		t.Fatalf("score_churn = %+v", sc)
	}
	j := m.Jobs["daily_orders"]
	if j.Scheduler != Databricks || j.Fabric != "dev" || strings.Join(j.Pipelines, ",") != "ingest_orders,score_churn" ||
		j.Definition != "jobs/daily_orders/job.json" {
		t.Fatalf("daily_orders = %+v", j)
	}
	o := m.Fabrics["prod"]
	if o.Variables["schema"] != "customer360" || o.Jobs["daily_orders"].Paused == nil || *o.Jobs["daily_orders"].Paused {
		t.Fatalf("prod overrides = %+v", o)
	}
}

func TestVariablesAreStringified(t *testing.T) {
	m, diags := Parse(FileName, []byte("name: p\nvariables: {n: 3, b: true, f: 0.5, s: x}\npipelines: {p: {path: p, language: python}}\n"))
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	for k, want := range map[string]string{"n": "3", "b": "true", "f": "0.5", "s": "x"} {
		if m.Variables[k] != want {
			t.Errorf("variables.%s = %q, want %q", k, m.Variables[k], want)
		}
	}
}

func TestDefinitionTooLarge(t *testing.T) {
	fsys := fstest.MapFS{
		"shipline.yaml": {Data: []byte("name: p\npipelines: {p: {path: p, language: python}}\n" +
			"jobs: {j: {scheduler: airflow, fabric: f, pipelines: [p], definition: dag.py}}\n")},
		"p/setup.py": {Data: []byte("")},
		"dag.py":     {Data: make([]byte, MaxFileSize+1)},
	}
	_, diags := Load(fsys)
	want := "shipline.yaml:3:71: error: job \"j\": definition dag.py is too large (1048577 bytes; the limit is 1048576 bytes = 1 MiB)\n" +
		"    fix: keep definitions small: move data and code into the pipelines, not the job definition"
	if diags.Error() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", diags.Error(), want)
	}
}

func TestCheckPlatformProjectFlag(t *testing.T) {
	m, diags := Load(os.DirFS(filepath.Join("testdata", "valid")))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "valid_platform", "platform.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, pd := platform.Parse("platform.yaml", data, t.TempDir())
	if pd.HasErrors() {
		t.Fatal(pd)
	}
	if d := CheckPlatform(m, cfg, ""); len(d) != 0 {
		t.Fatalf("unexpected: %v", d)
	}
	d := CheckPlatform(m, cfg, "other")
	want := "shipline.yaml:1:7: error: shipline.yaml names project \"customer360\" but the project is \"other\"\n" +
		"    fix: set name: other, or use --project customer360\n" +
		"shipline.yaml:1:7: error: project \"other\" is not registered in the platform config\n" +
		"    fix: ask the platform admins to add it under projects: in the platform config, or fix the name (registered projects: customer360)"
	if d.Error() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", d.Error(), want)
	}
	// A manifest that went through JSON has no positions: diagnostics name fields.
	m2 := &Manifest{Name: "x", Jobs: map[string]Job{"j": {Name: "j", Scheduler: Airflow, Fabric: "dev"}}}
	d = CheckPlatform(m2, cfg, "")
	if len(d) != 2 || d[0].Field != "name" || d[1].Field != "jobs.j.fabric" {
		t.Fatalf("field diagnostics: %#v", d)
	}
}
