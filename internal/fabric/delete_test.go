package fabric

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

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/test/dbemu"
)

// badSegments are project/version/job names that would escape the directory.
var badSegments = []string{"", ".", "..", "../other", "a/b", "v1/../../x", "/abs", `a\b`}

func TestDatabricksDeleteArtifactsAllRoots(t *testing.T) {
	for _, root := range []string{dbVolume, "/Workspace/Shared/shipline", "dbfs:/shipline/artifacts"} {
		t.Run(root, func(t *testing.T) {
			ctx := context.Background()
			emu, d, _ := dbSetup(t, root)
			upload := func(project, version, pipeline, file string) {
				t.Helper()
				if _, err := d.Upload(ctx, project, version, dbArtifact(t, pipeline, file, []byte(project+version+file))); err != nil {
					t.Fatal(err)
				}
			}
			upload("demo", "v1.0.0", "ingest", "ingest.whl")
			upload("demo", "v1.0.0", "score", "score.jar")
			upload("demo", "v1.0.0", "score", "score-extra.jar")
			upload("demo", "v1.0.01", "ingest", "ingest.whl") // a sibling whose name starts alike
			upload("demo", "v1.1.0", "ingest", "ingest.whl")
			upload("other", "v1.0.0", "ingest", "ingest.whl")
			keep := []string{
				d.ArtifactPath("demo", "v1.0.01", "ingest", "ingest.whl"),
				d.ArtifactPath("demo", "v1.1.0", "ingest", "ingest.whl"),
				d.ArtifactPath("other", "v1.0.0", "ingest", "ingest.whl"),
			}

			n, err := d.DeleteArtifacts(ctx, "demo", "v1.0.0")
			if err != nil || n != 3 {
				t.Fatalf("DeleteArtifacts = %d, %v; want 3", n, err)
			}
			got := emu.Files()
			want := slices.Sorted(slices.Values(keep))
			if !slices.Equal(got, want) {
				t.Fatalf("files left:\n%v\nwant\n%v", got, want)
			}
			// The version directory itself is gone, not just emptied.
			w, _ := emu.Client(dbemu.DefaultToken)
			dir := root + "/demo/v1.0.0"
			switch {
			case strings.HasPrefix(root, "/Volumes/"):
				if err := w.Files.GetDirectoryMetadataByDirectoryPath(ctx, dir); err == nil {
					t.Errorf("directory %s still exists", dir)
				}
			case strings.HasPrefix(root, "/Workspace/"):
				if _, err := w.Workspace.GetStatusByPath(ctx, dir); err == nil {
					t.Errorf("folder %s still exists", dir)
				}
			default:
				if _, err := w.Dbfs.GetStatusByPath(ctx, dir); err == nil {
					t.Errorf("directory %s still exists", dir)
				}
			}

			// Again, and a version never deployed: nothing to do, no error.
			for _, v := range []string{"v1.0.0", "v9.9.9"} {
				if n, err := d.DeleteArtifacts(ctx, "demo", v); err != nil || n != 0 {
					t.Fatalf("DeleteArtifacts(%s) again = %d, %v; want 0", v, n, err)
				}
			}
			if got := emu.Files(); !slices.Equal(got, want) {
				t.Fatalf("files changed by an idempotent delete: %v", got)
			}
		})
	}
}

func TestDatabricksDeleteArtifactsRefusesUnsafeNames(t *testing.T) {
	ctx := context.Background()
	emu, d, _ := dbSetup(t, dbVolume)
	for _, s := range badSegments {
		for _, args := range [][2]string{{s, "v1.0.0"}, {"demo", s}} {
			_, err := d.DeleteArtifacts(ctx, args[0], args[1])
			dbKind(t, err, apperr.InvalidName, true)
		}
		_, err := d.DeleteJob(ctx, "demo", s)
		dbKind(t, err, apperr.InvalidName, true)
	}
	if n := len(emu.Requests()); n != 0 {
		t.Fatalf("%d requests reached the workspace for refused names", n)
	}
}

