// Package pkgindex publishes built libraries (wheels, jars) to package
// indexes: a static PEP 503 "simple" index in a directory or bucket, an index
// speaking PyPI's legacy upload API (what twine speaks: PyPI, Artifactory,
// Nexus, CodeArtifact, devpi, GitLab), and a Maven repository over HTTP PUT or
// in a bucket.
//
// Published versions are immutable. Publishing a file the index already holds
// with the same bytes writes nothing and reports AlreadyPublished; with other
// bytes it is refused with a VersionAlreadyPublished error that names both
// checksums and says to bump the version.
//
// Errors a user acts on are *apperr.Error (IndexConfig, IndexAuth,
// IndexRejected, VersionAlreadyPublished, InvalidInput); IndexUnavailable and
// plain errors (network, I/O) are transient.
package pkgindex

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/shipline/shipline/internal/apperr"
)

// Config is one entry of platform.yaml's package_indexes, with its
// credentials already resolved from the environment.
type Config struct {
	// Name is the index's name in platform.yaml, for messages.
	Name string
	// Kind is one of Kinds().
	Kind string
	// URL is where the index lives: for simple, a directory or a
	// gocloud.dev/blob URL (file://, s3://, gs://, azblob://); for pypi, the
	// upload URL (e.g. https://upload.pypi.org/legacy/); for maven, the
	// repository's http(s):// URL or a bucket URL.
	URL string
	// SimpleURL is, for pypi, where the index serves its PEP 503 simple
	// pages (devpi: <index>/+simple/); empty: derived from URL (simpleURLOf).
	SimpleURL string
	// Username and Password are basic-auth credentials (pypi, maven over HTTP).
	Username, Password string
	// Token is an API token: for pypi it is sent as the password of the user
	// __token__; for maven as the basic-auth password of Username (or a
	// bearer token without Username).
	Token string
}

// File is one built file to publish.
type File struct {
	// Project is the Shipline project that built the file, for messages.
	Project string
	// Name is the library's package name (a Python distribution name, which
	// a wheel's file name and METADATA must match; for maven the artifactId
	// when ArtifactID is empty).
	Name string
	// Version is the library's version; a leading "v" is ignored (a release
	// v1.2.0 publishes the wheel 1.2.0, the Maven version 1.2.0).
	Version string
	// Filename is the file's name in the index (default: the base of Path).
	Filename string
	// Path is the local file to publish.
	Path string
	// GroupID and ArtifactID are the Maven coordinates (maven only).
	GroupID, ArtifactID string
}

// Result says where a published file is.
type Result struct {
	// URL is the file's URL in the index.
	URL string
	// AlreadyPublished: the index held these very bytes already; nothing was
	// uploaded.
	AlreadyPublished bool
}

// Index is a package index Shipline publishes to.
type Index interface {
	// Publish puts f into the index. The same file with the same bytes is
	// AlreadyPublished (no upload); with other bytes it is refused with a
	// VersionAlreadyPublished error.
	Publish(ctx context.Context, f File) (Result, error)
	// Has reports whether the index holds a file of the package's version:
	// name is a Python package name (any spelling PEP 503 normalizes alike)
	// for simple and pypi, groupId:artifactId for maven; a leading "v" of
	// the version is ignored.
	Has(ctx context.Context, name, version string) (bool, error)
}

// kinds is the registry of index kinds: one line per kind.
var kinds = []struct {
	name string
	open func(ctx context.Context, c Config) (Index, error)
}{
	{"simple", openSimple},
	{"pypi", openPyPI},
	{"maven", openMaven},
}

// Kinds returns the index kinds platform.yaml may name, in registry order.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k.name)
	}
	return out
}

// Open returns the index c describes. It checks the configuration only; it
// does not reach the index.
func Open(ctx context.Context, c Config) (Index, error) {
	if strings.TrimSpace(c.URL) == "" {
		return nil, configError(c, "has no url: set package_indexes.%s.url", c.Name)
	}
	for _, k := range kinds {
		if k.name == c.Kind {
			return k.open(ctx, c)
		}
	}
	return nil, configError(c, "has kind %q: use one of %s", c.Kind, strings.Join(Kinds(), ", "))
}

// Normalize returns a Python package name normalized as PEP 503 says: runs of
// "-", "_" and "." become one "-", letters become lower case.
func Normalize(name string) string {
	return strings.ToLower(separators.ReplaceAllString(name, "-"))
}

var separators = regexp.MustCompile(`[-_.]+`)

// validName is PEP 508's distribution name.
var validName = regexp.MustCompile(`(?i)^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$`)

// normVersion is the comparable form of a version: a leading "v" (release
// tags are v1.2.3, wheels say 1.2.3) and case do not matter.
func normVersion(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if len(v) > 1 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
		v = v[1:]
	}
	return v
}

// checkFile checks what every kind needs of a File and fills in Filename.
func checkFile(c Config, f *File) error {
	if f.Path == "" {
		return inputError("publish to package index %s: no file given", c.Name)
	}
	if f.Filename == "" {
		f.Filename = filepath.Base(f.Path)
	}
	if f.Filename != filepath.Base(f.Filename) || strings.ContainsAny(f.Filename, `/\`) || f.Filename == "." || f.Filename == ".." || strings.HasPrefix(f.Filename, ".") {
		return &apperr.Error{Type: apperr.InvalidName, Msg: fmt.Sprintf("publish to package index %s: %q cannot be a file name in an index", c.Name, f.Filename)}
	}
	if f.Version == "" || strings.ContainsAny(f.Version, "/\\ ") {
		return inputError("publish %s to package index %s: invalid version %q", f.Filename, c.Name, f.Version)
	}
	st, err := os.Stat(f.Path)
	if err != nil {
		return &apperr.Error{Type: apperr.ArtifactMissing, Msg: fmt.Sprintf("publish %s to package index %s: %v", f.Filename, c.Name, err), Cause: err}
	}
	if !st.Mode().IsRegular() {
		return inputError("publish to package index %s: %s is not a regular file", c.Name, f.Path)
	}
	return nil
}

// fileSHA256 returns the hex sha256 of a local file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return readerSHA256(f)
}

// readerSHA256 returns the hex sha256 of what r holds.
func readerSHA256(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// conflict is the refusal of a version the index holds with other bytes.
func conflict(c Config, f File, what, there, here string) error {
	proj := ""
	if f.Project != "" {
		proj = " of project " + f.Project
	}
	return &apperr.Error{Type: apperr.VersionAlreadyPublished, Msg: fmt.Sprintf(
		"package index %s already holds %s %s%s (%s) with other bytes: sha256 %s there, %s built now; "+
			"published versions are immutable and a library takes the release's version: release a new version (e.g. the next patch)",
		c.Name, f.Name, f.Version, proj, what, there, here)}
}

func configError(c Config, format string, args ...any) error {
	return &apperr.Error{Type: apperr.IndexConfig, Msg: fmt.Sprintf("package index %s (kind %s) ", c.Name, c.Kind) + fmt.Sprintf(format, args...)}
}

func inputError(format string, args ...any) error {
	return &apperr.Error{Type: apperr.InvalidInput, Msg: fmt.Sprintf(format, args...)}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
