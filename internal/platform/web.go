package platform

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
	"github.com/shipline/shipline/internal/signing"
)

// Web is the dashboard's block (`web:`): how it knows who is asking, where
// users reach it, and the key it signs their actions with.
type Web struct {
	// Auth is WebAuthProxy (an authenticating proxy in front names the user
	// in UserHeader) or WebAuthDev (a user picker, on loopback only).
	Auth string `json:"auth"`
	// UserHeader is the proxy's header naming the user (default X-Forwarded-User).
	UserHeader string `json:"user_header,omitempty"`
	// TrustedProxies are the addresses (CIDR) the header is accepted from.
	TrustedProxies []string `json:"trusted_proxies,omitempty"`
	// URL is where users reach the dashboard (links in messages), if known.
	URL string `json:"url,omitempty"`
	// KeyFile is the dashboard's ed25519 private key (OpenSSH); its public key
	// must be registered under delegates.<Delegate>.keys. Empty: with --dev,
	// generated under state_dir and registered automatically.
	KeyFile string `json:"key_file,omitempty"`
	// Delegate is the dashboard's name as a delegate (default "web"): actions
	// are recorded as "carol via web".
	Delegate string `json:"delegate"`
}

// Ways the dashboard knows who is asking.
const (
	WebAuthProxy = "proxy"
	WebAuthDev   = "dev"
	// DefaultUserHeader is oauth2-proxy's header for the user.
	DefaultUserHeader = "X-Forwarded-User"
	// DefaultDelegate is the dashboard's delegate name.
	DefaultDelegate = "web"
)

// Delegate is a service that signs requests on behalf of the actors it
// names (the dashboard): its public keys.
type Delegate struct {
	Keys []string `json:"keys"`
}

var (
	webKeys      = []string{"auth", "user_header", "trusted_proxies", "url", "key_file", "delegate"}
	delegateKeys = []string{"keys", "key_files"}
	headerRE     = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`)
)

// delegates decodes delegates: {web: {keys: ["ssh-ed25519 AAAA... shipline-web"]}}
// (or key_files: [keys/web.pub]).
func (p *parser) delegates(v *yaml.Node) {
	if v == nil || yamlnode.IsNull(v) {
		return
	}
	p.c.Delegates = map[string]Delegate{}
	p.Map(v, "delegates", nil, func(name string, k, v *yaml.Node) {
		field := "delegates." + name
		p.checkName(k, name, "delegate name")
		if _, isUser := p.c.Users[name]; isUser {
			p.Errorf(k, "give the delegate a name no user has, e.g. web", "%s: %q is also a user under users:; a delegate acts for others, so it cannot be one of them", field, name)
		}
		var d Delegate
		files := false
		p.Map(v, field, delegateKeys, func(key string, _, kv *yaml.Node) {
			if key == "key_files" {
				files = len(yamlnode.Resolve(kv).Content) > 0
				d.Keys = append(d.Keys, p.keyFiles(kv, field+".key_files")...)
				return
			}
			list, nodes, _ := p.StringList(kv, field+".keys")
			for i, line := range list {
				if err := signing.ParsePublicKey(line); err != nil {
					p.Errorf(nodes[i], "paste the delegate's public key (`ssh-keygen -y -f KEY_FILE` prints it): one `ssh-ed25519 AAAA... comment` line", "%s.keys[%d]: %v", field, i, err)
					continue
				}
				d.Keys = append(d.Keys, line)
			}
		})
		if len(d.Keys) == 0 && !files {
			p.Errorf(k, "add keys: [\"ssh-ed25519 AAAA... "+name+"\"] or key_files: [keys/"+name+".pub]", "%s has no keys", field)
		}
		p.c.Delegates[name] = d
	})
}

// web decodes the dashboard's block; delegates are read first.
func (p *parser) web(key, v *yaml.Node) {
	if yamlnode.IsNull(v) {
		p.Errorf(key, "write web: {auth: proxy, trusted_proxies: [127.0.0.1/32]} or web: {auth: dev}, or remove web:", "web is empty")
		return
	}
	w := Web{UserHeader: DefaultUserHeader, Delegate: DefaultDelegate}
	var authNode, delegateNode, headerNode, proxiesNode *yaml.Node
	ok := p.Map(v, "web", webKeys, func(name string, k, n *yaml.Node) {
		switch name {
		case "auth":
			authNode = n
			w.Auth, _ = p.String(n, "web.auth")
		case "user_header":
			headerNode = n
			if s, ok := p.String(n, "web.user_header"); ok {
				if !headerRE.MatchString(s) {
					p.Errorf(n, "give an HTTP header name, e.g. X-Forwarded-User", "web.user_header %q is not a header name", s)
				}
				w.UserHeader = s
			}
		case "trusted_proxies":
			proxiesNode = n
			list, nodes, _ := p.StringList(n, "web.trusted_proxies")
			for i, s := range list {
				prefix, err := ParseTrustedProxy(s)
				if err != nil {
					p.Errorf(nodes[i], "give an address or a CIDR range, e.g. 127.0.0.1/32 or 10.0.0.0/8", "web.trusted_proxies[%d]: %v", i, err)
					continue
				}
				w.TrustedProxies = append(w.TrustedProxies, prefix.String())
			}
		case "url":
			if s, ok := p.String(n, "web.url"); ok {
				if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					p.Errorf(n, "give the address users open, e.g. https://shipline.example.com", "web.url %q is not an http(s) URL", s)
				}
				w.URL = strings.TrimRight(s, "/")
			}
		case "key_file":
			if s, ok := p.String(n, "web.key_file"); ok && s != "" {
				w.KeyFile = p.localPath(s)
			} else if ok {
				p.Errorf(n, "give the dashboard's private key file, or remove key_file", "web.key_file is empty")
			}
		case "delegate":
			delegateNode = n
			if s, ok := p.String(n, "web.delegate"); ok {
				w.Delegate = s
			}
		}
	})
	if !ok {
		return
	}
	switch w.Auth {
	case WebAuthProxy:
		if len(w.TrustedProxies) == 0 && proxiesNode == nil {
			p.Errorf(key, "add trusted_proxies: the addresses of the authenticating proxy, e.g. [127.0.0.1/32]", "web.auth is proxy but no trusted_proxies are given: the user header would be trusted from nobody")
		}
	case WebAuthDev:
		if headerNode != nil || proxiesNode != nil {
			p.Errorf(key, "remove user_header and trusted_proxies, or use auth: proxy", "web.auth dev has a user picker: user_header and trusted_proxies apply to auth: proxy only")
		}
	case "":
		at := key
		if authNode != nil {
			at = authNode
		}
		p.Errorf(at, "write auth: proxy (behind an authenticating proxy) or auth: dev (a user picker, loopback only)", "web.auth is missing")
	default:
		p.Errorf(authNode, "write auth: proxy or auth: dev", "web.auth %q is not proxy or dev", w.Auth)
	}
	if w.KeyFile != "" {
		at := key
		if delegateNode != nil {
			at = delegateNode
		}
		if _, ok := p.c.Delegates[w.Delegate]; !ok {
			p.Errorf(at, fmt.Sprintf("register the dashboard's public key: delegates: {%s: {keys: [\"ssh-ed25519 AAAA... %s\"]}} (`ssh-keygen -y -f %s` prints it)", w.Delegate, w.Delegate, w.KeyFile),
				"web.key_file is given but %q is not a registered delegate", w.Delegate)
		}
	}
	p.c.Web = &w
}

// ParseTrustedProxy reads an address or CIDR range of web.trusted_proxies.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR range", s)
		}
		return prefix.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address", s)
	}
	return netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()), nil
}
