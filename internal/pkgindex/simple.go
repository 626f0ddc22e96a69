package pkgindex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/storage"
)

// simpleIndex is a static PEP 503 index in a directory or bucket:
//
//	<url>/index.html                        links to every project
//	<url>/<normalized-name>/index.html      links to its files, with #sha256= and data-requires-python
//	<url>/<normalized-name>/<filename>      the files
//
// A file is written before the pages that link to it, and each page is
// replaced atomically (storage.Put), so a reader (pip) never follows a link
// to a missing file nor reads half a page.
type simpleIndex struct {
	c Config
	// bucket is the gocloud.dev/blob URL of the index's root.
	bucket string
}

// indexPage is the name of a directory's page.
const indexPage = "index.html"

// pageRewrites bounds how often a page is rewritten when the listing changed
// under it (another worker published to the same index meanwhile).
const pageRewrites = 5

func openSimple(_ context.Context, c Config) (Index, error) {
	u := c.URL
	if filepath.IsAbs(u) {
		u = storage.FileURL(u)
	}
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" {
		return nil, configError(c, "url %q is neither an absolute directory nor a bucket URL (file:///srv/pypi, s3://bucket/pypi)", storage.Redact(c.URL))
	}
	if err := storage.CheckURL(u); err != nil {
		return nil, configError(c, "url: %v", err)
	}
	return &simpleIndex{c: c, bucket: u}, nil
}

// open opens the index's bucket for one operation.
func (s *simpleIndex) open(ctx context.Context) (*storage.Store, error) {
	st, err := storage.Open(ctx, s.bucket)
	if err != nil {
		return nil, configError(s.c, "%v", err)
	}
	return st, nil
}

// fileURL is the public URL of key in the index.
func (s *simpleIndex) fileURL(key string) string {
	return strings.TrimSuffix(storage.Redact(s.bucket), "/") + "/" + key
}

func (s *simpleIndex) Publish(ctx context.Context, f File) (Result, error) {
	res, err := s.publish(ctx, f)
	return res, s.bucketError(err)
}

func (s *simpleIndex) Has(ctx context.Context, name, version string) (bool, error) {
	ok, err := s.has(ctx, name, version)
	return ok, s.bucketError(err)
}

// bucketError makes the bucket's refusals of the credentials an IndexAuth
// error; other errors pass unchanged (the activity retries them).
func (s *simpleIndex) bucketError(err error) error {
	// S3 answers a wrong secret with 403 SignatureDoesNotMatch, which
	// gocloud does not classify: its HTTP status says it.
	var status interface{ HTTPStatusCode() int }
	refused := gcerrors.Code(err) == gcerrors.PermissionDenied ||
		(errors.As(err, &status) && (status.HTTPStatusCode() == http.StatusUnauthorized || status.HTTPStatusCode() == http.StatusForbidden))
	if err == nil || !refused {
		return err
	}
	return &apperr.Error{Type: apperr.IndexAuth, Cause: err, Msg: fmt.Sprintf(
		"package index %s: %s refused the worker's credentials (%v): give the worker the bucket's credentials in its environment "+
			"(AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT …) with the right to read, write and list",
		s.c.Name, storage.Redact(s.bucket), err)}
}

func (s *simpleIndex) publish(ctx context.Context, f File) (Result, error) {
	pf, err := checkPythonFile(s.c, f)
	if err != nil {
		return Result{}, err
	}
	sum, err := fileSHA256(pf.Path)
	if err != nil {
		return Result{}, err
	}
	st, err := s.open(ctx)
	if err != nil {
		return Result{}, err
	}
	defer st.Close()
	project := Normalize(pf.Name)
	key := project + "/" + pf.Filename
	res := Result{URL: s.fileURL(key)}

	there, err := objectSHA256(ctx, st, key)
	if errors.Is(err, storage.ErrNotFound) {
		created, perr := putFileIfAbsent(ctx, st, key, pf.Path)
		if perr != nil || created {
			err = perr
		} else {
			// Another publish wrote it meanwhile: compare with that.
			there, err = objectSHA256(ctx, st, key)
		}
	}
	switch {
	case err != nil:
		return Result{}, err
	case there == "":
		// Written now.
	case there == sum:
		res.AlreadyPublished = true
	default:
		return Result{}, conflict(s.c, pf.File, pf.Filename, there, sum)
	}
	// The pages are (re)written even when the file was there: a publish that
	// stopped between the file and its page is finished by the next one.
	known := map[string]link{pf.Filename: {SHA256: sum, RequiresPython: pf.RequiresPython}}
	if err := s.writeProjectPage(ctx, st, project, known); err != nil {
		return Result{}, err
	}
	if err := s.writeRootPage(ctx, st, project); err != nil {
		return Result{}, err
	}
	return res, nil
}

