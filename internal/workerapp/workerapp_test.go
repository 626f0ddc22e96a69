package workerapp

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/codec"
	"github.com/shipline/shipline/internal/devserver"
	"github.com/shipline/shipline/internal/freeport"
	"github.com/shipline/shipline/internal/platform"
)

func TestRunDevModeStartsPollsAndStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Temporal server")
	}
	// With encryption on, the pollers' identity says so, for a CLI without
	// keys to refuse to send plain text.
	t.Setenv("SHIPLINE_TEST_RUN_KEYS", "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	for _, enc := range []*platform.Encryption{nil, {KeysEnv: "SHIPLINE_TEST_RUN_KEYS"}} {
		t.Run(fmt.Sprintf("encrypted=%v", enc != nil), func(t *testing.T) { runDevMode(t, enc) })
	}
}

func runDevMode(t *testing.T, enc *platform.Encryption) {
	stateDir := filepath.Join(t.TempDir(), "state")
	cfg := &platform.Config{
		StateDir: stateDir,
		Temporal: platform.Temporal{Namespace: "default", TaskQueue: "shipline-test", Encryption: enc},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Config:       cfg,
			Dev:          true,
			TemporalPort: freePort(t),
			UIPort:       -1,
			Logger:       warnLogger(t),
			Ready:        func(info Info) { ready <- info },
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
	if info.Namespace != "default" || info.TaskQueue != "shipline-test" || info.UIURL != "" ||
		!strings.HasPrefix(info.Address, "127.0.0.1:") {
		t.Errorf("ready info = %+v", info)
	}
	if _, err := os.Stat(filepath.Join(stateDir, DevDBFile)); err != nil {
		t.Errorf("dev database not in state_dir: %v", err)
	}

	// The worker is polling its task queue.
	c, err := Dial(ctx, info.Address, info.Namespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		tq, err := c.DescribeTaskQueue(ctx, info.TaskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err != nil {
			t.Fatal(err)
		}
		if len(tq.GetPollers()) > 0 {
			if marked := codec.MarksEncryption(tq.GetPollers()[0].GetIdentity()); marked != (enc != nil) {
				t.Errorf("poller identity %q: marked as encrypting %v, want %v", tq.GetPollers()[0].GetIdentity(), marked, enc != nil)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pollers on task queue %s after 10s", info.TaskQueue)
		}
	}
	c.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancel")
	}
}

func TestEnsureSearchAttributes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A database created before Shipline had search attributes.
	srv, err := devserver.Start(ctx, devserver.Options{
		DBFile: filepath.Join(t.TempDir(), "temporal.db"),
		Port:   freePort(t),
		UIPort: -1,
		Logger: warnLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err := Dial(ctx, srv.Address(), srv.Namespace(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ops := c.OperatorService()

	for range 2 { // the second call finds them all and does nothing
		if err := EnsureSearchAttributes(ctx, c, srv.Namespace(), nil); err != nil {
			t.Fatalf("EnsureSearchAttributes: %v", err)
		}
		got := listAttributes(ctx, t, c, srv.Namespace())
		for name, typ := range SearchAttributes() {
			if got[name] != typ {
				t.Errorf("search attribute %s = %v, want %v", name, got[name], typ)
			}
		}
	}

	// An attribute registered with the wrong type is reported, with the fix.
	if _, err := ops.RemoveSearchAttributes(ctx, &operatorservice.RemoveSearchAttributesRequest{
		Namespace: srv.Namespace(), SearchAttributes: []string{"ShiplineFabric"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        srv.Namespace(),
		SearchAttributes: map[string]enumspb.IndexedValueType{"ShiplineFabric": enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	}); err != nil {
		t.Fatal(err)
	}
	err = EnsureSearchAttributes(ctx, c, srv.Namespace(), nil)
	if err == nil || !strings.Contains(err.Error(), "ShiplineFabric") || !strings.Contains(err.Error(), "remove") {
		t.Fatalf("EnsureSearchAttributes with a mistyped attribute: err = %v", err)
	}
}

func TestSearchAttributes(t *testing.T) {
	want := map[string]enumspb.IndexedValueType{
		"ShiplineProject": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"ShiplineVersion": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"ShiplineActor":   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"ShiplineFabric":  enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
	}
	got := SearchAttributes()
	if len(got) != len(want) {
		t.Errorf("SearchAttributes() = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("SearchAttributes()[%s] = %v, want %v", k, got[k], v)
		}
	}
}

func TestRunNeedsConfig(t *testing.T) {
	if err := Run(context.Background(), Options{}); err == nil {
		t.Fatal("Run without a config succeeded")
	}
}

func TestDialGivesUpWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, net.JoinHostPort("127.0.0.1", "1"), "default", nil)
	if err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Dial took %v after its context ended", time.Since(start))
	}
}

func listAttributes(ctx context.Context, t *testing.T, c client.Client, ns string) map[string]enumspb.IndexedValueType {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetCustomAttributes()
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Get("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// warnLogger writes warnings to stderr: the server may log for a moment
// after a test ends, which t.Log would not allow.
func warnLogger(t *testing.T) *zap.Logger {
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
