package fabric

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/test/afemu"
	"github.com/shipline/shipline/test/s3server"
)

// managedConfig parses a platform.yaml holding one managed-airflow fabric
// "ma" with the given settings (a YAML flow mapping's inside).
func managedConfig(t *testing.T, settings string) (*platform.Config, string) {
	t.Helper()
	src := "teams: {dev: {members: [a]}}\nfabrics:\n  ma: {kind: managed-airflow, owner: dev, " + settings + "}\n"
	cfg, diags := platform.Parse("platform.yaml", []byte(src), t.TempDir())
	return cfg, diags.Error()
}

func TestManagedAirflowConfig(t *testing.T) {
	cfg, errs := managedConfig(t, "dags_folder: gs://composer-bucket/dags, airflow_url: https://af.example.com/, token_env: COMPOSER_TOKEN")
	if errs != "" {
		t.Fatal(errs)
	}
	s := cfg.Fabrics["ma"].Settings.(ManagedAirflowSettings)
	want := ManagedAirflowSettings{DagsFolder: "gs://composer-bucket/dags", ArtifactRoot: "gs://composer-bucket/data/shipline",
		AirflowURL: "https://af.example.com", TokenEnv: "COMPOSER_TOKEN"}
	if s != want {
		t.Errorf("settings = %+v, want %+v", s, want)
	}
	if !cfg.Fabrics["ma"].Runs("airflow") || cfg.Fabrics["ma"].Runs("databricks") || !cfg.Fabrics["ma"].SeesRuns() {
		t.Error("a managed-airflow fabric runs airflow jobs only, and sees their runs through airflow_url")
	}

	cfg, errs = managedConfig(t, "dags_folder: 's3://mwaa/env/dags?endpoint=http://127.0.0.1:9000&region=eu-west-1', artifact_root: file://./arts")
	if errs != "" {
		t.Fatal(errs)
	}
	s = cfg.Fabrics["ma"].Settings.(ManagedAirflowSettings)
	if s.DagsFolder != "s3://mwaa/env/dags?endpoint=http://127.0.0.1:9000&region=eu-west-1" || !strings.HasPrefix(s.ArtifactRoot, "file:///") || !strings.HasSuffix(s.ArtifactRoot, "/arts") {
		t.Errorf("settings = %+v", s)
	}
	if cfg.Fabrics["ma"].SeesRuns() {
		t.Error("without airflow_url Shipline cannot see runs")
	}
	if s := besideDags("s3://mwaa/env/dags?region=eu-west-1"); s != "s3://mwaa/env/data/shipline?region=eu-west-1" {
		t.Errorf("default artifact_root = %s", s)
	}

	for settings, wantErr := range map[string]string{
		"airflow_url: https://x":                                       `managed-airflow fabric "ma" has no dags_folder`,
		"dags_folder: /opt/airflow/dags":                               `fabrics.ma.dags_folder "/opt/airflow/dags" is not a bucket URL`,
		"dags_folder: 'gs://u:p@b/dags'":                               "fabrics.ma.dags_folder holds credentials",
		"dags_folder: file://host/dags":                                "names no absolute directory",
		"dags_folder: 's3://b/dags?region=eu-west-1&bogus=1'":          `fabrics.ma.dags_folder: storage URL "s3://b/dags": unknown option "bogus" for s3://: remove it, or use one of region,`,
		"dags_folder: gs://b/dags, artifact_root: 'gs://b/a?region=x'": `fabrics.ma.artifact_root: storage URL "gs://b/a": unknown option "region" for gs://`,
		"dags_folder: 'file:///'":                                      `names the file system's root`,
		"dags_folder: 'file:///srv/dags?create_dir=1'":                 `file:// takes no query parameters (found "create_dir")`,
		"dags_folder: gs://b/dags, airflow_url: https://x, token_env: T, username_env: U, password_env: P": "sets both a token and a user",
		"dags_folder: gs://b/dags, airflow_url: https://x, username_env: U":                                "sets only one of username_env and password_env",
		"dags_folder: gs://b/dags, token_env: T":                                                           `sets token_env but has no airflow_url`,
		"dags_folder: gs://b/dags, token_env: dapi123":                                                     "looks like a secret itself",
		"dags_folder: gs://b/dags, root: /x":                                                               `unknown key "root" in fabrics.ma`,
	} {
		if _, errs := managedConfig(t, settings); !strings.Contains(errs, wantErr) || !strings.Contains(errs, "platform.yaml:") {
			t.Errorf("%s:\n%s\nwant %q", settings, errs, wantErr)
		}
	}
}

