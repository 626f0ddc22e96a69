package activities

import (
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
)

func selectionFixture() (*platform.Config, *manifest.Manifest) {
	cfg := &platform.Config{Fabrics: map[string]platform.Fabric{
		"dev":         {Kind: fabric.KindDatabricks},
		"airflow-dev": {Kind: fabric.KindAirflow},
		"local":       {Kind: fabric.KindLocal},
	}}
	man := &manifest.Manifest{Jobs: map[string]manifest.Job{
		"daily": {Scheduler: manifest.Databricks, Fabric: "dev", Pipelines: []string{"a", "b"}},
		"dag":   {Scheduler: manifest.Airflow, Fabric: "airflow-dev", Pipelines: []string{"a"}},
	}}
	return cfg, man
}

func TestSelectJobs(t *testing.T) {
	cfg, man := selectionFixture()
	for _, tc := range []struct {
		name      string
		selective bool
		in        ResolveDeployInput
		want      string // "job→fabric, ..." or an error fragment
	}{
		{"all jobs to their own fabric", false, ResolveDeployInput{}, "dag→airflow-dev, daily→dev"},
		{"override to a fabric that runs both", false, ResolveDeployInput{Fabric: "local"}, "dag→local, daily→local"},
		{"override to a kind that cannot run the DAG", false, ResolveDeployInput{Fabric: "dev"}, "job dag runs on airflow, but fabric dev is a databricks fabric"},
		{"override to an unknown fabric", false, ResolveDeployInput{Fabric: "nope"}, `fabric "nope" is not defined`},
		{"selection refused without selective_jobs", false, ResolveDeployInput{Jobs: []string{"daily"}}, "selective_jobs is off"},
		{"selection", true, ResolveDeployInput{Jobs: []string{"daily", "daily"}}, "daily→dev"},
		{"selection of an unknown job", true, ResolveDeployInput{Jobs: []string{"weekly"}}, `job "weekly" is not defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jobs, err := selectJobs(cfg, man, platform.Project{SelectiveJobs: tc.selective}, tc.in)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				var parts []string
				for _, j := range jobs {
					parts = append(parts, j.Name+"→"+j.Fabric)
				}
				got = strings.Join(parts, ", ")
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
