package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"

	"github.com/shipline/shipline/internal/platform"
)

func openDir(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := Open(context.Background(), FileURL(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dir
}

func read(t *testing.T, st *Store, key string) ([]byte, error) {
	t.Helper()
	r, err := st.Get(context.Background(), key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// A reader never sees a part of an object: while a write streams in, and
// after a write that fails half-way, the key holds the previous object whole;
// once the write closes it holds the new one whole. Nothing is left beside it.
func TestPutIsAtomic(t *testing.T) {
	st, dir := openDir(t)
	ctx := context.Background()
	old := bytes.Repeat([]byte("a"), 1<<20)
	if err := st.Put(ctx, "cache/k/file", bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	next := bytes.Repeat([]byte("b"), 1<<20)

	for _, fail := range []bool{true, false} {
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- st.Put(ctx, "cache/k/file", pr) }()
		if _, err := pw.Write(next[:len(next)/2]); err != nil { // the writer has taken half
			t.Fatal(err)
		}
		if got, err := read(t, st, "cache/k/file"); err != nil || !bytes.Equal(got, old) {
			t.Fatalf("mid-write read: %d bytes, %v; want the previous object whole", len(got), err)
		}
		if fail {
			pw.CloseWithError(errors.New("worker killed"))
			if err := <-done; err == nil {
				t.Fatal("a write whose source failed reported success")
			}
			if got, err := read(t, st, "cache/k/file"); err != nil || !bytes.Equal(got, old) {
				t.Fatalf("after a failed write: %d bytes, %v; want the previous object whole", len(got), err)
			}
			continue
		}
		if _, err := pw.Write(next[len(next)/2:]); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, err := read(t, st, "cache/k/file"); err != nil || !bytes.Equal(got, next) {
			t.Fatalf("after the write: %d bytes, %v; want the new object whole", len(got), err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "cache", "k"))
	if len(entries) != 1 || entries[0].Name() != "file" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the object's directory holds %v; want only the object (no temporary or partial files)", names)
	}
}

// Readers racing a stream of writers each read one whole version.
func TestConcurrentReadersSeeWholeObjects(t *testing.T) {
	st, _ := openDir(t)
	ctx := context.Background()
	versions := [][]byte{bytes.Repeat([]byte("x"), 300<<10), bytes.Repeat([]byte("y"), 200<<10), bytes.Repeat([]byte("z"), 400<<10)}
	if err := st.Put(ctx, "k", bytes.NewReader(versions[0])); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 30; i++ {
			if err := st.Put(ctx, "k", bytes.NewReader(versions[i%3])); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 60; i++ {
		got, err := read(t, st, "k")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) && !bytes.Equal(got, versions[2]) {
			t.Fatalf("read %d bytes that are no whole version", len(got))
		}
	}
	wg.Wait()
}

func TestOpenCheckedRefusesDamagedBytes(t *testing.T) {
	st, _ := openDir(t)
	ctx := context.Background()
	data := []byte("the artifact's bytes\n")
	sum := sha256.Sum256(data)
	good := hex.EncodeToString(sum[:])
	if err := st.Put(ctx, "a", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sha  string
		size int64
		ok   bool
	}{
		{"whole", good, int64(len(data)), true},
		{"other checksum", strings.Repeat("0", 64), int64(len(data)), false},
		{"object shorter than recorded", good, int64(len(data)) + 10, false},
		{"object longer than recorded", good, int64(len(data)) - 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := st.OpenChecked(ctx, "a", tc.sha, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = io.Copy(io.Discard, r)
			var ce *CorruptError
			if tc.ok != (err == nil) || (!tc.ok && !errors.As(err, &ce)) {
				t.Fatalf("read: %v (ok %v)", err, tc.ok)
			}
		})
	}
	if _, err := st.OpenChecked(ctx, "missing", good, 1); !errors.Is(err, ErrNotFound) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing object: %v, want ErrNotFound", err)
	}
}

func TestTail(t *testing.T) {
	st, _ := openDir(t)
	ctx := context.Background()
	if err := st.Put(ctx, "logs/x.log", strings.NewReader("0123456789")); err != nil {
		t.Fatal(err)
	}
	if s, cut, err := st.Tail(ctx, "logs/x.log", 4); err != nil || s != "6789" || !cut {
		t.Errorf("Tail 4 = %q %v %v", s, cut, err)
	}
	if s, cut, err := st.Tail(ctx, "logs/x.log", 100); err != nil || s != "0123456789" || cut {
		t.Errorf("Tail 100 = %q %v %v", s, cut, err)
	}
}

// Every scheme platform.yaml accepts has a registered driver.
func TestSchemesRegistered(t *testing.T) {
	for _, s := range platform.StorageSchemes {
		if !blob.DefaultURLMux().ValidBucketScheme(s) {
			t.Errorf("no gocloud driver for %s://", s)
		}
	}
	for _, bad := range []string{"http://x/y", "mem://", "/plain/path", "file://host/dir", "file:///abs?create_dir=1", "s3:///noprefix"} {
		if _, err := Open(context.Background(), bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

// An s3:// URL configures the client as written — endpoint, region, path
// style — and its path is a prefix every key is stored under. The endpoint
// is a local HTTP server recording the requests (no network, no S3).
func TestS3URL(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("ETag", `"0"`)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))

	url := "s3://shipline-cache/team/a?endpoint=" + srv.URL + "&region=eu-west-1&use_path_style=true&disable_https=true"
	st, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var client *s3.Client
	if !st.Bucket().As(&client) {
		t.Fatal("not an S3 bucket")
	}
	o := client.Options()
	if !o.UsePathStyle || o.Region != "eu-west-1" {
		t.Errorf("client options: path style %v, region %q", o.UsePathStyle, o.Region)
	}
	if st.String() != "s3://shipline-cache/team/a" {
		t.Errorf("String() = %q (the query is left out of messages)", st.String())
	}
	if err := st.Put(context.Background(), "cache/k/meta.json", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) == 0 || paths[len(paths)-1] != "PUT /shipline-cache/team/a/cache/k/meta.json" {
		t.Errorf("requests = %v, want a PUT of the key under the URL's prefix, path-style, at the endpoint", paths)
	}
}

// PutIfAbsent writes a new key, and leaves an existing one as it is.
func TestPutIfAbsent(t *testing.T) {
	st, _ := openDir(t)
	ctx := context.Background()
	created, err := st.PutIfAbsent(ctx, "p/f.whl", "application/octet-stream", strings.NewReader("one"))
	if err != nil || !created {
		t.Fatalf("first write: %v, %v", created, err)
	}
	created, err = st.PutIfAbsent(ctx, "p/f.whl", "application/octet-stream", strings.NewReader("two"))
	if err != nil || created {
		t.Fatalf("second write: %v, %v", created, err)
	}
	if data, err := read(t, st, "p/f.whl"); err != nil || string(data) != "one" {
		t.Errorf("key holds %q, %v", data, err)
	}
}

func TestRedactUnparsableURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://bob:s3cr%zzet@index.example.com/x": "https://index.example.com/x",
		"s3://AKIA:s3cr%zzet@bucket/p?region=x":     "s3://bucket/p",
		"https://host/p%zz?token=t0k":               "https://host/p%zz",
		"s3://bucket/p?secret=x":                    "s3://bucket/p",
	} {
		if got := Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}
