package pkgindex_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/apperr"

	"github.com/shipline/shipline/internal/pkgindex"
	"github.com/shipline/shipline/internal/pkgindex/pkgindextest"
)

// A URL that does not parse is still named in the error, but never with
// the credentials written in it.
func TestConfigErrorsHideCredentialsOfBadURLs(t *testing.T) {
	for _, kind := range pkgindex.Kinds() {
		for _, u := range []string{
			"https://bob:s3cr%zzet@index.example.com/legacy/",
			"s3://AKIA:s3cr%zzet@bucket/pypi?region=x",
			"https://bob:s3cr et@index.example.com/legacy/?token=t0k%zz",
		} {
			_, err := pkgindex.Open(context.Background(), pkgindex.Config{Name: "corp", Kind: kind, URL: u})
			if err == nil {
				t.Errorf("%s %s: no error", kind, u)
				continue
			}
			if strings.Contains(err.Error(), "s3cr") || strings.Contains(err.Error(), "t0k") {
				t.Errorf("%s: the error shows the credentials: %v", kind, err)
			}
		}
	}
}

// A URL no publish could use is refused when the index is opened (what
// validation checks), not at the first release.
func TestOpenRefusesURLsOfTheWrongScheme(t *testing.T) {
	for _, c := range []struct{ kind, url string }{
		{"simple", "http://pypi.example.com/simple/"},
		{"simple", "https://pypi.example.com/simple/"},
		{"simple", "ftp://pypi.example.com/simple/"},
		{"simple", "s3:///pypi"},
		{"maven", "ftp://maven.example.com/releases"},
		{"maven", "sftp://maven.example.com/releases"},
		{"pypi", "file:///srv/pypi"},
	} {
		_, err := pkgindex.Open(context.Background(), pkgindex.Config{Name: "corp", Kind: c.kind, URL: c.url})
		if apperr.Type(err) != apperr.IndexConfig {
			t.Errorf("%s %s: %v, want an %s error", c.kind, c.url, err, apperr.IndexConfig)
		}
	}
	for _, c := range []struct{ kind, url string }{
		{"simple", "file:///srv/pypi"}, {"simple", "s3://bucket/pypi"}, {"maven", "https://maven.example.com/releases"}, {"maven", "gs://bucket/m2"},
	} {
		if _, err := pkgindex.Open(context.Background(), pkgindex.Config{Name: "corp", Kind: c.kind, URL: c.url}); err != nil {
			t.Errorf("%s %s: %v", c.kind, c.url, err)
		}
	}
}

// The index's page may link its files on another host (a CDN, a mirror):
// reading them there sends none of the index's credentials.
func TestCredentialsStayWithTheIndexHost(t *testing.T) {
	const filename = "common_utils-1.0.0-py3-none-any.whl"
	var leaked []string
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			leaked = append(leaked, a)
		}
		_, _ = io.WriteString(w, "other bytes")
	}))
	defer files.Close()
	index := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/simple/common-utils/" {
			// No #sha256=: the file itself is read to compare.
			_, _ = io.WriteString(w, `<html><body><a href="`+files.URL+`/packages/`+filename+`">`+filename+`</a></body></html>`)
			return
		}
		http.NotFound(w, r)
	}))
	defer index.Close()
	idx, err := pkgindex.Open(context.Background(), pkgindex.Config{Name: "corp", Kind: "pypi", URL: index.URL + "/legacy/", Token: "pypi-s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	whl := pkgindextest.Wheel(t, t.TempDir(), "common-utils", "1.0.0", pkgindextest.WheelOptions{})
	_, err = idx.Publish(context.Background(), pkgindex.File{Name: "common-utils", Version: "1.0.0", Path: whl})
	if apperr.Type(err) != apperr.VersionAlreadyPublished {
		t.Errorf("publish over other bytes: %v, want %s", err, apperr.VersionAlreadyPublished)
	}
	if len(leaked) > 0 {
		t.Errorf("the file host received the index's credentials: %q", leaked)
	}
}
