package bench

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/workerapp"
	"github.com/shipline/shipline/starter/cli"
)

// stack is one embedded Temporal server + Shipline worker, in this process, on
// free ports (the same pattern as test/stack_test.go, which this package cannot
// import).
type stack struct {
	tb      testing.TB
	address string
	uiURL   string
	cancel  context.CancelFunc
	done    chan error
}

// startStack loads the platform file and runs the worker with --dev semantics.
func startStack(tb testing.TB, cfgPath string, buildParallelism int) *stack {
	tb.Helper()
	cfg, diags := platform.Load(cfgPath)
	if diags.HasErrors() {
		tb.Fatalf("platform config %s:\n%s", cfgPath, diags.Error())
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &stack{tb: tb, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan workerapp.Info, 1)
	logger := zaptest.NewLogger(tb, zaptest.Level(zap.ErrorLevel))
	go func() {
		s.done <- workerapp.Run(ctx, workerapp.Options{
			Config: cfg, Dev: true, TemporalPort: freePort(tb), UIPort: -1, Logger: logger,
			BuildParallelism: buildParallelism,
			Ready:            func(i workerapp.Info) { ready <- i },
		})
	}()
	select {
	case info := <-ready:
		s.address, s.uiURL = info.Address, info.UIURL
	case err := <-s.done:
		tb.Fatalf("worker stopped before it was ready: %v", err)
	case <-time.After(3 * time.Minute):
		tb.Fatal("worker not ready after 3 minutes")
	}
	tb.Cleanup(s.stop)
	return s
}

// stop ends the worker and the embedded server and waits for them.
func (s *stack) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.tb.Errorf("worker stopped with error: %v", err)
		}
	case <-time.After(time.Minute):
		s.tb.Error("worker did not stop within a minute")
	}
}

// shipline runs the real CLI code against this stack (global flags first) and
// returns exit code, stdout and stderr.
func (s *stack) shipline(global []string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	full := append([]string{"shipline", "--address", s.address}, global...)
	if s.uiURL != "" {
		full = append(full, "--ui-url", s.uiURL)
	}
	full = append(full, args...)
	code := cli.Main(full, &out, &errb)
	return code, out.String(), errb.String()
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// git runs the git CLI in dir and returns its trimmed output.
func git(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// peakRSSMB reads this process's peak resident set size (VmHWM) from /proc;
// 0 where /proc is not available.
func peakRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fields := strings.Fields(rest) // "123456 kB"
			if len(fields) > 0 {
				var kb float64
				for _, c := range fields[0] {
					kb = kb*10 + float64(c-'0')
				}
				return kb / 1024
			}
		}
	}
	return 0
}
