// Package metrics exposes the worker's Prometheus metrics: the Temporal SDK's
// (through a client.MetricsHandler built on client_golang, see sdk.go),
// Shipline's own (see Shipline and NewInterceptor), and the Go runtime's and
// the process's (go_*, process_*), served as text on /metrics.
//
// shipline-worker serves them when started with --metrics-addr HOST:PORT
// (workerapp.Options.MetricsAddr); without it nothing is collected or served.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
)

// Path is where the metrics are served.
const Path = "/metrics"

// Metrics is one worker's registry with the SDK's and Shipline's metrics.
type Metrics struct {
	// Registry holds every metric below (and the Go and process collectors).
	Registry *prometheus.Registry
	// Shipline records Shipline's metrics.
	Shipline *Shipline
	sdk      *sdkMetrics
}

// New creates a registry with the Go runtime and process collectors, the SDK
// collector and Shipline's metrics.
func New() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	sdk := newSDKMetrics()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		sdk,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	s, err := NewShipline(reg)
	if err != nil {
		return nil, err
	}
	return &Metrics{Registry: reg, Shipline: s, sdk: sdk}, nil
}

// SDKHandler is the handler to set as client.Options.MetricsHandler: every
// metric the SDK records through the client and its workers lands in Registry.
func (m *Metrics) SDKHandler() client.MetricsHandler { return m.sdk.handler() }

// HTTPHandler serves Registry in the Prometheus text format. A metric that
// cannot be gathered is left out (and logged through errorLog, if set) rather
// than failing the whole scrape.
func (m *Metrics) HTTPHandler(errorLog promhttp.Logger) http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		ErrorLog:      errorLog,
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.Registry, // promhttp_metric_handler_* about the scrapes themselves
	})
}

// Server serves metrics over HTTP on Path.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen binds addr (host:port; port 0 picks a free one) for h on Path. It
// fails at once when the address is taken.
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		_, _ = fmt.Fprintf(w, "shipline-worker metrics: %s\n", Path)
	})
	return &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the metrics URL, http://ADDR/metrics.
func (s *Server) URL() string { return "http://" + s.Addr() + Path }

// Serve serves until ctx ends, then shuts the server down (giving scrapes in
// flight a few seconds) and returns nil; or returns the error that stopped it.
func (s *Server) Serve(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(s.ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := s.srv.Shutdown(sctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		return err
	}
}
