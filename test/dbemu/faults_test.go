package dbemu_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/shipline/shipline/test/dbemu"
)

func TestAuthErrorsMapToSDKErrors(t *testing.T) {
	ctx := context.Background()
	emu, _ := start(t)

	bad, err := emu.Client("wrong-token")
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Jobs.ListAll(ctx, jobs.ListJobsRequest{})
	var apiErr *apierr.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.ErrorCode != "UNAUTHENTICATED" || !errors.Is(err, apierr.ErrUnauthenticated) {
		t.Fatalf("bad token: %v", err)
	}

	// A valid token without rights → 403; fixed at runtime → works.
	emu.AddToken("t2")
	emu.DenyToken("t2")
	c2, _ := emu.Client("t2")
	_, err = c2.Jobs.Create(ctx, jobs.CreateJob{Name: "x"})
	if !errors.Is(err, apierr.ErrPermissionDenied) {
		t.Fatalf("denied token: %v", err)
	}
	emu.AddToken("t2")
	if _, err := c2.Jobs.Create(ctx, jobs.CreateJob{Name: "x"}); err != nil {
		t.Fatalf("after fixing the token: %v", err)
	}
	emu.RevokeToken("t2")
	if _, err := c2.Jobs.ListAll(ctx, jobs.ListJobsRequest{}); !errors.Is(err, apierr.ErrUnauthenticated) {
		t.Fatalf("revoked token: %v", err)
	}
}

func TestInjectedTransientFaultsAreRetriedBySDK(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t)
	emu.Inject(dbemu.Fault{Method: "POST", Path: "/api/2.2/jobs/create", Status: 429, Times: 1})
	emu.Inject(dbemu.Fault{Path: "/api/2.2/jobs/*", Status: 503, Times: 1})
	resp, err := w.Jobs.Create(ctx, jobs.CreateJob{Name: "retried"})
	if err != nil {
		t.Fatalf("create with 429 then 503: %v", err)
	}
	if len(emu.Jobs()) != 1 || emu.Jobs()[0].ID != resp.JobId {
		t.Fatalf("want exactly one job, have %d", len(emu.Jobs()))
	}
	var faults []string
	for _, r := range emu.Requests() {
		if r.Fault != "" {
			faults = append(faults, r.Fault)
		}
	}
	if len(faults) != 2 || faults[0] != "status 429" || faults[1] != "status 503" {
		t.Errorf("request log faults = %v", faults)
	}

	// 500 is not retried by the SDK: it surfaces.
	emu.Inject(dbemu.Fault{Path: "/api/2.2/jobs/get", Status: 500, Times: 1})
	_, err = w.Jobs.GetByJobId(ctx, resp.JobId)
	var apiErr *apierr.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 {
		t.Errorf("500: %v", err)
	}
}

func TestTransientFaultSurfacesWhenSDKRetryBudgetIsSpent(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t, func(c *databricks.Config) { c.RetryTimeoutSeconds = 1 })
	emu.Inject(dbemu.Fault{Path: "/api/2.2/jobs/list", Status: 503}) // every call
	_, err := w.Jobs.ListAll(ctx, jobs.ListJobsRequest{})
	if !errors.Is(err, apierr.ErrTemporarilyUnavailable) {
		t.Fatalf("want 503 to surface, got %v", err)
	}
	emu.ClearFaults()
	if _, err := w.Jobs.ListAll(ctx, jobs.ListJobsRequest{}); err != nil {
		t.Fatalf("after clearing faults: %v", err)
	}
}

func TestDroppedConnection(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t)

	// Dropped before handling: an error, and nothing was created.
	emu.Inject(dbemu.Fault{Path: "/api/2.2/jobs/create", Drop: dbemu.DropBefore, Times: 1})
	_, err := w.Jobs.Create(ctx, jobs.CreateJob{Name: "lost"})
	var urlErr *url.Error
	if err == nil || !errors.As(err, &urlErr) {
		t.Fatalf("dropped connection: %v", err)
	}
	if len(emu.Jobs()) != 0 {
		t.Fatalf("a dropped-before call created a job")
	}
	// Dropped after handling: an error, but the job exists.
	emu.Inject(dbemu.Fault{Path: "/api/2.2/jobs/create", Drop: dbemu.DropAfter, Times: 1})
	if _, err := w.Jobs.Create(ctx, jobs.CreateJob{Name: "ghost"}); err == nil {
		t.Fatalf("dropped-after call succeeded")
	}
	if len(emu.Jobs()) != 1 || emu.Jobs()[0].Name() != "ghost" {
		t.Fatalf("dropped-after call should have created the job: %+v", emu.Jobs())
	}
}

