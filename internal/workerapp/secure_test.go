package workerapp

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shipline/shipline/internal/devserver"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/temporalconn"
	"github.com/shipline/shipline/internal/testcerts"
)

// TestRetryableLeavesTLSAndRefusalsAlone: a failed TLS handshake or refused
// credentials end the dial at once; an unreachable server is waited for.
func TestRetryableLeavesTLSAndRefusalsAlone(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:7233: connect: connection refused"`), true},
		{serviceerror.NewNamespaceNotFound("default"), true},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"`), false},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate is valid for localhost, not temporal"`), false},
		{errors.Join(status.Error(codes.Unavailable, "write: broken pipe"), errors.New("TLS handshake: remote error: tls: certificate required")), false},
		{status.Error(codes.Unauthenticated, "Request unauthenticated"), false},
		{serviceerror.NewPermissionDenied("Request unauthorized.", ""), false},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestRunConnectsWithMTLS: a worker whose platform.yaml names the CA, the
// client certificate and its key polls a server that requires mTLS; without
// the certificate, or with another CA, Run fails at once naming the
// platform.yaml key to set.
func TestRunConnectsWithMTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Temporal server")
	}
	dir := t.TempDir()
	ca := testcerts.NewCA(t, dir, "ca")
	srvCert := ca.Server(t, "server")
	worker := ca.Client(t, "worker")
	otherCA := testcerts.NewCA(t, dir, "other-ca")
	srv := startSecureServer(t, devserver.Options{
		TLS: &devserver.TLS{CertFile: srvCert.CertFile, KeyFile: srvCert.KeyFile, CAFile: ca.File, ClientCAFile: ca.File},
	})
	env := temporalconn.EnvMap{"TEMPORAL_CONFIG_FILE": emptyFile(t)}

	cfg := secureConfig(t, srv, &platform.TemporalTLS{CAFile: ca.File, CertFile: worker.CertFile, KeyFile: worker.KeyFile}, "")
	info := runUntilReady(t, cfg, env)
	if info.Address != srv.Address() || info.Namespace != srv.Namespace() {
		t.Errorf("ready info = %+v", info)
	}

	err := runToFailure(t, secureConfig(t, srv, &platform.TemporalTLS{CAFile: ca.File}, ""), env)
	wantAll(t, err, "the server requires a client certificate (mTLS) and none is given",
		"set temporal.tls.cert_file in platform.yaml or TEMPORAL_TLS_CLIENT_CERT_PATH and temporal.tls.key_file in platform.yaml or TEMPORAL_TLS_CLIENT_KEY_PATH")

	err = runToFailure(t, secureConfig(t, srv, &platform.TemporalTLS{CAFile: otherCA.File, CertFile: worker.CertFile, KeyFile: worker.KeyFile}, ""), env)
	wantAll(t, err, "not signed by the CA "+otherCA.File+" (from platform.yaml temporal.tls.ca_file)",
		"temporal.tls.ca_file in platform.yaml or TEMPORAL_TLS_SERVER_CA_CERT_PATH")
}

// TestRunConnectsWithAPIKey: a worker reads its API key from the variable
// platform.yaml's api_key_env names; a refused key fails at once, naming
// that setting.
func TestRunConnectsWithAPIKey(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Temporal server")
	}
	dir := t.TempDir()
	ca := testcerts.NewCA(t, dir, "ca")
	srvCert := ca.Server(t, "server")
	srv := startSecureServer(t, devserver.Options{
		TLS:     &devserver.TLS{CertFile: srvCert.CertFile, KeyFile: srvCert.KeyFile, CAFile: ca.File},
		APIKeys: []string{"worker-key"},
	})
	profile := emptyFile(t)

	cfg := secureConfig(t, srv, &platform.TemporalTLS{CAFile: ca.File}, "SHIPLINE_TEMPORAL_KEY")
	runUntilReady(t, cfg, temporalconn.EnvMap{"TEMPORAL_CONFIG_FILE": profile, "SHIPLINE_TEMPORAL_KEY": "worker-key"})

	err := runToFailure(t, cfg, temporalconn.EnvMap{"TEMPORAL_CONFIG_FILE": profile, "SHIPLINE_TEMPORAL_KEY": "revoked-key"})
	wantAll(t, err, "Temporal refused the API key (from platform.yaml temporal.api_key_env (SHIPLINE_TEMPORAL_KEY))",
		"temporal.api_key_env in platform.yaml or TEMPORAL_API_KEY")
}

func startSecureServer(t *testing.T, opts devserver.Options) *devserver.Server {
	t.Helper()
	opts.DBFile = filepath.Join(t.TempDir(), "temporal.db")
	opts.Port = freePort(t)
	opts.UIPort = -1
	opts.Namespace = "shipline-secure"
	opts.SearchAttributes = SearchAttributes()
	opts.Logger = zap.NewNop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start dev server: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

func secureConfig(t *testing.T, srv *devserver.Server, tls *platform.TemporalTLS, apiKeyEnv string) *platform.Config {
	return &platform.Config{
		Path:     filepath.Join(t.TempDir(), "platform.yaml"),
		StateDir: filepath.Join(t.TempDir(), "state"),
		Temporal: platform.Temporal{
			Address: srv.Address(), Namespace: srv.Namespace(),
			TaskQueue: "shipline-secure", TLS: tls, APIKeyEnv: apiKeyEnv,
		},
	}
}

// runUntilReady runs the worker until it polls, checks a poller is there,
// and stops it.
func runUntilReady(t *testing.T, cfg *platform.Config, env temporalconn.EnvMap) Info {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Env: env, Logger: zap.NewNop(), Ready: func(i Info) { ready <- i }})
	}()
	var info Info
	select {
	case info = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("worker stopped before it was ready: %v", err)
	case <-time.After(time.Minute):
		cancel()
		t.Fatal("worker not ready after a minute")
	}
	conn, err := temporalconn.Resolve(temporalconn.Request{Platform: &cfg.Temporal, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	c, err := conn.Dial(ctx, conn.Options)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		tq, err := c.DescribeTaskQueue(ctx, info.TaskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err != nil {
			t.Fatal(err)
		}
		if len(tq.GetPollers()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pollers on task queue %s after 10s", info.TaskQueue)
		}
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("worker stopped with %v", err)
	}
	return info
}

// runToFailure runs the worker, which must fail with a connection error it
// did not retry: the dial gives up only after dialPatience otherwise.
func runToFailure(t *testing.T, cfg *platform.Config, env temporalconn.EnvMap) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*dialPatience)
	defer cancel()
	err := Run(ctx, Options{Config: cfg, Env: env, Logger: zap.NewNop(), Ready: func(Info) { t.Error("worker became ready") }})
	if err == nil {
		t.Fatal("Run succeeded")
	}
	var explained *temporalconn.Error
	if !errors.As(err, &explained) || strings.Contains(err.Error(), "gave up after") {
		t.Fatalf("Run failed with a retried or unexplained error: %v", err)
	}
	return err
}

func wantAll(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error lacks %q:\n%v", p, err)
		}
	}
}

func emptyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "temporal.toml")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
