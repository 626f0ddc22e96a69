package dbemu_test

import (
	"context"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/shipline/shipline/test/dbemu"
)

func TestRunsListFiltersPagesAndQueue(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t)
	job, err := w.Jobs.Create(ctx, jobs.CreateJob{Name: "runs", MaxConcurrentRuns: 1, Queue: &jobs.QueueSettings{Enabled: true},
		Tasks: []jobs.Task{{TaskKey: "only", PythonWheelTask: &jobs.PythonWheelTask{PackageName: "p", EntryPoint: "main"}}}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, tok := range []string{"a", "b", "c"} {
		wait, err := w.Jobs.RunNow(ctx, jobs.RunNow{JobId: job.JobId, IdempotencyToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, wait.RunId)
		emu.Advance(time.Second)
	}
	// The queue is on and one run may be active: the later two wait.
	second, err := w.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: ids[1]})
	if err != nil || second.State.LifeCycleState != jobs.RunLifeCycleStateQueued || second.Status.State != jobs.RunLifecycleStateV2StateQueued {
		t.Fatalf("second run = %+v %v, want QUEUED", second.State, err)
	}
	active, err := w.Jobs.ListRunsAll(ctx, jobs.ListRunsRequest{JobId: job.JobId, ActiveOnly: true})
	if err != nil || len(active) != 3 || active[0].RunId != ids[2] {
		t.Fatalf("active runs = %d %v, want 3 newest first", len(active), err)
	}
	emu.Advance(75 * time.Second) // the first ends at 1m10s, the second starts
	if r, _ := w.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: ids[1]}); r.State.LifeCycleState == jobs.RunLifeCycleStateQueued {
		t.Fatalf("second run still queued after the first ended")
	}
	done, err := w.Jobs.ListRunsAll(ctx, jobs.ListRunsRequest{JobId: job.JobId, CompletedOnly: true})
	if err != nil || len(done) != 1 || done[0].RunId != ids[0] || done[0].State.ResultState != jobs.RunResultStateSuccess || done[0].EndTime == 0 {
		t.Fatalf("completed runs = %+v %v", done, err)
	}
	// Pages of one, newest first, through page tokens.
	page, err := w.Jobs.ListRunsAll(ctx, jobs.ListRunsRequest{JobId: job.JobId, Limit: 1})
	if err != nil || len(page) != 3 || page[0].RunId != ids[2] || page[2].RunId != ids[0] {
		t.Fatalf("paged runs = %d %v", len(page), err)
	}
	// Cancel, and a missing run.
	if _, err := w.Jobs.CancelRun(ctx, jobs.CancelRun{RunId: ids[2]}); err != nil {
		t.Fatal(err)
	}
	if r, _ := w.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: ids[2]}); r.State.ResultState != jobs.RunResultStateCanceled {
		t.Fatalf("cancelled run = %+v", r.State)
	}
	if _, err := w.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: 42}); !apierr.IsMissing(err) {
		t.Fatalf("missing run: %v", err)
	}
	// A token of more than 64 characters is refused.
	long := "0123456789012345678901234567890123456789012345678901234567890123456789"
	if _, err := w.Jobs.RunNow(ctx, jobs.RunNow{JobId: job.JobId, IdempotencyToken: long}); err == nil {
		t.Fatal("a 70-character idempotency token was accepted")
	}
	// Faults apply to the run routes: a lost run-now answer, then the token.
	emu.Inject(dbemu.Fault{Method: "POST", Path: "/api/2.2/jobs/run-now", Times: 1, Status: 500, After: true})
	if _, err := w.Jobs.RunNow(ctx, jobs.RunNow{JobId: job.JobId, IdempotencyToken: "d"}); err == nil {
		t.Fatal("the injected fault did not answer")
	}
	again, err := w.Jobs.RunNow(ctx, jobs.RunNow{JobId: job.JobId, IdempotencyToken: "d"})
	if err != nil || len(emu.Runs()) != 4 || emu.Runs()[3].RunID != again.RunId {
		t.Fatalf("resend after a lost answer: %v, %d runs", err, len(emu.Runs()))
	}
}
