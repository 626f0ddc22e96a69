package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shipline/shipline/internal/metrics/metricstest"
)

func TestShiplineFamiliesExistFromTheStart(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	fams := metricstest.Gather(t, m.Registry)
	for _, name := range []string{
		"shipline_deploys_total", "shipline_build_cache_total", "shipline_build_duration_seconds",
		"shipline_upload_duration_seconds", "shipline_job_upserts_total", "go_goroutines", "process_resident_memory_bytes",
	} {
		if fams[name] == nil {
			t.Errorf("family %s missing; have %v", name, fams.Names(""))
		}
	}
	for _, o := range deployOutcomes {
		if len(fams.Series("shipline_deploys_total", "outcome="+o)) != 1 {
			t.Errorf("no shipline_deploys_total{outcome=%q} series at zero", o)
		}
	}
}

func TestShiplineRecorders(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := NewShipline(reg)
	if err != nil {
		t.Fatal(err)
	}
	s.Deploy("succeeded")
	s.Deploy("succeeded")
	s.Deploy("parked")
	s.Build("python", false, 12)
	s.Build("python", true, 0)
	s.Build("", false, 1)
	s.Upload("local", 300*time.Millisecond)
	s.JobUpsert("airflow", "created")
	s.JobUpsert("", "")

	fams := metricstest.Gather(t, reg)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"shipline_deploys_total", []string{"outcome=succeeded"}, 2},
		{"shipline_deploys_total", []string{"outcome=parked"}, 1},
		{"shipline_deploys_total", []string{"outcome=failed"}, 0},
		{"shipline_build_cache_total", []string{"result=hit"}, 1},
		{"shipline_build_cache_total", []string{"result=miss"}, 2},
		{"shipline_build_duration_seconds", []string{"language=python"}, 1},
		{"shipline_build_duration_seconds", []string{"language=unknown"}, 1},
		{"shipline_upload_duration_seconds", []string{"fabric_kind=local"}, 1},
		{"shipline_job_upserts_total", []string{"fabric_kind=airflow", "action=created"}, 1},
		{"shipline_job_upserts_total", []string{"fabric_kind=unknown", "action=unknown"}, 1},
	} {
		if got := fams.Value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if sum := fams.Series("shipline_build_duration_seconds", "language=python")[0].Histogram.GetSampleSum(); sum != 12 {
		t.Errorf("python build seconds sum = %v, want 12", sum)
	}

	// A second registration in the same registry is refused, not a panic.
	if _, err := NewShipline(reg); err == nil {
		t.Error("NewShipline registered its metrics twice")
	}
}

func TestNilShiplineRecordsNothing(t *testing.T) {
	var s *Shipline
	s.Deploy("succeeded")
	s.Build("python", false, 1)
	s.Upload("local", time.Second)
	s.JobUpsert("local", "created")
}
