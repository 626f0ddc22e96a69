package fabric

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/test/dbemu"
)

const (
	dbVolume   = "/Volumes/main/shipline/artifacts"
	dbTokenEnv = "DEV_DATABRICKS_TOKEN"
)

// dbSetup starts an emulator and a databricks fabric on it with artifact_root root.
func dbSetup(t *testing.T, root string) (*dbemu.Emulator, *databricksFabric, map[string]string) {
	t.Helper()
	emu := dbemu.Start(dbemu.Options{Volumes: []string{dbVolume}, Seed: 42})
	t.Cleanup(emu.Close)
	env := map[string]string{dbTokenEnv: dbemu.DefaultToken}
	f, err := newDatabricks("dev", DatabricksSettings{Host: emu.URL, TokenEnv: dbTokenEnv, ArtifactRoot: root},
		func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("newDatabricks: %v", err)
	}
	d := f
	d.retryTimeout = time.Second // the SDK's own 429/503 retries; the test loops retry like Temporal
	d.rateLimit = 10_000
	return emu, d, env
}

func dbArtifact(t *testing.T, pipeline, file string, content []byte) Artifact {
	t.Helper()
	p := filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	return Artifact{Pipeline: pipeline, File: file, LocalPath: p, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content))}
}

func dbKind(t *testing.T, err error, kind string, permanent bool) *apperr.Error {
	t.Helper()
	var fe *apperr.Error
	if !errors.As(err, &fe) || fe.Type != kind || fe.Permanent() != permanent {
		t.Fatalf("want *apperr.Error of type %s permanent=%v, got %#v (%v)", kind, permanent, fe, err)
	}
	return fe
}

func TestDatabricksUploadAllRoots(t *testing.T) {
	big := bytes.Repeat([]byte("jar-bytes-"), 250_000) // 2.5 MB: DBFS streams it in blocks
	for _, root := range []string{dbVolume, "/Workspace/Shared/shipline", "dbfs:/shipline/artifacts"} {
		t.Run(root, func(t *testing.T) {
			ctx := context.Background()
			emu, d, _ := dbSetup(t, root)
			for _, content := range [][]byte{[]byte("wheel v1"), big} {
				a := dbArtifact(t, "ingest", fmt.Sprintf("ingest-%d.whl", len(content)), content)
				want := root + "/demo/v1.0.0/ingest/" + a.File
				if got := d.ArtifactPath("demo", "v1.0.0", "ingest", a.File); got != want {
					t.Fatalf("ArtifactPath = %s, want %s", got, want)
				}
				up, err := d.Upload(ctx, "demo", "v1.0.0", a)
				if err != nil || !up.Uploaded || up.Path != want {
					t.Fatalf("first upload: %+v %v", up, err)
				}
				if b, ok := emu.File(want); !ok || !bytes.Equal(b, content) {
					t.Fatalf("fabric holds %d bytes (%v), want %d", len(b), ok, len(content))
				}
				up, err = d.Upload(ctx, "demo", "v1.0.0", a)
				if err != nil || up.Uploaded {
					t.Fatalf("re-upload should be a no-op: %+v %v", up, err)
				}
				// Same size, other bytes; then other size: both conflicts, file untouched.
				same := bytes.Clone(content)
				same[0] ^= 0xff
				for _, other := range [][]byte{same, append(bytes.Clone(content), 'x')} {
					_, err = d.Upload(ctx, "demo", "v1.0.0", dbArtifact(t, "ingest", a.File, other))
					dbKind(t, err, apperr.ArtifactConflict, true)
				}
				if b, _ := emu.File(want); !bytes.Equal(b, content) {
					t.Fatalf("a conflicting upload changed the file")
				}
			}
			for _, f := range emu.Files() {
				if strings.Contains(f, ".tmp") {
					t.Errorf("temporary file left behind: %s", f)
				}
			}
		})
	}
}

