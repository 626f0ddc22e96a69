package platform

import (
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
	"github.com/shipline/shipline/internal/signing"
)

var userKeys = []string{"keys", "key_files", "service"}

// users decodes users: {alice: {keys: ["ssh-ed25519 AAAA... alice@laptop"]}}
// (or key_files: [keys/alice.pub], files of such lines, read now; service: true
// marks a service identity such as a CI job's key) and require_signatures.
// Every key must be an ssh-ed25519 public key line.
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
			files := false
			p.Map(v, field, userKeys, func(key string, _, kv *yaml.Node) {
				if key == "service" {
					u.Service, _ = p.Bool(kv, field+".service")
					return
				}
				if key == "key_files" {
					files = len(yamlnode.Resolve(kv).Content) > 0
					u.Keys = append(u.Keys, p.keyFiles(kv, field+".key_files")...)
					return
				}
				list, nodes, _ := p.StringList(kv, field+".keys")
				for i, line := range list {
					if err := signing.ParsePublicKey(line); err != nil {
						p.Errorf(nodes[i], "paste the user's public key file (~/.ssh/id_ed25519.pub): one `ssh-ed25519 AAAA... comment` line", "%s.keys[%d]: %v", field, i, err)
						continue
					}
					u.Keys = append(u.Keys, line)
				}
			})
			if len(u.Keys) == 0 && !files { // an unreadable key file was reported already
				p.Errorf(k, "add keys: [\"ssh-ed25519 AAAA... "+name+"@host\"] or key_files: [keys/"+name+".pub]", "%s has no keys", field)
			}
			p.c.Users[name] = u
		})
	}
	if p.c.RequireSignatures && len(p.c.Users) == 0 {
		p.Errorf(requireKey, "register users' keys under users:, or set require_signatures: false", "require_signatures is true but no user has a key: every request would be refused")
	}
}

// maxKeyFile bounds a public key file: a few lines of text.
const maxKeyFile = 64 << 10

// keyFiles reads the public key lines of each file in the list (paths resolve
// against the platform file's directory). Blank lines and # comments are
// skipped, as in authorized_keys; a file without a key is an error.
func (p *parser) keyFiles(n *yaml.Node, field string) []string {
	list, nodes, _ := p.StringList(n, field)
	var keys []string
	for i, name := range list {
		at := fmt.Sprintf("%s[%d]", field, i)
		path := p.localPath(name)
		data, err := readSmall(path, maxKeyFile)
		if err != nil {
			p.Errorf(nodes[i], "create it (`ssh-keygen -t ed25519 -N '' -f "+strings.TrimSuffix(path, ".pub")+
				"` writes the .pub file), or paste the key under keys:", "%s: cannot read %s: %s", at, path, unwrap(err))
			continue
		}
		found := false
		for ln, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if err := signing.ParsePublicKey(line); err != nil {
				p.Errorf(nodes[i], "give the public key file (.pub): one `ssh-ed25519 AAAA... comment` line per key", "%s: %s:%d: %v", at, path, ln+1, err)
				continue
			}
			keys, found = append(keys, line), true
		}
		if !found {
			p.Errorf(nodes[i], "give the public key file (.pub): one `ssh-ed25519 AAAA... comment` line per key", "%s: %s holds no key", at, path)
		}
	}
	return keys
}

// readSmall reads a regular file of at most limit bytes.
func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("larger than %d bytes", limit)
	}
	return data, err
}