func TestDatabricksDeleteArtifactsRetriesAfterTransientFaults(t *testing.T) {
	ctx := context.Background()
	emu, d, _ := dbSetup(t, dbVolume)
	for _, f := range []string{"a.whl", "b.whl", "c.whl"} {
		if _, err := d.Upload(ctx, "demo", "v1.0.0", dbArtifact(t, "ingest", f, []byte(f))); err != nil {
			t.Fatal(err)
		}
	}
	// The second file delete fails past the SDK's own retries: a transient error.
	emu.Inject(dbemu.Fault{Method: "DELETE", Path: "/api/2.0/fs/files/*", Status: 500, Times: 1})
	emu.Inject(dbemu.Fault{Method: "DELETE", Path: "/api/2.0/fs/directories/*", Status: 500, Times: 1})
	total, failed := 0, 0
	for attempt := 1; ; attempt++ {
		n, err := d.DeleteArtifacts(ctx, "demo", "v1.0.0")
		total += n // a failed attempt still says what it removed
		if err == nil {
			break
		}
		failed++
		var fe *apperr.Error
		if !errors.As(err, &fe) || fe.Permanent() {
			t.Fatalf("attempt %d: %v, want a transient error", attempt, err)
		}
		if attempt == 10 {
			t.Fatalf("still failing: %v", err)
		}
	}
	if len(emu.Files()) != 0 {
		t.Fatalf("files left: %v", emu.Files())
	}
	if failed != 2 {
		t.Errorf("%d failed attempts, want 2 (one per injected fault)", failed)
	}
	if total != 3 {
		t.Fatalf("attempts removed %d files in all, want 3", total)
	}
}

