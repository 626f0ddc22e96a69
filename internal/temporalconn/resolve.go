// Package temporalconn is the one place that turns Temporal connection
// settings into SDK client options, for the CLI and the worker alike, with
// the temporal CLI's conventions: a profile of the environment-configuration
// TOML file (TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE), then the worker's
// platform.yaml temporal block, then TEMPORAL_* environment variables, then
// command-line flags, each overriding the one before. Loading and applying
// profiles and environment variables is the SDK's envconfig package.
//
// It also explains connection failures (a wrong CA, a missing client
// certificate, a refused API key) in terms of the setting to fix, and tells
// which of them no retry can cure.
package temporalconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/shipline/shipline/internal/platform"
)

// Defaults when no layer names an address or a namespace.
const (
	DefaultAddress   = platform.DefaultAddress
	DefaultNamespace = platform.DefaultNamespace
)

// Flags are the connection settings given on a command line, named like the
// temporal CLI's flags. Empty strings and a nil TLS are "not given".
type Flags struct {
	Address   string // --address
	Namespace string // --namespace
	APIKey    string // --api-key
	// TLS is --tls: nil when not given; false turns TLS off even with an API key.
	TLS                     *bool
	CAPath, CAData          string // --tls-ca-path, --tls-ca-data
	CertPath, CertData      string // --tls-cert-path, --tls-cert-data
	KeyPath, KeyData        string // --tls-key-path, --tls-key-data
	ServerName              string // --tls-server-name
	DisableHostVerification bool   // --tls-disable-host-verification
	Profile                 string // --profile
	ConfigFile              string // --config-file
}

// Request is everything that decides how to connect.
type Request struct {
	// Flags are the command line's settings (highest precedence).
	Flags Flags
	// Platform is the worker's platform.yaml temporal block (nil for the CLI);
	// PlatformFile names the file in messages.
	Platform     *platform.Temporal
	PlatformFile string
	// Env looks up environment variables (nil: the process environment).
	Env envconfig.EnvLookup
}

// Conn is the outcome of Resolve: the client options and where each setting
// came from, to explain failures.
type Conn struct {
	// Options has HostPort, Namespace, Credentials and ConnectionOptions.TLS
	// set. Callers copy it and add what is theirs (Identity, Logger,
	// MetricsHandler, DataConverter, Interceptors) before dialing.
	Options client.Options
	// Address and Namespace are the resolved ones (also in Options).
	Address, Namespace string

	worker    bool              // settings come from platform.yaml (the worker), not flags (the CLI)
	file      string            // platform.yaml's name, for messages
	sources   map[string]string // setting → where it was given, e.g. "--tls-ca-path"
	caPath    string            // the server CA file, when TLS is on and one is named
	hasCert   bool              // a client certificate is presented
	hasAPIKey bool              // an API key is sent
}

// Resolve applies the layers in order (profile, platform.yaml, environment,
// flags) and builds the client options. Its errors name the setting at fault
// and where it was given.
func Resolve(req Request) (*Conn, error) {
	env := req.Env
	if env == nil {
		env = envconfig.EnvLookupOS
	}
	c := &Conn{worker: req.Platform != nil, file: orDefault(req.PlatformFile, "platform.yaml"), sources: map[string]string{}}

	prof, err := c.loadProfile(req, env)
	if err != nil {
		return nil, err
	}
	if req.Platform != nil {
		if err := c.applyPlatform(&prof, req.Platform, env); err != nil {
			return nil, err
		}
	}
	before := snapshot(&prof)
	if err := prof.ApplyEnvVars(env); err != nil {
		return nil, fmt.Errorf("temporal settings from the environment: %w", err)
	}
	c.track(before, snapshot(&prof), func(f string) string { return envNames[f] })
	before = snapshot(&prof)
	applyFlags(&prof, req.Flags)
	c.track(before, snapshot(&prof), func(f string) string { return flagNames[f] })

	if prof.Address == "" {
		prof.Address = DefaultAddress
	}
	if prof.Namespace == "" {
		prof.Namespace = DefaultNamespace
	}
	if err := c.checkFiles(&prof); err != nil {
		return nil, err
	}
	if err := c.checkPEM(&prof); err != nil {
		return nil, err
	}
	opts, err := prof.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		return nil, fmt.Errorf("temporal TLS settings: %w", err)
	}
	c.Options, c.Address, c.Namespace = opts, prof.Address, prof.Namespace
	c.hasAPIKey = prof.APIKey != ""
	if t := prof.TLS; t != nil && opts.ConnectionOptions.TLS != nil {
		c.caPath = t.ServerCACertPath
		c.hasCert = t.ClientCertPath != "" || len(t.ClientCertData) > 0
	}
	return c, nil
}

