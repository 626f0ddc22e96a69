package platform

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestInternalAuth(t *testing.T) {
	const base = "teams: {dev: {members: [a]}}\nprojects: {p: {repo: x, admins: [a]}}\n"
	for _, c := range []struct {
		name, yaml string
		want       *InternalAuth
		err        string // one diagnostic containing this, "" for none
	}{
		{name: "absent", yaml: ""},
		{name: "env", yaml: "internal_auth: {secret_env: SHIPLINE_INTERNAL_SECRET}", want: &InternalAuth{SecretEnv: "SHIPLINE_INTERNAL_SECRET"}},
		{name: "file", yaml: "internal_auth: {secret_file: secrets/internal}", want: &InternalAuth{SecretFile: filepath.Join("/srv", "secrets", "internal")}},
		{name: "both", yaml: "internal_auth: {secret_env: X, secret_file: /f}", err: "platform.yaml:3:16: error: internal_auth names both secret_env and secret_file"},
		{name: "neither", yaml: "internal_auth: {}", err: "platform.yaml:3:16: error: internal_auth names no secret"},
		{name: "empty", yaml: "internal_auth:", err: "platform.yaml:3:1: error: internal_auth is empty"},
		{name: "not env name", yaml: "internal_auth: {secret_env: my secret}", err: "platform.yaml:3:29: error: internal_auth.secret_env \"my secret\" is not an environment variable name"},
		{name: "pasted secret", yaml: "internal_auth: {secret_env: sk-abcdef}", err: "looks like a secret itself"},
		{name: "empty file", yaml: "internal_auth: {secret_file: \"\"}", err: "platform.yaml:3:17: error: internal_auth.secret_file is empty"},
		{name: "unknown key", yaml: "internal_auth: {secret: abc}", err: "platform.yaml:3:17: error: unknown key \"secret\" in internal_auth"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, diags := Parse("platform.yaml", []byte(base+c.yaml+"\n"), "/srv")
			if c.err == "" {
				if len(diags) != 0 {
					t.Fatalf("diags: %v", diags)
				}
				if (cfg.InternalAuth == nil) != (c.want == nil) || (c.want != nil && *cfg.InternalAuth != *c.want) {
					t.Fatalf("internal_auth = %+v, want %+v", cfg.InternalAuth, c.want)
				}
				return
			}
			if len(diags) != 1 || !strings.Contains(diags.Error(), c.err) {
				t.Fatalf("diags = %v, want one with %q", diags, c.err)
			}
			if cfg.InternalAuth != nil {
				t.Errorf("an invalid internal_auth was kept: %+v", cfg.InternalAuth)
			}
		})
	}
}
