package platform

import (
	"strings"
	"testing"
)

func TestEncryption(t *testing.T) {
	const base = "teams: {dev: {members: [a]}}\nprojects: {p: {repo: x, admins: [a]}}\n"
	for _, c := range []struct {
		name, yaml string
		want       *Encryption
		err        string // one diagnostic containing this, "" for none
	}{
		{name: "absent", yaml: "temporal: {namespace: x}"},
		{name: "keys", yaml: "temporal: {encryption: {keys_env: SHIPLINE_CODEC_KEYS}}", want: &Encryption{KeysEnv: "SHIPLINE_CODEC_KEYS"}},
		{name: "all", yaml: "temporal: {encryption: {keys_env: K, codec_token_env: T, ui_origin: \"https://temporal.example.com/\"}}",
			want: &Encryption{KeysEnv: "K", CodecTokenEnv: "T", UIOrigin: "https://temporal.example.com"}},
		{name: "empty", yaml: "temporal:\n  encryption:", err: "platform.yaml:4:3: error: temporal.encryption is empty"},
		{name: "no keys_env", yaml: "temporal: {encryption: {codec_token_env: T}}", err: "platform.yaml:3:24: error: temporal.encryption names no keys_env"},
		{name: "pasted key", yaml: "temporal: {encryption: {keys_env: \"k1:q83vEjRWeJq8", err: "temporal.encryption.keys_env looks like a key itself"},
		{name: "pasted token", yaml: "temporal: {encryption: {keys_env: K, codec_token_env: sk-abcdef}}", err: "looks like a secret itself"},
		{name: "bad name", yaml: "temporal: {encryption: {keys_env: my keys}}", err: "temporal.encryption.keys_env \"my keys\" is not an environment variable name"},
		{name: "bad origin", yaml: "temporal: {encryption: {keys_env: K, ui_origin: \"https://ui.example.com/namespaces\"}}", err: "temporal.encryption.ui_origin \"https://ui.example.com/namespaces\" is not an origin"},
		{name: "unknown key", yaml: "temporal: {encryption: {keys_env: K, key: abc}}", err: "unknown key \"key\" in temporal.encryption"},
	} {
		t.Run(c.name, func(t *testing.T) {
			yaml := c.yaml
			if c.name == "pasted key" {
				yaml += "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}}"
			}
			cfg, diags := Parse("platform.yaml", []byte(base+yaml+"\n"), "/srv")
			if c.err == "" {
				if len(diags) != 0 {
					t.Fatalf("diags: %v", diags)
				}
				got := cfg.Temporal.Encryption
				if (got == nil) != (c.want == nil) || (c.want != nil && *got != *c.want) {
					t.Fatalf("temporal.encryption = %+v, want %+v", got, c.want)
				}
				return
			}
			if len(diags) != 1 || !strings.Contains(diags.Error(), c.err) {
				t.Fatalf("diags = %v, want one with %q", diags, c.err)
			}
			if strings.Contains(diags.Error(), "q83vEjRWeJq8") {
				t.Error("the diagnostic shows the key")
			}
			if cfg.Temporal.Encryption != nil {
				t.Errorf("an invalid temporal.encryption was kept: %+v", cfg.Temporal.Encryption)
			}
		})
	}
}
