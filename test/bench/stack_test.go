package bench

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/shipline/shipline/starter/cli"
	"github.com/shipline/shipline/test/testkit"
)

// stack is one embedded Temporal server + Shipline worker in this process
// (testkit.Stack), with the CLI pointed at it.
type stack struct {
	kit     *testkit.Stack
	address string
	uiURL   string
}

// startStack loads the platform file and runs the worker with --dev semantics,
// without the UI and with quiet logs.
func startStack(tb testing.TB, cfgPath string, buildParallelism int) *stack {
	tb.Helper()
	return startStackWith(tb, cfgPath, testkit.Options{NoUI: true, BuildParallelism: buildParallelism, LogLevel: zap.NewAtomicLevelAt(zap.ErrorLevel)})
}

func startStackWith(tb testing.TB, cfgPath string, o testkit.Options) *stack {
	tb.Helper()
	k := testkit.Start(tb, cfgPath, o)
	return &stack{kit: k, address: k.Address, uiURL: k.UIURL}
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

// git runs the git CLI in dir and returns its trimmed output.
func git(tb testing.TB, dir string, args ...string) string { return testkit.Git(tb, dir, args...) }

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
