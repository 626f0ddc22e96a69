package temporalconn

import (
	"fmt"

	"go.temporal.io/sdk/contrib/envconfig"
)

// The settings whose origin is tracked.
const (
	fAddress    = "address"
	fNamespace  = "namespace"
	fAPIKey     = "api_key"
	fTLS        = "tls"
	fCA         = "ca"
	fCAData     = "ca_data"
	fCert       = "cert"
	fCertData   = "cert_data"
	fKey        = "key"
	fKeyData    = "key_data"
	fServerName = "server_name"
	fNoVerify   = "disable_host_verification"
)

// flagNames and envNames name each setting as the CLI flag and the
// environment variable that set it.
var (
	flagNames = map[string]string{
		fAddress: "--address", fNamespace: "--namespace", fAPIKey: "--api-key", fTLS: "--tls",
		fCA: "--tls-ca-path", fCert: "--tls-cert-path", fKey: "--tls-key-path",
		fServerName: "--tls-server-name", fNoVerify: "--tls-disable-host-verification",
		fCAData: "--tls-ca-data", fCertData: "--tls-cert-data", fKeyData: "--tls-key-data",
	}
	envNames = map[string]string{
		fAddress: "TEMPORAL_ADDRESS", fNamespace: "TEMPORAL_NAMESPACE", fAPIKey: "TEMPORAL_API_KEY", fTLS: "TEMPORAL_TLS",
		fCA: "TEMPORAL_TLS_SERVER_CA_CERT_PATH", fCert: "TEMPORAL_TLS_CLIENT_CERT_PATH", fKey: "TEMPORAL_TLS_CLIENT_KEY_PATH",
		fServerName: "TEMPORAL_TLS_SERVER_NAME", fNoVerify: "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION",
		fCAData: "TEMPORAL_TLS_SERVER_CA_CERT_DATA", fCertData: "TEMPORAL_TLS_CLIENT_CERT_DATA", fKeyData: "TEMPORAL_TLS_CLIENT_KEY_DATA",
	}
	platformNames = map[string]string{
		fAddress: "temporal.address", fNamespace: "temporal.namespace", fAPIKey: "temporal.api_key_env", fTLS: "temporal.tls",
		fCA: "temporal.tls.ca_file", fCert: "temporal.tls.cert_file", fKey: "temporal.tls.key_file",
		fServerName: "temporal.tls.server_name", fNoVerify: "temporal.tls.disable_host_verification",
	}
)

// source says where a setting was given ("--tls-ca-path", "TEMPORAL_…",
// "platform.yaml temporal.tls.ca_file", `profile "prod" of …`).
func (c *Conn) source(field string) string {
	if s, ok := c.sources[field]; ok {
		return s
	}
	if s, ok := c.sources[field+"_data"]; ok {
		return s
	}
	return "defaults"
}

// settingNames lists the places a user can set field: the flag (CLI) or
// the platform.yaml key (worker), and the environment variable.
func (c *Conn) settingNames(field string) string {
	if c.worker {
		return fmt.Sprintf("%s in %s or %s", platformNames[field], c.file, envNames[field])
	}
	return fmt.Sprintf("%s or %s", flagNames[field], envNames[field])
}

// view is the part of a profile whose origin is tracked.
type view map[string]string

func snapshot(p *envconfig.ClientConfigProfile) view {
	v := view{fAddress: p.Address, fNamespace: p.Namespace, fAPIKey: p.APIKey}
	if t := p.TLS; t != nil {
		v[fTLS] = fmt.Sprint(!t.Disabled)
		v[fCA], v[fCAData] = t.ServerCACertPath, string(t.ServerCACertData)
		v[fCert], v[fCertData] = t.ClientCertPath, string(t.ClientCertData)
		v[fKey], v[fKeyData] = t.ClientKeyPath, string(t.ClientKeyData)
		v[fServerName] = t.ServerName
		v[fNoVerify] = fmt.Sprint(t.DisableHostVerification)
	}
	return v
}

// track records name(field) as the source of every field a layer changed.
func (c *Conn) track(before, after view, name func(field string) string) {
	for f, v := range after {
		if v != before[f] && v != "" {
			c.sources[f] = name(f)
		}
	}
}