// loadProfile reads the profile of the TOML config file chosen by --profile,
// else TEMPORAL_PROFILE, else platform.yaml's temporal.profile (and the file
// likewise); no file and no profile named is an empty profile, as for the
// temporal CLI.
func (c *Conn) loadProfile(req Request, env envconfig.EnvLookup) (envconfig.ClientConfigProfile, error) {
	var platformProfile, platformFile string
	if req.Platform != nil {
		platformProfile, platformFile = req.Platform.Profile, req.Platform.ConfigFile
	}
	profile, profileFrom := pick(env, req.Flags.Profile, "--profile", "TEMPORAL_PROFILE", platformProfile, c.file+" temporal.profile")
	file, fileFrom := pick(env, req.Flags.ConfigFile, "--config-file", "TEMPORAL_CONFIG_FILE", platformFile, c.file+" temporal.config_file")
	if file != "" {
		if _, err := os.Stat(file); err != nil {
			return envconfig.ClientConfigProfile{}, fmt.Errorf("temporal config file %s (from %s): %w; give the TOML file the temporal CLI uses, or remove %s",
				file, fileFrom, unwrapPath(err), fileFrom)
		}
	}
	prof, err := envconfig.LoadClientConfigProfile(envconfig.LoadClientConfigProfileOptions{
		ConfigFilePath:    file,
		ConfigFileProfile: profile,
		DisableEnv:        true, // applied later, above platform.yaml
		EnvLookup:         env,
	})
	if err != nil {
		shown := orDefault(file, envconfig.DefaultConfigFilePath())
		if profile != "" && strings.Contains(err.Error(), "unable to find profile") {
			return prof, fmt.Errorf("temporal profile %q (from %s) is not in %s; create it with `temporal config set --profile %s ...` or name another profile",
				profile, profileFrom, shown, profile)
		}
		return prof, fmt.Errorf("temporal config file %s: %w", shown, err)
	}
	name := orDefault(profile, envconfig.DefaultConfigFileProfile)
	c.track(snapshot(&envconfig.ClientConfigProfile{}), snapshot(&prof), func(string) string {
		return fmt.Sprintf("profile %q of %s", name, orDefault(file, envconfig.DefaultConfigFilePath()))
	})
	return prof, nil
}

// pick returns the first of flag, environment variable and platform value
// that is set, with where it came from.
func pick(env envconfig.EnvLookup, flag, flagName, envName, plat, platName string) (string, string) {
	if flag != "" {
		return flag, flagName
	}
	if v, _ := env.LookupEnv(envName); v != "" {
		return v, envName
	}
	if plat != "" {
		return plat, platName
	}
	return "", ""
}

// applyPlatform lays platform.yaml's temporal block over the profile.
func (c *Conn) applyPlatform(prof *envconfig.ClientConfigProfile, t *platform.Temporal, env envconfig.EnvLookup) error {
	before := snapshot(prof)
	if t.Address != "" { // empty unless platform.yaml (or the program) gave one: a profile's stays
		prof.Address = t.Address
	}
	if t.Namespace != "" {
		prof.Namespace = t.Namespace
	}
	if t.APIKeyEnv != "" {
		key, _ := env.LookupEnv(t.APIKeyEnv)
		if key == "" {
			return fmt.Errorf("%s temporal.api_key_env names %s, which is not set in the worker's environment; set %s to the API key, or remove api_key_env",
				c.file, t.APIKeyEnv, t.APIKeyEnv)
		}
		prof.APIKey = key
	}
	if tt := t.TLS; tt != nil {
		if prof.TLS == nil {
			prof.TLS = &envconfig.ClientConfigTLS{}
		}
		if tt.Enabled != nil {
			prof.TLS.Disabled = !*tt.Enabled
		}
		set(&prof.TLS.ServerCACertPath, tt.CAFile)
		set(&prof.TLS.ClientCertPath, tt.CertFile)
		set(&prof.TLS.ClientKeyPath, tt.KeyFile)
		set(&prof.TLS.ServerName, tt.ServerName)
		if tt.DisableHostVerification {
			prof.TLS.DisableHostVerification = true
		}
	}
	c.track(before, snapshot(prof), func(f string) string {
		if f == fAPIKey {
			return fmt.Sprintf("%s temporal.api_key_env (%s)", c.file, t.APIKeyEnv)
		}
		return c.file + " " + platformNames[f]
	})
	return nil
}

