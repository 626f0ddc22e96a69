// Package storage is the one place where a worker keeps what another worker
// may read: the build cache, build logs and the generated internal secret. It
// is a gocloud.dev/blob bucket named by platform.yaml's `storage:` URL —
// file://, s3://, gs:// or azblob:// — or, without one, the state directory
// itself as a file:// bucket, so there is one code path whatever the backend.
//
// Writes are atomic: an object appears whole when its writer closes, or not at
// all (fileblob writes a temporary file next to the object and renames it;
// cloud stores commit on the upload's completion). Reads stream. Credentials
// come from each backend's standard environment (AWS_ACCESS_KEY_ID,
// GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT …), never from the URL.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob://
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob" // gs://
	_ "gocloud.dev/blob/s3blob"  // s3://
	"gocloud.dev/gcerrors"

	"github.com/shipline/shipline/internal/platform"
)

// ErrNotFound is returned (wrapped) for an object that does not exist. It
// matches fs.ErrNotExist too, so code reading files or objects checks one error.
var ErrNotFound error = notFound{}

type notFound struct{}

func (notFound) Error() string        { return "not found" }
func (notFound) Is(target error) bool { return target == fs.ErrNotExist }

// Store is a bucket of objects named by slash-separated keys.
type Store struct {
	bucket *blob.Bucket
	// where names the store in messages (its URL without query).
	where string
	// dir is the root directory of a file:// store ("" for cloud stores).
	dir string
}

// Open opens the store at rawURL: a gocloud.dev/blob URL whose path, for
// cloud schemes, is a key prefix (s3://bucket/shipline/ keeps every object
// under shipline/). A file:// store's directory is created if missing.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage URL %q: %w", Redact(rawURL), cause(err))
	}
	s := &Store{where: Redact(rawURL)}
	if err := checkURL(u, s.where); err != nil {
		return nil, err
	}
	if u.Scheme == fileblob.Scheme {
		return s.openFile(u)
	}
	// The URL's path is a prefix inside the bucket (gocloud reads it from ?prefix=).
	if prefix := strings.Trim(u.Path, "/"); prefix != "" {
		q := u.Query()
		if q.Has("prefix") {
			return nil, fmt.Errorf("storage URL %q gives a prefix twice (path and ?prefix=): keep one", s.where)
		}
		q.Set("prefix", prefix+"/")
		u.Path, u.RawPath, u.RawQuery = "", "", q.Encode()
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", s.where, err)
	}
	s.bucket = b
	return s, nil
}

// CheckURL checks a storage URL's form (scheme, bucket) without opening it.
func CheckURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("storage URL %q: %w", Redact(rawURL), cause(err))
	}
	return checkURL(u, Redact(rawURL))
}

func checkURL(u *url.URL, where string) error {
	switch u.Scheme {
	case fileblob.Scheme:
		for k := range u.Query() {
			return fmt.Errorf("storage URL %q: file:// takes no query parameters (found %q): remove it", where, k)
		}
		if u.Path != "" && path.Clean(u.Path) == "/" {
			return fmt.Errorf("storage URL %q names the file system's root: name a directory of its own, e.g. file:///srv/shipline", where)
		}
		return nil
	case "":
		return fmt.Errorf("storage URL %q has no scheme: use one of %s", where, schemes())
	}
	if !slices.Contains(platform.StorageSchemes, u.Scheme) || !blob.DefaultURLMux().ValidBucketScheme(u.Scheme) {
		return fmt.Errorf("storage URL %q: unsupported scheme %q: use one of %s", where, u.Scheme, schemes())
	}
	if u.Host == "" {
		return fmt.Errorf("storage URL %q names no bucket: write %s://BUCKET[/PREFIX]", where, u.Scheme)
	}
	known := urlOptions[u.Scheme]
	for _, k := range slices.Sorted(maps.Keys(u.Query())) {
		if k != "prefix" && !slices.Contains(known, k) {
			return fmt.Errorf("storage URL %q: unknown option %q for %s://: remove it, or use one of %s",
				where, k, u.Scheme, strings.Join(known, ", "))
		}
	}
	return nil
}

// urlOptions are the query options gocloud.dev's URL opener of each bucket
// scheme accepts (v0.47: s3blob with aws.V2ConfigFromURLParams, gcsblob,
// azureblob); any other one would fail only when the bucket is opened.
var urlOptions = map[string][]string{
	"s3": {"region", "endpoint", "profile", "dualstack", "fips", "rate_limiter_capacity", "anonymous", "role",
		"hostname_immutable", "request_checksum_calculation", "response_checksum_validation", "awssdk",
		"ssetype", "kmskeyid", "accelerate", "use_path_style", "s3ForcePathStyle", "disable_https"},
	"gs":     {"access_id", "private_key_path", "anonymous", "universe_domain", "grpc", "zonal"},
	"azblob": {"domain", "protocol", "cdn", "localemu", "storage_account"},
}

// cause is a *url.Error's cause, without its text, which repeats the URL unredacted.
func cause(err error) error {
	if c := errors.Unwrap(err); c != nil {
		return c
	}
	return err
}

// schemes lists the schemes platform.yaml accepts, for messages.
func schemes() string {
	return strings.Join(platform.StorageSchemes, "://, ") + "://"
}

