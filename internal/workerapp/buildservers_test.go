package workerapp

import (
	"testing"

	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/build"
)

// SHIPLINE_BUILD_SERVER_MAX_BUILDS sets how many commands a build server runs
// before it is replaced; a bad value keeps the default.
func TestBuildServersMaxBuilds(t *testing.T) {
	for _, c := range []struct {
		env  string
		want int
	}{{"", 0}, {"7", 7}, {"0", 0}, {"many", 0}} {
		t.Setenv(build.ServerMaxBuildsEnv, c.env)
		s := buildServers(zap.NewNop())
		if s.MaxBuilds != c.want || s.Logf == nil {
			t.Errorf("%s=%q: MaxBuilds %d, want %d (0: the default, %d)", build.ServerMaxBuildsEnv, c.env, s.MaxBuilds, c.want, build.DefaultMaxBuilds)
		}
		_ = s.Close()
	}
}
