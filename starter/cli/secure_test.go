package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/devserver"
	"github.com/shipline/shipline/internal/freeport"
	"github.com/shipline/shipline/internal/temporalconn"
	"github.com/shipline/shipline/internal/testcerts"
	"github.com/shipline/shipline/internal/workerapp"
)

// TestConnectSecured drives the real CLI (flag parsing, environment,
// Temporal config profile, dial) against an embedded server that requires
// mTLS and an API key: the settings may come from flags, TEMPORAL_*
// variables or a profile, with flags over env over profile; a wrong CA, a
// missing client certificate and a refused key each fail (exit 1) with a
// message naming what to set.
func TestConnectSecured(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Temporal server")
	}
	dir := t.TempDir()
	ca := testcerts.NewCA(t, dir, "ca")
	srvCert := ca.Server(t, "server")
	alice := ca.Client(t, "alice")
	otherCA := testcerts.NewCA(t, dir, "other-ca")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{
		DBFile: filepath.Join(dir, "temporal.db"), Port: freeTCPPort(t), UIPort: -1, Namespace: "secured",
		SearchAttributes: workerapp.SearchAttributes(), Logger: zap.NewNop(),
		TLS:     &devserver.TLS{CertFile: srvCert.CertFile, KeyFile: srvCert.KeyFile, CAFile: ca.File, ClientCAFile: ca.File},
		APIKeys: []string{"cli-key"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	noProfile := filepath.Join(dir, "none.toml")
	write(t, noProfile, "")
	profiles := filepath.Join(dir, "temporal.toml")
	write(t, profiles, fmt.Sprintf(`
[profile.prod]
address = %q
namespace = "secured"
api_key = "cli-key"

[profile.prod.tls]
server_ca_cert_path = %q
client_cert_path = %q
client_key_path = %q

[profile.stale]
address = "127.0.0.1:1"
namespace = "gone"
api_key = "stale-key"
`, srv.Address(), ca.File, alice.CertFile, alice.KeyFile))

	tlsFlags := []string{"--tls-ca-path", ca.File, "--tls-cert-path", alice.CertFile, "--tls-key-path", alice.KeyFile}
	envAll := temporalconn.EnvMap{
		"TEMPORAL_CONFIG_FILE":             noProfile,
		"TEMPORAL_ADDRESS":                 srv.Address(),
		"TEMPORAL_NAMESPACE":               "secured",
		"TEMPORAL_API_KEY":                 "cli-key",
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH": ca.File,
		"TEMPORAL_TLS_CLIENT_CERT_PATH":    alice.CertFile,
		"TEMPORAL_TLS_CLIENT_KEY_PATH":     alice.KeyFile,
	}
	with := func(m temporalconn.EnvMap, kv ...string) temporalconn.EnvMap {
		out := temporalconn.EnvMap{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	flags := func(extra ...string) []string {
		return append([]string{"--address", srv.Address(), "--namespace", "secured", "--config-file", noProfile}, extra...)
	}

	for _, tc := range []struct {
		name string
		env  temporalconn.EnvMap
		args []string
		code int
		want []string
	}{
		{name: "flags", env: temporalconn.EnvMap{}, args: flags(append(tlsFlags, "--api-key", "cli-key")...)},
		{name: "environment", env: envAll},
		{name: "profile", env: temporalconn.EnvMap{}, args: []string{"--config-file", profiles, "--profile", "prod"}},
		{name: "profile from TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE", env: temporalconn.EnvMap{"TEMPORAL_PROFILE": "prod", "TEMPORAL_CONFIG_FILE": profiles}},
		{name: "env over profile", env: with(envAll, "TEMPORAL_CONFIG_FILE", profiles, "TEMPORAL_PROFILE", "stale")},
		{name: "flags over env over profile",
			env:  with(envAll, "TEMPORAL_CONFIG_FILE", profiles, "TEMPORAL_PROFILE", "stale", "TEMPORAL_API_KEY", "stale-key", "TEMPORAL_NAMESPACE", "gone"),
			args: []string{"--api-key", "cli-key", "--namespace", "secured"}},
		{name: "wrong CA", env: temporalconn.EnvMap{}, args: flags("--tls-ca-path", otherCA.File, "--tls-cert-path", alice.CertFile, "--tls-key-path", alice.KeyFile, "--api-key", "cli-key"),
			code: ExitFailed, want: []string{"cannot connect to Temporal at " + srv.Address(), "not signed by the CA " + otherCA.File + " (from --tls-ca-path)",
				"--tls-ca-path or TEMPORAL_TLS_SERVER_CA_CERT_PATH", "--tls-server-name"}},
		{name: "no client certificate", env: temporalconn.EnvMap{}, args: flags("--tls-ca-path", ca.File, "--api-key", "cli-key"),
			code: ExitFailed, want: []string{"requires a client certificate (mTLS)", "--tls-cert-path or TEMPORAL_TLS_CLIENT_CERT_PATH and --tls-key-path or TEMPORAL_TLS_CLIENT_KEY_PATH"}},
		{name: "refused API key", env: with(envAll, "TEMPORAL_API_KEY", "stolen-key"),
			code: ExitFailed, want: []string{"Temporal refused the API key (from TEMPORAL_API_KEY) for namespace secured", "--api-key or TEMPORAL_API_KEY"}},
		{name: "unknown profile", env: temporalconn.EnvMap{}, args: []string{"--config-file", profiles, "--profile", "qa"},
			code: ExitInvalid, want: []string{`temporal profile "qa" (from --profile) is not in ` + profiles}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			g := &globals{stdout: &stdout, stderr: &stderr, dial: dialTemporal, env: tc.env}
			args := append(append([]string{"shipline"}, tc.args...), "--output", "json", "history", "--project", "demo")
			code := run(newAppWith(g), args, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			if tc.code == ExitOK && strings.TrimSpace(stdout.String()) != "[]" {
				t.Errorf("history printed %q, want []", stdout.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "stolen-key") {
				t.Errorf("the error shows the API key: %s", stderr.String())
			}
		})
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Get("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
