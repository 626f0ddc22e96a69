package activities

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/storage"
)

// uploadFixture builds with one worker (state directory A) and uploads with
// another (state directory B): they share nothing but the store.
type uploadFixture struct {
	t      *testing.T
	d      *Deploy // worker B
	e      *buildEnv
	store  string // the shared store's directory
	commit string
	p      manifest.Pipeline
	env    *testsuite.TestActivityEnvironment
}

func newUploadFixture(t *testing.T) *uploadFixture {
	d, _, _, _ := deleteFixture(t)
	remote := newTestRemote(t)
	commit := remote.commit(t, map[string]string{"shipline.yaml": "name: demo\n", "pipelines/tool/data.txt": "tool\n"})
	d.Platform.Projects["demo"] = platform.Project{Name: "demo", Repo: "file://" + remote.bare, Admins: []string{"alice"}}
	shared := t.TempDir()
	d.Platform.Storage = storage.FileURL(shared)
	builder := *d.Platform // worker A: the same platform.yaml, its own state directory
	builder.StateDir = t.TempDir()
	f := &uploadFixture{t: t, d: d, store: shared, commit: commit,
		e: newBuildEnv(t, &Build{Platform: &builder}),
		p: manifest.Pipeline{Name: "tool", Path: "pipelines/tool", Language: manifest.Java, Build: "mkdir -p out && cp data.txt out/tool.bin", Artifact: "out/*.bin"},
	}
	f.env = (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	f.env.RegisterActivity(d)
	return f
}

func (f *uploadFixture) build() BuildOutput { return f.e.mustPipeline(f.commit, f.p) }

func (f *uploadFixture) upload(fab, version string, out BuildOutput) error {
	f.t.Helper()
	_, err := f.env.ExecuteActivity(f.d.Upload, UploadInput{Project: "demo", Version: version, Fabric: fab, Artifacts: []fabric.Artifact{
		{Pipeline: "tool", File: out.File, Object: out.Object, SHA256: out.SHA256, Size: out.Size}}})
	return err
}

// The worker that uploads reads the artifact another worker built from the
// shared store: its own state directory never holds it.
func TestUploadFromAnotherWorkersBuild(t *testing.T) {
	f := newUploadFixture(t)
	built := f.build()
	if _, err := os.Stat(filepath.Join(f.store, filepath.FromSlash(built.Object))); err != nil {
		t.Fatalf("the build did not put its artifact in the shared store: %v", err)
	}
	for _, fab := range []string{"local", "dev"} {
		if err := f.upload(fab, "v1.0.0", built); err != nil {
			t.Fatalf("upload to %s from the shared store: %v", fab, err)
		}
	}
	uploaded, err := os.ReadFile(filepath.Join(f.d.Platform.Fabrics["local"].Settings.(fabric.LocalSettings).Root, "artifacts", "demo", "v1.0.0", "tool", built.File))
	if err != nil || string(uploaded) != "tool\n" {
		t.Errorf("local fabric holds %q (%v)", uploaded, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(f.d.Platform.StateDir, "cache")); len(entries) != 0 {
		t.Errorf("the uploading worker's state directory holds a cache: %v", entries)
	}
}

// A store entry removed after the build (someone cleaned the store) makes the
// upload fail at once with the permanent ArtifactMissing naming the pipeline
// and object, on every kind of fabric — never an error Temporal retries. A
// new build brings the same bytes back.
func TestUploadOfVanishedCacheEntry(t *testing.T) {
	f := newUploadFixture(t)
	built := f.build()
	if err := f.upload("local", "v1.0.0", built); err != nil {
		t.Fatalf("upload from the cache: %v", err)
	}
	if err := os.RemoveAll(filepath.Join(f.store, "cache")); err != nil {
		t.Fatal(err)
	}
	for _, fab := range []string{"local", "dev"} {
		err := f.upload(fab, "v1.1.0", built)
		ae := appError(t, err, apperr.ArtifactMissing)
		var details ArtifactMissingDetails
		if err := ae.Details(&details); err != nil {
			t.Fatal(err)
		}
		if len(details.Pipelines) != 1 || details.Pipelines[0] != "tool" || details.Paths[0] != built.Object {
			t.Errorf("%s: details = %+v", fab, details)
		}
		if !strings.Contains(ae.Error(), built.Object) || !strings.Contains(ae.Error(), "tool") {
			t.Errorf("%s: message does not name the pipeline and object: %v", fab, ae)
		}
	}
	rebuilt := f.build()
	if rebuilt.Cached || rebuilt.SHA256 != built.SHA256 {
		t.Fatalf("rebuild = %+v, want a fresh build of the same bytes %s", rebuilt, built.SHA256)
	}
	if err := f.upload("dev", "v1.1.0", rebuilt); err != nil {
		t.Fatalf("upload after the rebuild: %v", err)
	}
}

// Stored bytes that fail their checksum are never sent: the upload is the
// permanent ArtifactMissing, the entry's marker is dropped, and the next
// build (the rebuild a deployment runs) builds it again rather than serve it.
func TestUploadOfDamagedCacheEntry(t *testing.T) {
	f := newUploadFixture(t)
	built := f.build()
	// Same size, other bytes: only the checksum can tell.
	if err := os.WriteFile(filepath.Join(f.store, filepath.FromSlash(built.Object)), []byte("tooL\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, fab := range []string{"local", "dev"} {
		ae := appError(t, f.upload(fab, "v1.0.0", built), apperr.ArtifactMissing)
		if !strings.Contains(ae.Error(), "damaged") {
			t.Errorf("%s: %v", fab, ae)
		}
		if err := f.upload(fab, "v1.0.0", built); err == nil { // still damaged, still refused
			t.Errorf("%s: the damaged artifact was uploaded", fab)
		}
	}
	if _, err := os.Stat(filepath.Join(f.d.Platform.Fabrics["local"].Settings.(fabric.LocalSettings).Root, "artifacts", "demo", "v1.0.0", "tool", built.File)); !os.IsNotExist(err) {
		t.Errorf("the damaged artifact reached the local fabric: %v", err)
	}
	rebuilt := f.build()
	if rebuilt.Cached || rebuilt.SHA256 != built.SHA256 {
		t.Fatalf("rebuild = %+v, want a fresh build of the original bytes", rebuilt)
	}
	if err := f.upload("dev", "v1.0.0", rebuilt); err != nil {
		t.Fatalf("upload after the rebuild: %v", err)
	}
}

// A deployment recorded before the shared store names its artifact by the
// path of a worker's cache file: with the default store (state_dir) it is
// read from the same place.
func TestUploadOfArtifactRecordedByPath(t *testing.T) {
	d, _, _, _ := deleteFixture(t)
	rel := filepath.Join("cache", "k1", "tool.whl")
	full := filepath.Join(d.Platform.StateDir, rel)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte("wheel"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := d.Upload(context.Background(), UploadInput{Project: "demo", Version: "v1.0.0", Fabric: "local",
		Artifacts: []fabric.Artifact{{Pipeline: "tool", File: "tool.whl", LocalPath: full, Size: 5}}})
	if err != nil || out.Paths["tool"] == "" {
		t.Fatalf("upload of a recorded path: %+v, %v", out, err)
	}
}
