//go:build unix

package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipline/shipline/internal/manifest"
)

// forkedMark is what the build log says of a command the build server ran.
const forkedMark = "forked by the build server"

// withServers returns a builder like needPython's that runs Python commands
// through servers of its own, stopped when the test ends.
func withServers(t *testing.T, maxBuilds int) *Builder {
	t.Helper()
	b := needPython(t)
	b.Servers = NewServers(maxBuilds)
	t.Cleanup(func() { _ = b.Servers.Close() })
	return b
}

func buildLog(t *testing.T, b *Builder, res Result) string {
	t.Helper()
	data, err := os.ReadFile(b.file(res.LogPath))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// serverPID is the pid of the running server of role (0 if none).
func serverPID(b *Builder, role string) int {
	b.Servers.mu.Lock()
	defer b.Servers.mu.Unlock()
	if p := b.Servers.procs[role]; p != nil {
		return p.pid
	}
	return 0
}

var legacyFiles = map[string]string{
	"setup.py":           "from setuptools import setup\nsetup(name='legacy', version='2.0', packages=['legacy'])\n",
	"legacy/__init__.py": "VALUE = 1\n",
}

// The server's wheels are byte for byte the plain command's, for a
// pyproject.toml project with tests and a setup.py-only one; both commands
// (pytest and build) ran in the server; SHIPLINE_BUILD_SERVER=off runs them plain.
func TestServerWheelsByteIdentical(t *testing.T) {
	plain := needPython(t)
	served := withServers(t, 0)
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		files map[string]string
		file  string
	}{
		{"orders", pythonFiles, "orders-1.2.0+sl.3f9a1c2e-py3-none-any.whl"},
		{"legacy", legacyFiles, "legacy-2.0+sl.3f9a1c2e-py3-none-any.whl"},
	} {
		p := manifest.Pipeline{Name: c.name, Path: "pipelines/" + c.name, Language: manifest.Python}
		want, err := plain.Build(ctx, Request{Pipeline: p, TreeHash: tree1, Export: (&source{files: c.files}).export})
		if err != nil {
			t.Fatal(err)
		}
		got, err := served.Build(ctx, Request{Pipeline: p, TreeHash: tree1, Export: (&source{files: c.files}).export})
		if err != nil {
			t.Fatal(err)
		}
		if got.File != c.file || want.File != c.file {
			t.Errorf("%s: files %s (server) and %s (plain), want %s", c.name, got.File, want.File, c.file)
		}
		a, _ := os.ReadFile(plain.file(want.Object))
		b, _ := os.ReadFile(served.file(got.Object))
		if len(a) == 0 || string(a) != string(b) || got.SHA256 != want.SHA256 {
			t.Errorf("%s: the server's wheel (sha256 %s, %d bytes) differs from the plain one (sha256 %s, %d bytes)",
				c.name, got.SHA256, len(b), want.SHA256, len(a))
		}
		log := buildLog(t, served, got)
		wantForked := 1
		if _, tests := c.files["tests/test_double.py"]; tests {
			wantForked = 2
		}
		if n := strings.Count(log, forkedMark); n != wantForked {
			t.Errorf("%s: %d commands ran in the server, want %d:\n%s", c.name, n, wantForked, log)
		}
		if strings.Contains(buildLog(t, plain, want), forkedMark) {
			t.Errorf("%s: the plain builder used a server", c.name)
		}
	}

	off := withServers(t, 0)
	off.Getenv = func(k string) string {
		if k == ServerEnv {
			return "off"
		}
		return ""
	}
	p := manifest.Pipeline{Name: "orders", Path: "pipelines/orders", Language: manifest.Python}
	res, err := off.Build(ctx, Request{Pipeline: p, TreeHash: tree2, Export: (&source{files: pythonFiles}).export})
	if err != nil {
		t.Fatal(err)
	}
	if log := buildLog(t, off, res); strings.Contains(log, forkedMark) || !strings.Contains(log, "build: "+ServerEnv+"=off; running the plain command") {
		t.Errorf("with %s=off the log says:\n%s", ServerEnv, log)
	}
	if pid := serverPID(off, roleBuild); pid != 0 {
		t.Errorf("with %s=off a server runs (pid %d)", ServerEnv, pid)
	}
}

