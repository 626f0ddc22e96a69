package workerapp

import (
	"context"
	"net"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/internal/metrics/metricstest"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/workflows"
)

// The worker started with MetricsAddr serves the SDK's and Shipline's metrics
// while it runs, and closes the port when it stops.
func TestRunServesMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Temporal server")
	}
	cfg := &platform.Config{
		StateDir: filepath.Join(t.TempDir(), "state"),
		Temporal: platform.Temporal{Namespace: "default", TaskQueue: "shipline-metrics"},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Config: cfg, Dev: true, TemporalPort: freePort(t), UIPort: -1, Logger: warnLogger(t),
			MetricsAddr: "127.0.0.1:0",
			Ready:       func(info Info) { ready <- info },
		})
	}()
	var info Info
	select {
	case info = <-ready:
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("worker not ready after 60s")
	}
	u, err := url.Parse(info.MetricsURL)
	if err != nil || u.Path != "/metrics" || u.Port() == "0" || u.Port() == "" {
		t.Fatalf("MetricsURL = %q", info.MetricsURL)
	}

	// A deploy of a project the platform does not know is refused: the Deploy
	// workflow and its Resolve activity run on this worker.
	c, err := Dial(ctx, info.Address, info.Namespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "deploy/nope/v1.0.0/metrics-test", TaskQueue: info.TaskQueue},
		workflows.DeployWorkflow, workflows.DeployInput{Project: "nope", Version: "v1.0.0", Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err == nil {
		t.Fatal("deploy of an unknown project succeeded")
	}

	// The SDK counts a workflow's end after the server accepted the final
	// workflow task, which can be after the client saw the result: scrape
	// until the count is there.
	fams := metricstest.MustScrape(t, info.MetricsURL)
	for deadline := time.Now().Add(30 * time.Second); fams.Value("temporal_workflow_failed", "workflow_type=Deploy") <= 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		fams = metricstest.MustScrape(t, info.MetricsURL)
	}
	if got := fams.Value("shipline_deploys_total", "outcome=refused"); got != 1 {
		t.Errorf("shipline_deploys_total{outcome=refused} = %v, want 1", got)
	}
	if got := fams.Value("shipline_deploys_total", "outcome=succeeded"); got != 0 {
		t.Errorf("shipline_deploys_total{outcome=succeeded} = %v, want 0", got)
	}
	for _, name := range []string{
		"shipline_build_cache_total", "shipline_build_duration_seconds", "shipline_upload_duration_seconds", "shipline_job_upserts_total",
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if fams[name] == nil {
			t.Errorf("family %s missing", name)
		}
	}
	// The SDK's metrics, with their tags as labels.
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"temporal_request", []string{"namespace=default", "operation=RespondWorkflowTaskCompleted"}},
		{"temporal_request_latency", []string{"namespace=default"}},
		{"temporal_long_request", []string{"namespace=default", "operation=PollWorkflowTaskQueue"}},
		{"temporal_workflow_task_execution_latency", []string{"workflow_type=Deploy", "task_queue=shipline-metrics"}},
		{"temporal_workflow_failed", []string{"workflow_type=Deploy"}},
		{"temporal_activity_execution_latency", []string{"activity_type=Project"}}, // the project's settings are read first
		{"temporal_worker_task_slots_available", []string{"worker_type=WorkflowWorker"}},
	} {
		if got := fams.Value(c.name, c.labels...); got <= 0 && c.name != "temporal_worker_task_slots_available" {
			t.Errorf("%s%v = %v, want > 0; SDK families: %v", c.name, c.labels, got, fams.Names("temporal_"))
		} else if len(fams.Series(c.name, c.labels...)) == 0 {
			t.Errorf("no series %s%v; SDK families: %v", c.name, c.labels, fams.Names("temporal_"))
		}
	}
	t.Logf("SDK families: %v", fams.Names("temporal_"))

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancel")
	}
	if conn, err := net.Dial("tcp", u.Host); err == nil {
		_ = conn.Close()
		t.Error("metrics port still open after Run returned")
	}
}

// A taken metrics address stops Run before anything starts.
func TestRunFailsOnATakenMetricsAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	cfg := &platform.Config{StateDir: filepath.Join(t.TempDir(), "state")}
	err = Run(context.Background(), Options{Config: cfg, Dev: true, MetricsAddr: l.Addr().String(), UIPort: -1})
	if err == nil {
		t.Fatal("Run with a taken metrics address succeeded")
	}
	t.Log(err)
}
