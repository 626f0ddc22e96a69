package dbemu_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
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
