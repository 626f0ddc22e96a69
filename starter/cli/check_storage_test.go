package cli

import (
	"testing"

	"github.com/shipline/shipline/internal/platform"
)

// check says where its builds are cached: the platform's shared storage
// (without the URL's query), else the state directory.
func TestCheckNamesTheCache(t *testing.T) {
	for _, tc := range []struct {
		cfg  platform.Config
		want string
	}{
		{platform.Config{StateDir: "/srv/state"}, "/srv/state"},
		{platform.Config{StateDir: "/srv/state", Storage: "s3://cache/ci?endpoint=http://s3:8333&region=x"}, "s3://cache/ci"},
	} {
		if got := cacheWhere(&tc.cfg); got != tc.want {
			t.Errorf("cacheWhere(%+v) = %q, want %q", tc.cfg, got, tc.want)
		}
	}
}
