package devserver_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/devserver"
	"github.com/shipline/shipline/internal/freeport"
	"github.com/shipline/shipline/internal/testcerts"
)

var shiplineAttributes = map[string]enumspb.IndexedValueType{
	"ShiplineProject": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"ShiplineVersion": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"ShiplineActor":   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"ShiplineFabric":  enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}

func TestServerServesUIAndKeepsDataAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := devserver.Options{
		DBFile:           filepath.Join(t.TempDir(), "state", "temporal.db"),
		Port:             freePort(t),
		UIPort:           freePort(t),
		Namespace:        "shipline-test",
		SearchAttributes: shiplineAttributes,
		Logger:           testLogger(t),
	}

	// First start: a new database.
	srv := startServer(ctx, t, opts)
	c := dial(ctx, t, srv)
	describeNamespace(ctx, t, c, opts.Namespace)
	checkSearchAttributes(ctx, t, c, opts.Namespace)
	checkUI(ctx, t, srv.UIURL())

	// An execution of a type no worker serves: it stays open, persisted.
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "persisted-1", TaskQueue: "nobody-polls"}, "NoSuchWorkflow")
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	c.Close()
	srv.Stop()
	srv.Stop() // idempotent

	// Second start on the same file: the namespace and the execution are still there.
	srv = startServer(ctx, t, opts)
	defer srv.Stop()
	c = dial(ctx, t, srv)
	defer c.Close()
	describeNamespace(ctx, t, c, opts.Namespace)
	checkSearchAttributes(ctx, t, c, opts.Namespace)
	desc, err := c.DescribeWorkflowExecution(ctx, "persisted-1", run.GetRunID())
	if err != nil {
		t.Fatalf("describe workflow started before the restart: %v", err)
	}
	if got := desc.GetWorkflowExecutionInfo().GetType().GetName(); got != "NoSuchWorkflow" {
		t.Errorf("workflow type after restart = %q, want NoSuchWorkflow", got)
	}
	if got := desc.GetWorkflowExecutionInfo().GetStatus(); got != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("workflow status after restart = %v, want running", got)
	}
}

func TestStartRefusesBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	busy := l.Addr().(*net.TCPAddr).Port
	_, err = devserver.Start(context.Background(), devserver.Options{
		DBFile: filepath.Join(t.TempDir(), "temporal.db"),
		Port:   freePort(t),
		UIPort: busy,
	})
	if err == nil || !strings.Contains(err.Error(), "UI port") || !strings.Contains(err.Error(), "not free") {
		t.Fatalf("Start with a busy UI port: err = %v, want a 'UI port ... not free' error", err)
	}
}

func TestStartNeedsDBFile(t *testing.T) {
	if _, err := devserver.Start(context.Background(), devserver.Options{}); err == nil {
		t.Fatal("Start without DBFile succeeded")
	}
}

func startServer(ctx context.Context, t testing.TB, opts devserver.Options) *devserver.Server {
	t.Helper()
	srv, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start dev server: %v", err)
	}
	return srv
}

func dial(ctx context.Context, t testing.TB, srv *devserver.Server) client.Client {
	t.Helper()
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.Address(), Namespace: srv.Namespace()})
	if err != nil {
		t.Fatalf("dial %s: %v", srv.Address(), err)
	}
	return c
}

func describeNamespace(ctx context.Context, t *testing.T, c client.Client, ns string) {
	t.Helper()
	resp, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("describe namespace %s: %v", ns, err)
	}
	if got := resp.GetNamespaceInfo().GetName(); got != ns {
		t.Errorf("namespace name = %q, want %q", got, ns)
	}
}

func checkSearchAttributes(ctx context.Context, t *testing.T, c client.Client, ns string) {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("list search attributes: %v", err)
	}
	for name, typ := range shiplineAttributes {
		if got, ok := resp.GetCustomAttributes()[name]; !ok || got != typ {
			t.Errorf("search attribute %s = %v (present %v), want %v", name, got, ok, typ)
		}
	}
}

func checkUI(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET UI: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Errorf("GET %s: status %d, body starts %q; want 200 with HTML", url, resp.StatusCode, head(body))
	}
}

func head(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

func freePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Get("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testLogger shows the server's warnings and errors in the test output. It
// writes to stderr rather than t.Log: the server's goroutines may still log
// for a moment after a test ends.
func testLogger(t testing.TB) *zap.Logger {
	t.Helper()
	cfg := zap.NewDevelopmentConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	cfg.DisableStacktrace = true
	l, err := cfg.Build()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestStartRefusesIncompleteSecurity: TLS needs the server's certificate,
// key and CA, existing files; API keys need the UI off (it cannot present
// one).
func TestStartRefusesIncompleteSecurity(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "temporal.db")
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		opts devserver.Options
		want string
	}{
		{devserver.Options{DBFile: db, TLS: &devserver.TLS{CertFile: missing, KeyFile: missing}}, "needs CAFile"},
		{devserver.Options{DBFile: db, TLS: &devserver.TLS{CertFile: missing, KeyFile: missing, CAFile: missing}}, "no such file"},
		{devserver.Options{DBFile: db, APIKeys: []string{"k"}, UIPort: freePort(t)}, "disable the UI"},
		{devserver.Options{DBFile: db, APIKeys: []string{""}, UIPort: -1}, "must not be empty"},
	} {
		_, err := devserver.Start(context.Background(), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start(%+v) = %v, want an error containing %q", tc.opts, err, tc.want)
		}
	}
}

// TestMTLSServerServesUI: with mTLS the UI still reads the server: it dials
// the frontend with the server's CA and certificate.
func TestMTLSServerServesUI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Temporal server")
	}
	dir := t.TempDir()
	ca := testcerts.NewCA(t, dir, "ca")
	cert := ca.Server(t, "server")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv := startServer(ctx, t, devserver.Options{
		DBFile: filepath.Join(dir, "temporal.db"), Port: freePort(t), UIPort: freePort(t), Namespace: "ui-tls",
		Logger: testLogger(t),
		TLS:    &devserver.TLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile, CAFile: ca.File, ClientCAFile: ca.File},
	})
	defer srv.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.UIURL()+"/api/v1/namespaces/ui-tls", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "ui-tls") {
		t.Errorf("UI namespace API: status %d, body %q", resp.StatusCode, head(body))
	}
}
