// Package test holds Shipline's end-to-end tests: the real embedded Temporal
// server, the real worker and CLI code, and real git remotes.
package test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/starter/cli"
	"github.com/shipline/shipline/test/testkit"
)

// stack is one embedded Temporal server + Shipline worker (testkit.Stack), with
// the CLI pointed at it.
type stack struct {
	t        testing.TB
	kit      *testkit.Stack
	cfg      *platform.Config
	cfgPath  string
	address  string
	uiURL    string
	tempPort int
}

// startStack loads the platform file and runs the worker with --dev semantics.
func startStack(t testing.TB, cfgPath string, temporalPort int) *stack {
	return startStackWith(t, cfgPath, temporalPort, nil)
}

// startStackWith is startStack with dynamic config overrides for the embedded server.
func startStackWith(t testing.TB, cfgPath string, temporalPort int, dynamic map[string]any) *stack {
	t.Helper()
	k := testkit.Start(t, cfgPath, testkit.Options{TemporalPort: temporalPort, DynamicConfig: dynamic})
	return &stack{t: t, kit: k, cfg: k.Config, cfgPath: cfgPath, address: k.Address, uiURL: k.UIURL, tempPort: k.TemporalPort}
}

// stop ends the worker and the embedded server and waits for them.
func (s *stack) stop() { s.kit.Stop() }

// shipline runs the real CLI code against this stack and returns exit code,
// stdout and stderr.
func (s *stack) shipline(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	full := append([]string{"shipline", "--address", s.address, "--ui-url", s.uiURL}, args...)
	code := cli.Main(full, &out, &errb)
	s.t.Logf("$ shipline %s  → exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

func freePort(t testing.TB) int { return testkit.FreePort(t) }

// git runs the git CLI in dir and returns its trimmed output.
func git(t testing.TB, dir string, args ...string) string { return testkit.Git(t, dir, args...) }

// copyTree copies the directory src into dst.
func copyTree(t testing.TB, src, dst string) { testkit.CopyTree(t, src, dst) }

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
	// The example requires requests signed with keys examples/demo.sh creates;
	// the tests that reuse it act with --as alone, so they drop its signing section.
	unsigned := exampleSigning.ReplaceAllString(cfg, "")
	if unsigned == cfg {
		t.Fatal("examples/platform.yaml no longer has the require_signatures and users sections this test expects")
	}
	cfg = unsigned
	cfgPath = filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, remote, work
}

// exampleSigning matches examples/platform.yaml's require_signatures line and users block.
var exampleSigning = regexp.MustCompile(`(?m)^require_signatures: true\nusers:\n(?:  .*\n)+`)

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