// applyFlags lays the command line over everything else, as the temporal
// CLI does: any TLS flag turns TLS on; --tls=false turns it off.
func applyFlags(prof *envconfig.ClientConfigProfile, f Flags) {
	set(&prof.Address, f.Address)
	set(&prof.Namespace, f.Namespace)
	set(&prof.APIKey, f.APIKey)
	anyTLS := f.TLS != nil && *f.TLS || f.CAPath != "" || f.CAData != "" || f.CertPath != "" || f.CertData != "" ||
		f.KeyPath != "" || f.KeyData != "" || f.ServerName != "" || f.DisableHostVerification
	if anyTLS {
		if prof.TLS == nil {
			prof.TLS = &envconfig.ClientConfigTLS{}
		}
		prof.TLS.Disabled = false
		t := prof.TLS
		// A path given on the command line replaces data from below, and the
		// other way round: envconfig refuses both at once.
		if f.CAPath != "" || f.CAData != "" {
			t.ServerCACertPath, t.ServerCACertData = f.CAPath, []byte(f.CAData)
		}
		if f.CertPath != "" || f.CertData != "" {
			t.ClientCertPath, t.ClientCertData = f.CertPath, []byte(f.CertData)
		}
		if f.KeyPath != "" || f.KeyData != "" {
			t.ClientKeyPath, t.ClientKeyData = f.KeyPath, []byte(f.KeyData)
		}
		set(&t.ServerName, f.ServerName)
		if f.DisableHostVerification {
			t.DisableHostVerification = true
		}
	}
	if f.TLS != nil && !*f.TLS {
		prof.TLS = &envconfig.ClientConfigTLS{Disabled: true}
	}
}

// checkFiles makes sure the files named for TLS can be read, naming the
// setting that gave each, and that a client certificate comes with its key.
func (c *Conn) checkFiles(prof *envconfig.ClientConfigProfile) error {
	t := prof.TLS
	if t == nil || t.Disabled {
		return nil
	}
	for _, f := range []struct{ field, path, what string }{
		{fCA, t.ServerCACertPath, "server CA certificate"},
		{fCert, t.ClientCertPath, "client certificate"},
		{fKey, t.ClientKeyPath, "client key"},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.ReadFile(f.path); err != nil {
			return fmt.Errorf("cannot read the %s %s (from %s): %v; fix the path or the file's permissions",
				f.what, f.path, c.source(f.field), unwrapPath(err))
		}
	}
	for _, f := range []struct {
		field, what string
		both        bool
	}{
		{fCA, "server CA certificate", t.ServerCACertPath != "" && len(t.ServerCACertData) > 0},
		{fCert, "client certificate", t.ClientCertPath != "" && len(t.ClientCertData) > 0},
		{fKey, "client key", t.ClientKeyPath != "" && len(t.ClientKeyData) > 0},
	} {
		if f.both {
			return fmt.Errorf("the %s is given both as a file (from %s) and as PEM data (from %s): keep one",
				f.what, c.sources[f.field], c.sources[f.field+"_data"])
		}
	}
	hasCert := t.ClientCertPath != "" || len(t.ClientCertData) > 0
	hasKey := t.ClientKeyPath != "" || len(t.ClientKeyData) > 0
	if hasCert != hasKey {
		given, missing := fCert, fKey
		if hasKey {
			given, missing = fKey, fCert
		}
		return fmt.Errorf("a client %s is given (from %s) without its %s: set %s too",
			what(given), c.source(given), what(missing), c.settingNames(missing))
	}
	return nil
}

// checkPEM makes sure the server CA holds a PEM certificate and the client
// certificate and key load as a pair, naming the settings that gave them
// (the SDK's own errors name neither). It runs after checkFiles, so the
// files can be read.
func (c *Conn) checkPEM(prof *envconfig.ClientConfigProfile) error {
	t := prof.TLS
	if t == nil || t.Disabled {
		return nil
	}
	read := func(path string, data []byte) []byte {
		if path == "" {
			return data
		}
		b, _ := os.ReadFile(path)
		return b
	}
	name := func(field, path string) string {
		if path == "" {
			return fmt.Sprintf("(PEM data from %s)", c.source(field))
		}
		return fmt.Sprintf("%s (from %s)", path, c.source(field))
	}
	if ca := read(t.ServerCACertPath, t.ServerCACertData); len(ca) > 0 && !x509.NewCertPool().AppendCertsFromPEM(ca) {
		return fmt.Errorf("the server CA certificate %s holds no PEM certificate: give the CA certificate that signed the server's certificate, in PEM (-----BEGIN CERTIFICATE-----), with %s",
			name(fCA, t.ServerCACertPath), c.settingNames(fCA))
	}
	cert := read(t.ClientCertPath, t.ClientCertData)
	key := read(t.ClientKeyPath, t.ClientKeyData)
	if len(cert) == 0 || len(key) == 0 {
		return nil
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		return fmt.Errorf("the client certificate %s and key %s do not load as a pair (%v): give the certificate and the private key that belongs to it, both PEM, with %s and %s",
			name(fCert, t.ClientCertPath), name(fKey, t.ClientKeyPath), err, c.settingNames(fCert), c.settingNames(fKey))
	}
	return nil
}

func what(field string) string {
	if field == fKey {
		return "key"
	}
	return "certificate"
}

func set(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
