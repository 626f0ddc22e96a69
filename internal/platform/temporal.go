package platform

import (
	"net"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
)

var (
	temporalKeys = []string{"address", "namespace", "task_queue", "tls", "api_key_env", "profile", "config_file", "encryption"}
	tlsKeys      = []string{"enabled", "ca_file", "cert_file", "key_file", "server_name", "disable_host_verification"}
)

// secretKeys are keys people write when they paste a secret into the file:
// each is refused with a fix that says where the secret goes instead.
var secretKeys = map[string]string{
	"temporal.api_key": "never write the API key in this file: set it in an environment variable of the worker " +
		"(e.g. TEMPORAL_API_KEY=...) and write api_key_env: TEMPORAL_API_KEY; rotate the key if this file was shared",
	"temporal.tls.key_data": "never write a private key in this file: put it in a file readable by the worker only " +
		"and write key_file: PATH (or set TEMPORAL_TLS_CLIENT_KEY_DATA in the worker's environment)",
	"temporal.tls.client_key_data": "never write a private key in this file: put it in a file readable by the worker only " +
		"and write key_file: PATH (or set TEMPORAL_TLS_CLIENT_KEY_DATA in the worker's environment)",
}

// withoutSecretKeys reports the keys of the mapping v (at field) that hold a
// secret and returns v without them, so that the remaining keys are checked
// as usual.
func (p *parser) withoutSecretKeys(v *yaml.Node, field string) *yaml.Node {
	m := yamlnode.Resolve(v)
	if m.Kind != yaml.MappingNode {
		return v
	}
	kept := *m
	kept.Content = nil
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if fix, ok := secretKeys[field+"."+k.Value]; ok && k.Kind == yaml.ScalarNode {
			p.Errorf(k, fix, "%s.%s: a secret does not belong in platform.yaml", field, k.Value)
			continue
		}
		kept.Content = append(kept.Content, k, m.Content[i+1])
	}
	return &kept
}

// temporal decodes the temporal block: where the worker finds Temporal and
// how it authenticates (file paths and environment variable names only).
func (p *parser) temporal(v *yaml.Node) {
	p.Map(p.withoutSecretKeys(v, "temporal"), "temporal", temporalKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "encryption":
			p.encryption(k, v)
			return
		case "tls":
			p.temporalTLS(k, v)
			return
		case "api_key_env":
			p.c.Temporal.APIKeyEnv, _ = p.env(v, "temporal.api_key_env", "TEMPORAL_API_KEY")
			return
		}
		s, ok := p.String(v, "temporal."+key)
		if !ok || s == "" {
			if ok || yamlnode.IsNull(v) {
				p.Errorf(k, "give a value, or remove it to use the default", "temporal.%s is empty", key)
			}
			return
		}
		switch key {
		case "address":
			if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
				p.Errorf(v, "write host:port, e.g. "+DefaultAddress, "temporal.address %q is not host:port", s)
				return
			}
			p.c.Temporal.Address = s
		case "namespace":
			p.c.Temporal.Namespace = s
		case "task_queue":
			p.c.Temporal.TaskQueue = s
		case "profile":
			p.c.Temporal.Profile = s
		case "config_file":
			p.c.Temporal.ConfigFile = p.localPath(s)
		}
	})
}

// temporalTLS decodes temporal.tls: true/false, or a mapping of file paths.
func (p *parser) temporalTLS(key, v *yaml.Node) {
	const fix = "write tls: true, or tls: {ca_file: PATH, cert_file: PATH, key_file: PATH, server_name: NAME}"
	n := yamlnode.Resolve(v)
	switch {
	case yamlnode.IsNull(n):
		p.Errorf(key, fix, "temporal.tls is empty")
		return
	case n.Kind == yaml.ScalarNode && n.Tag == "!!bool":
		on, _ := p.Bool(v, "temporal.tls")
		p.c.Temporal.TLS = &TemporalTLS{Enabled: &on}
		return
	}
	t := &TemporalTLS{}
	files := map[string]*yaml.Node{}
	ok := p.Map(p.withoutSecretKeys(v, "temporal.tls"), "temporal.tls", tlsKeys, func(name string, k, n *yaml.Node) {
		field := "temporal.tls." + name
		switch name {
		case "enabled":
			if b, ok := p.Bool(n, field); ok {
				t.Enabled = &b
			}
			return
		case "disable_host_verification":
			t.DisableHostVerification, _ = p.Bool(n, field)
			return
		}
		s, ok := p.String(n, field)
		if !ok || s == "" {
			if ok || yamlnode.IsNull(n) {
				p.Errorf(k, "give a value, or remove the setting", "%s is empty", field)
			}
			return
		}
		if name == "server_name" {
			t.ServerName = s
			return
		}
		if strings.Contains(s, "-----BEGIN") {
			what, fixPEM := "a certificate", "write the path of the PEM file instead"
			if name == "key_file" || strings.Contains(s, "PRIVATE KEY") {
				what, fixPEM = "a private key", "never write a private key in this file: put it in a file readable by the worker only and write its path"
			}
			p.Errorf(n, fixPEM, "%s holds %s itself, not the path of a file", field, what)
			return
		}
		files[name] = k
		path := p.localPath(s)
		switch name {
		case "ca_file":
			t.CAFile = path
		case "cert_file":
			t.CertFile = path
		case "key_file":
			t.KeyFile = path
		}
	})
	if !ok {
		return
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		at, missing := files["cert_file"], "key_file"
		if at == nil {
			at, missing = files["key_file"], "cert_file"
		}
		p.Errorf(at, "give both cert_file and key_file (the client certificate and its private key), or neither",
			"temporal.tls has no %s", missing)
	}
	if t.Enabled != nil && !*t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "") {
		p.Errorf(key, "remove enabled: false to use TLS, or remove the other tls settings",
			"temporal.tls.enabled is false but the block names TLS settings")
	}
	p.c.Temporal.TLS = t
}
