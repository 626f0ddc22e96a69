package metrics

import (
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// SDKLatencyBuckets are the histogram buckets, in seconds, of the SDK's
// timers (request, poll, schedule-to-start and execution latencies). They
// reach past a minute because long polls last about 70 seconds.
var SDKLatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// sdkMetrics turns the Temporal SDK's metrics into Prometheus metrics. It is
// a prometheus.Collector (an unchecked one: it describes nothing up front,
// since the SDK names its metrics only when it first records them) holding
// one vector per (metric name, sorted tag keys), created on first use.
//
// Names are kept as the SDK gives them, as the SDK's tally/Prometheus
// reporter exports them, so Temporal's SDK dashboards work unchanged:
// counters (temporal_request, temporal_workflow_completed, ...) and gauges
// (temporal_worker_task_slots_available, ...) under their own names, timers
// (temporal_request_latency, temporal_activity_execution_latency, ...) as
// histograms in seconds (temporal_request_latency_bucket, _sum, _count). Tags
// become labels. The SDK records some metrics with different tag sets from
// different places (for example temporal_request from the client and from
// the worker's pollers); each tag set gets its own vector, so one family may
// hold series with different label names, which Prometheus accepts. A name
// the SDK would use for two kinds of metric (it does not) keeps its first
// kind; the other's records are dropped.
type sdkMetrics struct {
	mu    sync.RWMutex
	vecs  map[string]prometheus.Collector // name + "\x00" + sorted keys → vector
	kinds map[string]string               // name → "counter", "gauge" or "timer"
}

func newSDKMetrics() *sdkMetrics {
	return &sdkMetrics{vecs: map[string]prometheus.Collector{}, kinds: map[string]string{}}
}

// Describe sends nothing: the collector is unchecked.
func (s *sdkMetrics) Describe(chan<- *prometheus.Desc) {}

// Collect sends every vector's metrics.
func (s *sdkMetrics) Collect(ch chan<- prometheus.Metric) {
	s.mu.RLock()
	vecs := make([]prometheus.Collector, 0, len(s.vecs))
	for _, v := range s.vecs {
		vecs = append(vecs, v)
	}
	s.mu.RUnlock()
	for _, v := range vecs {
		v.Collect(ch)
	}
}

// vec returns the vector of name with labels keys, creating it with mk; nil
// when name is already used by another kind of metric.
func (s *sdkMetrics) vec(kind, name string, t *tagSet, mk func(opts prometheus.Opts) prometheus.Collector) prometheus.Collector {
	id := name + "\x00" + t.sig
	s.mu.RLock()
	v, ok := s.vecs[id]
	s.mu.RUnlock()
	if ok {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vecs[id]; ok {
		return v
	}
	if k, ok := s.kinds[name]; ok && k != kind {
		return nil
	}
	s.kinds[name] = kind
	v = mk(prometheus.Opts{Name: name, Help: "Temporal SDK " + kind + " " + name + "."})
	s.vecs[id] = v
	return v
}

// handler returns the SDK handler with no tags.
func (s *sdkMetrics) handler() client.MetricsHandler {
	return &sdkHandler{m: s, tags: newTagSet(nil)}
}

// sdkHandler implements client.MetricsHandler on sdkMetrics.
type sdkHandler struct {
	m    *sdkMetrics
	tags *tagSet
}

// WithTags returns a handler with tags added to (or replacing) the current ones.
func (h *sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	if len(tags) == 0 {
		return h
	}
	merged := make(map[string]string, len(h.tags.keys)+len(tags))
	for i, k := range h.tags.keys {
		merged[k] = h.tags.values[i]
	}
	for k, v := range tags {
		merged[sanitize(k)] = v
	}
	return &sdkHandler{m: h.m, tags: newTagSet(merged)}
}

// Counter returns the counter name with the handler's tags.
func (h *sdkHandler) Counter(name string) client.MetricsCounter {
	v, ok := h.m.vec("counter", sanitize(name), h.tags, func(o prometheus.Opts) prometheus.Collector {
		return prometheus.NewCounterVec(prometheus.CounterOpts(o), h.tags.keys)
	}).(*prometheus.CounterVec)
	if !ok {
		return client.MetricsNopHandler.Counter(name)
	}
	c := v.WithLabelValues(h.tags.values...)
	return counterFunc(func(d int64) {
		if d > 0 { // a Prometheus counter only goes up
			c.Add(float64(d))
		}
	})
}

// Gauge returns the gauge name with the handler's tags.
func (h *sdkHandler) Gauge(name string) client.MetricsGauge {
	v, ok := h.m.vec("gauge", sanitize(name), h.tags, func(o prometheus.Opts) prometheus.Collector {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts(o), h.tags.keys)
	}).(*prometheus.GaugeVec)
	if !ok {
		return client.MetricsNopHandler.Gauge(name)
	}
	return gaugeFunc(v.WithLabelValues(h.tags.values...).Set)
}

// Timer returns the timer name, a histogram in seconds, with the handler's tags.
func (h *sdkHandler) Timer(name string) client.MetricsTimer {
	v, ok := h.m.vec("timer", sanitize(name), h.tags, func(o prometheus.Opts) prometheus.Collector {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: o.Name, Help: o.Help + " Seconds.", Buckets: SDKLatencyBuckets,
		}, h.tags.keys)
	}).(*prometheus.HistogramVec)
	if !ok {
		return client.MetricsNopHandler.Timer(name)
	}
	o := v.WithLabelValues(h.tags.values...)
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

type (
	counterFunc func(int64)
	gaugeFunc   func(float64)
	timerFunc   func(time.Duration)
)

func (f counterFunc) Inc(d int64)          { f(d) }
func (f gaugeFunc) Update(v float64)       { f(v) }
func (f timerFunc) Record(d time.Duration) { f(d) }

// tagSet is a handler's tags, sorted by key.
type tagSet struct {
	keys, values []string
	sig          string // the keys joined, to tell vectors apart
}

func newTagSet(tags map[string]string) *tagSet {
	t := &tagSet{keys: make([]string, 0, len(tags)), values: make([]string, 0, len(tags))}
	for k := range tags {
		t.keys = append(t.keys, k)
	}
	sort.Strings(t.keys)
	for _, k := range t.keys {
		t.values = append(t.values, tags[k])
	}
	t.sig = strings.Join(t.keys, ",")
	return t
}

var invalidName = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// sanitize makes s a valid Prometheus metric or label name.
func sanitize(s string) string {
	s = invalidName.ReplaceAllString(s, "_")
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "_" + s
	}
	return s
}
