package activities

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/test/dbemu"
)

func TestDeleteTagActivity(t *testing.T) {
	remote := newTestRemote(t)
	first := remote.commit(t, map[string]string{"README": "one\n"})
	second := remote.commit(t, map[string]string{"README": "two\n"})
	g := gitActivities(t, "file://"+remote.bare, nil)
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(g)

	tag := func(version, commit string) {
		t.Helper()
		if _, err := env.ExecuteActivity(g.CreateTag, CreateTagInput{Project: "demo", Version: version, Commit: commit, Tagger: "alice", When: releaseTime}); err != nil {
			t.Fatal(err)
		}
	}
	del := func(version, commit string) (DeleteTagOutput, error) {
		t.Helper()
		val, err := env.ExecuteActivity(g.DeleteTag, DeleteTagInput{Project: "demo", Version: version, Commit: commit})
		var out DeleteTagOutput
		if err == nil {
			err = val.Get(&out)
		}
		return out, err
	}
	tag("v1.0.0", first)
	tag("v1.1.0", second)

	for i, want := range []bool{true, false} { // deleted, then already gone
		out, err := del("v1.0.0", first)
		if err != nil || out.Deleted != want {
			t.Fatalf("DeleteTag #%d = %+v, %v; want Deleted=%v", i+1, out, err, want)
		}
	}
	if tags := runGit(t, remote.bare, "tag", "-l"); tags != "v1.1.0" {
		t.Fatalf("remote tags = %q", tags)
	}

	// v1.1.0 is on the second commit: asking to delete it "at" the first is refused.
	_, err := del("v1.1.0", first)
	ae := appError(t, err, apperr.TagConflict)
	if !strings.Contains(ae.Error(), "tag moved; not deleting") {
		t.Errorf("message: %v", ae)
	}
	if tags := runGit(t, remote.bare, "tag", "-l"); tags != "v1.1.0" {
		t.Fatalf("remote tags after a refused delete = %q", tags)
	}
	_, err = del("not-a-version", first)
	appError(t, err, apperr.InvalidInput)
	_, err = env.ExecuteActivity(g.DeleteTag, DeleteTagInput{Project: "nope", Version: "v1.1.0", Commit: second})
	appError(t, err, apperr.UnknownProject)
}

