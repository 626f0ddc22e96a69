package test

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/workflows"
)

// TestWorkerKilledDuringDeploys runs the Temporal server in the test process
// and shipline-worker as a separate process, and SIGKILLs the worker (with its
// build tools) at random moments while deploys build, upload and upsert jobs,
// restarting it each time. Four projects deploy in parallel, one version each
// per round, so one kill hits several deployments in different steps.
// Every deployment must complete; the workspace must hold exactly one job per
// (project, job); every uploaded artifact must have the bytes of the build
// cache; no Deploy workflow may be left running or failed.
//
// SHIPLINE_E2E_CRASH_ROUNDS (default 5: 20 deploys) and SHIPLINE_E2E_CRASH_SEED
// (default 1) change the run. A kill costs about the activities' heartbeat
// timeout (a killed worker's activity is only retried once it passes).
func TestWorkerKilledDuringDeploys(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: kills and restarts a worker process")
	}
	rounds := envInt(t, "SHIPLINE_E2E_CRASH_ROUNDS", 5)
	seed := int64(envInt(t, "SHIPLINE_E2E_CRASH_SEED", 1))
	rng := rand.New(rand.NewSource(seed))
	projects := []string{"alpha", "bravo", "charlie", "delta"}
	begin := time.Now()

	h := newHardEnv(t, hardOptions{Projects: projects, Seed: seed})
	// Every workspace call takes a little while (uploads longer), so that
	// uploads and job upserts last long enough to be hit by a kill.
	h.emu.Inject(dbemu.Fault{Method: "PUT", Path: "/api/2.0/fs/files/Volumes/*", Latency: 700 * time.Millisecond})
	h.emu.Inject(dbemu.Fault{Latency: 150 * time.Millisecond})
	w := h.newWorkerProcess()
	w.start()

	version := func(round int) string { return fmt.Sprintf("v1.0.%d", round) }
	rebuilds := 0
	for r := range rounds {
		for _, p := range projects {
			if r > 0 {
				rebuild := rng.Intn(2) == 0
				if rebuild {
					rebuilds++
				}
				h.change(p, rebuild)
			}
			h.release(p, version(r))
		}
	}
	t.Logf("setup, worker build and %d releases (%d with a changed pipeline) took %s",
		rounds*len(projects), rebuilds, time.Since(begin).Round(time.Millisecond))
	// A release builds and tests before it tags, so the build cache holds every
	// artifact now; empty it, so the deploys build again (as on a worker that
	// never saw these builds) and the kills land in builds too.
	if err := os.RemoveAll(filepath.Join(h.cfg.StateDir, "cache")); err != nil {
		t.Fatal(err)
	}

	var started []string
	kills := 0
	for r := range rounds {
		roundStart := time.Now()
		var ids []string
		for _, p := range projects {
			ids = append(ids, h.startDeploy(p, version(r)))
		}
		started = append(started, ids...)
		// One kill in every round, a second one in about half of them (it may
		// land while the first one's activities are being retried).
		for k := 0; k == 0 || (k == 1 && rng.Intn(2) == 0); k++ {
			time.Sleep(200*time.Millisecond + time.Duration(rng.Int63n(int64(2800*time.Millisecond))))
			phases := h.phases(ids)
			w.kill()
			kills++
			t.Logf("round %d: kill %d, %s after the deploys started; they were at: %s",
				r+1, kills, time.Since(roundStart).Round(time.Millisecond), phases)
			time.Sleep(time.Duration(rng.Int63n(int64(time.Second))))
			w.start()
		}
		for _, id := range ids {
			s := h.waitDeploy(id, 5*time.Minute)
			if s.Status != workflows.StatusSucceeded {
				t.Fatalf("%s ended %s: %s\nworker log:\n%s", id, s.Status, s.Summary, w.logTail())
			}
		}
		t.Logf("round %d: %d deploys of %s succeeded %s after they started", r+1, len(ids), version(r), time.Since(roundStart).Round(time.Millisecond))
	}

	// Every deployment completed, and `shipline status --watch` says so.
	retried := map[string]int{}
	for _, id := range started {
		if code, out, errOut := h.shiplineQuiet("status", id, "--watch"); code != 0 {
			t.Errorf("status %s --watch: exit %d\n%s%s", id, code, out, errOut)
		}
		for name, n := range h.activityAttempts(id) {
			retried[name] += n - 1
		}
	}
	execs := h.deployExecutions()
	for id, st := range execs {
		if st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			t.Errorf("deployment %s is %s, want completed", id, st)
		}
	}
	if len(execs) != len(started) {
		t.Errorf("visibility lists %d Deploy workflows, %d were started", len(execs), len(started))
	}
	// The workspace: one job per (project, job), at the last version.
	for p, v := range h.checkOneJobEach() {
		if v != version(rounds-1) {
			t.Errorf("%s runs %s, want %s", p, v, version(rounds-1))
		}
	}
	n := h.checkArtifacts()
	var retries []string
	for _, name := range sortedKeysOf(retried) {
		retries = append(retries, fmt.Sprintf("%s %d", name, retried[name]))
	}
	t.Logf("%d deploys, %d kills, %d worker starts, %d artifacts checked; activity retries: %s; total %s",
		len(started), kills, w.starts, n, strings.Join(retries, ", "), time.Since(begin).Round(time.Millisecond))
}

// phases says where each deployment is: its running step (and builds).
func (h *hardEnv) phases(ids []string) string {
	out := make([]string, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { out[i] = h.phase(id) })
	}
	wg.Wait()
	return strings.Join(out, ", ")
}

func (h *hardEnv) phase(id string) string {
	project, _, _ := parseDeployIDForTest(id)
	s, ok := h.deployState(id)
	if !ok {
		return project + " ? (no answer to the query)"
	}
	what := string(s.Status)
	for _, st := range s.Steps {
		if st.Status == workflows.StepRunning {
			what = st.Name
		}
	}
	var building []string
	for _, name := range sortedKeysOf(s.Builds) {
		if b := s.Builds[name]; b.Status == workflows.StepRunning {
			building = append(building, name)
		}
	}
	if what == workflows.StepBuild && len(building) > 0 {
		what += " " + strings.Join(building, "+")
	}
	return project + " " + what
}

func parseDeployIDForTest(id string) (project, version string, ok bool) {
	parts := strings.Split(id, "/")
	if len(parts) != 4 {
		return id, "", false
	}
	return parts[1], parts[2], true
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func sortedKeysOf[V any](m map[string]V) []string {
	keys := mapsKeys(m)
	sort.Strings(keys)
	return keys
}
