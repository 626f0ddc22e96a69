package test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/devserver"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/workerapp"
	"github.com/shipline/shipline/test/testkit"
	"github.com/shipline/shipline/workflows"
)

// countingRunner is a fabric whose runs are keyed by the start's idempotency
// key and end successfully at the third read.
type countingRunner struct {
	fabric.Fabric
	mu     sync.Mutex
	starts int
	byKey  map[string]string
	reads  int
	read   chan struct{} // one value per GetRun
}

func (f *countingRunner) StartRun(_ context.Context, r fabric.RunRequest) (fabric.RunRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts++
	if _, ok := f.byKey[r.Key]; !ok {
		f.byKey[r.Key] = "run-1"
	}
	return fabric.RunRef{ID: f.byKey[r.Key], URL: "https://fabric.test/run/" + f.byKey[r.Key]}, nil
}

func (f *countingRunner) GetRun(_ context.Context, _, _, id string) (fabric.Run, error) {
	f.mu.Lock()
	f.reads++
	n := f.reads
	f.mu.Unlock()
	f.read <- struct{}{}
	if n >= 3 {
		return fabric.Run{ID: id, State: fabric.RunTerminated, Result: fabric.RunSucceeded,
			Tasks: []fabric.TaskRun{{Key: "ingest", State: fabric.RunTerminated, Result: fabric.RunSucceeded}}}, nil
	}
	return fabric.Run{ID: id, State: fabric.RunRunning, Tasks: []fabric.TaskRun{{Key: "ingest", State: fabric.RunRunning}}}, nil
}

func (f *countingRunner) ListRuns(context.Context, string, string, int) ([]fabric.Run, error) {
	return nil, nil
}
func (f *countingRunner) CancelRun(context.Context, string, string, string) error { return nil }
func (f *countingRunner) ActiveRuns(context.Context, string, string) ([]fabric.Run, error) {
	return nil, nil
}

const runRestartQueue = "run-restart"

// stubFabricEntity answers the state query of a Fabric entity that records
// job nightly at v1.0.0.
func stubFabricEntity(ctx workflow.Context) error {
	state := workflows.FabricState{Project: "demo", Fabric: "dev",
		Jobs: map[string]workflows.JobRecord{"nightly": {Fabric: "dev", Job: "nightly", Version: "v1.0.0", Actor: "alice"}}}
	if err := workflow.SetQueryHandler(ctx, workflows.StateQuery, func() (workflows.FabricState, error) { return state, nil }); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return false })
}

// TestRunSurvivesWorkerRestart stops the worker while a Run workflow waits
// between two reads of its run and starts a new one (no cached state): the
// new worker replays the history, goes on reading the same remote run and
// completes; the fabric saw one start. The recorded history then replays
// with the current workflow code.
func TestRunSurvivesWorkerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: starts a Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{
		DBFile: filepath.Join(t.TempDir(), "temporal.db"), Port: testkit.FreePort(t), UIPort: -1,
		SearchAttributes: workerapp.SearchAttributes(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err := client.Dial(client.Options{HostPort: srv.Address(), Namespace: srv.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	fab := &countingRunner{byKey: map[string]string{}, read: make(chan struct{}, 10)}
	cfg := &platform.Config{
		Teams:    map[string]platform.Team{"developers": {Members: []string{"bob"}}},
		Projects: map[string]platform.Project{"demo": {}},
		Fabrics:  map[string]platform.Fabric{"dev": {Name: "dev", Kind: fabric.KindDatabricks, Owner: "developers"}},
	}
	newWorker := func() worker.Worker {
		w := worker.New(c, runRestartQueue, worker.Options{})
		w.RegisterWorkflowWithOptions(workflows.Run, workflow.RegisterOptions{Name: workflows.RunWorkflow})
		w.RegisterWorkflowWithOptions(stubFabricEntity, workflow.RegisterOptions{Name: workflows.FabricWorkflow})
		w.RegisterActivity(&activities.Runs{Platform: cfg, Open: func(*platform.Config, string, fabric.Env) (fabric.Fabric, error) { return fab, nil }})
		w.RegisterActivity(&activities.Config{Platform: cfg})
		w.RegisterActivity(&activities.Messages{Client: c})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := newWorker()
	if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.FabricID("demo", "dev"), TaskQueue: runRestartQueue}, workflows.FabricWorkflow); err != nil {
		t.Fatal(err)
	}
	id := workflows.RunID("demo", "dev", "nightly", "restart")
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: runRestartQueue}, workflows.RunWorkflow,
		workflows.RunInput{Project: "demo", Fabric: "dev", Job: "nightly", Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	// The first read: the workflow now waits on a 10 s timer. Stop the worker.
	select {
	case <-fab.read:
	case <-ctx.Done():
		t.Fatal("the run was never read")
	}
	w.Stop()
	w = newWorker()
	defer w.Stop()

	var out workflows.RunOutcome
	if err := run.Get(ctx, &out); err != nil {
		t.Fatalf("run after the worker restart: %v", err)
	}
	if out.Status != workflows.StatusSucceeded || out.RunID != "run-1" || out.Polls != 3 {
		t.Fatalf("outcome = %+v", out)
	}
	fab.mu.Lock()
	starts, runs := fab.starts, len(fab.byKey)
	fab.mu.Unlock()
	if starts != 1 || runs != 1 {
		t.Errorf("the fabric saw %d starts making %d runs, want 1 and 1", starts, runs)
	}

	// SHIPLINE_RECORD_RUN_HISTORY=1 records the history for
	// workflows/replay_test.go, which keeps replaying it as the code changes.
	if os.Getenv("SHIPLINE_RECORD_RUN_HISTORY") != "" {
		recordHistory(ctx, t, c, id, run.GetRunID(), filepath.Join("..", "workflows", "testdata", "histories", "run.json"))
	}

	// The whole history replays with the current code.
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workflows.Run, workflow.RegisterOptions{Name: workflows.RunWorkflow})
	if err := replayer.ReplayWorkflowExecution(ctx, c.WorkflowService(), nil, srv.Namespace(), workflow.Execution{ID: id, RunID: run.GetRunID()}); err != nil {
		t.Fatalf("the Run history does not replay: %v", err)
	}
}

// recordHistory writes a workflow's history as JSON (client.HistoryFromJSON reads it).
func recordHistory(ctx context.Context, t *testing.T, c client.Client, id, runID, path string) {
	t.Helper()
	h := &historypb.History{}
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	data, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
