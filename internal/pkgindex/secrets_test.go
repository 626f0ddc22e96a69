package pkgindex_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/apperr"

	"github.com/shipline/shipline/internal/pkgindex"
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
