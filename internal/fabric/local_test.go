package fabric

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/apperr"
)

// artifactFile writes a build output and describes it.
func artifactFile(t *testing.T, pipeline, file, content string) Artifact {
	t.Helper()
	p := filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	return Artifact{Pipeline: pipeline, File: file, LocalPath: p, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content))}
}

func permanentKind(t *testing.T, err error, kind string) *apperr.Error {
	t.Helper()
	var fe *apperr.Error
	if !errors.As(err, &fe) || fe.Type != kind || !fe.Permanent() {
		t.Fatalf("err = %v (%#v), want permanent %s", err, err, kind)
	}
	return fe
}

// noTempFiles fails when a temporary file is left in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

func TestLocalUploadIdempotentAndImmutable(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	f := newLocal("local", root)
	a := artifactFile(t, "ingest", "ingest-1.0-py3-none-any.whl", "wheel bytes")

	want := filepath.Join(root, "artifacts", "demo", "v1.0.0", "ingest", "ingest-1.0-py3-none-any.whl")
	if got := f.ArtifactPath("demo", "v1.0.0", "ingest", a.File); got != want {
		t.Fatalf("ArtifactPath = %s, want %s", got, want)
	}
	up, err := f.Upload(ctx, "demo", "v1.0.0", a)
	if err != nil || up.Path != want || !up.Uploaded {
		t.Fatalf("first upload: %+v, %v", up, err)
	}
	if b, _ := os.ReadFile(want); string(b) != "wheel bytes" {
		t.Fatalf("uploaded content %q", b)
	}
	up, err = f.Upload(ctx, "demo", "v1.0.0", a)
	if err != nil || up.Path != want || up.Uploaded {
		t.Fatalf("second upload: %+v, %v; want a no-op", up, err)
	}

	other := artifactFile(t, "ingest", a.File, "other bytes")
	_, err = f.Upload(ctx, "demo", "v1.0.0", other)
	fe := permanentKind(t, err, apperr.ArtifactConflict)
	if !strings.Contains(fe.Msg, want) {
		t.Errorf("conflict message does not name the path: %s", fe.Msg)
	}
	if b, _ := os.ReadFile(want); string(b) != "wheel bytes" {
		t.Fatalf("conflicting upload changed the artifact: %q", b)
	}
	// Another version is another path.
	if up, err := f.Upload(ctx, "demo", "v1.0.1", other); err != nil || !up.Uploaded {
		t.Fatalf("upload of v1.0.1: %+v, %v", up, err)
	}
	noTempFiles(t, root)
}

func TestLocalUploadVerifiesChecksum(t *testing.T) {
	root := t.TempDir()
	f := newLocal("local", root)
	a := artifactFile(t, "ingest", "x.whl", "bytes")
	a.SHA256 = strings.Repeat("0", 64)
	_, err := f.Upload(context.Background(), "demo", "v1.0.0", a)
	permanentKind(t, err, apperr.ArtifactCorrupt)
	if _, err := os.Stat(f.ArtifactPath("demo", "v1.0.0", "ingest", "x.whl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a corrupt artifact became visible: %v", err)
	}
	noTempFiles(t, root)

	a = artifactFile(t, "ingest", "../x.whl", "bytes")
	a.File = "../x.whl"
	_, err = f.Upload(context.Background(), "demo", "v1.0.0", a)
	permanentKind(t, err, apperr.InvalidName)
}

const localJobPayload = `{
  "name": "demo daily",
  "tags": {"team": "data"},
  "schedule": {"quartz_cron_expression": "0 0 1 * * ?", "timezone_id": "UTC"},
  "tasks": [{"task_key": "ingest", "timeout_seconds": 9007199254740993}]
}`

func TestLocalJobsCreateUpdateUnchangedDrift(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	f := newLocal("local", root)
	spec := JobSpec{Project: "demo", Job: "daily", Definition: []byte(localJobPayload), Paused: boolPtr(true), Version: "v1.0.0", DeploymentID: "d1"}
	path := filepath.Join(root, "jobs", "demo__daily.json")

	res, err := f.UpsertJob(ctx, spec)
	if err != nil || res.Action != JobCreated || res.ID != path {
		t.Fatalf("create: %+v, %v", res, err)
	}
	data, _ := os.ReadFile(path)
	var got struct {
		Tags     map[string]string `json:"tags"`
		Schedule map[string]string `json:"schedule"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Tags["team"] != "data" || got.Tags["shipline_project"] != "demo" || got.Tags["shipline_job"] != "daily" ||
		got.Tags["shipline_version"] != "v1.0.0" || got.Schedule["pause_status"] != "PAUSED" {
		t.Errorf("stored job:\n%s", data)
	}
	if !strings.Contains(string(data), "9007199254740993") || !strings.Contains(string(data), "\n  \"name\"") {
		t.Errorf("not pretty printed or large numbers lost:\n%s", data)
	}

	spec.DeploymentID = "d2"
	if res, err := f.UpsertJob(ctx, spec); err != nil || res.Action != JobUnchanged {
		t.Fatalf("redeploy: %+v, %v", res, err)
	}
	live, err := f.InspectJob(ctx, spec)
	if err != nil || !live.Exists || live.Drift || live.Version != "v1.0.0" || live.ID != path {
		t.Fatalf("inspect: %+v, %v", live, err)
	}

	spec.Version, spec.Paused = "v1.0.1", boolPtr(false)
	if res, err := f.UpsertJob(ctx, spec); err != nil || res.Action != JobUpdated {
		t.Fatalf("update: %+v, %v", res, err)
	}
	data, _ = os.ReadFile(path)
	if !strings.Contains(string(data), `"pause_status": "UNPAUSED"`) {
		t.Errorf("pause status not applied:\n%s", data)
	}

	edited := strings.Replace(string(data), `"UNPAUSED"`, `"PAUSED"`, 1)
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	live, err = f.InspectJob(ctx, spec)
	if err != nil || !live.Drift || live.Version != "v1.0.1" || !strings.Contains(live.DriftDetail, "changed outside Shipline") {
		t.Fatalf("inspect after hand edit: %+v, %v", live, err)
	}

	_ = os.Remove(path)
	live, err = f.InspectJob(ctx, spec)
	if err != nil || live.Exists || !live.Drift {
		t.Fatalf("inspect after delete: %+v, %v", live, err)
	}
	noTempFiles(t, root)
}

func TestLocalJobBadTags(t *testing.T) {
	f := newLocal("local", t.TempDir())
	_, err := f.UpsertJob(context.Background(), JobSpec{Project: "demo", Job: "daily", Definition: []byte(`{"tags": ["x"]}`)})
	permanentKind(t, err, apperr.InvalidDefinition)
}

func TestLocalDAG(t *testing.T) {
	requirePython(t)
	ctx := context.Background()
	root := t.TempDir()
	f := newLocal("local", root)
	spec := JobSpec{Project: "demo", Job: "orders", Definition: []byte(validDAG), Version: "v1.0.0"}
	res, err := f.UpsertJob(ctx, spec)
	path := filepath.Join(root, "dags", "demo__orders.py")
	if err != nil || res.Action != JobCreated || res.ID != path {
		t.Fatalf("create: %+v, %v", res, err)
	}
	live, err := f.InspectJob(ctx, spec)
	if err != nil || live.Drift || live.Version != "v1.0.0" {
		t.Fatalf("inspect: %+v, %v", live, err)
	}
	spec.Definition = []byte("with DAG(\n")
	_, err = f.UpsertJob(ctx, spec)
	permanentKind(t, err, apperr.InvalidDefinition)
	noTempFiles(t, root)
}
