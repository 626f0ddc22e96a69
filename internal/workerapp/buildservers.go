package workerapp

import (
	"fmt"
	"os"
	"strconv"

	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/build"
)

// buildServers returns the worker's Python build servers (see
// internal/build/server.go), each replaced after
// $SHIPLINE_BUILD_SERVER_MAX_BUILDS commands (default build.DefaultMaxBuilds).
// SHIPLINE_BUILD_SERVER=off, read at each build, makes builds run the plain way.
func buildServers(logger *zap.Logger) *build.Servers {
	n := 0
	if v := os.Getenv(build.ServerMaxBuildsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			logger.Warn(fmt.Sprintf("%s=%q is not a positive number; using %d", build.ServerMaxBuildsEnv, v, build.DefaultMaxBuilds))
			n = 0
		}
	}
	s := build.NewServers(n)
	s.Logf = func(format string, args ...any) { logger.Info("build server: " + fmt.Sprintf(format, args...)) }
	return s
}
