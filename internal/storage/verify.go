package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
)

// CorruptError says an object's bytes are not the ones recorded for it.
type CorruptError struct {
	Key            string
	SHA256         string // what was read
	Size           int64
	WantSHA256     string
	WantSize       int64
	TruncatedEarly bool // the object ended before WantSize bytes
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s is damaged: it has %d bytes with sha256 %s, recorded %d bytes with sha256 %s",
		e.Key, e.Size, e.SHA256, e.WantSize, e.WantSHA256)
}

// OpenChecked streams key and checks it as it goes: the final Read returns a
// *CorruptError instead of io.EOF when the bytes read are not wantSize bytes
// with the sha256 wantSHA256 (hex), and a Read past wantSize fails at once.
// A consumer that stops at the first error therefore never takes damaged
// bytes for whole ones.
func (s *Store) OpenChecked(ctx context.Context, key, wantSHA256 string, wantSize int64) (io.ReadCloser, error) {
	r, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return &checked{r: r, key: key, want: strings.ToLower(wantSHA256), size: wantSize, h: sha256.New()}, nil
}

type checked struct {
	r    io.ReadCloser
	key  string
	want string
	size int64
	h    hash.Hash
	n    int64
}

func (c *checked) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.n > c.size {
		return n, c.corrupt()
	}
	if err == io.EOF {
		if sum := hex.EncodeToString(c.h.Sum(nil)); c.n != c.size || sum != c.want {
			return n, c.corrupt()
		}
	}
	return n, err
}

func (c *checked) corrupt() error {
	return &CorruptError{Key: c.key, SHA256: hex.EncodeToString(c.h.Sum(nil)), Size: c.n,
		WantSHA256: c.want, WantSize: c.size, TruncatedEarly: c.n < c.size}
}

func (c *checked) Close() error { return c.r.Close() }

// HashObject streams key through sha256 and returns its hex digest and size.
func (s *Store) HashObject(ctx context.Context, key string) (string, int64, error) {
	r, err := s.Get(ctx, key)
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", 0, s.wrap("read", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
