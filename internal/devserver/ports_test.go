package devserver

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	serverlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Ports come from below the ephemeral range (where outgoing connections
// cannot take them before the server binds them), free, never twice.
func TestFreePortOutsideTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	if low-portFloor <= 1000 {
		t.Skipf("the ephemeral range starts at %d: no room below it", low)
	}
	seen := map[int]bool{}
	for range 50 {
		p, err := FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if p < portFloor || p >= low || seen[p] {
			t.Fatalf("port %d: want a new port in [%d, %d)", p, portFloor, low)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		_ = l.Close()
	}
}

// A port in use is never handed out.
func TestFreePortSkipsPortsInUse(t *testing.T) {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for range 20 {
		p, err := FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d handed out while in use: %v", p, err)
		}
		held = append(held, l)
	}
}

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
