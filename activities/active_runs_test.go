package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
)

// A running run on the Databricks emulator, read through the real SDK: the
// deploy sees it (with the fabric's setting), a job not on the fabric has no
// runs, the release's artifacts are not removed while it runs, and once
// cancelled it ends and the artifacts go.
func TestActiveRunsOnDatabricksEmulator(t *testing.T) {
	ctx := context.Background()
	d, emu, _, _ := deleteFixture(t)
	dev := d.Platform.Fabrics["dev"]
	dev.ActiveRuns, dev.ActiveRunsTimeout = "cancel", 20*time.Minute
	d.Platform.Fabrics["dev"] = dev
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(d)

	fab, err := fabric.Open(d.Platform, "dev", d.env())
	if err != nil {
		t.Fatal(err)
	}
	lib := "/Volumes/main/shipline/artifacts/demo/v1.2.0/ingest/ingest-1.2.0-py3-none-any.whl"
	def := `{"name": "demo nightly", "tasks": [{"task_key": "ingest", "python_wheel_task": {"package_name": "ingest", "entry_point": "main"}, "libraries": [{"whl": "` + lib + `"}]}]}`
	if _, err := fab.UpsertJob(ctx, fabric.JobSpec{Project: "demo", Job: "nightly", Definition: []byte(def), Version: "v1.2.0"}); err != nil {
		t.Fatal(err)
	}
	whl := filepath.Join(t.TempDir(), "ingest-1.2.0-py3-none-any.whl")
	data := []byte("wheel bytes")
	if err := os.WriteFile(whl, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	up, err := fab.Upload(ctx, "demo", "v1.2.0", fabric.Artifact{Pipeline: "ingest", File: "ingest-1.2.0-py3-none-any.whl", LocalPath: whl,
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))})
	if err != nil || up.Path != lib {
		t.Fatalf("upload: %+v, %v", up, err)
	}
	runner, _ := fabric.AsRunner(fab)
	ref, err := runner.StartRun(ctx, fabric.RunRequest{Project: "demo", Job: "nightly", Key: "run/demo/dev/nightly/1"})
	if err != nil {
		t.Fatal(err)
	}
	emu.Advance(30 * time.Second) // pending 10s, then running

	active := func(version string) ActiveRunsOutput {
		t.Helper()
		val, err := env.ExecuteActivity(d.ActiveRuns, ActiveRunsInput{Project: "demo", Fabric: "dev", Jobs: []string{"nightly", "never_deployed"}, Version: version})
		var out ActiveRunsOutput
		if err == nil {
			err = val.Get(&out)
		}
		if err != nil {
			t.Fatalf("ActiveRuns: %v", err)
		}
		return out
	}
	out := active("")
	if out.Policy != "cancel" || out.Timeout != 20*time.Minute || out.Blind || len(out.Runs) != 1 {
		t.Fatalf("active runs = %+v", out)
	}
	if r := out.Runs[0]; r.Job != "nightly" || r.Run.ID != ref.ID || r.Run.State != fabric.RunRunning || r.Run.URL == "" || r.Run.Version != "v1.2.0" {
		t.Fatalf("run = %+v, want run %s of nightly running v1.2.0", r, ref.ID)
	}
	if out := active("v1.1.0"); len(out.Runs) != 0 {
		t.Fatalf("runs of v1.1.0 = %+v, want none (the run uses v1.2.0)", out.Runs)
	}

	delArtifacts := func() (DeleteArtifactsOutput, error) {
		val, err := env.ExecuteActivity(d.DeleteArtifacts, DeleteArtifactsInput{Project: "demo", Version: "v1.2.0", Fabric: "dev", Jobs: []string{"nightly"}})
		var out DeleteArtifactsOutput
		if err == nil {
			err = val.Get(&out)
		}
		return out, err
	}
	_, err = delArtifacts()
	ae := appError(t, err, apperr.ActiveRun)
	if !strings.Contains(ae.Error(), "job nightly has an active run "+ref.ID+" ("+out.Runs[0].Run.URL+")") {
		t.Fatalf("refusal = %v", ae)
	}
	if _, ok := emu.File(lib); !ok {
		t.Fatal("the artifact was removed under the running job")
	}

	if _, err := env.ExecuteActivity(d.CancelRuns, CancelRunsInput{Project: "demo", Fabric: "dev", Runs: out.Runs}); err != nil {
		t.Fatalf("CancelRuns: %v", err)
	}
	emu.Advance(time.Second)
	if out := active(""); len(out.Runs) != 0 {
		t.Fatalf("after cancel: %+v", out.Runs)
	}
	if r, err := runner.GetRun(ctx, "demo", "nightly", ref.ID); err != nil || r.Result != fabric.RunCancelled {
		t.Fatalf("run after cancel = %+v, %v", r, err)
	}
	if res, err := delArtifacts(); err != nil || res.Removed != 1 {
		t.Fatalf("delete after the run ended: %+v, %v", res, err)
	}

	// An airflow fabric without airflow_url cannot show runs: nothing is checked.
	val, err := env.ExecuteActivity(d.ActiveRuns, ActiveRunsInput{Project: "demo", Fabric: "af", Jobs: []string{"orders"}})
	var blind ActiveRunsOutput
	if err == nil {
		err = val.Get(&blind)
	}
	if err != nil || !blind.Blind || blind.Policy != "wait" || blind.Timeout != time.Hour {
		t.Fatalf("airflow without airflow_url: %+v, %v", blind, err)
	}
}
