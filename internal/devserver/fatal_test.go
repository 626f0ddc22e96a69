package devserver

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	serverlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// When the Temporal server logs Fatal, the process ends (as the server
// expects) with the message on stderr, even when the logger itself writes
// nowhere yet.
func TestServerFatalIsOnStderr(t *testing.T) {
	if os.Getenv("SHIPLINE_DEVSERVER_FATAL_CHILD") == "1" {
		core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.DebugLevel)
		logger := serverlog.NewZapLogger(zap.New(core).WithOptions(zap.WithFatalHook(fatalHook{})))
		logger.Fatal("Failed to serve on frontend listener", tag.Error(errors.New("bind: address already in use")))
		return // not reached
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestServerFatalIsOnStderr$")
	cmd.Env = append(os.Environ(), "SHIPLINE_DEVSERVER_FATAL_CHILD=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("child: %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "embedded Temporal server stopped the process: Failed to serve on frontend listener") ||
		!strings.Contains(string(out), "address already in use") {
		t.Errorf("stderr does not say why:\n%s", out)
	}
}
