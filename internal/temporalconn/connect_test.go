package temporalconn_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/devserver"
	"github.com/shipline/shipline/internal/freeport"
	"github.com/shipline/shipline/internal/temporalconn"
	"github.com/shipline/shipline/internal/testcerts"
)

// TestTLSServerWithAPIKeys connects to an embedded server that speaks TLS
// and accepts one API key, as Temporal Cloud does: the right CA and key
// connect; a wrong CA, a refused key and no key each fail with an error
// naming the setting to fix, and none of them is worth a retry.
func TestTLSServerWithAPIKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Temporal server")
	}
	dir := t.TempDir()
	ca := testcerts.NewCA(t, dir, "server-ca")
	srvCert := ca.Server(t, "server")
	otherCA := testcerts.NewCA(t, dir, "other-ca")
	srv := start(t, devserver.Options{
		TLS:     &devserver.TLS{CertFile: srvCert.CertFile, KeyFile: srvCert.KeyFile, CAFile: ca.File},
		APIKeys: []string{"good-key"},
	})
	noProfile := filepath.Join(dir, "none.toml")
	writeFile(t, noProfile, "")

	t.Run("right CA and key", func(t *testing.T) {
		dialOK(t, temporalconn.Request{
			Flags: temporalconn.Flags{Address: srv.Address(), Namespace: srv.Namespace(), CAPath: ca.File, ConfigFile: noProfile},
			Env:   temporalconn.EnvMap{"TEMPORAL_API_KEY": "good-key"},
		})
	})
	t.Run("CA as data from the environment", func(t *testing.T) {
		dialOK(t, temporalconn.Request{
			Flags: temporalconn.Flags{Address: srv.Address(), Namespace: srv.Namespace(), APIKey: "good-key", ConfigFile: noProfile},
			Env:   temporalconn.EnvMap{"TEMPORAL_TLS_SERVER_CA_CERT_DATA": readFile(t, ca.File)},
		})
	})
	t.Run("wrong CA", func(t *testing.T) {
		err := dialErr(t, temporalconn.Request{
			Flags: temporalconn.Flags{Address: srv.Address(), Namespace: srv.Namespace(), APIKey: "good-key", CAPath: otherCA.File, ConfigFile: noProfile},
		})
		wantAll(t, err, "not signed by the CA "+otherCA.File+" (from --tls-ca-path)",
			"give the CA certificate that signed the server's certificate (--tls-ca-path or TEMPORAL_TLS_SERVER_CA_CERT_PATH)",
			"--tls-server-name", "x509: certificate signed by unknown authority")
	})
	t.Run("no CA: the system's roots do not know it", func(t *testing.T) {
		err := dialErr(t, temporalconn.Request{
			Flags: temporalconn.Flags{Address: srv.Address(), Namespace: srv.Namespace(), APIKey: "good-key", ConfigFile: noProfile},
		})
		wantAll(t, err, "not signed by a CA this machine trusts", "--tls-ca-path")
	})
	t.Run("refused API key", func(t *testing.T) {
		err := dialErr(t, temporalconn.Request{
			Flags: temporalconn.Flags{Address: srv.Address(), Namespace: srv.Namespace(), CAPath: ca.File, ConfigFile: noProfile},
			Env:   temporalconn.EnvMap{"TEMPORAL_API_KEY": "stolen-key"},
		})
		wantAll(t, err, "Temporal refused the API key (from TEMPORAL_API_KEY) for namespace "+srv.Namespace(),
			"set the right one with --api-key or TEMPORAL_API_KEY")
		if strings.Contains(err.Error(), "stolen-key") {
			t.Errorf("the error shows the key: %v", err)
		}
	})
	t.Run("no API key", func(t *testing.T) {
		err := dialErr(t, temporalconn.Request{
			Flags: temporalconn.Flags{Address: srv.Address(), Namespace: srv.Namespace(), CAPath: ca.File, ConfigFile: noProfile},
		})
		wantAll(t, err, "requires credentials", "--api-key or TEMPORAL_API_KEY")
	})
}

