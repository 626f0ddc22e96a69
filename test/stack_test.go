// Package test holds Shipline's end-to-end tests: the real embedded Temporal
// server, the real worker and CLI code, and real git remotes.
package test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/workerapp"
	"github.com/shipline/shipline/starter/cli"
)

// stack is one embedded Temporal server + Shipline worker, on free ports.
type stack struct {
	t        testing.TB
	cfg      *platform.Config
	cfgPath  string
	address  string
	uiURL    string
	cancel   context.CancelFunc
	done     chan error
	tempPort int
}

// startStack loads the platform file and runs the worker with --dev semantics.
func startStack(t testing.TB, cfgPath string, temporalPort int) *stack {
	return startStackWith(t, cfgPath, temporalPort, nil)
}

// startStackWith is startStack with dynamic config overrides for the embedded server.
func startStackWith(t testing.TB, cfgPath string, temporalPort int, dynamic map[string]any) *stack {
	t.Helper()
	cfg, diags := platform.Load(cfgPath)
	if diags.HasErrors() {
		t.Fatalf("platform config %s:\n%s", cfgPath, diags.Error())
	}
	if temporalPort == 0 {
		temporalPort = freePort(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &stack{t: t, cfg: cfg, cfgPath: cfgPath, cancel: cancel, done: make(chan error, 1), tempPort: temporalPort}
	ready := make(chan workerapp.Info, 1)
	logger := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	go func() {
		s.done <- workerapp.Run(ctx, workerapp.Options{
			Config: cfg, Dev: true, TemporalPort: temporalPort, UIPort: freePort(t), Logger: logger, DevDynamicConfig: dynamic,
			Ready: func(i workerapp.Info) { ready <- i },
		})
	}()
	select {
	case info := <-ready:
		s.address, s.uiURL = info.Address, info.UIURL
	case err := <-s.done:
		t.Fatalf("worker stopped before it was ready: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("worker not ready after 3 minutes")
	}
	t.Cleanup(s.stop)
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
			s.t.Errorf("worker stopped with error: %v", err)
		}
	case <-time.After(time.Minute):
		s.t.Error("worker did not stop within a minute")
	}
}

// shipline runs the real CLI code against this stack and returns exit code,
// stdout and stderr.
func (s *stack) shipline(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	full := append([]string{"shipline", "--address", s.address, "--ui-url", s.uiURL}, args...)
	code := cli.Main(full, &out, &errb)
	s.t.Logf("$ shipline %s  → exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// git runs the git CLI in dir and returns its trimmed output.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// copyTree copies the directory src into dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
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
		t.Fatal(err)
	}
}

// demoProject makes a bare remote holding examples/demo on main, plus a work
// tree pushing to it, and a platform.yaml naming it. It returns the platform
// file, the bare remote and the work tree.
func demoProject(t testing.TB) (cfgPath, remote, work string) {
	t.Helper()
	root := t.TempDir()
	remote = filepath.Join(root, "remotes", "demo.git")
	work = filepath.Join(root, "work")
	if err := os.MkdirAll(remote, 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, remote, "init", "--bare", "-q", "-b", "main")
	copyTree(t, filepath.Join("..", "examples", "demo"), work)
	git(t, work, "init", "-q", "-b", "main")
	git(t, work, "add", ".")
	git(t, work, "commit", "-q", "-m", "demo project")
	git(t, work, "remote", "add", "origin", remote)
	git(t, work, "push", "-q", "origin", "main")

	example, err := os.ReadFile(filepath.Join("..", "examples", "platform.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(example), "repo: .shipline/remotes/demo.git", "repo: "+remote, 1)
	if cfg == string(example) {
		t.Fatal("examples/platform.yaml no longer names the demo remote the way this test expects")
	}
	cfgPath = filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, remote, work
}

func itoa(i int) string { return strconv.Itoa(i) }

func sleep100ms() { time.Sleep(100 * time.Millisecond) }

// projectTrees is the end-to-end fixture project: examples/demo (two Python
// pipelines, the Databricks job, the Airflow DAG) with testdata/project laid
// over it (a Java pipeline, its job task, fabrics dev and airflow-dev).
var projectTrees = []string{filepath.Join("..", "examples", "demo"), filepath.Join("testdata", "project")}

// fixtureProject pushes the trees, laid over each other in order, to a new bare
// remote under root and returns the remote and the work tree.
func fixtureProject(t testing.TB, root string, trees ...string) (remote, work string) {
	t.Helper()
	remote = filepath.Join(root, "remotes", "demo.git")
	work = filepath.Join(root, "work")
	if err := os.MkdirAll(remote, 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, remote, "init", "--bare", "-q", "-b", "main")
	for _, tree := range trees {
		copyTree(t, tree, work)
	}
	git(t, work, "init", "-q", "-b", "main")
	git(t, work, "add", ".")
	git(t, work, "commit", "-q", "-m", "demo project")
	git(t, work, "push", "-q", remote, "main")
	return remote, work
}

// mkdirs creates directories.
func mkdirs(t testing.TB, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
