package platform

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
)

// PackageIndex is a package index that libraries (shipline.yaml's
// libraries:) are published to; never a fabric. Credentials are read at
// publish time from the environment variables named here.
type PackageIndex struct {
	Name string `json:"name"`
	// Kind is simple (a PEP 503 static index in a directory or bucket), pypi
	// (the upload API twine speaks) or maven (a Maven repository).
	Kind string `json:"kind"`
	// URL is where the index lives: file:// (made absolute), s3://, gs://,
	// azblob:// or http(s)://. For kind pypi it is the upload URL (…/legacy/).
	URL string `json:"url"`
	// SimpleURL is, for kind pypi, where the server serves its PEP 503 simple
	// pages when they are not at the upload URL's …/simple/ (devpi:
	// https://host/<user>/<index>/+simple/). Releases read them to compare
	// what is published and to find pinned versions.
	SimpleURL string `json:"simple_url,omitempty"`
	// UsernameEnv and PasswordEnv name the variables of HTTP basic auth;
	// TokenEnv the variable of an API token (PyPI's __token__, a bearer token).
	UsernameEnv string `json:"username_env,omitempty"`
	PasswordEnv string `json:"password_env,omitempty"`
	TokenEnv    string `json:"token_env,omitempty"`
}

// Index kinds of package_indexes (the publishers of internal/pkgindex).
const (
	IndexSimple = "simple"
	IndexPyPI   = "pypi"
	IndexMaven  = "maven"
)

// IndexKinds are the kinds package_indexes accepts.
var IndexKinds = []string{IndexSimple, IndexPyPI, IndexMaven}

// PythonIndex reports whether an index of this kind serves Python wheels.
func PythonIndex(kind string) bool { return kind == IndexSimple || kind == IndexPyPI }

var packageIndexKeys = []string{"kind", "url", "simple_url", "username_env", "password_env", "token_env"}

// indexSchemes are the URL schemes a package index may live at: buckets and
// directories (gocloud.dev/blob) and HTTP.
var indexSchemes = []string{"file", "s3", "gs", "azblob", "http", "https"}

// packageIndexes decodes package_indexes: {NAME: {kind, url, credentials}}.
func (p *parser) packageIndexes(v *yaml.Node) {
	if yamlnode.IsNull(v) {
		return
	}
	p.c.PackageIndexes = map[string]PackageIndex{}
	p.Map(v, "package_indexes", nil, func(name string, k, v *yaml.Node) {
		p.checkName(k, name, "package index name")
		p.c.PackageIndexes[name] = p.packageIndex(name, k, v)
	})
}

// packageIndex decodes one package index.
func (p *parser) packageIndex(name string, k, v *yaml.Node) PackageIndex {
	field := "package_indexes." + name
	ix := PackageIndex{Name: name}
	example := fmt.Sprintf("%s: {kind: simple, url: file:///srv/pypi}", name)
	if yamlnode.IsNull(v) {
		p.Errorf(k, "give it kind: and url:, e.g. "+example, "package index %q has no settings", name)
		return ix
	}
	var urlNode, simpleNode *yaml.Node
	creds := map[string]*yaml.Node{}
	ok := p.Map(v, field, packageIndexKeys, func(key string, kk, vv *yaml.Node) {
		fk := field + "." + key
		switch key {
		case "kind":
			s, ok := p.String(vv, fk)
			switch {
			case !ok && yamlnode.IsNull(vv):
				p.Errorf(kk, "use one of "+strings.Join(IndexKinds, ", "), "%s is empty", fk)
			case !ok:
			case !slices.Contains(IndexKinds, s):
				p.Errorf(vv, "use one of "+strings.Join(IndexKinds, ", "), "package index %q has unknown kind %q", name, s)
			default:
				ix.Kind = s
			}
		case "url":
			urlNode = vv
			if s, ok := p.String(vv, fk); ok && strings.TrimSpace(s) != "" {
				ix.URL = s
			} else if ok || yamlnode.IsNull(vv) {
				p.Errorf(kk, "give the index's URL, e.g. file:///srv/pypi, https://pypi.example.com/legacy/ or https://nexus.example.com/repository/maven-releases/", "%s is empty", fk)
			}
		case "simple_url":
			simpleNode = vv
			if s, ok := p.String(vv, fk); ok && strings.TrimSpace(s) != "" {
				ix.SimpleURL = s
			} else if ok || yamlnode.IsNull(vv) {
				p.Errorf(kk, "give the URL of the server's simple pages, e.g. https://devpi.example.com/team/prod/+simple/, or remove simple_url", "%s is empty", fk)
			}
		case "username_env", "password_env", "token_env":
			creds[key] = kk
			envVar, _ := p.env(vv, fk, strings.ToUpper(name)+"_"+strings.ToUpper(strings.TrimSuffix(key, "_env")))
			switch key {
			case "username_env":
				ix.UsernameEnv = envVar
			case "password_env":
				ix.PasswordEnv = envVar
			case "token_env":
				ix.TokenEnv = envVar
			}
		}
	})
	if !ok {
		return ix
	}
	if !hasKey(v, "kind") {
		p.Errorf(k, "add kind: "+strings.Join(IndexKinds, ", "), "package index %q has no kind", name)
	}
	if urlNode == nil {
		p.Errorf(k, "add url:, e.g. "+example, "package index %q has no url", name)
	} else if ix.URL != "" {
		ix.URL = p.indexURL(urlNode, field, ix.URL)
		p.indexScheme(urlNode, name, ix)
	}
	if simpleNode != nil && ix.SimpleURL != "" {
		p.simpleURL(simpleNode, name, ix)
	}
	p.indexCredentials(name, k, &ix, creds)
	return ix
}