// TestMTLSServer connects to an embedded server that requires client
// certificates: a certificate from the client CA connects (as files or as
// PEM data); none, or one from another CA, fails naming what to set.
func TestMTLSServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Temporal server")
	}
	dir := t.TempDir()
	ca := testcerts.NewCA(t, dir, "ca")
	srvCert := ca.Server(t, "server")
	client := ca.Client(t, "alice")
	stranger := testcerts.NewCA(t, dir, "stranger-ca").Client(t, "mallory")
	srv := start(t, devserver.Options{
		TLS: &devserver.TLS{CertFile: srvCert.CertFile, KeyFile: srvCert.KeyFile, CAFile: ca.File, ClientCAFile: ca.File},
	})
	noProfile := filepath.Join(dir, "none.toml")
	writeFile(t, noProfile, "")
	base := temporalconn.Flags{Address: srv.Address(), Namespace: srv.Namespace(), CAPath: ca.File, ConfigFile: noProfile}

	t.Run("client certificate files", func(t *testing.T) {
		f := base
		f.CertPath, f.KeyPath = client.CertFile, client.KeyFile
		dialOK(t, temporalconn.Request{Flags: f})
	})
	t.Run("client certificate as data from the environment", func(t *testing.T) {
		dialOK(t, temporalconn.Request{Flags: base, Env: temporalconn.EnvMap{
			"TEMPORAL_TLS_CLIENT_CERT_DATA": string(client.CertPEM), "TEMPORAL_TLS_CLIENT_KEY_DATA": string(client.KeyPEM),
		}})
	})
	t.Run("no client certificate", func(t *testing.T) {
		err := dialErr(t, temporalconn.Request{Flags: base})
		wantAll(t, err, "the server requires a client certificate (mTLS) and none is given",
			"set --tls-cert-path or TEMPORAL_TLS_CLIENT_CERT_PATH and --tls-key-path or TEMPORAL_TLS_CLIENT_KEY_PATH")
	})
	t.Run("client certificate of another CA", func(t *testing.T) {
		f := base
		f.CertPath, f.KeyPath = stranger.CertFile, stranger.KeyFile
		err := dialErr(t, temporalconn.Request{Flags: f})
		wantAll(t, err, "the server refused the client certificate (from --tls-cert-path)", "signed by a CA the server trusts")
	})
	t.Run("plain text to a TLS server", func(t *testing.T) {
		off := false
		f := base
		f.TLS = &off
		err := dialErr(t, temporalconn.Request{Flags: f})
		wantAll(t, err, "speaks TLS but TLS is off", "turn TLS on with --tls or TEMPORAL_TLS=true", "--tls-ca-path")
	})
}

// TestTLSToPlainServer: TLS on against a server that does not speak TLS
// says so, and says how to turn TLS off.
func TestTLSToPlainServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// An HTTP/2 server's first bytes: a SETTINGS frame, not a TLS record.
			_, _ = c.Write([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
			time.Sleep(100 * time.Millisecond)
			_ = c.Close()
		}
	}()
	noProfile := filepath.Join(t.TempDir(), "none.toml")
	writeFile(t, noProfile, "")
	on := true
	err = dialErr(t, temporalconn.Request{Flags: temporalconn.Flags{Address: l.Addr().String(), TLS: &on, ConfigFile: noProfile}})
	wantAll(t, err, "does not speak TLS", "check the address, or turn TLS off with --tls=false or TEMPORAL_TLS=false")
}

func start(t *testing.T, opts devserver.Options) *devserver.Server {
	t.Helper()
	opts.DBFile = filepath.Join(t.TempDir(), "temporal.db")
	opts.Port = freePort(t)
	opts.UIPort = -1
	opts.Namespace = "shipline-tls"
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

func dialOK(t *testing.T, req temporalconn.Request) {
	t.Helper()
	conn, err := temporalconn.Resolve(req)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := conn.Dial(ctx, conn.Options)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()
}

// dialErr dials once and returns the error, which must be a permanent,
// explained one.
func dialErr(t *testing.T, req temporalconn.Request) error {
	t.Helper()
	conn, err := temporalconn.Resolve(req)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := conn.Dial(ctx, conn.Options)
	if err == nil {
		c.Close()
		t.Fatal("dial succeeded")
	}
	var explained *temporalconn.Error
	if !errors.As(err, &explained) || !temporalconn.Permanent(err) {
		t.Fatalf("dial error is not an explained, permanent one: %T %v", err, err)
	}
	return err
}

func wantAll(t *testing.T, err error, parts ...string) {
	t.Helper()
	t.Logf("error: %v", err)
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error lacks %q:\n%v", p, err)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Get("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
