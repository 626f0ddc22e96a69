package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shipline/shipline/internal/build"
	"github.com/shipline/shipline/internal/devserver"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/workerapp"
	"github.com/shipline/shipline/starter/cli"
	"github.com/shipline/shipline/workflows"
)

// Two workers with separate state directories share nothing but Temporal and
// one file:// store: a release built by worker A is deployed by worker B (A
// stopped) from the shared cache, without building, with the same bytes; and
// B serves the logs of A's builds.
func TestTwoWorkersShareOnlyTheStore(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server and runs real builds")
	}
	root := t.TempDir()
	remote, _ := fixtureProject(t, root, filepath.Join("..", "examples", "demo"))
	t.Setenv("SHIPLINE_E2E_INTERNAL_SECRET", strings.Repeat("0123456789abcdef", 3))
	logger := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	srv, err := devserver.Start(context.Background(), devserver.Options{
		DBFile: filepath.Join(root, "temporal.db"), Port: freePort(t), UIPort: -1,
		SearchAttributes: workerapp.SearchAttributes(), Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	config := func(name string) *platform.Config {
		src := fmt.Sprintf(`temporal: {address: %s, namespace: default, task_queue: shipline}
state_dir: %s-state
storage: file://./shared-store
internal_auth: {secret_env: SHIPLINE_E2E_INTERNAL_SECRET}
teams: {developers: {members: [alice]}}
projects: {demo: {repo: %s, admins: [alice], auto_deploy: false}}
fabrics:
  local-dev: {kind: local, owner: developers, root: fabrics/dev}
  local-qa:  {kind: local, owner: developers, root: fabrics/qa}
  local-prod: {kind: local, owner: developers, root: fabrics/prod}
`, srv.Address(), name, remote)
		path := filepath.Join(root, name+".yaml")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, diags := platform.Load(path)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		return cfg
	}
	cfgA, cfgB := config("a"), config("b")
	store := filepath.Join(root, "shared-store")

	shipline := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := cli.Main(append([]string{"shipline", "--address", srv.Address(), "--as", "alice"}, args...), &out, &errb)
		t.Logf("$ shipline %s  → exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		return code, out.String()
	}
	deploy := func(fabric string) startResultJSON {
		t.Helper()
		code, out := shipline("--output", "json", "deploy", "v1.0.0", "--project", "demo", "--fabric", fabric, "--wait")
		var res startResultJSON
		if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.State.Status != workflows.StatusSucceeded {
			t.Fatalf("deploy to %s: exit %d, %v\n%s", fabric, code, err, out)
		}
		return res
	}

	// Worker A releases and deploys to local-dev: it builds.
	stopA := runWorker(t, cfgA, logger)
	defer stopA()
	if code, _ := shipline("release", "v1.0.0", "--project", "demo", "--wait"); code != 0 {
		t.Fatal("release failed")
	}
	firstRun := deploy("local-dev") // the release built and tested on A; the deploy takes A's cache
	first := firstRun.State
	for name, b := range first.Builds {
		if b.LogPath == "" {
			t.Errorf("worker A's build of %s: %+v, want one with a stored log", name, b)
		}
	}
	stopA()

	// Worker B, alone now, deploys the same release to local-qa: every
	// artifact comes from the shared store, none is built, none is in B's
	// own state directory.
	stopB := runWorker(t, cfgB, logger)
	defer stopB()
	second := deploy("local-qa").State
	if len(second.Builds) != len(first.Builds) || len(second.Builds) == 0 {
		t.Fatalf("builds: first %d, second %d", len(first.Builds), len(second.Builds))
	}
	for name, b := range second.Builds {
		if !b.Cached {
			t.Errorf("worker B built %s again instead of taking worker A's: %+v", name, b)
		}
	}
	entries, _ := filepath.Glob(filepath.Join(cfgB.StateDir, "cache", "*", "meta.json"))
	logs, _ := filepath.Glob(filepath.Join(cfgB.StateDir, "logs", "*", "*"))
	if len(entries)+len(logs) != 0 {
		t.Errorf("worker B's state directory holds cache entries %v and logs %v", entries, logs)
	}
	// The bytes on local-qa (uploaded by B) are those A stored.
	stored := map[string]string{}
	metas, _ := filepath.Glob(filepath.Join(store, "cache", "*", "meta.json"))
	for _, m := range metas {
		var meta build.Meta
		data, _ := os.ReadFile(m)
		if err := json.Unmarshal(data, &meta); err != nil {
			t.Fatal(err)
		}
		stored[meta.File] = meta.SHA256
	}
	uploaded, _ := filepath.Glob(filepath.Join(root, "fabrics", "qa", "artifacts", "demo", "v1.0.0", "*", "*.whl"))
	if len(uploaded) != len(second.Builds) {
		t.Fatalf("local-qa holds %v, want one wheel per pipeline", uploaded)
	}
	for _, u := range uploaded {
		data, _ := os.ReadFile(u)
		sum := sha256.Sum256(data)
		if want := stored[filepath.Base(u)]; want == "" || want != hex.EncodeToString(sum[:]) {
			t.Errorf("%s on local-qa has sha256 %x; the shared store has %q", filepath.Base(u), sum, want)
		}
	}

	// B serves the logs of A's builds, from the store.
	code, out := shipline("logs", firstRun.WorkflowID)
	if code != 0 || strings.Count(out, "-m build --wheel") != len(first.Builds) || strings.Contains(out, "cannot read") {
		t.Errorf("logs of worker A's deployment, read through worker B: exit %d\n%s", code, out)
	}
}

// runWorker runs a worker (no embedded server) on cfg until the returned stop.
func runWorker(t *testing.T, cfg *platform.Config, logger *zap.Logger) (stop func()) {
	t.Helper()
	c := *cfg
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- workerapp.Run(ctx, workerapp.Options{Config: &c, Logger: logger, Ready: func(workerapp.Info) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("worker on %s stopped before it was ready: %v", c.StateDir, err)
	case <-time.After(2 * time.Minute):
		t.Fatal("worker not ready after 2 minutes")
	}
	stopped := false
	return func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker on %s: %v", c.StateDir, err)
		}
	}
}