// simpleURL checks simple_url: only for kind pypi, an http(s) URL with a
// host and no credentials.
func (p *parser) simpleURL(n *yaml.Node, name string, ix PackageIndex) {
	field := "package_indexes." + name + ".simple_url"
	if ix.Kind != "" && ix.Kind != IndexPyPI {
		p.Errorf(n, "remove simple_url: it is for kind pypi, whose upload URL is not where pip reads",
			"%s is set on package index %q of kind %s", field, name, ix.Kind)
		return
	}
	u, err := url.Parse(ix.SimpleURL)
	switch {
	case err != nil:
		p.Errorf(n, "write the URL pip takes as --index-url, e.g. https://devpi.example.com/team/prod/+simple/", "%s %q is not a URL: %v", field, ix.SimpleURL, unwrapURL(err))
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		p.Errorf(n, "write the URL pip takes as --index-url, e.g. https://devpi.example.com/team/prod/+simple/", "%s %q is not an http:// or https:// URL", field, ix.SimpleURL)
	case u.User != nil:
		p.Errorf(n, "remove the credentials from the URL: name their environment variables with username_env/password_env or token_env",
			"%s holds credentials; secrets never go in platform.yaml", field)
	case u.RawQuery != "" || u.Fragment != "":
		p.Errorf(n, "remove the query or fragment: write the URL pip takes as --index-url", "%s %q has a query or fragment", field, ix.SimpleURL)
	default:
		// The index's credentials are sent to its simple pages: only on the
		// index's own scheme and host (never in clear, never elsewhere).
		if up, err := url.Parse(ix.URL); err == nil && up.Host != "" &&
			(!strings.EqualFold(up.Scheme, u.Scheme) || !strings.EqualFold(up.Host, u.Host)) {
			p.Errorf(n, fmt.Sprintf("point simple_url at %s://%s/…, where the index's credentials go; they are never sent in clear or to another host", up.Scheme, up.Host),
				"%s %q is not on the scheme and host of the index's url %s", field, ix.SimpleURL, up.Scheme+"://"+up.Host)
		}
	}
}

