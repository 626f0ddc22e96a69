package platform

import (
	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
)

var internalAuthKeys = []string{"secret_env", "secret_file"}

// internalAuth decodes internal_auth: {secret_env: NAME} or {secret_file: PATH},
// where the workers read the secret that authenticates messages between
// Shipline's workflows. Exactly one of the two is given.
func (p *parser) internalAuth(key, v *yaml.Node) {
	const fix = "write internal_auth: {secret_env: SHIPLINE_INTERNAL_SECRET} or internal_auth: {secret_file: /etc/shipline/internal-secret}, or remove internal_auth to have the worker generate a secret under state_dir"
	if yamlnode.IsNull(v) {
		p.Errorf(key, fix, "internal_auth is empty")
		return
	}
	var ia InternalAuth
	given := 0
	ok := p.Map(v, "internal_auth", internalAuthKeys, func(name string, k, n *yaml.Node) {
		given++
		switch name {
		case "secret_env":
			ia.SecretEnv, _ = p.env(n, "internal_auth.secret_env", "SHIPLINE_INTERNAL_SECRET")
		case "secret_file":
			s, ok := p.String(n, "internal_auth.secret_file")
			if ok && s != "" {
				ia.SecretFile = p.localPath(s)
			} else if ok || yamlnode.IsNull(n) {
				p.Errorf(k, "give the path of a file holding the secret (at least 32 characters)", "internal_auth.secret_file is empty")
			}
		}
	})
	if !ok {
		return
	}
	switch {
	case given == 0 && len(yamlnode.Resolve(v).Content) == 0:
		p.Errorf(v, fix, "internal_auth names no secret")
		return
	case given > 1:
		p.Errorf(v, "keep one of secret_env and secret_file", "internal_auth names both secret_env and secret_file")
		return
	}
	if ia.SecretEnv != "" || ia.SecretFile != "" {
		p.c.InternalAuth = &ia
	}
}
