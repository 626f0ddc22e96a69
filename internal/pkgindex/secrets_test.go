package pkgindex_test

import (
	"context"
	"strings"
	"testing"

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