func (s *simpleIndex) has(ctx context.Context, name, version string) (bool, error) {
	if !validName.MatchString(name) {
		return false, inputError("package index %s: %q is not a Python package name", s.c.Name, name)
	}
	st, err := s.open(ctx)
	if err != nil {
		return false, err
	}
	defer st.Close()
	files, err := listFiles(ctx, st, Normalize(name)+"/")
	if err != nil {
		return false, err
	}
	for _, fn := range files {
		if n, v, ok := fileVersion(fn); ok && Normalize(n) == Normalize(name) && normVersion(v) == normVersion(version) {
			return true, nil
		}
	}
	return false, nil
}

// link is one file's entry on a project page.
type link struct {
	SHA256, RequiresPython string
}

// writeProjectPage rewrites <project>/index.html from the files the bucket
// holds under the project. Checksums and Requires-Python come from known,
// then from the current page, then from reading the file. It rewrites again
// when the listing changed meanwhile.
func (s *simpleIndex) writeProjectPage(ctx context.Context, st *storage.Store, project string, known map[string]link) error {
	pageKey := project + "/" + indexPage
	for range pageRewrites {
		files, err := listFiles(ctx, st, project+"/")
		if err != nil {
			return err
		}
		current, err := readObject(ctx, st, pageKey)
		if err != nil {
			return err
		}
		old := parseLinks(string(current))
		links := make(map[string]link, len(files))
		for _, fn := range files {
			l, ok := known[fn]
			if !ok {
				l, ok = old[fn]
			}
			if !ok {
				if l, err = describe(ctx, st, project+"/"+fn); err != nil {
					if errors.Is(err, storage.ErrNotFound) {
						continue // removed meanwhile
					}
					return err
				}
			}
			links[fn] = l
		}
		if err := putPage(ctx, st, pageKey, current, projectPage(project, links)); err != nil {
			return err
		}
		after, err := listFiles(ctx, st, project+"/")
		if err != nil {
			return err
		}
		if slices.Equal(files, after) {
			return nil
		}
	}
	return fmt.Errorf("package index %s: the files of %s kept changing while its page was written; publish again", s.c.Name, project)
}

// writeRootPage rewrites index.html at the root from the project
// directories; project is the one just published (listed even if a bucket
// is slow to list it).
func (s *simpleIndex) writeRootPage(ctx context.Context, st *storage.Store, project string) error {
	for range pageRewrites {
		projects, err := listDirs(ctx, st)
		if err != nil {
			return err
		}
		if !slices.Contains(projects, project) {
			projects = append(projects, project)
			slices.Sort(projects)
		}
		current, err := readObject(ctx, st, indexPage)
		if err != nil {
			return err
		}
		if err := putPage(ctx, st, indexPage, current, rootPage(projects)); err != nil {
			return err
		}
		after, err := listDirs(ctx, st)
		if err != nil {
			return err
		}
		if !slices.Contains(after, project) {
			after = append(after, project)
			slices.Sort(after)
		}
		if slices.Equal(projects, after) {
			return nil
		}
	}
	return fmt.Errorf("package index %s: its projects kept changing while the root page was written; publish again", s.c.Name)
}

// putFileIfAbsent writes the local file at path to key unless key exists.
func putFileIfAbsent(ctx context.Context, st *storage.Store, key, path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return st.PutIfAbsent(ctx, key, "application/octet-stream", f)
}

// describe reads a file of the index for its page entry.
func describe(ctx context.Context, st *storage.Store, key string) (link, error) {
	sum, err := objectSHA256(ctx, st, key)
	if err != nil {
		return link{}, err
	}
	return link{SHA256: sum}, nil
}

// objectSHA256 streams key and returns its sha256; the error wraps
// storage.ErrNotFound when it is absent.
func objectSHA256(ctx context.Context, st *storage.Store, key string) (string, error) {
	r, err := st.Get(ctx, key)
	if err != nil {
		return "", err
	}
	defer r.Close()
	return readerSHA256(r)
}