// managedFabric opens a managed-airflow fabric on file:// buckets under a
// temporary directory, with the Airflow REST stand-in behind a bearer token.
func managedFabric(t *testing.T) (Fabric, string, *afemu.Server) {
	t.Helper()
	base := t.TempDir()
	s := afemu.Start(afemu.Options{Version: "v2", Token: "composer-token"})
	t.Cleanup(s.Close)
	s.AddDAG("demo__orders", afemu.Task{ID: "run"})
	dags := (&url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(base, "bucket", "dags"))}).String()
	cfg, errs := managedConfig(t, "dags_folder: '"+dags+"', airflow_url: '"+s.URL+"', token_env: COMPOSER_TOKEN")
	if errs != "" {
		t.Fatal(errs)
	}
	f, err := Open(cfg, "ma", func(k string) string { return map[string]string{"COMPOSER_TOKEN": "composer-token"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	return f, filepath.Join(base, "bucket"), s
}

func TestManagedAirflowFileBucket(t *testing.T) {
	requirePython(t)
	ctx := context.Background()
	f, bucket, s := managedFabric(t)
	s.SetPaused("demo__orders", true)

	// Artifacts: beside the DAG folder, immutable, checksummed.
	a := artifactFile(t, "ingest", "ingest-1.0-py3-none-any.whl", "wheel bytes")
	wantPath := filepath.Join(bucket, "data", "shipline", "demo", "v1.0.0", "ingest", "ingest-1.0-py3-none-any.whl")
	if up, err := f.Upload(ctx, "demo", "v1.0.0", a); err != nil || up.Path != wantPath || !up.Uploaded {
		t.Fatalf("upload = %+v, %v; want %s uploaded", up, err, wantPath)
	}
	if data, err := os.ReadFile(wantPath); err != nil || string(data) != "wheel bytes" {
		t.Fatalf("artifact = %q, %v", data, err)
	}
	if up, err := f.Upload(ctx, "demo", "v1.0.0", a); err != nil || up.Uploaded {
		t.Fatalf("same bytes again = %+v, %v; want not uploaded", up, err)
	}
	_, err := f.Upload(ctx, "demo", "v1.0.0", artifactFile(t, "ingest", "ingest-1.0-py3-none-any.whl", "other bytes"))
	permanentKind(t, err, apperr.ArtifactConflict)

	// DAGs: checked, written through a temporary key, unpaused through the REST API.
	spec := JobSpec{Project: "demo", Job: "orders", Definition: []byte(validDAG), Version: "v1.0.0", Paused: new(bool)}
	res, err := f.UpsertJob(ctx, spec)
	dagPath := filepath.Join(bucket, "dags", "demo__orders.py")
	if err != nil || res.Action != JobCreated || res.ID != dagPath {
		t.Fatalf("upsert = %+v, %v", res, err)
	}
	if data, _ := os.ReadFile(dagPath); !strings.HasPrefix(string(data), "# Generated by Shipline (project=demo job=orders version=v1.0.0)") {
		t.Errorf("DAG file:\n%s", data)
	}
	if s.Paused("demo__orders") {
		t.Error("the DAG is still paused")
	}
	if reqs := s.Requests(); len(reqs) != 1 || reqs[0] != `PATCH /api/v2/dags/demo__orders?update_mask=is_paused {"is_paused":false}` {
		t.Errorf("requests = %q", reqs)
	}
	noTempKeys(t, bucket)
	if res, err := f.UpsertJob(ctx, spec); err != nil || res.Action != JobUnchanged {
		t.Fatalf("same DAG again = %+v, %v", res, err)
	}

	// A DAG that does not compile never reaches the bucket.
	bad := spec
	bad.Version, bad.Definition = "v1.0.1", []byte("from airflow import DAG\nwith DAG(dag_id=\"demo__orders\") as dag\n    pass\n")
	_, err = f.UpsertJob(ctx, bad)
	permanentKind(t, err, apperr.InvalidDefinition)
	if data, _ := os.ReadFile(dagPath); !strings.Contains(string(data), "version=v1.0.0") {
		t.Error("a DAG that does not compile replaced the deployed one")
	}
	noTempKeys(t, bucket)

	// Drift, then delete.
	if live, err := f.InspectJob(ctx, spec); err != nil || !live.Exists || live.Drift || live.Version != "v1.0.0" {
		t.Fatalf("inspect = %+v, %v", live, err)
	}
	if err := os.WriteFile(dagPath, []byte("# edited by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if live, err := f.InspectJob(ctx, spec); err != nil || !live.Drift || !strings.Contains(live.DriftDetail, "changed outside Shipline") {
		t.Fatalf("inspect after a hand edit = %+v, %v", live, err)
	}
	if res, err := f.DeleteJob(ctx, "demo", "orders"); err != nil || res.Action != JobDeleted {
		t.Fatalf("delete = %+v, %v", res, err)
	}
	if _, err := os.Stat(dagPath); !os.IsNotExist(err) {
		t.Errorf("DAG still there: %v", err)
	}
	if res, err := f.DeleteJob(ctx, "demo", "orders"); err != nil || res.Action != JobAbsent {
		t.Fatalf("delete again = %+v, %v", res, err)
	}
	if n, err := f.DeleteArtifacts(ctx, "demo", "v1.0.0"); err != nil || n != 1 {
		t.Fatalf("delete artifacts = %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Dir(wantPath)); !os.IsNotExist(err) {
		t.Errorf("artifacts still there: %v", err)
	}
	if n, err := f.DeleteArtifacts(ctx, "demo", "v1.0.0"); err != nil || n != 0 {
		t.Fatalf("delete artifacts again = %d, %v", n, err)
	}
}

// TestManagedAirflowRuns: runs go through the same REST API, with the token.
func TestManagedAirflowRuns(t *testing.T) {
	requirePython(t)
	ctx := context.Background()
	f, _, s := managedFabric(t)
	if _, err := f.UpsertJob(ctx, JobSpec{Project: "demo", Job: "orders", Definition: []byte(validDAG), Version: "v1.0.0", Paused: new(bool)}); err != nil {
		t.Fatal(err)
	}
	r, ok := AsRunner(f)
	if !ok {
		t.Fatal("a managed-airflow fabric runs jobs")
	}
	ref, err := r.StartRun(ctx, RunRequest{Project: "demo", Job: "orders", Key: "run-1", TriggeredBy: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := s.RunIDs("demo__orders"); len(ids) != 1 || ids[0] != ref.ID {
		t.Errorf("runs on Airflow = %v, started %s", ids, ref.ID)
	}
}

// noTempKeys fails when a temporary key is left in the bucket directory.
func noTempKeys(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, ".shipline-tmp") {
			t.Errorf("temporary key left: %s", p)
		}
		return nil
	})
}

// TestManagedAirflowS3 deploys to a DAG folder on the S3-compatible server
// (SeaweedFS), as to MWAA's bucket.
func TestManagedAirflowS3(t *testing.T) {
	requirePython(t)
	srv := s3server.Start(t, s3server.Options{Bucket: "mwaa"})
	srv.SetEnv(t)
	ctx := context.Background()
	cfg, errs := managedConfig(t, "dags_folder: '"+srv.StorageURL("env/dags")+"'")
	if errs != "" {
		t.Fatal(errs)
	}
	f, err := Open(cfg, "ma", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := artifactFile(t, "ingest", "ingest.whl", "wheel bytes")
	up, err := f.Upload(ctx, "demo", "v1.0.0", a)
	if err != nil || up.Path != "s3://mwaa/env/data/shipline/demo/v1.0.0/ingest/ingest.whl" || !up.Uploaded {
		t.Fatalf("upload = %+v, %v", up, err)
	}
	if up, err := f.Upload(ctx, "demo", "v1.0.0", a); err != nil || up.Uploaded {
		t.Fatalf("same bytes again = %+v, %v", up, err)
	}
	spec := JobSpec{Project: "demo", Job: "orders", Definition: []byte(validDAG), Version: "v1.0.0"}
	if res, err := f.UpsertJob(ctx, spec); err != nil || res.Action != JobCreated || res.ID != "s3://mwaa/env/dags/demo__orders.py" {
		t.Fatalf("upsert = %+v, %v", res, err)
	}
	b, err := blob.OpenBucket(ctx, srv.BucketURL(""))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var keys []string
	it := b.List(nil)
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			break
		}
		keys = append(keys, obj.Key)
	}
	if strings.Join(keys, " ") != "env/dags/.shipline/owners/demo__orders.json env/dags/demo__orders.py env/data/shipline/demo/v1.0.0/ingest/ingest.whl" {
		t.Errorf("keys in the bucket = %q (a temporary key left, or a key misplaced)", keys)
	}
	if live, err := f.InspectJob(ctx, spec); err != nil || live.Drift || live.Version != "v1.0.0" {
		t.Fatalf("inspect = %+v, %v", live, err)
	}
	if res, err := f.DeleteJob(ctx, "demo", "orders"); err != nil || res.Action != JobDeleted {
		t.Fatalf("delete = %+v, %v", res, err)
	}
	if n, err := f.DeleteArtifacts(ctx, "demo", "v1.0.0"); err != nil || n != 1 {
		t.Fatalf("delete artifacts = %d, %v", n, err)
	}
}