func TestDatabricksVolumeUploadNeverOverwrites(t *testing.T) {
	emu, d, _ := dbSetup(t, dbVolume)
	if _, err := d.Upload(context.Background(), "demo", "v1", dbArtifact(t, "p", "a.whl", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	for _, r := range emu.Requests() {
		if r.Method == "PUT" && !strings.Contains(r.Query, "overwrite=false") {
			t.Errorf("PUT without overwrite=false: %s?%s", r.Path, r.Query)
		}
	}
	// A missing volume is the fabric's configuration: permanent.
	_, d2, _ := dbSetup(t, "/Volumes/main/nope/artifacts")
	_, err := d2.Upload(context.Background(), "demo", "v1", dbArtifact(t, "p", "a.whl", []byte("x")))
	dbKind(t, err, apperr.FabricRejected, true)
}

func jobDef(name string, extra string) []byte {
	return []byte(`{"name": "` + name + `", "tags": {"team": "data"}, ` + extra + `
	  "schedule": {"quartz_cron_expression": "0 0 5 * * ?", "timezone_id": "UTC"},
	  "tasks": [
	    {"task_key": "score", "depends_on": [{"task_key": "ingest"}], "spark_jar_task": {"main_class_name": "Score"}, "libraries": [{"jar": "/Volumes/x/score.jar"}]},
	    {"task_key": "ingest", "python_wheel_task": {"package_name": "ingest", "entry_point": "main"}, "libraries": [{"whl": "/Volumes/x/ingest.whl"}]}
	  ],
	  "future_field": {"kept": true}}`)
}

func TestDatabricksUpsertLifecycle(t *testing.T) {
	ctx := context.Background()
	emu, d, _ := dbSetup(t, dbVolume)
	spec := JobSpec{Project: "demo", Job: "daily", Definition: jobDef("demo daily", ""), Paused: boolPtr(true), Version: "v1.0.0"}

	res, err := d.UpsertJob(ctx, spec)
	if err != nil || res.Action != JobCreated {
		t.Fatalf("create: %+v %v", res, err)
	}
	all := emu.Jobs()
	if len(all) != 1 || fmt.Sprint(all[0].ID) != res.ID {
		t.Fatalf("jobs after create: %+v", all)
	}
	tags := all[0].Tags()
	if tags[TagProject] != "demo" || tags[TagJob] != "daily" || tags[TagVersion] != "v1.0.0" || tags["team"] != "data" {
		t.Errorf("tags = %v", tags)
	}
	s := string(all[0].Settings)
	if !strings.Contains(s, `"pause_status":"PAUSED"`) || !strings.Contains(s, `"future_field":{"kept":true}`) {
		t.Errorf("settings = %s", s)
	}

	res2, err := d.UpsertJob(ctx, spec)
	if err != nil || res2.Action != JobUnchanged || res2.ID != res.ID {
		t.Fatalf("same spec again: %+v %v", res2, err)
	}
	spec.Version, spec.Paused = "v1.1.0", boolPtr(false)
	res3, err := d.UpsertJob(ctx, spec)
	if err != nil || res3.Action != JobUpdated || res3.ID != res.ID {
		t.Fatalf("new version: %+v %v", res3, err)
	}
	if j := emu.Jobs()[0]; j.Tags()[TagVersion] != "v1.1.0" || !strings.Contains(string(j.Settings), `"pause_status":"UNPAUSED"`) {
		t.Errorf("after update: %s", j.Settings)
	}

	// Renamed by hand: still found through its tags, reset to the deployed name.
	w, _ := emu.Client(dbemu.DefaultToken)
	id := emu.Jobs()[0].ID
	if err := w.Jobs.Update(ctx, jobs.UpdateJob{JobId: id, NewSettings: &jobs.JobSettings{Name: "someone renamed me"}}); err != nil {
		t.Fatal(err)
	}
	res4, err := d.UpsertJob(ctx, spec)
	if err != nil || res4.Action != JobUpdated || res4.ID != res.ID || emu.Jobs()[0].Name() != "demo daily" {
		t.Fatalf("renamed job: %+v %v %s", res4, err, emu.Jobs()[0].Name())
	}

	// Deleted by hand: created again, with a new ID.
	emu.DeleteJob(id)
	res5, err := d.UpsertJob(ctx, spec)
	if err != nil || res5.Action != JobCreated || res5.ID == res.ID || len(emu.Jobs()) != 1 {
		t.Fatalf("after a manual delete: %+v %v, %d jobs", res5, err, len(emu.Jobs()))
	}
}

func TestDatabricksDuplicateJobs(t *testing.T) {
	ctx := context.Background()
	emu, d, _ := dbSetup(t, dbVolume)
	w, _ := emu.Client(dbemu.DefaultToken)
	for _, name := range []string{"copy a", "copy b"} {
		_, err := w.Jobs.Create(ctx, jobs.CreateJob{Name: name, Tags: map[string]string{TagProject: "demo", TagJob: "daily"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := d.UpsertJob(ctx, JobSpec{Project: "demo", Job: "daily", Definition: jobDef("demo daily", ""), Version: "v1"})
	fe := dbKind(t, err, apperr.DuplicateJobs, true)
	for _, j := range emu.Jobs() {
		if !strings.Contains(fe.Msg, fmt.Sprint(j.ID)) {
			t.Errorf("message %q does not name job %d", fe.Msg, j.ID)
		}
	}
	if n := len(emu.Jobs()); n != 2 {
		t.Fatalf("%d jobs, want still 2", n)
	}
}

func TestDatabricksAuthErrors(t *testing.T) {
	ctx := context.Background()
	emu, d, env := dbSetup(t, dbVolume)
	spec := JobSpec{Project: "demo", Job: "daily", Definition: jobDef("demo daily", ""), Version: "v1"}

	env[dbTokenEnv] = "dapi-wrong-secret"
	_, err := d.UpsertJob(ctx, spec)
	fe := dbKind(t, err, apperr.FabricAuth, true)
	if !strings.Contains(fe.Msg, dbTokenEnv) || !strings.Contains(fe.Msg, `"dev"`) || !strings.Contains(fe.Msg, emu.URL) || strings.Contains(fe.Error(), "dapi-wrong-secret") {
		t.Errorf("auth message: %s", fe.Msg)
	}
	env[dbTokenEnv] = ""
	_, err = d.Upload(ctx, "demo", "v1", dbArtifact(t, "p", "a.whl", []byte("x")))
	dbKind(t, err, apperr.FabricAuth, true)

	// 403 → parked; token fixed → resume works without a new fabric.
	env[dbTokenEnv] = dbemu.DefaultToken
	emu.DenyToken(dbemu.DefaultToken)
	_, err = d.UpsertJob(ctx, spec)
	dbKind(t, err, apperr.FabricAuth, true)
	emu.AddToken("dapi-new")
	env[dbTokenEnv] = "dapi-new"
	if res, err := d.UpsertJob(ctx, spec); err != nil || res.Action != JobCreated {
		t.Fatalf("after fixing the token: %+v %v", res, err)
	}
}

func TestDatabricksInvalidDefinition(t *testing.T) {
	_, d, _ := dbSetup(t, dbVolume)
	for _, def := range []string{`{"name": `, `[1]`, `null`, `{"tags": "x"}`} {
		_, err := d.UpsertJob(context.Background(), JobSpec{Project: "demo", Job: "daily", Definition: []byte(def)})
		dbKind(t, err, apperr.InvalidDefinition, true)
	}
	// Valid JSON the service refuses (a bad schedule) → FabricRejected with its message.
	_, err := d.UpsertJob(context.Background(), JobSpec{Project: "demo", Job: "daily", Definition: []byte(`{"name":"x","schedule":{}}`)})
	fe := dbKind(t, err, apperr.FabricRejected, true)
	if !strings.Contains(fe.Msg, "quartz_cron_expression") {
		t.Errorf("message lacks the API's reason: %s", fe.Msg)
	}
}

func TestDatabricksTransientFaultsNoDuplicates(t *testing.T) {
	ctx := context.Background()
	emu, d, _ := dbSetup(t, dbVolume)
	emu.RandomFaults(0.3, nil) // 429 and 503 on every route
	// One create whose answer is lost: the retry must find the job, not make another.
	emu.Inject(dbemu.Fault{Path: "/api/2.2/jobs/create", Drop: dbemu.DropAfter, Times: 1})

	// retry plays Temporal: transient errors are retried, permanent ones fail the test.
	retry := func(what string, op func() error) {
		t.Helper()
		for attempt := 1; ; attempt++ {
			err := op()
			if err == nil {
				return
			}
			var fe *apperr.Error
			if errors.As(err, &fe) && fe.Permanent() {
				t.Fatalf("%s: permanent error under transient faults: %v", what, err)
			}
			if attempt == 100 {
				t.Fatalf("%s: still failing after %d attempts: %v", what, attempt, err)
			}
		}
	}
	a := dbArtifact(t, "ingest", "ingest.whl", []byte("wheel"))
	for _, version := range []string{"v1", "v2"} {
		retry("upload", func() error { _, err := d.Upload(ctx, "demo", version, a); return err })
		for _, job := range []string{"a", "b", "c"} {
			spec := JobSpec{Project: "demo", Job: job, Definition: jobDef("demo "+job, ""), Version: version}
			retry("upsert "+job, func() error { _, err := d.UpsertJob(ctx, spec); return err })
		}
	}
	emu.ClearFaults()
	for _, job := range []string{"a", "b", "c"} {
		got := emu.JobsTagged(map[string]string{TagProject: "demo", TagJob: job})
		if len(got) != 1 || got[0].Tags()[TagVersion] != "v2" {
			t.Errorf("job %s: %d jobs (want exactly 1 at v2)", job, len(got))
		}
	}
	injected := 0
	for _, r := range emu.Requests() {
		if r.Fault != "" {
			injected++
		}
	}
	if injected == 0 {
		t.Fatal("no faults were injected")
	}
}

func TestDatabricksInspectJobDrift(t *testing.T) {
	ctx := context.Background()
	emu, d, _ := dbSetup(t, dbVolume)
	spec := JobSpec{Project: "demo", Job: "daily", Definition: jobDef("demo daily", `"max_concurrent_runs": 2,`), Version: "v1.0.0"}

	live, err := d.InspectJob(ctx, spec)
	if err != nil || live.Exists {
		t.Fatalf("before deploy: %+v %v", live, err)
	}
	res, err := d.UpsertJob(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	live, err = d.InspectJob(ctx, spec)
	if err != nil || !live.Exists || live.Drift || live.ID != res.ID || live.Version != "v1.0.0" {
		t.Fatalf("right after deploy (server defaults must not count as drift): %+v %v", live, err)
	}

	// Someone edits a task through the SDK.
	w, _ := emu.Client(dbemu.DefaultToken)
	id := emu.Jobs()[0].ID
	task := jobs.Task{TaskKey: "ingest", PythonWheelTask: &jobs.PythonWheelTask{PackageName: "ingest", EntryPoint: "hacked"}}
	if err := w.Jobs.Update(ctx, jobs.UpdateJob{JobId: id, NewSettings: &jobs.JobSettings{Tasks: []jobs.Task{task}}}); err != nil {
		t.Fatal(err)
	}
	live, err = d.InspectJob(ctx, spec)
	if err != nil || !live.Drift || !strings.Contains(live.DriftDetail, "tasks[task_key=ingest]") {
		t.Fatalf("after an edit: %+v %v", live, err)
	}
	t.Logf("drift detail: %s", live.DriftDetail)
	// A redeploy repairs it.
	if res, err := d.UpsertJob(ctx, spec); err != nil || res.Action != JobUpdated {
		t.Fatalf("redeploy after drift: %+v %v", res, err)
	}
	if live, _ := d.InspectJob(ctx, spec); live.Drift {
		t.Errorf("still drifting after redeploy: %s", live.DriftDetail)
	}
	emu.DeleteJob(id)
	if live, err := d.InspectJob(ctx, spec); err != nil || live.Exists {
		t.Errorf("deleted job: %+v %v", live, err)
	}
}

func TestDatabricksConfigErrors(t *testing.T) {
	for _, f := range []DatabricksSettings{
		{Host: "https://h", TokenEnv: "T"},
		{Host: "https://h", ArtifactRoot: dbVolume},
		{TokenEnv: "T", ArtifactRoot: dbVolume},
		{Host: "https://h", TokenEnv: "T", ArtifactRoot: "s3://bucket"},
	} {
		_, err := newDatabricks("x", f, nil)
		dbKind(t, err, apperr.FabricConfig, true)
	}
}
