package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shipline/shipline/internal/platform"
)

// Outcomes of shipline_deploys_total. Parked counts each time a deployment
// parks (it may then be resumed and end with another outcome); the others
// count deployments that ended.
var deployOutcomes = []string{"succeeded", "parked", "failed", "refused", "cancelled"}

// Label values created up front, so that every family and its usual series
// exist (at zero) from the first scrape.
var (
	knownLanguages  = []string{"python", "scala", "java"}
	knownJobActions = []string{"created", "updated", "recreated", "unchanged", "failed"}
)

// Shipline holds Shipline's own metrics:
//
//	shipline_deploys_total{outcome}                  succeeded | parked | failed | refused | cancelled
//	shipline_build_cache_total{result}               hit | miss, one per artifact a build activity returned
//	shipline_build_duration_seconds{language}        time in build tools of a build that ran (cache misses)
//	shipline_upload_duration_seconds{fabric_kind}    time to upload one deployment's artifacts to one fabric
//	shipline_job_upserts_total{fabric_kind,action}   created | updated | recreated | unchanged | failed
//
// A nil *Shipline records nothing, so code may record unconditionally.
type Shipline struct {
	deploys    *prometheus.CounterVec
	cache      *prometheus.CounterVec
	buildSecs  *prometheus.HistogramVec
	uploadSecs *prometheus.HistogramVec
	upserts    *prometheus.CounterVec
}

// NewShipline creates Shipline's metrics and registers them with reg.
func NewShipline(reg prometheus.Registerer) (*Shipline, error) {
	s := &Shipline{
		deploys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shipline_deploys_total",
			Help: "Deployments by outcome: succeeded, failed, refused or cancelled when one ends; parked each time one parks.",
		}, []string{"outcome"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shipline_build_cache_total",
			Help: "Pipeline artifacts returned by builds, by build cache result (hit: no build ran; miss: built).",
		}, []string{"result"}),
		buildSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shipline_build_duration_seconds",
			Help:    "Time spent in build tools (tests and packaging) by builds that ran, by pipeline language.",
			Buckets: []float64{.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800},
		}, []string{"language"}),
		uploadSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shipline_upload_duration_seconds",
			Help:    "Time to upload (and checksum-verify) one deployment's artifacts to one fabric, by fabric kind.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"fabric_kind"}),
		upserts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shipline_job_upserts_total",
			Help: "Jobs upserted on fabrics, by fabric kind and action (created, updated, recreated, unchanged; failed: refused for good by the fabric).",
		}, []string{"fabric_kind", "action"}),
	}
	for _, c := range []prometheus.Collector{s.deploys, s.cache, s.buildSecs, s.uploadSecs, s.upserts} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, o := range deployOutcomes {
		s.deploys.WithLabelValues(o)
	}
	s.cache.WithLabelValues("hit")
	s.cache.WithLabelValues("miss")
	for _, l := range knownLanguages {
		s.buildSecs.WithLabelValues(l)
	}
	for _, kind := range platform.Kinds() { // the kinds internal/fabric registered
		k := string(kind)
		s.uploadSecs.WithLabelValues(k)
		for _, a := range knownJobActions {
			s.upserts.WithLabelValues(k, a)
		}
	}
	return s, nil
}

// Deploy counts a deployment outcome (see shipline_deploys_total).
func (s *Shipline) Deploy(outcome string) {
	if s == nil {
		return
	}
	s.deploys.WithLabelValues(outcome).Inc()
}

// Build counts a pipeline artifact a build returned: a cache hit, or a build
// that ran for buildSeconds in build tools.
func (s *Shipline) Build(language string, cached bool, buildSeconds float64) {
	if s == nil {
		return
	}
	if cached {
		s.cache.WithLabelValues("hit").Inc()
		return
	}
	s.cache.WithLabelValues("miss").Inc()
	s.buildSecs.WithLabelValues(orUnknown(language)).Observe(buildSeconds)
}

// Upload records the time an upload of a deployment's artifacts to a fabric of kind took.
func (s *Shipline) Upload(fabricKind string, d time.Duration) {
	if s == nil {
		return
	}
	s.uploadSecs.WithLabelValues(orUnknown(fabricKind)).Observe(d.Seconds())
}

// JobUpsert counts a job upsert on a fabric of kind.
func (s *Shipline) JobUpsert(fabricKind, action string) {
	if s == nil {
		return
	}
	s.upserts.WithLabelValues(orUnknown(fabricKind), orUnknown(action)).Inc()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