// openFile opens a file:// store: an absolute directory, created if missing,
// with temporary files next to their object (a rename across file systems
// would fail) and no metadata side files.
func (s *Store) openFile(u *url.URL) (*Store, error) {
	dir := filepath.FromSlash(u.Path)
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("storage URL %q: a file:// URL names a local directory (file:///abs/path)", s.where)
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("storage URL %q: the directory must be absolute", s.where)
	}
	for k := range u.Query() {
		return nil, fmt.Errorf("storage URL %q: file:// takes no query parameters (found %q)", s.where, k)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create storage directory %s: %w", dir, err)
	}
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{NoTempDir: true, Metadata: fileblob.MetadataDontWrite, DirFileMode: 0o755})
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", s.where, err)
	}
	s.bucket, s.dir = b, dir
	return s, nil
}

// FileURL is the file:// URL of a local directory.
func FileURL(dir string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
}

// Redact drops a URL's query and user info for messages (they may hold
// endpoints with credentials).
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Unparsed: drop the query and fragment, then whatever precedes an
		// "@" after the scheme (user info, maybe with a password).
		s := rawURL
		if i := strings.IndexAny(s, "?#"); i >= 0 {
			s = s[:i]
		}
		scheme, rest, ok := strings.Cut(s, "://")
		if !ok {
			scheme, rest = "", s
		}
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			rest = rest[i+1:]
		}
		if ok {
			return scheme + "://" + rest
		}
		return rest
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// String names the store (its URL without query).
func (s *Store) String() string { return s.where }

// Bucket is the underlying bucket (for tests and driver-specific checks).
func (s *Store) Bucket() *blob.Bucket { return s.bucket }

// Close releases the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

// Put streams r into key. The object is replaced atomically: readers see the
// old object or the whole new one, never a part. If r fails, or ctx ends,
// nothing is written.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	return s.PutTyped(ctx, key, "application/octet-stream", r)
}

// PutTyped is Put with the object's content type (what a bucket served over
// HTTP answers with, e.g. text/html for a package index's pages).
func (s *Store) PutTyped(ctx context.Context, key, contentType string, r io.Reader) error {
	return s.put(ctx, key, &blob.WriterOptions{ContentType: contentType}, r)
}

// PutIfAbsent is PutTyped that writes only if key does not exist; created
// is false (and nothing written) when it does. Cloud stores decide this
// atomically (a conditional upload); a file:// store checks just before its
// rename, which leaves a window only for writers racing in that instant.
func (s *Store) PutIfAbsent(ctx context.Context, key, contentType string, r io.Reader) (created bool, err error) {
	err = s.put(ctx, key, &blob.WriterOptions{ContentType: contentType, IfNotExist: true}, r)
	if gcerrors.Code(err) == gcerrors.FailedPrecondition {
		return false, nil
	}
	return err == nil, err
}

func (s *Store) put(ctx context.Context, key string, opts *blob.WriterOptions, r io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.bucket.NewWriter(ctx, key, opts)
	if err != nil {
		return s.wrap("write", key, err)
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel() // abort: Close must not commit a part
		_ = w.Close()
		return s.wrap("write", key, err)
	}
	return s.wrap("write", key, w.Close())
}

// PutFile streams the local file at path into key (see Put).
func (s *Store) PutFile(ctx context.Context, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.Put(ctx, key, f)
}

// Get opens key for streaming; the error wraps ErrNotFound when it is absent.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	r, err := s.bucket.NewReader(ctx, key, nil)
	if err != nil {
		return nil, s.wrap("read", key, err)
	}
	return r, nil
}

// ReadAll reads a small object whole (markers, metadata).
func (s *Store) ReadAll(ctx context.Context, key string) ([]byte, error) {
	data, err := s.bucket.ReadAll(ctx, key)
	return data, s.wrap("read", key, err)
}

// Size returns the object's size; the error wraps ErrNotFound when it is absent.
func (s *Store) Size(ctx context.Context, key string) (int64, error) {
	a, err := s.bucket.Attributes(ctx, key)
	if err != nil {
		return 0, s.wrap("stat", key, err)
	}
	return a.Size, nil
}

// Exists reports whether key exists.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	ok, err := s.bucket.Exists(ctx, key)
	return ok, s.wrap("stat", key, err)
}

// Delete removes key; removing an absent key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	err := s.bucket.Delete(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil
	}
	return s.wrap("delete", key, err)
}

// Tail returns at most limit bytes from the end of key, and whether the
// object was longer.
func (s *Store) Tail(ctx context.Context, key string, limit int64) (string, bool, error) {
	size, err := s.Size(ctx, key)
	if err != nil {
		return "", false, err
	}
	from := int64(0)
	if size > limit {
		from = size - limit
	}
	r, err := s.bucket.NewRangeReader(ctx, key, from, size-from, nil)
	if err != nil {
		return "", false, s.wrap("read", key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit))
	return string(data), from > 0, s.wrap("read", key, err)
}

// wrap names the store and key in err; a missing object wraps ErrNotFound.
func (s *Store) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%s %s in storage %s: %w", op, key, s.where, ErrNotFound)
	}
	return fmt.Errorf("%s %s in storage %s: %w", op, key, s.where, err)
}