// indexCredentials checks the credential settings go together: username_env
// with password_env, or token_env alone; and only over HTTP.
func (p *parser) indexCredentials(name string, k *yaml.Node, ix *PackageIndex, creds map[string]*yaml.Node) {
	if len(creds) == 0 {
		return
	}
	_, user := creds["username_env"]
	_, pass := creds["password_env"]
	_, token := creds["token_env"]
	switch {
	case token && (user || pass):
		p.Errorf(creds["token_env"], "keep token_env, or username_env and password_env, not both",
			"package index %q names both a token and a user name or password", name)
	case user && !pass:
		p.Errorf(creds["username_env"], "add password_env: <VARIABLE> (the variable holding the password)",
			"package index %q has username_env without password_env", name)
	case pass && !user:
		p.Errorf(creds["password_env"], "add username_env: <VARIABLE> (the variable holding the user name)",
			"package index %q has password_env without username_env", name)
	}
	if u, err := url.Parse(ix.URL); err == nil && ix.URL != "" && u.Scheme != "http" && u.Scheme != "https" {
		at := k
		for _, key := range []string{"username_env", "password_env", "token_env"} {
			if n, ok := creds[key]; ok {
				at = n
				break
			}
		}
		p.Errorf(at, "remove the credential settings: a bucket is reached with the worker's cloud credentials (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*), a directory with its file permissions",
			"package index %q at %s takes no credentials (they are for http:// and https:// indexes)", name, u.Scheme+"://")
	}
}

// indexURL checks a package index's URL: a known scheme, no credentials in
// it, a bucket named; a file:// directory is made absolute (relative ones
// resolve against platform.yaml's directory, like storage:).
func (p *parser) indexURL(n *yaml.Node, field, s string) string {
	const fix = "write file:///abs/dir, file://./dir (relative to platform.yaml), s3://bucket/prefix, gs://bucket/prefix, azblob://container/prefix or https://host/path"
	u, err := url.Parse(s)
	if err != nil {
		p.Errorf(n, fix, "%s %q is not a URL: %v", field+".url", s, unwrapURL(err))
		return s
	}
	if !slices.Contains(indexSchemes, u.Scheme) {
		what := "has no scheme"
		if u.Scheme != "" {
			what = "has unsupported scheme " + u.Scheme + "://"
		}
		p.Errorf(n, fix, "%s %q %s", field+".url", s, what)
		return s
	}
	if u.User != nil {
		p.Errorf(n, "remove the credentials from the URL: set them in environment variables of the worker and name those with username_env/password_env or token_env",
			"%s holds credentials; secrets never go in platform.yaml", field+".url")
		return s
	}
	if u.Scheme != "file" {
		if u.Host == "" {
			p.Errorf(n, fix, "%s %q names no host or bucket", field+".url", s)
		}
		return s
	}
	var dir string
	switch {
	case u.Opaque != "":
		dir = u.Opaque
	case u.Host == "." || u.Host == "..":
		dir = u.Host + u.Path
	case u.Host == "" || u.Host == "localhost":
		dir = u.Path
	default:
		p.Errorf(n, "write file:///abs/dir for an absolute directory or file://./dir for one relative to platform.yaml",
			"%s %q names host %q; a file:// URL names a local directory", field+".url", s, u.Host)
		return s
	}
	if dir == "" || len(u.Query()) > 0 {
		p.Errorf(n, fix, "%s %q names no directory, or has a query", field+".url", s)
		return s
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(p.localPath(dir))}).String()
}

// indexScheme checks the URL's scheme suits the kind: a simple index is a
// directory or a bucket, a pypi index an HTTP upload API, a maven
// repository either.
func (p *parser) indexScheme(n *yaml.Node, name string, ix PackageIndex) {
	u, err := url.Parse(ix.URL)
	if err != nil || !slices.Contains(indexSchemes, u.Scheme) {
		return // reported by indexURL
	}
	web := u.Scheme == "http" || u.Scheme == "https"
	switch {
	case ix.Kind == IndexSimple && web:
		p.Errorf(n, "give the directory or bucket the index is written to (file://, s3://, gs://, azblob://); to upload to a server over HTTP use kind: pypi with its upload URL",
			"package index %q of kind simple has an %s:// URL", name, u.Scheme)
	case ix.Kind == IndexPyPI && !web:
		p.Errorf(n, "give the server's upload URL, e.g. https://upload.pypi.org/legacy/; for an index in a directory or bucket use kind: simple",
			"package index %q of kind pypi has a %s:// URL", name, u.Scheme)
	}
}

// hasKey reports whether the mapping n has key (with any value, null included).
func hasKey(n *yaml.Node, key string) bool {
	n = yamlnode.Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}
