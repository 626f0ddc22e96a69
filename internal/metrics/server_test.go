package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/internal/metrics/metricstest"
)

func TestServerServesMetricsUntilContextEnds(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	// Series of one family with different label names survive the text format.
	h := m.SDKHandler()
	h.WithTags(map[string]string{"namespace": "default"}).Counter("temporal_request").Inc(1)
	h.WithTags(map[string]string{"namespace": "default", "task_queue": "q"}).Counter("temporal_request").Inc(1)
	m.Shipline.Deploy("succeeded")

	srv, err := Listen("127.0.0.1:0", m.HTTPHandler(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") || !strings.HasSuffix(srv.URL(), "/metrics") {
		t.Errorf("URL = %s", srv.URL())
	}
	// The address is taken: a second server fails at once.
	if _, err := Listen(srv.Addr(), m.HTTPHandler(nil)); err == nil {
		t.Error("Listen on a taken address succeeded")
	}

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()

	fams := metricstest.MustScrape(t, srv.URL())
	if got := fams.Value("temporal_request"); got != 2 {
		t.Errorf("temporal_request = %v, want 2", got)
	}
	if got := fams.Value("shipline_deploys_total", "outcome=succeeded"); got != 1 {
		t.Errorf("shipline_deploys_total{succeeded} = %v, want 1", got)
	}
	resp, err := http.Get("http://" + srv.Addr() + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope = %s, want 404", resp.Status)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if c, err := net.Dial("tcp", srv.Addr()); err == nil {
		_ = c.Close()
		t.Error("metrics port still open after Serve returned")
	}
}
