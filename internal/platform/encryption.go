package platform

import (
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
)

var encryptionKeys = []string{"keys_env", "codec_token_env", "ui_origin"}

// Encryption turns on the payload codec (internal/codec): what Shipline
// writes into Temporal is encrypted with AES-256-GCM. Only names of
// environment variables are in platform.yaml, never a key or token.
type Encryption struct {
	// KeysEnv names the variable holding the keys: ID:BASE64KEY pairs
	// separated by commas, the first encrypts, all decrypt.
	KeysEnv string `json:"keys_env"`
	// CodecTokenEnv names the variable holding the bearer token the codec
	// endpoint requires; empty: the endpoint serves loopback requests only.
	CodecTokenEnv string `json:"codec_token_env,omitempty"`
	// UIOrigin is the Temporal UI's origin (scheme://host[:port]) allowed by
	// the codec endpoint's CORS; the embedded UI of --dev is always allowed.
	UIOrigin string `json:"ui_origin,omitempty"`
}

// encryption decodes temporal.encryption: {keys_env: NAME, codec_token_env: NAME, ui_origin: URL}.
func (p *parser) encryption(key, v *yaml.Node) {
	const fix = "write temporal: {encryption: {keys_env: SHIPLINE_CODEC_KEYS}} and set that variable to ID:BASE64KEY pairs, or remove encryption"
	if yamlnode.IsNull(v) {
		p.Errorf(key, fix, "temporal.encryption is empty")
		return
	}
	var e Encryption
	errs := len(p.Diags)
	ok := p.Map(v, "temporal.encryption", encryptionKeys, func(name string, k, n *yaml.Node) {
		field := "temporal.encryption." + name
		switch name {
		case "keys_env", "codec_token_env":
			if s, isStr := p.String(n, field); isStr && strings.ContainsAny(s, ":=") {
				// A pasted key ("id:base64") or token: refused without echoing it.
				p.Errorf(n, "never write keys in this file: set them in an environment variable of the worker and the CLI (e.g. SHIPLINE_CODEC_KEYS=id:base64key) and write that variable's NAME here; rotate the key if this file was shared",
					"%s looks like a key itself, not the name of an environment variable", field)
				return
			}
			s, _ := p.env(n, field, map[string]string{"keys_env": "SHIPLINE_CODEC_KEYS", "codec_token_env": "SHIPLINE_CODEC_TOKEN"}[name])
			if name == "keys_env" {
				e.KeysEnv = s
			} else {
				e.CodecTokenEnv = s
			}
		case "ui_origin":
			s, isStr := p.String(n, field)
			if !isStr {
				return
			}
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
				p.Errorf(n, "write the Temporal UI's origin, scheme://host[:port], e.g. https://temporal.example.com", "%s %q is not an origin", field, s)
				return
			}
			e.UIOrigin = u.Scheme + "://" + u.Host
		}
	})
	if !ok || len(p.Diags) > errs {
		return
	}
	if e.KeysEnv == "" {
		p.Errorf(v, fix, "temporal.encryption names no keys_env")
		return
	}
	p.c.Temporal.Encryption = &e
}