// listFiles returns the names of the distribution files (wheels, sdists)
// directly under prefix, sorted.
func listFiles(ctx context.Context, st *storage.Store, prefix string) ([]string, error) {
	var out []string
	err := list(ctx, st, prefix, func(obj *blob.ListObject) {
		name := strings.TrimPrefix(obj.Key, prefix)
		if _, _, dist := fileVersion(name); !obj.IsDir && dist && !strings.HasPrefix(name, ".") {
			out = append(out, name) // not a page, a store's temporary file, anything else
		}
	})
	slices.Sort(out)
	return out, err
}

// listDirs returns the project directories at the index's root, sorted.
func listDirs(ctx context.Context, st *storage.Store) ([]string, error) {
	var out []string
	err := list(ctx, st, "", func(obj *blob.ListObject) {
		if name := strings.TrimSuffix(obj.Key, "/"); obj.IsDir && name != "" && name == Normalize(name) {
			out = append(out, name)
		}
	})
	slices.Sort(out)
	return out, err
}

// listAttempts bounds the listings of a directory that a concurrent write
// changes under the lister (a file:// bucket fails a listing when a
// temporary file it saw is renamed before it is read).
const listAttempts = 10

// list calls each for every entry directly under prefix, in key order.
func list(ctx context.Context, st *storage.Store, prefix string, each func(*blob.ListObject)) error {
	var err error
	for range listAttempts {
		var objs []*blob.ListObject
		it := st.Bucket().List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
		for {
			var obj *blob.ListObject
			obj, err = it.Next(ctx)
			if err != nil {
				break
			}
			objs = append(objs, obj)
		}
		if err == io.EOF {
			for _, o := range objs {
				each(o)
			}
			return nil
		}
		if gcerrors.Code(err) != gcerrors.NotFound {
			break
		}
	}
	return fmt.Errorf("list %s in %s: %w", prefix, st, err)
}

// readObject reads a small object (nil when absent).
func readObject(ctx context.Context, st *storage.Store, key string) ([]byte, error) {
	data, err := st.ReadAll(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return data, err
}

// putPage replaces a page atomically, unless it is unchanged: publishing
// what the index holds writes nothing.
func putPage(ctx context.Context, st *storage.Store, key string, current, page []byte) error {
	if current != nil && bytes.Equal(current, page) {
		return nil
	}
	return st.PutTyped(ctx, key, "text/html", bytes.NewReader(page))
}

// anchor matches the links projectPage writes.
var anchor = regexp.MustCompile(`<a href="([^"#]+)#sha256=([0-9a-f]{64})"(?: data-requires-python="([^"]*)")?>`)

// parseLinks reads the file links of a PEP 503 project page.
func parseLinks(page string) map[string]link {
	out := map[string]link{}
	for _, m := range anchor.FindAllStringSubmatch(page, -1) {
		name, err := url.PathUnescape(html.UnescapeString(m[1]))
		if err != nil {
			continue
		}
		out[name] = link{SHA256: m[2], RequiresPython: html.UnescapeString(m[3])}
	}
	return out
}

// projectPage renders a PEP 503 project page.
func projectPage(project string, links map[string]link) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>Links for %s</title>\n  </head>\n  <body>\n    <h1>Links for %s</h1>\n",
		html.EscapeString(project), html.EscapeString(project))
	for _, fn := range sortedKeys(links) {
		l := links[fn]
		rp := ""
		if l.RequiresPython != "" {
			rp = fmt.Sprintf(" data-requires-python=\"%s\"", html.EscapeString(l.RequiresPython))
		}
		fmt.Fprintf(&b, "    <a href=\"%s#sha256=%s\"%s>%s</a><br/>\n", html.EscapeString(url.PathEscape(fn)), l.SHA256, rp, html.EscapeString(fn))
	}
	b.WriteString("  </body>\n</html>\n")
	return []byte(b.String())
}

// rootPage renders a PEP 503 root page.
func rootPage(projects []string) []byte {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>Simple index</title>\n  </head>\n  <body>\n")
	for _, p := range projects {
		fmt.Fprintf(&b, "    <a href=\"%s/\">%s</a><br/>\n", html.EscapeString(url.PathEscape(p)), html.EscapeString(p))
	}
	b.WriteString("  </body>\n</html>\n")
	return []byte(b.String())
}
