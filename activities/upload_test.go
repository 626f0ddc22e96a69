package activities

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
)

// A build cache entry removed after the build (someone cleaned
// <state_dir>/cache) makes the upload fail at once with the permanent
// ArtifactMissing naming the pipeline and path, on every kind of fabric —
// never an error Temporal retries. A new build brings the same bytes back.
func TestUploadOfVanishedCacheEntry(t *testing.T) {
	d, _, _, _ := deleteFixture(t)
	remote := newTestRemote(t)
	commit := remote.commit(t, map[string]string{"shipline.yaml": "name: demo\n", "pipelines/tool/data.txt": "tool\n"})
	d.Platform.Projects["demo"] = platform.Project{Name: "demo", Repo: "file://" + remote.bare, Admins: []string{"alice"}}
	b := &Build{Platform: d.Platform}
	e := newBuildEnv(t, b)
	p := manifest.Pipeline{Name: "tool", Path: "pipelines/tool", Language: manifest.Java, Build: "mkdir -p out && cp data.txt out/tool.bin", Artifact: "out/*.bin"}
	built := e.mustPipeline(commit, p)

	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(d)
	upload := func(fab, version string, out BuildOutput) error {
		t.Helper()
		_, err := env.ExecuteActivity(d.Upload, UploadInput{Project: "demo", Version: version, Fabric: fab, Artifacts: []fabric.Artifact{
			{Pipeline: "tool", File: out.File, LocalPath: out.LocalPath, SHA256: out.SHA256, Size: out.Size}}})
		return err
	}
	if err := upload("local", "v1.0.0", built); err != nil {
		t.Fatalf("upload from the cache: %v", err)
	}

	if err := os.RemoveAll(filepath.Dir(built.LocalPath)); err != nil {
		t.Fatal(err)
	}
	for _, fab := range []string{"local", "dev"} {
		err := upload(fab, "v1.1.0", built)
		ae := appError(t, err, apperr.ArtifactMissing)
		var details ArtifactMissingDetails
		if err := ae.Details(&details); err != nil {
			t.Fatal(err)
		}
		if len(details.Pipelines) != 1 || details.Pipelines[0] != "tool" || details.Paths[0] != built.LocalPath {
			t.Errorf("%s: details = %+v", fab, details)
		}
		if !strings.Contains(ae.Error(), built.LocalPath) || !strings.Contains(ae.Error(), "tool") {
			t.Errorf("%s: message does not name the pipeline and path: %v", fab, ae)
		}
	}

	// A truncated file (the entry damaged) is missing too.
	rebuilt := e.mustPipeline(commit, p)
	if rebuilt.Cached || rebuilt.SHA256 != built.SHA256 {
		t.Fatalf("rebuild = %+v, want a fresh build of the same bytes %s", rebuilt, built.SHA256)
	}
	if err := os.WriteFile(rebuilt.LocalPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	appError(t, upload("dev", "v1.1.0", rebuilt), apperr.ArtifactMissing)
	again := e.mustPipeline(commit, p)
	if err := upload("dev", "v1.1.0", again); err != nil {
		t.Fatalf("upload after the rebuild: %v", err)
	}
}