func TestRandomFaultsAreSeededAndRecorded(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t, func(c *databricks.Config) { c.RetryTimeoutSeconds = 1 })
	emu.RandomFaults(0.5, []int{503}, "/api/2.2/jobs/list")
	failed := 0
	for range 6 {
		if _, err := w.Jobs.ListAll(ctx, jobs.ListJobsRequest{Limit: 1}); err != nil {
			failed++
		}
	}
	injected := 0
	for _, r := range emu.Requests() {
		if r.Fault == "status 503" {
			injected++
		}
	}
	if injected == 0 {
		t.Fatalf("no random fault injected in %d calls", len(emu.Requests()))
	}
	t.Logf("%d calls, %d injected 503s, %d surfaced", len(emu.Requests()), injected, failed)
}

// TestActThenFailOnEveryRoute: a fault with After set lets every mutating
// route act, then answers with the injected status and the API's JSON error
// body; a Reset drop makes the client read "connection reset by peer".
func TestActThenFailOnEveryRoute(t *testing.T) {
	emu, _ := start(t)
	type call struct {
		method, path, body string
		check              func() error // the effect is there
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	exists := func(method, path string, want int) func() error {
		return func() error {
			if st, _ := do(t, emu, method, path, ""); st != want {
				return fmt.Errorf("%s %s = %d, want %d", method, path, st, want)
			}
			return nil
		}
	}
	holds := func(path, want string) func() error {
		return func() error {
			if b, ok := emu.File(path); !ok || string(b) != want {
				return fmt.Errorf("%s holds %q (%v), want %q", path, b, ok, want)
			}
			return nil
		}
	}
	jobNamed := func(n int, name string) func() error {
		return func() error {
			js := emu.Jobs()
			if len(js) != n || (n > 0 && js[0].Name() != name) {
				return fmt.Errorf("%d jobs (%v), want %d named %q", len(js), js, n, name)
			}
			return nil
		}
	}
	var jobID, handle string
	calls := []call{
		{"POST", "/api/2.2/jobs/create", `{"name":"a"}`, jobNamed(1, "a")},
		{"POST", "/api/2.2/jobs/reset", `{"job_id":JOB,"new_settings":{"name":"b"}}`, jobNamed(1, "b")},
		{"POST", "/api/2.2/jobs/update", `{"job_id":JOB,"new_settings":{"name":"c"}}`, jobNamed(1, "c")},
		{"POST", "/api/2.2/jobs/delete", `{"job_id":JOB}`, jobNamed(0, "")},
		{"POST", "/api/2.0/workspace/mkdirs", `{"path":"/Shared/x"}`, exists("GET", "/api/2.0/workspace/get-status?path=/Shared/x", 200)},
		{"POST", "/api/2.0/workspace/import", `{"path":"/Shared/x/f","format":"RAW","content":"` + b64("ws") + `"}`, holds("/Workspace/Shared/x/f", "ws")},
		{"POST", "/api/2.0/workspace/delete", `{"path":"/Shared/x/f"}`, exists("GET", "/api/2.0/workspace/get-status?path=/Shared/x/f", 404)},
		{"PUT", "/api/2.0/fs/directories" + volume + "/d", "", exists("GET", "/api/2.0/fs/directories"+volume+"/d", 200)},
		{"PUT", "/api/2.0/fs/files" + volume + "/d/f?overwrite=false", "vol", holds(volume+"/d/f", "vol")},
		{"DELETE", "/api/2.0/fs/files" + volume + "/d/f", "", exists("HEAD", "/api/2.0/fs/files"+volume+"/d/f", 404)},
		{"DELETE", "/api/2.0/fs/directories" + volume + "/d", "", exists("GET", "/api/2.0/fs/directories"+volume+"/d", 404)},
		{"POST", "/api/2.0/dbfs/mkdirs", `{"path":"/a"}`, exists("GET", "/api/2.0/dbfs/get-status?path=/a", 200)},
		{"POST", "/api/2.0/dbfs/put", `{"path":"/a/p","contents":"` + b64("put") + `"}`, holds("dbfs:/a/p", "put")},
		{"POST", "/api/2.0/dbfs/create", `{"path":"/a/s","overwrite":true}`, holds("dbfs:/a/s", "")},
		{"POST", "/api/2.0/dbfs/add-block", `{"handle":HANDLE,"data":"` + b64("blk") + `"}`, holds("dbfs:/a/s", "blk")},
		{"POST", "/api/2.0/dbfs/close", `{"handle":HANDLE}`, func() error {
			if st, _ := do(t, emu, "POST", "/api/2.0/dbfs/close", `{"handle":`+handle+`}`); st != 404 {
				return fmt.Errorf("the handle is still open (close again = %d)", st)
			}
			return nil
		}},
		{"POST", "/api/2.0/dbfs/move", `{"source_path":"/a/s","destination_path":"/a/t"}`, holds("dbfs:/a/t", "blk")},
		{"POST", "/api/2.0/dbfs/delete", `{"path":"/a/t"}`, exists("GET", "/api/2.0/dbfs/get-status?path=/a/t", 404)},
	}
	for i, c := range calls {
		if c.path == "/api/2.0/dbfs/add-block" { // the lost create's handle is unknown: open another
			st, body := do(t, emu, "POST", "/api/2.0/dbfs/create", `{"path":"/a/s","overwrite":true}`)
			var h struct{ Handle json.Number }
			if st != 200 || json.Unmarshal(body, &h) != nil {
				t.Fatalf("dbfs create: %d %s", st, body)
			}
			handle = h.Handle.String()
		}
		body := strings.NewReplacer("JOB", jobID, "HANDLE", handle).Replace(c.body)
		status := []int{503, 500, 429, 504}[i%4]
		emu.Inject(dbemu.Fault{Method: c.method, Path: strings.SplitN(c.path, "?", 2)[0], Status: status, After: true, Times: 1})
		st, resp := do(t, emu, c.method, c.path, body)
		var e struct {
			ErrorCode string `json:"error_code"`
			Message   string `json:"message"`
		}
		if st != status || json.Unmarshal(resp, &e) != nil || e.ErrorCode == "" || e.Message == "" {
			t.Errorf("%s %s with an act-then-%d fault answered %d %s", c.method, c.path, status, st, resp)
		}
		if err := c.check(); err != nil {
			t.Errorf("%s %s did not act before failing: %v", c.method, c.path, err)
		}
		if c.path == "/api/2.2/jobs/create" {
			jobID = fmt.Sprint(emu.Jobs()[0].ID)
		}
	}
	if n := len(emu.Requests()); n == 0 || !strings.Contains(emu.Requests()[0].Fault, "after handling") {
		t.Errorf("request log does not say the fault came after handling: %+v", emu.Requests()[0])
	}

	// A reset drop after handling: the client sees a reset connection, the job exists.
	emu.Inject(dbemu.Fault{Path: "/api/2.2/jobs/create", Drop: dbemu.DropAfter, Reset: true, Times: 1})
	req, _ := http.NewRequest("POST", emu.URL+"/api/2.2/jobs/create", strings.NewReader(`{"name":"r"}`))
	req.Header.Set("Authorization", "Bearer "+dbemu.DefaultToken)
	req.Header.Set("Content-Type", "application/json")
	if _, err := http.DefaultClient.Do(req); err == nil || !strings.Contains(err.Error(), "connection reset by peer") {
		t.Errorf("reset drop: %v", err)
	}
	if js := emu.Jobs(); len(js) != 1 || js[0].Name() != "r" {
		t.Errorf("after a reset drop after handling: jobs %v", js)
	}
}

// do sends one raw call to the emulator and returns its status and body.
func do(t *testing.T, emu *dbemu.Emulator, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, emu.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+dbemu.DefaultToken)
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestLoseRandomAnswers(t *testing.T) {
	emu, _ := start(t)
	emu.RandomFaults(1, []int{503}, "/api/2.2/jobs/create")
	emu.LoseRandomAnswers(1)
	st, body := do(t, emu, "POST", "/api/2.2/jobs/create", `{"name":"a"}`)
	if st != 503 || !strings.Contains(string(body), "TEMPORARILY_UNAVAILABLE") {
		t.Errorf("answer %d %s, want 503 TEMPORARILY_UNAVAILABLE", st, body)
	}
	if len(emu.Jobs()) != 1 {
		t.Errorf("%d jobs, want the lost create's one", len(emu.Jobs()))
	}
}

// TestHoldKeepsACallInFlightUntilReleased: a held upload neither answers nor
// writes until the test releases it, then completes; only Times calls are held.
func TestHoldKeepsACallInFlightUntilReleased(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t)
	release := make(chan struct{})
	holding := make(chan string, 1)
	emu.Inject(dbemu.Fault{Method: "PUT", Path: "/api/2.0/fs/files/Volumes/*", Hold: release, Holding: holding, Times: 1})

	path := volume + "/held.whl"
	done := make(chan error, 1)
	go func() {
		done <- w.Files.Upload(ctx, files.UploadRequest{FilePath: path, Contents: io.NopCloser(strings.NewReader("wheel"))})
	}()
	if got := <-holding; got != "/api/2.0/fs/files"+path {
		t.Fatalf("holding %s, want the upload of %s", got, path)
	}
	// Another upload is not held (Times: 1) while the first one is.
	if err := w.Files.Upload(ctx, files.UploadRequest{FilePath: volume + "/other.whl", Contents: io.NopCloser(strings.NewReader("x"))}); err != nil {
		t.Fatalf("second upload: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("held upload answered before its release: %v", err)
	default:
	}
	if _, ok := emu.File(path); ok {
		t.Fatal("held upload wrote its file before its release")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("released upload: %v", err)
	}
	if data, ok := emu.File(path); !ok || string(data) != "wheel" {
		t.Fatalf("after release: %q %v", data, ok)
	}
}