// deleteFixture is a Deploy over a local fabric, an airflow fabric whose
// artifacts go to the local one, and a databricks fabric on the emulator.
func deleteFixture(t *testing.T) (*Deploy, *dbemu.Emulator, string, string) {
	t.Helper()
	emu := dbemu.Start(dbemu.Options{Volumes: []string{"/Volumes/main/shipline/artifacts"}})
	t.Cleanup(emu.Close)
	base := t.TempDir()
	localRoot, dags := filepath.Join(base, "local"), filepath.Join(base, "dags")
	if err := os.MkdirAll(dags, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &platform.Config{
		StateDir: t.TempDir(),
		Projects: map[string]platform.Project{"demo": {Name: "demo", Repo: "file:///nowhere", Admins: []string{"alice"}}},
		Teams:    map[string]platform.Team{"developers": {Members: []string{"alice"}}},
		Fabrics: map[string]platform.Fabric{
			"local": {Name: "local", Kind: fabric.KindLocal, Owner: "developers", Settings: fabric.LocalSettings{Root: localRoot}},
			"af":    {Name: "af", Kind: fabric.KindAirflow, Owner: "developers", Settings: fabric.AirflowSettings{DagsFolder: dags, ArtifactFabric: "local"}},
			"dev": {Name: "dev", Kind: fabric.KindDatabricks, Owner: "developers", Settings: fabric.DatabricksSettings{Host: emu.URL, TokenEnv: "DEV_TOKEN",
				ArtifactRoot: "/Volumes/main/shipline/artifacts"}},
		},
	}
	envVars := map[string]string{"DEV_TOKEN": dbemu.DefaultToken}
	d := &Deploy{Platform: cfg, Getenv: func(k string) string { return envVars[k] }}
	return d, emu, localRoot, dags
}

func TestDeleteJobActivity(t *testing.T) {
	ctx := context.Background()
	d, emu, _, dags := deleteFixture(t)
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(d)
	del := func(fab, job string) (DeleteJobOutput, error) {
		t.Helper()
		val, err := env.ExecuteActivity(d.DeleteJob, DeleteJobInput{Project: "demo", Fabric: fab, Job: job})
		var out DeleteJobOutput
		if err == nil {
			err = val.Get(&out)
		}
		return out, err
	}

	// Databricks: none, then two tagged copies.
	if out, err := del("dev", "daily"); err != nil || out.Action != string(fabric.JobAbsent) || out.IDs != nil {
		t.Fatalf("no job: %+v, %v", out, err)
	}
	w, err := emu.Client(dbemu.DefaultToken)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, name := range []string{"a", "b"} {
		r, err := w.Jobs.Create(ctx, jobs.CreateJob{Name: name, Tags: map[string]string{fabric.TagProject: "demo", fabric.TagJob: "daily"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, fmt.Sprint(r.JobId))
	}
	out, err := del("dev", "daily")
	if err != nil || out.Action != string(fabric.JobDeleted) || !slices.Equal(out.IDs, ids) || !strings.Contains(out.Note, "2 jobs") {
		t.Fatalf("duplicates: %+v, %v; want both of %v deleted and a note", out, err, ids)
	}
	if n := len(emu.Jobs()); n != 0 {
		t.Fatalf("%d jobs left", n)
	}

	// Airflow: the DAG file.
	dag := filepath.Join(dags, "demo__orders.py")
	if err := os.WriteFile(dag, []byte("# dag\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := del("af", "orders"); err != nil || out.Action != "deleted" || !slices.Equal(out.IDs, []string{dag}) || out.Note != "" {
		t.Fatalf("airflow: %+v, %v", out, err)
	}

	// Permanent failures are non-retryable with stable types; outages retry.
	_, err = del("dev", "../daily")
	appError(t, err, apperr.InvalidName)
	_, err = del("nowhere", "daily")
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || !ae.NonRetryable() {
		t.Fatalf("unknown fabric: %v", err)
	}
	_, err = env.ExecuteActivity(d.DeleteJob, DeleteJobInput{Project: "nope", Fabric: "dev", Job: "daily"})
	appError(t, err, apperr.UnknownProject)
	emu.Inject(dbemu.Fault{Path: "/api/2.2/jobs/list", Status: 500})
	_, err = del("dev", "daily")
	if err == nil || (errors.As(err, &ae) && ae.NonRetryable()) {
		t.Fatalf("a 500 from the workspace: %v, want a retryable error", err)
	}
	emu.ClearFaults()
	emu.DenyToken(dbemu.DefaultToken)
	_, err = del("dev", "daily")
	appError(t, err, apperr.FabricAuth)
}

func TestDeleteArtifactsActivity(t *testing.T) {
	ctx := context.Background()
	d, emu, localRoot, _ := deleteFixture(t)
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(d)
	del := func(fab, version string) (DeleteArtifactsOutput, error) {
		t.Helper()
		val, err := env.ExecuteActivity(d.DeleteArtifacts, DeleteArtifactsInput{Project: "demo", Version: version, Fabric: fab})
		var out DeleteArtifactsOutput
		if err == nil {
			err = val.Get(&out)
		}
		return out, err
	}
	art := filepath.Join(t.TempDir(), "a.whl")
	if err := os.WriteFile(art, []byte("wheel"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, fab := range []string{"dev", "local"} {
		f, err := fabric.Open(d.Platform, fab, d.env())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"v1.0.0", "v1.1.0"} {
			for _, p := range []string{"ingest", "score"} {
				if _, err := f.Upload(ctx, "demo", v, fabric.Artifact{Pipeline: p, File: "a.whl", LocalPath: art}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	for _, tc := range []struct {
		fabric string
		want   int
	}{{"dev", 2}, {"dev", 0}, {"af", 2}, {"local", 0}} { // af's artifacts live on local
		out, err := del(tc.fabric, "v1.0.0")
		if err != nil || out.Removed != tc.want {
			t.Fatalf("DeleteArtifacts on %s = %+v, %v; want %d removed", tc.fabric, out, err, tc.want)
		}
	}
	if got := emu.Files(); len(got) != 2 || !strings.Contains(got[0], "/v1.1.0/") {
		t.Fatalf("databricks files left: %v", got)
	}
	if _, err := os.Stat(filepath.Join(localRoot, "artifacts", "demo", "v1.1.0", "score", "a.whl")); err != nil {
		t.Fatalf("local v1.1.0 touched: %v", err)
	}
	_, err := del("local", "..")
	appError(t, err, apperr.InvalidName)
	_, err = env.ExecuteActivity(d.DeleteArtifacts, DeleteArtifactsInput{Project: "nope", Version: "v1.0.0", Fabric: "local"})
	appError(t, err, apperr.UnknownProject)
}
