package platform

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
)

// StorageSchemes are the URL schemes `storage:` accepts (gocloud.dev/blob's
// file, S3, Google Cloud Storage and Azure Blob drivers).
var StorageSchemes = []string{"file", "s3", "gs", "azblob"}

const storageFix = "write file:///abs/dir, file://./dir (relative to platform.yaml), s3://bucket/prefix?region=…, gs://bucket/prefix or azblob://container/prefix"

// StorageURL is the URL of the store workers share: platform.yaml's storage,
// else the state directory as a file:// bucket.
func (c *Config) StorageURL() string {
	if c.Storage != "" {
		return c.Storage
	}
	dir := c.StateDir
	if dir == "" {
		dir = DefaultStateDir
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
}

// storage decodes `storage: URL`. A file:// URL's directory is made absolute
// (relative ones resolve against platform.yaml's directory, like state_dir);
// other schemes are kept as written. Credentials never belong in the URL.
func (p *parser) storage(key, v *yaml.Node) {
	s, ok := p.String(v, "storage")
	if !ok || strings.TrimSpace(s) == "" {
		if ok || yamlnode.IsNull(v) {
			p.Errorf(key, storageFix+", or remove storage to keep everything under state_dir", "storage is empty")
		}
		return
	}
	u, err := url.Parse(s)
	if err != nil {
		p.Errorf(v, storageFix, "storage %q is not a URL: %v", s, unwrapURL(err))
		return
	}
	if !knownScheme(u.Scheme) {
		what := "has no scheme"
		if u.Scheme != "" {
			what = "has unsupported scheme " + u.Scheme + "://"
		}
		p.Errorf(v, storageFix, "storage %q %s (supported: file://, s3://, gs://, azblob://)", s, what)
		return
	}
	if u.User != nil {
		p.Errorf(v, "remove the credentials from the URL and give them in the worker's environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_KEY …)",
			"storage URL holds credentials; secrets never go in platform.yaml")
		return
	}
	if u.Scheme == "file" {
		p.fileStorage(v, s, u)
		return
	}
	if u.Host == "" {
		p.Errorf(v, "write "+u.Scheme+"://BUCKET/PREFIX?…", "storage %q names no bucket", s)
		return
	}
	if u.Query().Has("prefix") && strings.Trim(u.Path, "/") != "" {
		p.Errorf(v, "give the prefix as the URL's path only", "storage %q gives a prefix twice (path and ?prefix=)", s)
		return
	}
	p.c.Storage = s
}

// fileStorage resolves a file:// URL to an absolute directory.
func (p *parser) fileStorage(v *yaml.Node, s string, u *url.URL) {
	if len(u.Query()) > 0 {
		p.Errorf(v, "remove the query from the file:// URL", "storage %q: file:// takes no query parameters", s)
		return
	}
	var dir string
	switch {
	case u.Opaque != "": // file:relative/dir
		dir = u.Opaque
	case u.Host == "." || u.Host == "..": // file://./dir, gocloud's spelling of a relative path
		dir = u.Host + u.Path
	case u.Host == "" || u.Host == "localhost":
		dir = u.Path
	default:
		p.Errorf(v, "write file:///abs/dir for an absolute directory or file://./"+u.Host+u.Path+" for one relative to platform.yaml",
			"storage %q names host %q; a file:// URL names a local directory", s, u.Host)
		return
	}
	if dir == "" {
		p.Errorf(v, storageFix, "storage %q names no directory", s)
		return
	}
	p.c.Storage = (&url.URL{Scheme: "file", Path: filepath.ToSlash(p.localPath(dir))}).String()
}

func knownScheme(s string) bool {
	for _, k := range StorageSchemes {
		if s == k {
			return true
		}
	}
	return false
}

func unwrapURL(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

// OverrideStorage sets the storage URL from source (the worker's
// SHIPLINE_STORAGE environment variable), with the checks platform.yaml's
// storage: gets; a relative file:// directory resolves against the working
// directory. Errors name source.
func (c *Config) OverrideStorage(source, value string) error {
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	p := &parser{Decoder: yamlnode.Decoder{File: source}, baseDir: dir, c: c}
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "storage", Line: 1, Column: 1}
	p.storage(key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, Line: 1, Column: 1})
	if p.Diags.HasErrors() {
		return p.Diags
	}
	return nil
}