func TestDatabricksDeleteJob(t *testing.T) {
	ctx := context.Background()
	emu, d, _ := dbSetup(t, dbVolume)
	w, _ := emu.Client(dbemu.DefaultToken)

	// None: absent, not an error.
	res, err := d.DeleteJob(ctx, "demo", "daily")
	if err != nil || res.Action != JobAbsent || res.ID != "" {
		t.Fatalf("delete with no job = %+v, %v", res, err)
	}

	// Jobs that must survive: another job of the project, the same job name of
	// another project, an untagged job.
	for _, spec := range []JobSpec{
		{Project: "demo", Job: "weekly", Definition: jobDef("demo weekly", ""), Version: "v1"},
		{Project: "other", Job: "daily", Definition: jobDef("other daily", ""), Version: "v1"},
	} {
		if _, err := d.UpsertJob(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Jobs.Create(ctx, jobs.CreateJob{Name: "demo daily"}); err != nil {
		t.Fatal(err)
	}

	// One.
	up, err := d.UpsertJob(ctx, JobSpec{Project: "demo", Job: "daily", Definition: jobDef("demo daily", ""), Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	res, err = d.DeleteJob(ctx, "demo", "daily")
	if err != nil || res.Action != JobDeleted || res.ID != up.ID {
		t.Fatalf("delete of one job = %+v, %v; want deleted %s", res, err, up.ID)
	}
	if got := emu.JobsTagged(map[string]string{TagProject: "demo", TagJob: "daily"}); len(got) != 0 {
		t.Fatalf("tagged jobs left: %d", len(got))
	}
	if n := len(emu.Jobs()); n != 3 {
		t.Fatalf("%d jobs left, want the 3 others", n)
	}
	if res, err := d.DeleteJob(ctx, "demo", "daily"); err != nil || res.Action != JobAbsent {
		t.Fatalf("second delete = %+v, %v; want absent", res, err)
	}

	// Two tagged copies (made by hand): both deleted, both named.
	var want []string
	for _, name := range []string{"copy a", "copy b"} {
		r, err := w.Jobs.Create(ctx, jobs.CreateJob{Name: name, Tags: map[string]string{TagProject: "demo", TagJob: "daily"}})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprint(r.JobId))
	}
	res, err = d.DeleteJob(ctx, "demo", "daily")
	if err != nil || res.Action != JobDeleted || !slices.Equal(res.IDs(), want) {
		t.Fatalf("delete of duplicates = %+v (IDs %v), %v; want deleted %v", res, res.IDs(), err, want)
	}
	if n := len(emu.Jobs()); n != 3 {
		t.Fatalf("%d jobs left, want the 3 others", n)
	}
	if n := emu.CountRequests("POST", "/api/2.2/jobs/delete"); n != 3 {
		t.Errorf("%d successful jobs/delete calls, want 3", n)
	}
}

func TestDatabricksDeleteAuthErrors(t *testing.T) {
	ctx := context.Background()
	emu, d, env := dbSetup(t, dbVolume)
	emu.DenyToken(dbemu.DefaultToken)
	_, err := d.DeleteJob(ctx, "demo", "daily")
	dbKind(t, err, apperr.FabricAuth, true)
	_, err = d.DeleteArtifacts(ctx, "demo", "v1.0.0")
	dbKind(t, err, apperr.FabricAuth, true)
	env[dbTokenEnv] = ""
	_, err = d.DeleteArtifacts(ctx, "demo", "v1.0.0")
	dbKind(t, err, apperr.FabricAuth, true)
}

func TestLocalDeleteJobAndArtifacts(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	f := newLocal("local", root)

	if res, err := f.DeleteJob(ctx, "demo", "daily"); err != nil || res.Action != JobAbsent {
		t.Fatalf("delete before any deploy = %+v, %v", res, err)
	}
	up, err := f.UpsertJob(ctx, JobSpec{Project: "demo", Job: "daily", Definition: []byte(`{"name": "x"}`), Version: "v1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.UpsertJob(ctx, JobSpec{Project: "demo", Job: "weekly", Definition: []byte(`{"name": "y"}`), Version: "v1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	dag := filepath.Join(root, "dags", "demo__orders.py")
	if err := os.MkdirAll(filepath.Dir(dag), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dag, []byte("# dag\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := f.DeleteJob(ctx, "demo", "daily")
	if err != nil || res.Action != JobDeleted || res.ID != up.ID {
		t.Fatalf("delete json job = %+v, %v; want %s", res, err, up.ID)
	}
	res, err = f.DeleteJob(ctx, "demo", "orders")
	if err != nil || res.Action != JobDeleted || res.ID != dag {
		t.Fatalf("delete DAG = %+v, %v", res, err)
	}
	for _, p := range []string{up.ID, dag} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists (%v)", p, err)
		}
	}
	if _, err := os.Stat(other.ID); err != nil {
		t.Errorf("the other job's file is gone: %v", err)
	}
	if res, err := f.DeleteJob(ctx, "demo", "daily"); err != nil || res.Action != JobAbsent {
		t.Fatalf("second delete = %+v, %v", res, err)
	}

	// Artifacts: only <root>/artifacts/demo/v1.0.0.
	for _, v := range []string{"v1.0.0", "v1.1.0"} {
		for _, file := range []string{"a.whl", "b.whl"} {
			if _, err := f.Upload(ctx, "demo", v, artifactFile(t, "ingest", file, v+file)); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := f.DeleteArtifacts(ctx, "demo", "v1.0.0")
	if err != nil || n != 2 {
		t.Fatalf("DeleteArtifacts = %d, %v; want 2", n, err)
	}
	if _, err := os.Stat(filepath.Join(root, "artifacts", "demo", "v1.0.0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("version directory still there: %v", err)
	}
	if _, err := os.Stat(f.ArtifactPath("demo", "v1.1.0", "ingest", "a.whl")); err != nil {
		t.Errorf("v1.1.0 was touched: %v", err)
	}
	if n, err := f.DeleteArtifacts(ctx, "demo", "v1.0.0"); err != nil || n != 0 {
		t.Fatalf("again = %d, %v", n, err)
	}
	if n, err := f.DeleteArtifacts(ctx, "never", "v1.0.0"); err != nil || n != 0 {
		t.Fatalf("unknown project = %d, %v", n, err)
	}
}

func TestLocalDeleteRefusesUnsafePaths(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	f := newLocal("local", root)
	outside := t.TempDir()
	precious := filepath.Join(outside, "precious.txt")
	if err := os.WriteFile(precious, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range badSegments {
		_, err := f.DeleteArtifacts(ctx, "demo", s)
		permanentKind(t, err, apperr.InvalidName)
		_, err = f.DeleteArtifacts(ctx, s, "v1.0.0")
		permanentKind(t, err, apperr.InvalidName)
		_, err = f.DeleteJob(ctx, s, "daily")
		permanentKind(t, err, apperr.InvalidName)
	}

	// A version directory that is a symlink to elsewhere: refused, target untouched.
	arts := filepath.Join(root, "artifacts", "demo")
	if err := os.MkdirAll(arts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(arts, "v6.6.6")); err != nil {
		t.Fatal(err)
	}
	_, err := f.DeleteArtifacts(ctx, "demo", "v6.6.6")
	permanentKind(t, err, apperr.UnsafePath)
	// A project directory that is a symlink: refused too.
	if err := os.Symlink(outside, filepath.Join(root, "artifacts", "linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(outside, "v1.0.0"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = f.DeleteArtifacts(ctx, "linked", "v1.0.0")
	permanentKind(t, err, apperr.UnsafePath)

	// A symlink inside the version directory is removed, not what it points to.
	v := filepath.Join(arts, "v1.0.0", "ingest")
	if err := os.MkdirAll(v, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(v, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v, "a.whl"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := f.DeleteArtifacts(ctx, "demo", "v1.0.0"); err != nil || n != 2 {
		t.Fatalf("DeleteArtifacts = %d, %v; want 2 (the file and the link)", n, err)
	}
	if b, err := os.ReadFile(precious); err != nil || string(b) != "keep" {
		t.Fatalf("a file outside the artifact directory was touched: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(outside, "v1.0.0")); err != nil {
		t.Fatalf("outside directory touched: %v", err)
	}

	// A directory where a job file would be: refused.
	if err := os.MkdirAll(filepath.Join(root, "jobs", "demo__daily.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = f.DeleteJob(ctx, "demo", "daily")
	permanentKind(t, err, apperr.UnsafePath)
}

func TestAirflowDeleteJobAndArtifacts(t *testing.T) {
	ctx := context.Background()
	cfg, dags, localRoot := airflowConfig(t, "")
	f := openAirflow(t, cfg)

	dag := filepath.Join(dags, "demo__orders.py")
	otherDag := filepath.Join(dags, "demo__other.py")
	for _, p := range []string{dag, otherDag} {
		if err := os.WriteFile(p, []byte("# dag\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := f.DeleteJob(ctx, "demo", "orders")
	if err != nil || res.Action != JobDeleted || res.ID != dag {
		t.Fatalf("DeleteJob = %+v, %v", res, err)
	}
	if names := dirNames(t, dags); !slices.Equal(names, []string{"demo__other.py"}) {
		t.Fatalf("dags folder holds %v", names)
	}
	if res, err := f.DeleteJob(ctx, "demo", "orders"); err != nil || res.Action != JobAbsent {
		t.Fatalf("second DeleteJob = %+v, %v", res, err)
	}
	_, err = f.DeleteJob(ctx, "demo", "../orders")
	permanentKind(t, err, apperr.InvalidName)

	// Artifacts on the artifact fabric (local "lf").
	if _, err := f.Upload(ctx, "demo", "v1.0.0", artifactFile(t, "ingest", "a.whl", "x")); err != nil {
		t.Fatal(err)
	}
	if n, err := f.DeleteArtifacts(ctx, "demo", "v1.0.0"); err != nil || n != 1 {
		t.Fatalf("DeleteArtifacts = %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(localRoot, "artifacts", "demo", "v1.0.0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("artifacts still on the artifact fabric: %v", err)
	}

	// Without artifact_fabric: the folder next to the DAGs.
	af := cfg.Fabrics["af"]
	afs := af.Settings.(AirflowSettings)
	afs.ArtifactFabric = ""
	af.Settings = afs
	cfg.Fabrics["af"] = af
	f = openAirflow(t, cfg)
	if _, err := f.Upload(ctx, "demo", "v1.0.0", artifactFile(t, "ingest", "a.whl", "x")); err != nil {
		t.Fatal(err)
	}
	if n, err := f.DeleteArtifacts(ctx, "demo", "v1.0.0"); err != nil || n != 1 {
		t.Fatalf("DeleteArtifacts without artifact_fabric = %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dags), "shipline-artifacts", "demo", "v1.0.0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("artifacts still next to the DAGs: %v", err)
	}

	// A dags_folder that does not exist is a configuration error, not "absent".
	afs.DagsFolder = filepath.Join(t.TempDir(), "missing")
	af.Settings = afs
	cfg.Fabrics["af"] = af
	_, err = openAirflow(t, cfg).DeleteJob(ctx, "demo", "orders")
	permanentKind(t, err, apperr.FabricConfig)
}