// A build backend the server has not imported (an in-tree one here) is
// built the plain way, and the log says why.
func TestServerFallbackForUnknownBackend(t *testing.T) {
	b := withServers(t, 0)
	files := map[string]string{
		"pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "intree_backend"
backend-path = ["_backend"]

[project]
name = "intree"
version = "0.1.0"
`,
		"_backend/intree_backend.py": "from setuptools.build_meta import *\n",
		"intree/__init__.py":         "",
	}
	p := manifest.Pipeline{Name: "intree", Path: "pipelines/intree", Language: manifest.Python}
	res, err := b.Build(context.Background(), Request{Pipeline: p, TreeHash: tree1, Export: (&source{files: files}).export})
	if err != nil {
		t.Fatal(err)
	}
	if res.File != "intree-0.1.0+sl.3f9a1c2e-py3-none-any.whl" {
		t.Errorf("built %s", res.File)
	}
	log := buildLog(t, b, res)
	if strings.Contains(log, forkedMark) || !strings.Contains(log, "the build backend intree_backend is not one the build server has loaded (setuptools.build_meta") {
		t.Errorf("log:\n%s", log)
	}
}

// A killed server is replaced by the next build; so is one that ran
// MaxBuilds commands, and one of another interpreter.
func TestServerRestarts(t *testing.T) {
	b := withServers(t, 2)
	ctx := context.Background()
	n := 0
	build := func() Result {
		t.Helper()
		n++
		tree := strings.Repeat("0", 39) + strconv.Itoa(n%10)
		p := manifest.Pipeline{Name: "legacy", Path: "legacy", Language: manifest.Python}
		res, err := b.Build(ctx, Request{Pipeline: p, TreeHash: tree, Export: (&source{files: legacyFiles}).export})
		if err != nil {
			t.Fatal(err)
		}
		if log := buildLog(t, b, res); !strings.Contains(log, forkedMark) {
			t.Fatalf("build %d did not run in the server:\n%s", n, log)
		}
		return res
	}
	build()
	first := serverPID(b, roleBuild)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, first)
	build()
	second := serverPID(b, roleBuild)
	if second == first || second == 0 {
		t.Fatalf("after the server %d was killed the build used server %d", first, second)
	}
	build() // the second command of the second server
	if pid := serverPID(b, roleBuild); pid != second {
		t.Fatalf("the server was replaced after 1 command (pid %d → %d), MaxBuilds is 2", second, pid)
	}
	build()
	third := serverPID(b, roleBuild)
	if third == second {
		t.Fatalf("the server %d was not replaced after 2 commands", second)
	}
	waitGone(t, second) // drained: it exits once idle

	// Another interpreter (the same binary under another name) gets its own server.
	link := filepath.Join(t.TempDir(), "python3")
	if err := os.Symlink(b.python(), link); err != nil {
		t.Fatal(err)
	}
	b.Python = link
	build()
	if pid := serverPID(b, roleBuild); pid == third {
		t.Fatalf("the interpreter changed to %s and the server %d stayed", link, third)
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for give := time.Now().Add(30 * time.Second); time.Now().Before(give); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if ps, _ := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(pid)).Output(); strings.HasPrefix(string(ps), "Z") {
			return
		}
	}
	t.Fatalf("process %d still runs", pid)
}

// A failing build and failing tests give the same error text through the
// server as the plain way.
func TestServerFailuresSameText(t *testing.T) {
	plain := needPython(t)
	served := withServers(t, 0)
	ctx := context.Background()
	clean := func(b *Builder, msg string) string {
		msg = strings.ReplaceAll(msg, b.StateDir, "STATE")
		msg = regexp.MustCompile(`\.tmp/[0-9a-f]+-[0-9]+`).ReplaceAllString(msg, ".tmp/WORK")
		return regexp.MustCompile(`in [0-9.]+s`).ReplaceAllString(msg, "in Ts")
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		kind  error
		want  string
	}{
		{"tests", with(pythonFiles, map[string]string{
			"tests/test_double.py": "from orders import double\n\ndef test_double():\n    assert double(2) == 5, 'doubling is broken'\n",
		}), ErrTestsFailed, "doubling is broken"},
		{"build", map[string]string{
			"setup.py":           "import sys\nfrom setuptools import setup\nprint('about to fail')\nraise RuntimeError('the build is broken on purpose')\n",
			"legacy/__init__.py": "",
		}, ErrBuildFailed, "the build is broken on purpose"},
	} {
		p := manifest.Pipeline{Name: "orders", Path: "pipelines/orders", Language: manifest.Python}
		_, perr := plain.Build(ctx, Request{Pipeline: p, TreeHash: treeBad, Export: (&source{files: c.files}).export})
		_, serr := served.Build(ctx, Request{Pipeline: p, TreeHash: treeBad, Export: (&source{files: c.files}).export})
		pf, sf := buildErr(t, perr, c.kind), buildErr(t, serr, c.kind)
		if !strings.Contains(sf.Msg, c.want) {
			t.Errorf("%s: the server's error lacks %q:\n%s", c.name, c.want, sf.Msg)
		}
		if a, b := clean(plain, pf.Msg), clean(served, sf.Msg); a != b {
			t.Errorf("%s: errors differ\nplain:\n%s\nserver:\n%s", c.name, a, b)
		}
		log, _ := os.ReadFile(served.file(sf.LogPath))
		if !strings.Contains(string(log), forkedMark) {
			t.Errorf("%s: the failing command did not run in the server:\n%s", c.name, log)
		}
	}
}

// A build whose context ends is killed with everything it started; the
// server goes on serving.
func TestServerCancelKillsBuild(t *testing.T) {
	b := withServers(t, 0)
	b.HeartbeatEvery = 10 * time.Millisecond
	pidFile := filepath.Join(t.TempDir(), "pids")
	files := map[string]string{
		"setup.py": "import os, subprocess, time\n" +
			"p = subprocess.Popen(['sleep', '300'])\n" +
			"open(" + strconv.Quote(pidFile+".tmp") + ", 'w').write('%d %d' % (os.getpid(), p.pid))\n" +
			"os.rename(" + strconv.Quote(pidFile+".tmp") + ", " + strconv.Quote(pidFile) + ")\n" +
			"time.sleep(300)\n",
		"slow/__init__.py": "",
	}
	p := manifest.Pipeline{Name: "slow", Path: "slow", Language: manifest.Python}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	heartbeat := func(step string) {
		if _, err := os.Stat(pidFile); err == nil {
			cancel()
		}
	}
	_, err := b.Build(ctx, Request{Pipeline: p, TreeHash: treeT, Export: (&source{files: files}).export, Heartbeat: heartbeat})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(data)) {
		pid, _ := strconv.Atoi(f)
		waitGone(t, pid)
	}
	server := serverPID(b, roleBuild)
	if err := syscall.Kill(server, 0); err != nil {
		t.Fatalf("the server %d died with the build: %v", server, err)
	}
	res, err := b.Build(context.Background(), Request{Pipeline: manifest.Pipeline{Name: "legacy", Path: "legacy", Language: manifest.Python},
		TreeHash: tree1, Export: (&source{files: legacyFiles}).export})
	if err != nil {
		t.Fatal(err)
	}
	if serverPID(b, roleBuild) != server || !strings.Contains(buildLog(t, b, res), forkedMark) {
		t.Errorf("the next build did not use the same server")
	}
}

// What one build's setup.py does to its interpreter (environment, imported
// modules, a backend module's attributes) is not seen by the next build of
// the same server.
func TestServerIsolatesBuilds(t *testing.T) {
	b := withServers(t, 0)
	ctx := context.Background()
	leaky := map[string]string{
		"setup.py": "import os, sys, types, setuptools\n" +
			"os.environ['SHIPLINE_LEAK'] = '1'\n" +
			"sys.modules['leaky_marker'] = types.ModuleType('leaky_marker')\n" +
			"setuptools.LEAKED = True\n" +
			"setuptools.setup(name='leaky', version='1.0', packages=['leaky'])\n",
		"leaky/__init__.py": "",
	}
	checking := map[string]string{
		"setup.py": "import os, sys, setuptools\n" +
			"seen = [w for w, yes in [('env', 'SHIPLINE_LEAK' in os.environ), ('module', 'leaky_marker' in sys.modules), ('attribute', hasattr(setuptools, 'LEAKED'))] if yes]\n" +
			"if seen: raise SystemExit('state of another build is visible: ' + ', '.join(seen))\n" +
			"setuptools.setup(name='clean', version='1.0', packages=['clean'])\n",
		"clean/__init__.py": "",
	}
	for i, files := range []map[string]string{leaky, checking, leaky, checking} {
		name := map[bool]string{true: "leaky", false: "clean"}[i%2 == 0]
		tree := strings.Repeat("a", 39) + strconv.Itoa(i)
		res, err := b.Build(ctx, Request{Pipeline: manifest.Pipeline{Name: name, Path: name, Language: manifest.Python},
			TreeHash: tree, Export: (&source{files: files}).export})
		if err != nil {
			t.Fatalf("build %d (%s): %v", i, name, err)
		}
		if !strings.Contains(buildLog(t, b, res), forkedMark) {
			t.Fatalf("build %d did not run in the server", i)
		}
	}
}

// A server that cannot start (here an interpreter whose server fails with an
// import error) leaves builds to the plain commands; the worker log says so
// once, each build log says why.
func TestServerCannotStartFallsBack(t *testing.T) {
	b := withServers(t, 0)
	real := b.python()
	wrapper := filepath.Join(t.TempDir(), "python3")
	script := "#!/bin/sh\n" +
		"case \"$2\" in *\"Python build server\"*) echo \"ModuleNotFoundError: No module named 'build'\" >&2; exit 3;; esac\n" +
		"exec " + real + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	b.Python = wrapper
	var said []string
	b.Servers.Logf = func(format string, args ...any) { said = append(said, fmt.Sprintf(format, args...)) }
	for i, tree := range []string{tree1, tree2} {
		res, err := b.Build(context.Background(), Request{Pipeline: manifest.Pipeline{Name: "legacy", Path: "legacy", Language: manifest.Python},
			TreeHash: tree, Export: (&source{files: legacyFiles}).export})
		if err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
		log := buildLog(t, b, res)
		if strings.Contains(log, forkedMark) || !strings.Contains(log, "build: no build server: the build server (build, "+wrapper+") cannot start: ModuleNotFoundError: No module named 'build'; running the plain command") {
			t.Errorf("build %d log:\n%s", i, log)
		}
	}
	if len(said) != 1 || !strings.Contains(said[0], "cannot start") {
		t.Errorf("the worker log got %q, want one line saying the server cannot start", said)
	}
}

// Two builds run at once in children of the same server: each setup.py waits
// for the other's to start.
func TestServerRunsBuildsConcurrently(t *testing.T) {
	b := withServers(t, 0)
	dir := t.TempDir()
	files := func(me, other string) map[string]string {
		return map[string]string{
			"setup.py": "import os, time, setuptools\n" +
				"open(os.path.join(" + strconv.Quote(dir) + ", '" + me + "'), 'w').close()\n" +
				"give = time.time() + 60\n" +
				"while not os.path.exists(os.path.join(" + strconv.Quote(dir) + ", '" + other + "')):\n" +
				"    if time.time() > give: raise SystemExit('" + other + " did not start while " + me + " ran')\n" +
				"    time.sleep(0.02)\n" +
				"setuptools.setup(name='" + me + "', version='1.0', packages=['" + me + "'])\n",
			me + "/__init__.py": "",
		}
	}
	errs := make(chan error, 2)
	logs := make(chan string, 2)
	for i, pair := range [][2]string{{"one", "two"}, {"two", "one"}} {
		go func() {
			res, err := b.Build(context.Background(), Request{Pipeline: manifest.Pipeline{Name: pair[0], Path: pair[0], Language: manifest.Python},
				TreeHash: strings.Repeat("c", 39) + strconv.Itoa(i), Export: (&source{files: files(pair[0], pair[1])}).export})
			if err == nil {
				data, _ := os.ReadFile(b.file(res.LogPath))
				logs <- string(data)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if log := <-logs; !strings.Contains(log, forkedMark) {
			t.Errorf("a build did not run in the server:\n%s", log)
		}
	}
}

// What one pytest run does to its interpreter is not seen by the next run of
// the same server.
func TestServerIsolatesTestRuns(t *testing.T) {
	b := withServers(t, 0)
	leaky := with(pythonFiles, map[string]string{"tests/test_leak.py": "import os, sys, types, pytest\n" +
		"def test_leak():\n" +
		"    os.environ['SHIPLINE_LEAK'] = '1'\n" +
		"    sys.modules['leaky_marker'] = types.ModuleType('leaky_marker')\n" +
		"    pytest.LEAKED = True\n"})
	checking := with(pythonFiles, map[string]string{"tests/test_leak.py": "import os, sys, pytest\n" +
		"def test_nothing_leaked():\n" +
		"    assert 'SHIPLINE_LEAK' not in os.environ\n" +
		"    assert 'leaky_marker' not in sys.modules\n" +
		"    assert not hasattr(pytest, 'LEAKED')\n"})
	for i, files := range []map[string]string{leaky, checking} {
		p := manifest.Pipeline{Name: "orders", Path: "orders", Language: manifest.Python}
		res, err := b.Build(context.Background(), Request{Pipeline: p, TreeHash: strings.Repeat("d", 39) + strconv.Itoa(i), Export: (&source{files: files}).export})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if log := buildLog(t, b, res); !strings.Contains(log, "tests: ") || strings.Count(log, forkedMark) != 2 {
			t.Fatalf("run %d: the tests did not run in the server:\n%s", i, log)
		}
	}
}

// StartServers starts the servers the next builds use (the worker calls it
// when it starts).
func TestServerStartedAhead(t *testing.T) {
	b := withServers(t, 0)
	b.StartServers(context.Background())
	build, pytest := serverPID(b, roleBuild), serverPID(b, rolePytest)
	if build == 0 || pytest == 0 {
		t.Fatalf("servers after StartServers: build %d, pytest %d", build, pytest)
	}
	p := manifest.Pipeline{Name: "orders", Path: "orders", Language: manifest.Python}
	if _, err := b.Build(context.Background(), Request{Pipeline: p, TreeHash: tree1, Export: (&source{files: pythonFiles}).export}); err != nil {
		t.Fatal(err)
	}
	if serverPID(b, roleBuild) != build || serverPID(b, rolePytest) != pytest {
		t.Errorf("the build replaced the servers started ahead (build %d → %d, pytest %d → %d)",
			build, serverPID(b, roleBuild), pytest, serverPID(b, rolePytest))
	}
}

// A server killed in the middle of a build: the build's command runs again
// the plain way and succeeds; the next build gets a new server.
func TestServerKilledDuringBuild(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc to find the server from the build")
	}
	b := withServers(t, 0)
	marker := filepath.Join(t.TempDir(), "killed")
	files := map[string]string{
		"setup.py": "import os, signal, setuptools\n" +
			"marker = " + strconv.Quote(marker) + "\n" +
			"if not os.path.exists(marker):\n" +
			"    open(marker, 'w').close()\n" +
			"    # this hook's parent is the forked `python -m build`, whose parent is the server\n" +
			"    server = int(open('/proc/%d/stat' % os.getppid()).read().rsplit(')', 1)[1].split()[1])\n" +
			"    os.kill(server, signal.SIGKILL)\n" +
			"    signal.pause()\n" +
			"setuptools.setup(name='victim', version='1.0', packages=['victim'])\n",
		"victim/__init__.py": "",
	}
	b.StartServers(context.Background())
	first := serverPID(b, roleBuild)
	p := manifest.Pipeline{Name: "victim", Path: "victim", Language: manifest.Python}
	res, err := b.Build(context.Background(), Request{Pipeline: p, TreeHash: tree1, Export: (&source{files: files}).export})
	if err != nil {
		t.Fatal(err)
	}
	log := buildLog(t, b, res)
	if !strings.Contains(log, forkedMark) || !strings.Contains(log, "build: the build server exited") ||
		!strings.Contains(log, "running the command again the plain way") || res.File != "victim-1.0+sl.3f9a1c2e-py3-none-any.whl" {
		t.Fatalf("built %s, log:\n%s", res.File, log)
	}
	waitGone(t, first)
	res, err = b.Build(context.Background(), Request{Pipeline: manifest.Pipeline{Name: "legacy", Path: "legacy", Language: manifest.Python},
		TreeHash: tree2, Export: (&source{files: legacyFiles}).export})
	if err != nil {
		t.Fatal(err)
	}
	if pid := serverPID(b, roleBuild); pid == first || pid == 0 || !strings.Contains(buildLog(t, b, res), forkedMark) {
		t.Errorf("the next build did not get a new server (pid %d, the killed one %d)", pid, first)
	}
}

// The build log names the Python tools' versions as people read them
// ("python 3.11.2, setuptools 66.1.1"), not as a Go map, with and without
// the build server.
func TestBuildLogToolVersions(t *testing.T) {
	ctx := context.Background()
	p := manifest.Pipeline{Name: "orders", Path: "pipelines/orders", Language: manifest.Python}
	for name, b := range map[string]*Builder{"plain": needPython(t), "server": withServers(t, 0)} {
		res, err := b.Build(ctx, Request{Pipeline: p, TreeHash: tree1, Export: (&source{files: pythonFiles}).export})
		if err != nil {
			t.Fatal(err)
		}
		var line string
		for _, l := range strings.Split(buildLog(t, b, res), "\n") {
			if strings.HasPrefix(l, "### tools: ") {
				line = l
			}
		}
		if line == "" || strings.Contains(line, "map[") || !strings.Contains(line, ", python 3.") || !strings.Contains(line, "setuptools ") {
			t.Errorf("%s: tools line %q, want e.g. \"### tools: /usr/bin/python3 build 1.0.3, python 3.11.2, setuptools 66.1.1, …\"", name, line)
		}
	}
}
