package fabric

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/test/dbemu"
)

// likeTemporal calls op until it succeeds, as Temporal retries a failed
// activity: transient errors are retried (at most 5 attempts), a permanent
// one fails the test.
func likeTemporal(t *testing.T, what string, op func() error) {
	t.Helper()
	var err error
	for range 5 {
		if err = op(); err == nil {
			return
		}
		var fe *apperr.Error
		if errors.As(err, &fe) && fe.Permanent() {
			t.Fatalf("%s: permanent error: %v", what, err)
		}
	}
	t.Fatalf("%s: still failing after 5 attempts: %v", what, err)
}

// lostAnswers are the ways a call can act while its caller never learns it:
// answers the SDK retries on its own (429, 503, a reset connection) and
// answers it does not (500, 504, a closed connection).
var lostAnswers = []struct {
	name  string
	fault dbemu.Fault
}{
	{"503 after acting", dbemu.Fault{Status: 503, After: true}},
	{"429 after acting", dbemu.Fault{Status: 429, After: true}},
	{"500 after acting", dbemu.Fault{Status: 500, After: true}},
	{"504 after acting", dbemu.Fault{Status: 504, After: true}},
	{"connection reset after acting", dbemu.Fault{Drop: dbemu.DropAfter, Reset: true}},
	{"connection closed after acting", dbemu.Fault{Drop: dbemu.DropAfter}},
}

// TestDatabricksJobCreateExactlyOnce: a jobs/create that acts and loses its
// answer, in every way, still leaves exactly one job with the deployed
// settings, also when databricks-sdk-go would resend the POST on its own.
func TestDatabricksJobCreateExactlyOnce(t *testing.T) {
	for _, lost := range lostAnswers {
		for _, times := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s x%d", lost.name, times), func(t *testing.T) {
				t.Parallel() // each has its own emulator; most of the time is the SDK's backoff
				ctx := context.Background()
				emu, d := dbSetupSDKRetries(t, dbVolume)
				f := lost.fault
				f.Method, f.Path, f.Times = "POST", "/api/2.2/jobs/create", times
				emu.Inject(f)
				spec := JobSpec{Project: "demo", Job: "daily", Definition: jobDef("demo daily", ""), Version: "v1.0.0"}
				var res JobResult
				likeTemporal(t, "upsert", func() (err error) { res, err = d.UpsertJob(ctx, spec); return err })
				got := emu.JobsTagged(map[string]string{TagProject: "demo", TagJob: "daily"})
				if len(got) != 1 {
					t.Fatalf("%d jobs after a create that lost its answer, want exactly 1", len(got))
				}
				if fmt.Sprint(got[0].ID) != res.ID || got[0].Name() != "demo daily" || got[0].Tags()[TagVersion] != "v1.0.0" ||
					!strings.Contains(string(got[0].Settings), `"future_field":{"kept":true}`) {
					t.Errorf("upsert said %+v; the job is %d %s", res, got[0].ID, got[0].Settings)
				}
				if n := emu.CountRequests("POST", "/api/2.2/jobs/create") + countFaulted(emu, "/api/2.2/jobs/create"); n > times {
					t.Errorf("%d creates sent for %d lost answers: a create was resent without looking the job up first", n, times)
				}
				// The next deploy finds it.
				if res, err := d.UpsertJob(ctx, spec); err != nil || res.Action != JobUnchanged {
					t.Errorf("next upsert: %+v %v", res, err)
				}
			})
		}
	}
}

// dbSetupSDKRetries is dbSetup with the production retry window of the
// SDK, in which it resends a call answered 429 or 503 or whose connection
// was reset (dbSetup's 1 s window ends before the SDK's first backoff).
func dbSetupSDKRetries(t *testing.T, root string) (*dbemu.Emulator, *databricksFabric) {
	emu, d, _ := dbSetup(t, root)
	d.retryTimeout = defaultRetryTimeout
	return emu, d
}

func countFaulted(emu *dbemu.Emulator, path string) int {
	n := 0
	for _, r := range emu.Requests() {
		if r.Path == path && strings.Contains(r.Fault, "after handling") {
			n++
		}
	}
	return n
}

// TestDatabricksUploadExactlyOnce: every write of an upload (Files API PUT,
// workspace mkdirs and import, DBFS mkdirs, put, create, add-block, close and
// move) can act and lose its answer; the artifact ends up once, with its
// bytes, and no temporary file is left.
func TestDatabricksUploadExactlyOnce(t *testing.T) {
	small := []byte("wheel bytes")
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*dbfsBlock/16/2) // 1.5 MB: create, 2 add-blocks, close, move
	cases := []struct {
		root    string
		content []byte
		method  string
		path    string
	}{
		{dbVolume, small, "PUT", "/api/2.0/fs/files/Volumes/*"},
		{"/Workspace/Shared/shipline", small, "POST", "/api/2.0/workspace/mkdirs"},
		{"/Workspace/Shared/shipline", small, "POST", "/api/2.0/workspace/import"},
		{"dbfs:/shipline", small, "POST", "/api/2.0/dbfs/mkdirs"},
		{"dbfs:/shipline", small, "POST", "/api/2.0/dbfs/put"},
		{"dbfs:/shipline", big, "POST", "/api/2.0/dbfs/create"},
		{"dbfs:/shipline", big, "POST", "/api/2.0/dbfs/add-block"},
		{"dbfs:/shipline", big, "POST", "/api/2.0/dbfs/close"},
		{"dbfs:/shipline", big, "POST", "/api/2.0/dbfs/move"},
	}
	for _, c := range cases {
		for _, lost := range lostAnswers {
			t.Run(c.path+" "+lost.name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				emu, d := dbSetupSDKRetries(t, c.root)
				f := lost.fault
				f.Method, f.Path, f.Times = c.method, c.path, 1
				emu.Inject(f)
				a := dbArtifact(t, "ingest", "ingest.whl", c.content)
				likeTemporal(t, "upload", func() error { _, err := d.Upload(ctx, "demo", "v1", a); return err })
				want := d.ArtifactPath("demo", "v1", "ingest", a.File)
				if b, ok := emu.File(want); !ok || !bytes.Equal(b, c.content) {
					t.Errorf("%s holds %d bytes (%v), want the artifact's %d", want, len(b), ok, len(c.content))
				}
				if files := emu.Files(); len(files) != 1 {
					t.Errorf("files on the fabric: %v, want only %s", files, want)
				}
				if countFaulted(emu, strings.TrimSuffix(c.path, "*")) == 0 && !strings.HasSuffix(c.path, "*") {
					t.Errorf("the fault on %s was never hit", c.path)
				}
			})
		}
	}
}
