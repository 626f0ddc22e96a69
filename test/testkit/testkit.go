// Package testkit holds what Shipline's end-to-end tests, benchmarks and cluster
// test share: the embedded stack (Temporal dev server + worker in-process), free
// ports, git and file-tree helpers.
package testkit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shipline/shipline/internal/freeport"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/workerapp"
)

// Options shape a stack; zero values give free ports, a UI, warn-level logs.
type Options struct {
	TemporalPort     int // 0: a free port
	NoUI             bool
	BuildParallelism int
	DynamicConfig    map[string]any
	MetricsAddr      string          // "" = no metrics endpoint
	WebAddr          string          // "" = no dashboard
	LogLevel         zap.AtomicLevel // zero: warn
}

// Stack is one embedded Temporal server + Shipline worker, running in-process.
type Stack struct {
	Config       *platform.Config
	Address      string // Temporal frontend
	UIURL        string
	MetricsURL   string
	CodecURL     string // the payload codec endpoint, "" when not served
	WebURL       string // the dashboard, "" when not served
	TemporalPort int

	tb     testing.TB
	cancel context.CancelFunc
	done   chan error
}

// Start loads the platform file and runs the worker with --dev semantics until
// the test ends (or Stop).
func Start(tb testing.TB, cfgPath string, o Options) *Stack {
	tb.Helper()
	cfg, diags := platform.Load(cfgPath)
	if diags.HasErrors() {
		tb.Fatalf("platform config %s:\n%s", cfgPath, diags.Error())
	}
	if o.TemporalPort == 0 {
		o.TemporalPort = FreePort(tb)
	}
	uiPort := -1
	if !o.NoUI {
		uiPort = FreePort(tb)
	}
	level := o.LogLevel
	if level == (zap.AtomicLevel{}) {
		level = zap.NewAtomicLevelAt(zap.WarnLevel)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stack{Config: cfg, TemporalPort: o.TemporalPort, tb: tb, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan workerapp.Info, 1)
	logger := zaptest.NewLogger(tb, zaptest.Level(level))
	go func() {
		s.done <- workerapp.Run(ctx, workerapp.Options{
			Config: cfg, Dev: true, TemporalPort: o.TemporalPort, UIPort: uiPort, Logger: logger,
			BuildParallelism: o.BuildParallelism, DevDynamicConfig: o.DynamicConfig, MetricsAddr: o.MetricsAddr,
			WebAddr: o.WebAddr,
			Ready:   func(i workerapp.Info) { ready <- i },
		})
	}()
	select {
	case info := <-ready:
		s.Address, s.UIURL, s.MetricsURL, s.CodecURL, s.WebURL = info.Address, info.UIURL, info.MetricsURL, info.CodecURL, info.WebURL
	case err := <-s.done:
		tb.Fatalf("worker stopped before it was ready: %v", err)
	case <-time.After(3 * time.Minute):
		tb.Fatal("worker not ready after 3 minutes")
	}
	tb.Cleanup(s.Stop)
	return s
}

// Stop ends the worker and the embedded server and waits for them.
func (s *Stack) Stop() {
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

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(tb testing.TB) int {
	tb.Helper()
	p, err := freeport.Get("127.0.0.1")
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// Git runs the git CLI in dir (fixed author, no user config) and returns its
// trimmed output.
func Git(tb testing.TB, dir string, args ...string) string {
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

// CopyTree copies the directory src into dst, leaving out __pycache__ and .shipline.
func CopyTree(tb testing.TB, src, dst string) {
	tb.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if d.Name() == "__pycache__" || d.Name() == ".shipline" {
				return filepath.SkipDir
			}
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		tb.Fatal(err)
	}
}
