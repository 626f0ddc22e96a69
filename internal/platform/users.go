package platform

import (
	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
	"github.com/shipline/shipline/internal/signing"
)

var userKeys = []string{"keys"}

// users decodes users: {alice: {keys: ["ssh-ed25519 AAAA... alice@laptop"]}}
// and require_signatures. Every key must be an ssh-ed25519 public key line.
func (p *parser) users(requireKey, users, require *yaml.Node) {
	if require != nil && !yamlnode.IsNull(require) {
		p.c.RequireSignatures, _ = p.Bool(require, "require_signatures")
	}
	if users != nil && !yamlnode.IsNull(users) {
		p.c.Users = map[string]User{}
		p.Map(users, "users", nil, func(name string, k, v *yaml.Node) {
			field := "users." + name
			if !userRE.MatchString(name) {
				p.Errorf(k, "user names have no spaces, slashes or colons", "invalid user name %q in users", name)
			}
			var u User
			p.Map(v, field, userKeys, func(_ string, _, kv *yaml.Node) {
				list, nodes, _ := p.StringList(kv, field+".keys")
				for i, line := range list {
					if err := signing.ParsePublicKey(line); err != nil {
						p.Errorf(nodes[i], "paste the user's public key file (~/.ssh/id_ed25519.pub): one `ssh-ed25519 AAAA... comment` line", "%s.keys[%d]: %v", field, i, err)
						continue
					}
					u.Keys = append(u.Keys, line)
				}
			})
			if len(u.Keys) == 0 {
				p.Errorf(k, "add keys: [\"ssh-ed25519 AAAA... "+name+"@host\"]", "%s has no keys", field)
			}
			p.c.Users[name] = u
		})
	}
	if p.c.RequireSignatures && len(p.c.Users) == 0 {
		p.Errorf(requireKey, "register users' keys under users:, or set require_signatures: false", "require_signatures is true but no user has a key: every request would be refused")
	}
}
