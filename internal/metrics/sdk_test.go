package metrics

import (
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/internal/metrics/metricstest"
)

func TestSDKHandlerCountersGaugesTimers(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var h client.MetricsHandler = m.SDKHandler()
	h = h.WithTags(map[string]string{"namespace": "default", "client_name": "temporal_go"})
	w := h.WithTags(map[string]string{"task_queue": "shipline", "workflow_type": "Deploy"})

	w.Counter("temporal_workflow_completed").Inc(1)
	w.Counter("temporal_workflow_completed").Inc(2)
	w.Counter("temporal_workflow_completed").Inc(-5) // ignored: counters only go up
	w.Gauge("temporal_sticky_cache_size").Update(7)
	w.Gauge("temporal_sticky_cache_size").Update(3)
	w.Timer("temporal_workflow_endtoend_latency").Record(1500 * time.Millisecond)
	w.Timer("temporal_workflow_endtoend_latency").Record(20 * time.Millisecond)
	// A tag given again replaces the earlier value.
	w.WithTags(map[string]string{"workflow_type": "Release"}).Counter("temporal_workflow_completed").Inc(1)

	fams := metricstest.Gather(t, m.Registry)
	labels := []string{"namespace=default", "client_name=temporal_go", "task_queue=shipline"}
	if got := fams.Value("temporal_workflow_completed", append(labels, "workflow_type=Deploy")...); got != 3 {
		t.Errorf("temporal_workflow_completed{Deploy} = %v, want 3", got)
	}
	if got := fams.Value("temporal_workflow_completed", append(labels, "workflow_type=Release")...); got != 1 {
		t.Errorf("temporal_workflow_completed{Release} = %v, want 1", got)
	}
	if got := fams.Value("temporal_sticky_cache_size", labels...); got != 3 {
		t.Errorf("temporal_sticky_cache_size = %v, want 3 (the last update)", got)
	}
	series := fams.Series("temporal_workflow_endtoend_latency", labels...)
	if len(series) != 1 || series[0].Histogram == nil {
		t.Fatalf("temporal_workflow_endtoend_latency series = %v, want one histogram", series)
	}
	hist := series[0].Histogram
	if hist.GetSampleCount() != 2 || hist.GetSampleSum() < 1.5 || hist.GetSampleSum() > 1.53 {
		t.Errorf("timer histogram count %d sum %v, want 2 samples summing 1.52 seconds", hist.GetSampleCount(), hist.GetSampleSum())
	}
	for _, b := range hist.GetBucket() {
		if b.GetUpperBound() == 1 && b.GetCumulativeCount() != 1 {
			t.Errorf("bucket le=1 holds %d, want 1 (20ms)", b.GetCumulativeCount())
		}
	}
}

func TestSDKHandlerVaryingTagSetsShareAFamily(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	h := m.SDKHandler()
	// The SDK records temporal_request from the client (namespace, operation)
	// and from pollers with more tags; both must be exported.
	h.WithTags(map[string]string{"namespace": "default", "operation": "StartWorkflowExecution"}).Counter("temporal_request").Inc(1)
	h.WithTags(map[string]string{"namespace": "default", "operation": "RespondWorkflowTaskCompleted", "task_queue": "shipline"}).Counter("temporal_request").Inc(1)
	h.Counter("temporal_request").Inc(1) // no tags at all
	// Names and tag keys Prometheus would refuse are made valid.
	h.WithTags(map[string]string{"bad-key": "v"}).Counter("temporal.odd-name").Inc(1)
	// A name used for another kind of metric is dropped, not an error at scrape time.
	h.Gauge("temporal_request").Update(5)

	fams := metricstest.Gather(t, m.Registry)
	if got := len(fams.Series("temporal_request")); got != 3 {
		t.Errorf("temporal_request has %d series, want 3", got)
	}
	if got := fams.Value("temporal_request"); got != 3 {
		t.Errorf("temporal_request total = %v, want 3", got)
	}
	if got := fams.Value("temporal_odd_name", "bad_key=v"); got != 1 {
		t.Errorf("temporal_odd_name{bad_key=v} = %v, want 1; families %v", got, fams.Names("temporal"))
	}
}

func TestSDKHandlerIsSafeForConcurrentUse(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	h := m.SDKHandler()
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			tagged := h.WithTags(map[string]string{"worker": string(rune('a' + i%2))})
			for j := range 500 {
				tagged.Counter("temporal_poll").Inc(1)
				tagged.Timer("temporal_poll_latency").Record(time.Millisecond)
				if j%100 == 0 {
					_, _ = m.Registry.Gather()
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	fams := metricstest.Gather(t, m.Registry)
	if got := fams.Value("temporal_poll"); got != 4000 {
		t.Errorf("temporal_poll = %v, want 4000", got)
	}
	if got := fams.Value("temporal_poll_latency"); got != 4000 {
		t.Errorf("temporal_poll_latency count = %v, want 4000", got)
	}
}
