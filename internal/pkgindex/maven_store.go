package pkgindex

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// mavenStore is where a repository's files live.
type mavenStore interface {
	// get reads key; found is false when it is absent.
	get(ctx context.Context, key string) (data []byte, found bool, err error)
	// digest streams key and returns its hex sha256; found is false when it
	// is absent.
	digest(ctx context.Context, key string) (sum string, found bool, err error)
	exists(ctx context.Context, key string) (bool, error)
	// put writes data (or, with data nil, the local file path) to key.
	put(ctx context.Context, key string, data []byte, path string) error
	// create writes the local file path to key unless key exists (created
	// false); over HTTP it asks with If-None-Match: *, and a server that
	// ignores that writes it (it refuses a redeploy if its policy says so).
	create(ctx context.Context, key, path string) (created bool, err error)
	url(key string) string
}

// mavenHTTP is a repository over HTTP.
type mavenHTTP struct {
	*remote
	base string
}

func (h *mavenHTTP) url(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return h.base + "/" + strings.Join(parts, "/")
}

func (h *mavenHTTP) get(ctx context.Context, key string) ([]byte, bool, error) {
	return h.remote.get(ctx, h.url(key))
}

func (h *mavenHTTP) digest(ctx context.Context, key string) (string, bool, error) {
	return h.remote.digest(ctx, h.url(key))
}

func (h *mavenHTTP) exists(ctx context.Context, key string) (bool, error) {
	req, err := newRequest(http.MethodHead, h.url(key), nil)
	if err != nil {
		return false, err
	}
	resp, err := h.do(ctx, req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return false, nil
	case resp.StatusCode >= 300:
		return false, h.statusError("read "+h.url(key), resp)
	}
	return true, nil
}

// create asks the server to write only a new file (If-None-Match: *); a
// server that honours it answers 412 when another publish wrote it meanwhile.
func (h *mavenHTTP) create(ctx context.Context, key, path string) (bool, error) {
	err := h.send(ctx, key, nil, path, "*")
	if errors.Is(err, errPreconditionFailed) {
		return false, nil
	}
	return err == nil, err
}

func (h *mavenHTTP) put(ctx context.Context, key string, data []byte, path string) error {
	return h.send(ctx, key, data, path, "")
}

// errPreconditionFailed is a conditional PUT's 412.
var errPreconditionFailed = errors.New("the file exists")

func (h *mavenHTTP) send(ctx context.Context, key string, data []byte, path, ifNoneMatch string) error {
	var body io.Reader = bytes.NewReader(data)
	size := int64(len(data))
	if data == nil {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		body, size = f, st.Size()
	}
	req, err := newRequest(http.MethodPut, h.url(key), body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", mavenContentType(key))
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	resp, err := h.do(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if ifNoneMatch != "" && resp.StatusCode == http.StatusPreconditionFailed {
		return errPreconditionFailed
	}
	if resp.StatusCode/100 != 2 {
		return h.statusError("put "+h.url(key), resp)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

func mavenContentType(key string) string {
	switch path.Ext(key) {
	case ".jar":
		return "application/java-archive"
	case ".pom", ".xml":
		return "text/xml"
	}
	return "text/plain"
}

// mavenBucket is a repository in a directory or bucket.
type mavenBucket struct{ s *simpleIndex }

func (b *mavenBucket) url(key string) string { return b.s.fileURL(key) }

func (b *mavenBucket) get(ctx context.Context, key string) ([]byte, bool, error) {
	st, err := b.s.open(ctx)
	if err != nil {
		return nil, false, err
	}
	defer st.Close()
	data, err := st.ReadAll(ctx, key)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	return data, err == nil, b.s.bucketError(err)
}

func (b *mavenBucket) digest(ctx context.Context, key string) (string, bool, error) {
	st, err := b.s.open(ctx)
	if err != nil {
		return "", false, err
	}
	defer st.Close()
	sum, err := objectSHA256(ctx, st, key)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	return sum, err == nil, b.s.bucketError(err)
}

func (b *mavenBucket) exists(ctx context.Context, key string) (bool, error) {
	st, err := b.s.open(ctx)
	if err != nil {
		return false, err
	}
	defer st.Close()
	ok, err := st.Exists(ctx, key)
	return ok, b.s.bucketError(err)
}

func (b *mavenBucket) create(ctx context.Context, key, path string) (bool, error) {
	st, err := b.s.open(ctx)
	if err != nil {
		return false, err
	}
	defer st.Close()
	created, err := putFileIfAbsent(ctx, st, key, path)
	return created, b.s.bucketError(err)
}

func (b *mavenBucket) put(ctx context.Context, key string, data []byte, path string) error {
	st, err := b.s.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if data == nil {
		f, err := os.Open(filepath.Clean(path))
		if err != nil {
			return err
		}
		defer f.Close()
		return b.s.bucketError(st.PutTyped(ctx, key, mavenContentType(key), f))
	}
	return b.s.bucketError(st.PutTyped(ctx, key, mavenContentType(key), bytes.NewReader(data)))
}
