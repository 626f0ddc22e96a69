package temporalconn

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/testcerts"
)

// profileTOML is a Temporal environment-configuration file, as the temporal
// CLI writes it, with two profiles.
const profileTOML = `
[profile.default]
address = "default-profile:7233"

[profile.prod]
address = "profile:7233"
namespace = "profile-ns"
api_key = "profile-key"

[profile.prod.tls]
server_name = "profile.example.com"
`

func writeProfile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "temporal.toml")
	if err := os.WriteFile(path, []byte(profileTOML), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPrecedence: flags override the environment, which overrides
// platform.yaml (the worker), which overrides the profile.
func TestPrecedence(t *testing.T) {
	file := writeProfile(t)
	cases := []struct {
		name             string
		req              Request
		address, ns      string
		addrFrom, nsFrom string
		serverName       string
		apiKeyFrom       string
	}{{
		name:    "profile alone",
		req:     Request{Flags: Flags{Profile: "prod", ConfigFile: file}, Env: EnvMap{}},
		address: "profile:7233", ns: "profile-ns", addrFrom: `profile "prod" of ` + file, nsFrom: `profile "prod" of ` + file,
		serverName: "profile.example.com", apiKeyFrom: `profile "prod" of ` + file,
	}, {
		name:    "profile chosen by TEMPORAL_PROFILE, file by TEMPORAL_CONFIG_FILE",
		req:     Request{Env: EnvMap{"TEMPORAL_PROFILE": "prod", "TEMPORAL_CONFIG_FILE": file}},
		address: "profile:7233", ns: "profile-ns", addrFrom: `profile "prod" of ` + file, nsFrom: `profile "prod" of ` + file,
		serverName: "profile.example.com", apiKeyFrom: `profile "prod" of ` + file,
	}, {
		name: "env over profile",
		req: Request{Flags: Flags{Profile: "prod", ConfigFile: file},
			Env: EnvMap{"TEMPORAL_ADDRESS": "env:7233", "TEMPORAL_API_KEY": "env-key", "TEMPORAL_TLS_SERVER_NAME": "env.example.com"}},
		address: "env:7233", ns: "profile-ns", addrFrom: "TEMPORAL_ADDRESS", nsFrom: `profile "prod" of ` + file,
		serverName: "env.example.com", apiKeyFrom: "TEMPORAL_API_KEY",
	}, {
		name: "flags over env over profile",
		req: Request{Flags: Flags{Profile: "prod", ConfigFile: file, Address: "flag:7233", APIKey: "flag-key"},
			Env: EnvMap{"TEMPORAL_ADDRESS": "env:7233", "TEMPORAL_NAMESPACE": "env-ns", "TEMPORAL_API_KEY": "env-key"}},
		address: "flag:7233", ns: "env-ns", addrFrom: "--address", nsFrom: "TEMPORAL_NAMESPACE",
		serverName: "profile.example.com", apiKeyFrom: "--api-key",
	}, {
		name: "worker: platform.yaml over profile, env over platform.yaml",
		req: Request{
			Platform: &platform.Temporal{Address: "platform:7233", Namespace: "platform-ns",
				Profile: "prod", ConfigFile: file, APIKeyEnv: "SHIPLINE_TEMPORAL_KEY", TLS: &platform.TemporalTLS{ServerName: "platform.example.com"}},
			Env: EnvMap{"TEMPORAL_NAMESPACE": "env-ns", "SHIPLINE_TEMPORAL_KEY": "platform-key"},
		},
		address: "platform:7233", ns: "env-ns", addrFrom: "platform.yaml temporal.address", nsFrom: "TEMPORAL_NAMESPACE",
		serverName: "platform.example.com", apiKeyFrom: "platform.yaml temporal.api_key_env (SHIPLINE_TEMPORAL_KEY)",
	}, {
		name: "worker: defaults of platform.yaml do not hide the profile",
		req: Request{
			Platform: &platform.Temporal{Profile: "prod", ConfigFile: file}, // as parsed from a file without address or namespace
			Env:      EnvMap{},
		},
		address: "profile:7233", ns: "profile-ns", addrFrom: `profile "prod" of ` + file, nsFrom: `profile "prod" of ` + file,
		serverName: "profile.example.com", apiKeyFrom: `profile "prod" of ` + file,
	}, {
		name: "TEMPORAL_PROFILE over platform.yaml's profile",
		req: Request{
			Platform: &platform.Temporal{Profile: "prod", ConfigFile: file},
			Env:      EnvMap{"TEMPORAL_PROFILE": "default"},
		},
		address: "default-profile:7233", ns: DefaultNamespace, addrFrom: `profile "default" of ` + file, nsFrom: "defaults",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Resolve(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if c.Options.HostPort != tc.address || c.Options.Namespace != tc.ns {
				t.Errorf("address, namespace = %s, %s; want %s, %s", c.Options.HostPort, c.Options.Namespace, tc.address, tc.ns)
			}
			if got := c.source(fAddress); got != tc.addrFrom {
				t.Errorf("address from %q, want %q", got, tc.addrFrom)
			}
			if got := c.source(fNamespace); got != tc.nsFrom {
				t.Errorf("namespace from %q, want %q", got, tc.nsFrom)
			}
			tlsConf := c.Options.ConnectionOptions.TLS
			if tc.serverName == "" {
				if tlsConf != nil {
					t.Errorf("TLS is on: %+v", tlsConf)
				}
				return
			}
			if tlsConf == nil || tlsConf.ServerName != tc.serverName {
				t.Fatalf("TLS = %+v, want server name %s", tlsConf, tc.serverName)
			}
			if c.Options.Credentials == nil || c.source(fAPIKey) != tc.apiKeyFrom {
				t.Errorf("API key from %q (credentials %v), want %q", c.source(fAPIKey), c.Options.Credentials, tc.apiKeyFrom)
			}
		})
	}
}

// TestTLSSwitch: an API key or any TLS setting turns TLS on, as in the
// temporal CLI; --tls=false, TEMPORAL_TLS=false or tls.enabled: false turn
// it off.
func TestTLSSwitch(t *testing.T) {
	off, on := false, true
	dir := t.TempDir()
	empty := filepath.Join(dir, "none.toml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  Request
		tls  bool
	}{
		{"nothing", Request{Flags: Flags{ConfigFile: empty}, Env: EnvMap{}}, false},
		{"API key", Request{Flags: Flags{ConfigFile: empty}, Env: EnvMap{"TEMPORAL_API_KEY": "k"}}, true},
		{"API key, --tls=false", Request{Flags: Flags{ConfigFile: empty, TLS: &off}, Env: EnvMap{"TEMPORAL_API_KEY": "k"}}, false},
		{"API key, TEMPORAL_TLS=false", Request{Flags: Flags{ConfigFile: empty}, Env: EnvMap{"TEMPORAL_API_KEY": "k", "TEMPORAL_TLS": "false"}}, false},
		{"--tls", Request{Flags: Flags{ConfigFile: empty, TLS: &on}, Env: EnvMap{}}, true},
		{"--tls-server-name", Request{Flags: Flags{ConfigFile: empty, ServerName: "x"}, Env: EnvMap{}}, true},
		{"--tls-server-name over TEMPORAL_TLS=false", Request{Flags: Flags{ConfigFile: empty, ServerName: "x"}, Env: EnvMap{"TEMPORAL_TLS": "false"}}, true},
		{"platform tls: true", Request{Platform: &platform.Temporal{ConfigFile: empty, TLS: &platform.TemporalTLS{Enabled: &on}}, Env: EnvMap{}}, true},
		{"platform api key, tls.enabled false", Request{Platform: &platform.Temporal{ConfigFile: empty, APIKeyEnv: "K", TLS: &platform.TemporalTLS{Enabled: &off}}, Env: EnvMap{"K": "v"}}, false},
		{"platform tls: false, TEMPORAL_TLS=true", Request{Platform: &platform.Temporal{ConfigFile: empty, TLS: &platform.TemporalTLS{Enabled: &off}}, Env: EnvMap{"TEMPORAL_TLS": "true"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Resolve(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Options.ConnectionOptions.TLS != nil; got != tc.tls {
				t.Errorf("TLS on = %v, want %v", got, tc.tls)
			}
		})
	}
}

// TestResolveErrors: bad settings fail before any dial, naming the setting
// and where it was given.
func TestResolveErrors(t *testing.T) {
	file := writeProfile(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	cert := filepath.Join(dir, "client.pem")
	if err := os.WriteFile(cert, []byte("not checked here"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  Request
		want []string
	}{
		{"unknown profile", Request{Flags: Flags{Profile: "staging", ConfigFile: file}, Env: EnvMap{}},
			[]string{`temporal profile "staging" (from --profile) is not in ` + file}},
		{"unknown profile named by platform.yaml", Request{Platform: &platform.Temporal{Profile: "staging", ConfigFile: file}, PlatformFile: "platform.yaml", Env: EnvMap{}},
			[]string{`temporal profile "staging" (from platform.yaml temporal.profile)`}},
		{"missing config file", Request{Env: EnvMap{"TEMPORAL_CONFIG_FILE": filepath.Join(dir, "nope.toml")}},
			[]string{"temporal config file " + filepath.Join(dir, "nope.toml") + " (from TEMPORAL_CONFIG_FILE): no such file"}},
		{"missing CA file", Request{Flags: Flags{ConfigFile: file, CAPath: missing}, Env: EnvMap{}},
			[]string{"cannot read the server CA certificate " + missing + " (from --tls-ca-path): no such file"}},
		{"missing CA file from platform.yaml", Request{Platform: &platform.Temporal{ConfigFile: file, TLS: &platform.TemporalTLS{CAFile: missing}}, Env: EnvMap{}},
			[]string{"(from platform.yaml temporal.tls.ca_file)"}},
		{"certificate without key", Request{Flags: Flags{ConfigFile: file}, Env: EnvMap{"TEMPORAL_TLS_CLIENT_CERT_PATH": cert}},
			[]string{"a client certificate is given (from TEMPORAL_TLS_CLIENT_CERT_PATH) without its key: set --tls-key-path or TEMPORAL_TLS_CLIENT_KEY_PATH too"}},
		{"worker: certificate without key", Request{Platform: &platform.Temporal{ConfigFile: file}, Env: EnvMap{"TEMPORAL_TLS_CLIENT_CERT_PATH": cert}},
			[]string{"set temporal.tls.key_file in platform.yaml or TEMPORAL_TLS_CLIENT_KEY_PATH too"}},
		{"CA as file and as data", Request{Platform: &platform.Temporal{ConfigFile: file, TLS: &platform.TemporalTLS{CAFile: cert}}, Env: EnvMap{"TEMPORAL_TLS_SERVER_CA_CERT_DATA": "pem"}},
			[]string{"the server CA certificate is given both as a file (from platform.yaml temporal.tls.ca_file) and as PEM data (from TEMPORAL_TLS_SERVER_CA_CERT_DATA): keep one"}},
		{"api_key_env not set", Request{Platform: &platform.Temporal{ConfigFile: file, APIKeyEnv: "SHIPLINE_TEMPORAL_KEY"}, Env: EnvMap{}},
			[]string{"temporal.api_key_env names SHIPLINE_TEMPORAL_KEY, which is not set in the worker's environment"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(tc.req)
			if err == nil {
				t.Fatal("resolved")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestDevNamespace: the embedded server takes platform.yaml's namespace,
// or TEMPORAL_NAMESPACE, and nothing from profiles.
func TestDevNamespace(t *testing.T) {
	file := writeProfile(t)
	tmp := &platform.Temporal{Namespace: "platform-ns", Profile: "prod", ConfigFile: file}
	if got := DevNamespace(tmp, EnvMap{"TEMPORAL_PROFILE": "prod"}); got != "platform-ns" {
		t.Errorf("DevNamespace = %q, want platform-ns", got)
	}
	if got := DevNamespace(tmp, EnvMap{"TEMPORAL_NAMESPACE": "env-ns"}); got != "env-ns" {
		t.Errorf("DevNamespace with TEMPORAL_NAMESPACE = %q, want env-ns", got)
	}
}

// TestKindOf: dial errors are told apart by their gRPC status or, for TLS,
// by the text gRPC carries them in.
func TestKindOf(t *testing.T) {
	for msg, want := range map[string]kind{
		`connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:7233: connect: connection refused"`:                                             notPermanent,
		`connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"`:     unknownAuthority,
		`connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate is valid for localhost, not db"`:  wrongHost,
		`connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate has expired or is not yet valid"`: expired,
		`connection error: desc = "error reading server preface: remote error: tls: certificate required"`:                                                            clientCertRefused,
		`connection error: desc = "transport: authentication handshake failed: remote error: tls: bad certificate"`:                                                   clientCertRefused,
		`connection error: desc = "transport: authentication handshake failed: remote error: tls: handshake failure"`:                                                 otherTLS,
		`connection error: desc = "transport: authentication handshake failed: tls: first record does not look like a TLS handshake"`:                                 notTLSServer,
	} {
		if got := kindOf(errors.New(msg)); got != want {
			t.Errorf("kindOf(%q) = %v, want %v", msg, got, want)
		}
	}
	if got := kindOf(status.Error(codes.Unauthenticated, "Request unauthenticated")); got != refused {
		t.Errorf("Unauthenticated: %v", got)
	}
	if got := kindOf(errors.Join(errors.New("EOF"), errSpeaksTLS)); got != tlsServer {
		t.Errorf("speaks TLS: %v", got)
	}
}

// TestResolvePEMErrors: a CA file that holds no certificate and a client
// certificate with another certificate's key fail before any dial, naming
// the files, the settings that gave them and what to give instead, and
// never quoting the key.
func TestResolvePEMErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, dir, "ca")
	one, two := ca.Client(t, "one"), ca.Client(t, "two")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noProfile := writeProfile(t)
	for _, tc := range []struct {
		name string
		req  Request
		want []string
	}{
		{"CA file without a certificate", Request{Flags: Flags{ConfigFile: noProfile, CAPath: garbage}, Env: EnvMap{}},
			[]string{"the server CA certificate " + garbage + " (from --tls-ca-path) holds no PEM certificate", "with --tls-ca-path or TEMPORAL_TLS_SERVER_CA_CERT_PATH"}},
		{"worker: CA file without a certificate", Request{Platform: &platform.Temporal{ConfigFile: noProfile, TLS: &platform.TemporalTLS{CAFile: garbage}}, PlatformFile: "platform.yaml", Env: EnvMap{}},
			[]string{"(from platform.yaml temporal.tls.ca_file) holds no PEM certificate", "temporal.tls.ca_file in platform.yaml or TEMPORAL_TLS_SERVER_CA_CERT_PATH"}},
		{"key of another certificate", Request{Flags: Flags{ConfigFile: noProfile, CAPath: ca.File, CertPath: one.CertFile, KeyPath: two.KeyFile}, Env: EnvMap{}},
			[]string{"the client certificate " + one.CertFile + " (from --tls-cert-path) and key " + two.KeyFile + " (from --tls-key-path) do not load as a pair", "private key does not match public key"}},
		{"key data that is a certificate", Request{Flags: Flags{ConfigFile: noProfile, CAPath: ca.File}, Env: EnvMap{"TEMPORAL_TLS_CLIENT_CERT_DATA": string(one.CertPEM), "TEMPORAL_TLS_CLIENT_KEY_DATA": string(one.CertPEM)}},
			[]string{"the client certificate (PEM data from TEMPORAL_TLS_CLIENT_CERT_DATA) and key (PEM data from TEMPORAL_TLS_CLIENT_KEY_DATA) do not load as a pair"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(tc.req)
			if err == nil {
				t.Fatal("resolved")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			for _, p := range []testcerts.Pair{one, two} {
				if strings.Contains(err.Error(), strings.TrimSpace(string(p.KeyPEM))) {
					t.Errorf("error quotes a private key:\n%v", err)
				}
			}
		})
	}
}
