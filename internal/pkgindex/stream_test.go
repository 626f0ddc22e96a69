package pkgindex_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/pkgindex"
	"github.com/shipline/shipline/internal/pkgindex/pkgindextest"
)

// hugeSize is the size of the files the index serves in these tests: far
// more than a publish may hold in memory.
const hugeSize = 256 << 20

// maxAlloc bounds what a publish may allocate while it compares with a huge file.
const maxAlloc = 32 << 20

// serveHuge writes n bytes of a repeated pattern.
func serveHuge(w http.ResponseWriter, n int64) {
	chunk := []byte(strings.Repeat("0123456789abcdef", 4096))
	w.Header().Set("Content-Type", "application/octet-stream")
	for n > 0 {
		k := min(n, int64(len(chunk)))
		if _, err := w.Write(chunk[:k]); err != nil {
			return
		}
		n -= k
	}
}

// allocated runs f and returns the bytes the program allocated meanwhile.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestMavenComparesAHugeJarStreamed(t *testing.T) {
	jarPath := "/repo/" + groupDir + "/1.0.0/" + artifact + "-1.0.0.jar"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == jarPath && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			serveHuge(w, hugeSize)
		case r.Method == http.MethodPut:
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusCreated)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	idx := mavenIndex(t, srv.URL+"/repo", pkgindex.Config{})
	jar := pkgindextest.Jar(t, t.TempDir(), "u-1.0.0.jar", "other bytes")
	var err error
	n := allocated(func() { _, err = publishJar(idx, "1.0.0", jar) })
	if apperr.Type(err) != apperr.VersionAlreadyPublished {
		t.Fatalf("publish over a jar with other bytes: %v, want %s", err, apperr.VersionAlreadyPublished)
	}
	if n > maxAlloc {
		t.Errorf("comparing with a %d MiB jar allocated %d MiB: it must be streamed", hugeSize>>20, n>>20)
	}
}

func TestPyPIComparesAHugeFileStreamed(t *testing.T) {
	const filename = "common_utils-1.0.0-py3-none-any.whl"
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/simple/common-utils/":
			// A page without #sha256=: the file itself is read to compare.
			_, _ = io.WriteString(w, `<html><body><a href="`+srv.URL+`/files/`+filename+`">`+filename+`</a></body></html>`)
		case "/files/" + filename:
			serveHuge(w, hugeSize)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	idx, err := pkgindex.Open(context.Background(), pkgindex.Config{Name: "artifactory", Kind: "pypi", URL: srv.URL + "/legacy/"})
	if err != nil {
		t.Fatal(err)
	}
	whl := pkgindextest.Wheel(t, t.TempDir(), "common-utils", "1.0.0", pkgindextest.WheelOptions{Code: "x = 1\n"})
	n := allocated(func() {
		_, err = idx.Publish(context.Background(), pkgindex.File{Name: "common-utils", Version: "1.0.0", Path: whl})
	})
	if apperr.Type(err) != apperr.VersionAlreadyPublished {
		t.Fatalf("publish over a file with other bytes: %v, want %s", err, apperr.VersionAlreadyPublished)
	}
	if n > maxAlloc {
		t.Errorf("comparing with a %d MiB file allocated %d MiB: it must be streamed", hugeSize>>20, n>>20)
	}
}

func TestUploadFormStreamsTheWheel(t *testing.T) {
	big := make([]byte, 24<<20) // incompressible: the wheel is as large
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	whl := pkgindextest.Wheel(t, t.TempDir(), "common-utils", "1.0.0", pkgindextest.WheelOptions{Code: "# " + string(big)})
	big = nil
	var err error
	n := allocated(func() { _, err = pkgindex.UploadForm(whl) })
	if err != nil {
		t.Fatal(err)
	}
	if n > maxAlloc/2 {
		t.Errorf("the upload form of a 24 MiB wheel allocated %d MiB: the wheel must be streamed", n>>20)
	}
}

// Two publishes of one version race over HTTP: the jar is absent when the
// second reads it and present when it writes. A server that honours
// If-None-Match keeps the first jar, and the second publish is refused.
func TestMavenHTTPRaceKeepsTheFirstJar(t *testing.T) {
	jarPath := "/repo/" + groupDir + "/1.0.0/" + artifact + "-1.0.0.jar"
	first := []byte("the first publish's jar")
	var stored []byte
	gets := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == jarPath && r.Method == http.MethodGet:
			gets++
			if gets == 1 { // the other publish writes between this read and our PUT
				stored = first
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write(stored)
		case r.URL.Path == jarPath && r.Method == http.MethodPut:
			if r.Header.Get("If-None-Match") == "*" && stored != nil {
				w.WriteHeader(http.StatusPreconditionFailed)
				return
			}
			stored, _ = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodPut:
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusCreated)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	idx := mavenIndex(t, srv.URL+"/repo", pkgindex.Config{})
	_, err := publishJar(idx, "1.0.0", pkgindextest.Jar(t, t.TempDir(), "u-1.0.0.jar", "the second publish's bytes"))
	if apperr.Type(err) != apperr.VersionAlreadyPublished {
		t.Errorf("the second publish: %v, want %s", err, apperr.VersionAlreadyPublished)
	}
	if string(stored) != string(first) {
		t.Errorf("the repository holds %q, want the first publish's jar", stored)
	}
}
