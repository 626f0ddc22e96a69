package activities

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/platform"
)

// demoRemote pushes examples/demo to a new remote and returns Deploy
// activities for it with one local fabric, and the commit.
func demoRemote(t *testing.T) (*Deploy, string) {
	t.Helper()
	r := newTestRemote(t)
	files := map[string]string{}
	src := filepath.Join("..", "examples", "demo")
	err := filepath.WalkDir(src, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(src, p)
		files[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	commit := r.commit(t, files)
	g := gitActivities(t, r.bare, nil)
	g.Platform.Fabrics["local"] = platform.Fabric{Name: "local", Kind: fabric.KindLocal, Owner: "developers", Settings: fabric.LocalSettings{Root: t.TempDir()}}
	return &Deploy{Git: g, Platform: g.Platform}, commit
}

// A plan that takes a job from v1.1.0 back to v1.0.0 says "downgrade from
// v1.1.0": Shipline's own change is not drift. A change by hand to the job of
// the same version is.
func TestPlanSaysDowngradeNotDrift(t *testing.T) {
	d, commit := demoRemote(t)
	ctx := context.Background()
	job := ResolvedJob{Name: "orders_dag", Scheduler: "airflow", Fabric: "local", Pipelines: []string{"ingest_orders"}, Definition: "jobs/orders_dag/dag.py"}
	up, err := d.UpsertJob(ctx, UpsertJobInput{Project: "demo", Version: "v1.1.0", Commit: commit, DeploymentID: "deploy/demo/v1.1.0/x",
		Job: job, Artifacts: map[string]string{"ingest_orders": "/artifacts/demo/v1.1.0/ingest_orders/ingest_orders-1.1.0-py3-none-any.whl"}})
	if err != nil {
		t.Fatal(err)
	}
	plan := func(v string) PlannedJob {
		out, err := d.PlanJobs(ctx, PlanJobsInput{Project: "demo", Version: v, Commit: commit, Jobs: []ResolvedJob{job},
			Files: map[string]string{"ingest_orders": "ingest_orders-1.1.0-py3-none-any.whl"}})
		if err != nil || len(out.Jobs) != 1 {
			t.Fatalf("plan %s: %v %+v", v, err, out)
		}
		return out.Jobs[0]
	}
	if p := plan("v1.0.0"); p.Action != "update" || p.Detail != "downgrade from v1.1.0" {
		t.Errorf("plan of v1.0.0 over v1.1.0: %+v", p)
	}
	if p := plan("v1.2.0"); p.Action != "update" || p.Detail != "upgrade from v1.1.0" {
		t.Errorf("plan of v1.2.0 over v1.1.0: %+v", p)
	}

	// deployments: the recorded v1.0.0 while v1.1.0 runs is not called a change of v1.0.0's job.
	rec := DeployedJob{Project: "demo", Fabric: "local", Job: "orders_dag", Scheduler: "airflow", Version: "v1.0.0", Commit: commit,
		DeploymentID: "deploy/demo/v1.0.0/x", Artifacts: map[string]string{"ingest_orders": "/artifacts/demo/v1.0.0/ingest_orders/ingest_orders-1.1.0-py3-none-any.whl"}}
	drift, err := d.InspectJobs(ctx, InspectJobsInput{Jobs: []DeployedJob{rec}})
	if err != nil || len(drift.Jobs) != 1 {
		t.Fatal(err, drift)
	}
	if j := drift.Jobs[0]; !j.Drift || j.Detail != "the live job runs v1.1.0, not the recorded v1.0.0" || strings.Contains(j.Detail, "outside Shipline") {
		t.Errorf("drift of a job recorded at v1.0.0 that runs v1.1.0: %+v", j)
	}

	// A hand edit of the live v1.1.0 file is a change outside Shipline.
	if err := os.WriteFile(up.ID, append(mustRead(t, up.ID), []byte("\n# edited by hand\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if p := plan("v1.1.0"); p.Action != "update" || !strings.Contains(p.Detail, "outside Shipline") {
		t.Errorf("plan of v1.1.0 over its hand-edited job: %+v", p)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
