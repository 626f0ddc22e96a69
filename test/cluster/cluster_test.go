// Package cluster is Shipline's end-to-end test on a real Temporal cluster:
// temporal-server built from its Go module, on PostgreSQL, with two
// shipline-worker processes. test/cluster/run.sh (make cluster-test) starts
// PostgreSQL and the server and then runs TestCluster with SHIPLINE_CLUSTER=1;
// without it (plain `go test ./...`) the test is skipped.
package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/test/testkit"
	"github.com/shipline/shipline/workflows"
)

const (
	volume   = "/Volumes/main/shipline/artifacts"
	tokenEnv = "SHIPLINE_CLUSTER_DEV_TOKEN"
	token    = "dapi-cluster-test"
	project  = "demo"
	// slowTest is how long each Python pipeline's extra test sleeps in the
	// versions deployed concurrently, so that a worker can be killed mid-build.
	slowTest = 8 * time.Second
)

// env is what run.sh hands the test.
type env struct {
	address, namespace, bin, dir string
	separateState                bool
}

func clusterEnv(t testing.TB) env {
	if os.Getenv("SHIPLINE_CLUSTER") != "1" {
		t.Skip("cluster test: run test/cluster/run.sh (make cluster-test), which starts PostgreSQL and temporal-server and sets SHIPLINE_CLUSTER=1")
	}
	e := env{
		address:       os.Getenv("SHIPLINE_CLUSTER_ADDRESS"),
		namespace:     os.Getenv("SHIPLINE_CLUSTER_NAMESPACE"),
		bin:           os.Getenv("SHIPLINE_CLUSTER_BIN"),
		dir:           os.Getenv("SHIPLINE_CLUSTER_DIR"),
		separateState: os.Getenv("SHIPLINE_CLUSTER_STATE") == "separate",
	}
	if e.namespace == "" {
		e.namespace = "default"
	}
	if e.address == "" || e.bin == "" {
		t.Fatal("SHIPLINE_CLUSTER_ADDRESS (temporal frontend) and SHIPLINE_CLUSTER_BIN (directory of shipline and shipline-worker) are required")
	}
	if e.dir == "" {
		e.dir = t.TempDir()
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCluster(t *testing.T) {
	e := clusterEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	t0 := time.Now()
	phase := func(format string, args ...any) {
		t.Logf("[%5.1fs] %s", time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
	}

	// 1. The namespace, as `temporal operator namespace create` does in docker-compose.
	registerNamespace(ctx, t, e)
	c := dial(ctx, t, e)
	defer c.Close()
	phase("namespace %s registered on %s", e.namespace, e.address)

	// 2. A project remote, two emulated Databricks workspaces, local fabrics.
	f := newFixture(t, e)

	// 3. Two workers, not --dev.
	w1 := startWorker(ctx, t, e, f, "w1")
	w2 := startWorker(ctx, t, e, f, "w2")
	w1.waitReady(t, 2*time.Minute)
	w2.waitReady(t, 2*time.Minute)
	workers := []*workerProc{w1, w2}
	phase("workers ready: %s (pid %d), %s (pid %d)", w1.name, w1.pid(), w2.name, w2.pid())

	// 4. Release v1.0.0; auto_deploy deploys it to dev + airflow-dev.
	f.cli(t, 0, "release", "v1.0.0", "--project", project, "--as", "alice", "--wait")
	first := waitDeploy(ctx, t, c, workflows.DeployID(project, "v1.0.0", "release"), 3*time.Minute)
	if first.Status != workflows.StatusSucceeded {
		t.Fatalf("release deploy of v1.0.0: %s (%s)", first.Status, first.Summary)
	}
	phase("v1.0.0 released and deployed to %v", first.Fabrics)

	// 5. Two more versions whose pipelines all change (no cache hits) and
	// whose Python tests take a while, released without deploying.
	f.changePipelines(t, "v1.1.0")
	f.cli(t, 0, "release", "v1.1.0", "--project", project, "--as", "alice", "--no-deploy", "--wait")
	f.changePipelines(t, "v1.2.0")
	f.cli(t, 0, "release", "v1.2.0", "--project", project, "--as", "alice", "--no-deploy", "--wait")
	phase("v1.1.0 and v1.2.0 released")

	// 6. Concurrent deploys: two fabrics' queues (dev/airflow-dev gets v1.1.0
	// then v1.2.0) and three local fabrics in parallel.
	type deploy struct {
		version string
		args    []string
		id      string
	}
	deploys := []*deploy{
		{version: "v1.1.0"},
		{version: "v1.1.0", args: []string{"--fabric", "local-a"}},
		{version: "v1.2.0", args: []string{"--fabric", "local-b"}},
		{version: "v1.2.0", args: []string{"--fabric", "local-c"}},
		{version: "v1.2.0"},
	}
	for _, d := range deploys {
		out := f.cli(t, 0, append([]string{"--output", "json", "deploy", d.version, "--project", project, "--as", "bob"}, d.args...)...)
		var res struct {
			WorkflowID string `json:"workflow_id"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.WorkflowID == "" {
			t.Fatalf("deploy output: %v\n%s", err, out)
		}
		d.id = res.WorkflowID
	}
	phase("%d deploys started", len(deploys))

	// 7. SIGKILL the worker running a build, a few seconds into it.
	ids := []string{workflows.DeployID(project, "v1.0.0", "release")}
	for _, d := range deploys {
		ids = append(ids, d.id)
	}
	sctx, stopSampler := context.WithCancel(ctx)
	defer stopSampler()
	samples := startSampler(sctx, c, workers, ids[1:])
	act := samples.pickVictim(t, "Pipeline", 30*time.Second, 2*time.Second, 3*time.Minute)
	victim, survivor := act.worker, w1
	if victim == w1 {
		survivor = w2
	}
	phase("seen running so far: %v", samples.deploysOn())
	victim.kill(t)
	killedAt := time.Now()
	phase("SIGKILLed %s (pid %d) while it ran %s of %s (attempt %d, started %s ago)",
		victim.name, victim.pid(), act.activity, act.workflowID, act.attempt, act.runningFor.Round(100*time.Millisecond))

	// 8. Every deploy completes on the survivor.
	final := map[string]workflows.DeployState{}
	for _, d := range deploys {
		st := waitDeploy(ctx, t, c, d.id, 6*time.Minute)
		final[d.id] = st
		if st.Status != workflows.StatusSucceeded {
			t.Errorf("deploy %s: %s — %s", d.id, st.Status, st.Summary)
			if st.Parked != nil {
				t.Errorf("  parked at %s: %s", st.Parked.Step, st.Parked.Reason)
			}
		}
	}
	recovery := time.Since(killedAt)
	phase("all %d deploys ended %s after the kill", len(deploys), recovery.Round(time.Second))
	if t.Failed() {
		t.FailNow()
	}

	// 9. The work spread over both workers; the killed build was retried and
	// finished on the survivor.
	stopSampler()
	phase("seen running (sampled): %v", samples.deploysOn())
	byWorker := map[string]int{}
	for _, id := range ids {
		var where []string
		for _, s := range activityStarts(ctx, t, c, id) {
			byWorker[workerName(workers, s.identity)]++
			if s.activityType == "Pipeline" || s.activityType == "Upload" {
				where = append(where, fmt.Sprintf("%s#%s@%s(attempt %d)", s.activityType, s.activityID, workerName(workers, s.identity), s.attempt))
			}
			if id == act.workflowID && s.activityID == act.activityID {
				if s.identity != survivor.identity() && workerName(workers, s.identity) != survivor.name {
					t.Errorf("killed activity %s of %s finished on %s, want the survivor %s", act.activityID, id, s.identity, survivor.name)
				}
				if s.attempt < 2 {
					t.Errorf("killed activity %s of %s finished in attempt %d, want a retry (≥ 2)", act.activityID, id, s.attempt)
				}
				phase("killed build %s of %s finished on %s in attempt %d", act.activity, id, workerName(workers, s.identity), s.attempt)
			}
		}
		t.Logf("  %s: %s", id, strings.Join(where, " "))
	}
	phase("activities started per worker: %v", byWorker)
	if byWorker[w1.name] == 0 || byWorker[w2.name] == 0 {
		t.Errorf("activities did not spread over both workers: %v", byWorker)
	}
	if seen := samples.deploysOn(); seen[w1.name] == "" || seen[w2.name] == "" {
		t.Errorf("the concurrent deploys did not run on both workers: %v", seen)
	}

	// 10. Exactly one job per (project, job, fabric), running the last version queued there.
	want := map[string]string{"dev": "v1.2.0", "airflow-dev": "v1.2.0", "local-a": "v1.1.0", "local-b": "v1.2.0", "local-c": "v1.2.0"}
	jobs := f.emu.JobsTagged(map[string]string{"shipline_project": project, "shipline_job": "daily_orders"})
	if len(jobs) != 1 {
		t.Errorf("%d Databricks jobs for %s/daily_orders on dev, want exactly 1", len(jobs), project)
	} else if v := jobs[0].Tags()["shipline_version"]; v != want["dev"] {
		t.Errorf("dev job runs %s, want %s", v, want["dev"])
	}
	if n := len(f.emu.Jobs()); n != 1 {
		t.Errorf("%d Databricks jobs on dev, want 1", n)
	}
	f.checkDAGs(t, f.dags, "demo__orders_dag.py", want["airflow-dev"])
	for _, fab := range []string{"local-a", "local-b", "local-c"} {
		root := filepath.Join(f.root, "fabrics", fab)
		f.checkOneFile(t, filepath.Join(root, "jobs"), "demo__daily_orders.json", want[fab])
		f.checkDAGs(t, filepath.Join(root, "dags"), "demo__orders_dag.py", want[fab])
	}
	for fab, v := range want {
		var st workflows.FabricState
		query(ctx, t, c, workflows.FabricID(project, fab), &st)
		if len(st.Queue) != 0 {
			t.Errorf("fabric %s still has a queue: %+v", fab, st.Queue)
		}
		for _, j := range st.Jobs {
			if j.Version != v {
				t.Errorf("fabric %s records job %s at %s, want %s", fab, j.Job, j.Version, v)
			}
		}
	}

	// 11. Every artifact on every fabric has the checksum its deployment built.
	checked := 0
	for _, d := range deploys {
		st := final[d.id]
		for _, fab := range st.Fabrics {
			for p, b := range st.Builds {
				if fab == "airflow-dev" { // uploads to its artifact_fabric, dev
					continue
				}
				var data []byte
				var ok bool
				if fab == "dev" {
					data, ok = f.emu.File(volume + "/" + project + "/" + st.Version + "/" + p + "/" + b.File)
				} else {
					data, ok = readFile(filepath.Join(f.root, "fabrics", fab, "artifacts", project, st.Version, p, b.File))
				}
				if !ok {
					t.Errorf("artifact %s/%s/%s missing on %s", st.Version, p, b.File, fab)
					continue
				}
				if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != b.SHA256 || int64(len(data)) != b.Size {
					t.Errorf("artifact %s/%s/%s on %s: sha256 %x (%d bytes), deployment built %s (%d bytes)",
						st.Version, p, b.File, fab, sum, len(data), b.SHA256, b.Size)
				}
				checked++
			}
		}
	}
	phase("%d artifacts match their builds' checksums", checked)

	// 12. The killed worker comes back; the other one is SIGKILLed while it
	// uploads to Databricks (uploads answer slowly for a while).
	back := startWorker(ctx, t, e, f, victim.name)
	back.waitReady(t, 2*time.Minute)
	workers = []*workerProc{survivor, back}
	phase("%s restarted (pid %d)", back.name, back.pid())
	f.changePipelines(t, "v1.3.0")
	f.cli(t, 0, "release", "v1.3.0", "--project", project, "--as", "alice", "--no-deploy", "--wait")
	f.emu.Inject(dbemu.Fault{Method: "PUT", Path: "/api/2.0/fs/files/Volumes/*", Latency: 8 * time.Second})
	var res struct {
		WorkflowID string `json:"workflow_id"`
	}
	out := f.cli(t, 0, "--output", "json", "deploy", "v1.3.0", "--project", project, "--as", "bob")
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.WorkflowID == "" {
		t.Fatalf("deploy output: %v\n%s", err, out)
	}
	uctx, stopUploads := context.WithCancel(ctx)
	defer stopUploads()
	up := startSampler(uctx, c, workers, []string{res.WorkflowID}).pickVictim(t, "Upload", 0, time.Second, 3*time.Minute)
	up.worker.kill(t)
	killedAt = time.Now()
	f.emu.ClearFaults()
	stopUploads()
	phase("SIGKILLed %s (pid %d) while it ran %s of %s (attempt %d, started %s ago)",
		up.worker.name, up.worker.pid(), up.activity, up.workflowID, up.attempt, up.runningFor.Round(100*time.Millisecond))
	st := waitDeploy(ctx, t, c, res.WorkflowID, 5*time.Minute)
	phase("deploy of v1.3.0 ended %s after the kill: %s", time.Since(killedAt).Round(time.Second), st.Status)
	if st.Status != workflows.StatusSucceeded {
		t.Errorf("deploy %s: %s — %s", res.WorkflowID, st.Status, st.Summary)
		if st.Parked != nil {
			t.Fatalf("  parked at %s: %s", st.Parked.Step, st.Parked.Reason)
		}
		t.FailNow()
	}
	for _, s := range activityStarts(ctx, t, c, res.WorkflowID) {
		if s.activityID == up.activityID {
			if w := workerOf(workers, s.identity); w == up.worker || s.attempt < 2 {
				t.Errorf("killed upload %s finished on %s in attempt %d; want the other worker, attempt ≥ 2", s.activityID, s.identity, s.attempt)
			}
			phase("killed upload finished on %s in attempt %d", workerName(workers, s.identity), s.attempt)
		}
	}
	jobs = f.emu.JobsTagged(map[string]string{"shipline_project": project, "shipline_job": "daily_orders"})
	if len(jobs) != 1 || jobs[0].Tags()["shipline_version"] != "v1.3.0" {
		t.Errorf("after the upload kill: %d Databricks jobs for daily_orders (want 1, at v1.3.0)", len(jobs))
	}
	f.checkDAGs(t, f.dags, "demo__orders_dag.py", "v1.3.0")
	for p, b := range st.Builds {
		path := volume + "/" + project + "/v1.3.0/" + p + "/" + b.File
		data, ok := f.emu.File(path)
		if sum := sha256.Sum256(data); !ok || hex.EncodeToString(sum[:]) != b.SHA256 {
			t.Errorf("artifact %s on dev: present %v, sha256 %x, built %s", path, ok, sum, b.SHA256)
		}
	}
	n := 0
	for _, path := range f.emu.Files() {
		if strings.HasPrefix(path, volume+"/"+project+"/v1.3.0/") {
			n++
		}
	}
	if n != len(st.Builds) {
		t.Errorf("%d files under v1.3.0 on the volume, want %d (one per pipeline)", n, len(st.Builds))
	}
	phase("v1.3.0: one job, %d artifacts with their builds' checksums", n)

	// The killed worker's build tools were in their own process group: report
	// any still running (they are not Shipline's to clean up once the worker died).
	var live []int
	for _, w := range workers {
		if w.alive() {
			live = append(live, w.pid())
		}
	}
	if orphans := orphanBuilds(f.root, live); len(orphans) > 0 {
		t.Logf("note: build processes left running by the killed worker: %v", orphans)
	}
	phase("PASS in %s", time.Since(t0).Round(time.Second))
}

// --- Temporal ---------------------------------------------------------------

func registerNamespace(ctx context.Context, t testing.TB, e env) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := func() error {
			nc, err := client.NewNamespaceClient(client.Options{HostPort: e.address})
			if err != nil {
				return err
			}
			defer nc.Close()
			err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
				Namespace:                        e.namespace,
				Description:                      "Shipline cluster test",
				WorkflowExecutionRetentionPeriod: durationpb.New(30 * 24 * time.Hour), // as docker/temporal/create-namespace.sh
			})
			var exists *serviceerror.NamespaceAlreadyExists
			if errors.As(err, &exists) {
				return nil
			}
			return err
		}()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("register namespace %s at %s: %v", e.namespace, e.address, err)
		}
		time.Sleep(time.Second)
	}
}

// dial connects once the namespace is visible to the frontend.
func dial(ctx context.Context, t testing.TB, e env) client.Client {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := client.DialContext(ctx, client.Options{HostPort: e.address, Namespace: e.namespace})
		if err == nil {
			_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: e.namespace})
			if err == nil {
				return c
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s namespace %s: %v", e.address, e.namespace, err)
		}
		time.Sleep(time.Second)
	}
}

func query(ctx context.Context, t *testing.T, c client.Client, id string, out any) {
	t.Helper()
	var err error
	for range 30 {
		var v interface{ Get(any) error }
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err = c.QueryWorkflow(qctx, id, "", workflows.StateQuery)
		if err == nil {
			err = v.Get(out)
		}
		cancel()
		if err == nil {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("query %s: %v", id, err)
}

// waitDeploy polls a deployment's state until it ends (succeeded, failed,
// refused, cancelled) or parks, and returns it.
func waitDeploy(ctx context.Context, t *testing.T, c client.Client, id string, limit time.Duration) workflows.DeployState {
	t.Helper()
	deadline := time.Now().Add(limit)
	var st workflows.DeployState
	var err error
	for time.Now().Before(deadline) {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var v interface{ Get(any) error }
		v, err = c.QueryWorkflow(qctx, id, "", workflows.StateQuery)
		if err == nil {
			err = v.Get(&st)
		}
		cancel()
		if err == nil {
			switch st.Status {
			case workflows.StatusSucceeded, workflows.StatusFailed, workflows.StatusRefused,
				workflows.StatusCancelled, workflows.StatusParked:
				return st
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("deploy %s did not end within %s: status %q (%s), last error %v", id, limit, st.Status, st.Summary, err)
	return st
}

type runningActivity struct {
	workflowID, activityID, activity string
	attempt                          int32
	runningFor                       time.Duration
	worker                           *workerProc
}

// sampler polls the deployments' pending activities and records which
// worker runs which activity (history keeps only each activity's last
// attempt, so a killed worker's attempts appear only here).
type sampler struct {
	mu      sync.Mutex
	running map[string]runningActivity            // workflow/activity → latest observation
	seen    map[string]map[string]map[string]bool // worker → workflow → "type#id/attempt"
}

func startSampler(ctx context.Context, c client.Client, workers []*workerProc, ids []string) *sampler {
	s := &sampler{running: map[string]runningActivity{}, seen: map[string]map[string]map[string]bool{}}
	go func() {
		for ctx.Err() == nil {
			now := map[string]runningActivity{}
			for _, id := range ids {
				d, err := c.DescribeWorkflowExecution(ctx, id, "")
				if err != nil {
					continue
				}
				for _, pa := range d.GetPendingActivities() {
					if pa.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED {
						continue
					}
					w := workerOf(workers, pa.GetLastWorkerIdentity())
					if w == nil {
						continue
					}
					a := runningActivity{workflowID: id, activityID: pa.GetActivityId(), activity: pa.GetActivityType().GetName(),
						attempt: pa.GetAttempt(), runningFor: time.Since(pa.GetLastStartedTime().AsTime()), worker: w}
					now[id+"/"+a.activityID] = a
				}
			}
			s.mu.Lock()
			s.running = now
			for _, a := range now {
				if s.seen[a.worker.name] == nil {
					s.seen[a.worker.name] = map[string]map[string]bool{}
				}
				if s.seen[a.worker.name][a.workflowID] == nil {
					s.seen[a.worker.name][a.workflowID] = map[string]bool{}
				}
				s.seen[a.worker.name][a.workflowID][fmt.Sprintf("%s#%s/%d", a.activity, a.activityID, a.attempt)] = true
			}
			s.mu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
	}()
	return s
}

// deploysOn returns, per worker, how many deployments it was seen running
// activities for, and how many activity attempts.
func (s *sampler) deploysOn() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for w, byWF := range s.seen {
		n := 0
		for _, acts := range byWF {
			n += len(acts)
		}
		out[w] = fmt.Sprintf("%d deploys, %d activity attempts", len(byWF), n)
	}
	return out
}

// pickVictim waits until both workers have been seen running activities of
// the deployments (or spreadWait passes) and an activity of the given type
// has run for at least minAge, and returns it and its worker.
func (s *sampler) pickVictim(t *testing.T, activity string, spreadWait, minAge, limit time.Duration) runningActivity {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		s.mu.Lock()
		spread := len(s.seen) >= 2 || time.Since(start) > spreadWait
		var pick *runningActivity
		for _, a := range s.running {
			if a.activity == activity && a.runningFor >= minAge && (pick == nil || a.runningFor > pick.runningFor) {
				pick = &a
			}
		}
		s.mu.Unlock()
		if spread && pick != nil {
			return *pick
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %s activity ran for %s within %s", activity, minAge, limit)
	return runningActivity{}
}

func workerOf(ws []*workerProc, identity string) *workerProc {
	for _, w := range ws {
		if w.owns(identity) {
			return w
		}
	}
	return nil
}

type activityStart struct {
	activityID, activityType, identity string
	attempt                            int32
}

// activityStarts lists the ActivityTaskStarted events of a workflow with the
// scheduled activity's ID and type.
func activityStarts(ctx context.Context, t *testing.T, c client.Client, id string) []activityStart {
	t.Helper()
	scheduled := map[int64]*historypb.ActivityTaskScheduledEventAttributes{}
	var out []activityStart
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", id, err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = a
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			s := scheduled[a.GetScheduledEventId()]
			out = append(out, activityStart{activityID: s.GetActivityId(), activityType: s.GetActivityType().GetName(),
				identity: a.GetIdentity(), attempt: a.GetAttempt()})
		}
	}
	return out
}

// --- workers ----------------------------------------------------------------

type workerProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startWorker(ctx context.Context, t *testing.T, e env, f *fixture, name string) *workerProc {
	t.Helper()
	f.starts[name]++
	logPath := filepath.Join(e.dir, fmt.Sprintf("%s-%d.log", name, f.starts[name]))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(e.bin, "shipline-worker"), "--config", f.platform[name], "--log-format", "json"}
	if e.separateState {
		args = isolate(t, args, f.otherStates(name))
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = f.root
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+e.address, "TEMPORAL_NAMESPACE="+e.namespace, tokenEnv+"="+token)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	w := &workerProc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(w.done)
	}()
	t.Cleanup(func() {
		if w.alive() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-w.done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-w.done
			}
		}
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			lines = lines[max(0, len(lines)-20):]
			for i, l := range lines {
				if len(l) > 600 {
					lines[i] = l[:600] + " …"
				}
			}
			t.Logf("last lines of %s (%s):\n%s", name, logPath, strings.Join(lines, "\n"))
		}
	})
	return w
}

// isolate makes the worker command unable to see the other workers' state
// directories, as on separate machines: in a private mount namespace, an empty
// tmpfs covers each of them. The worker keeps its PID (unshare and sh exec).
// It needs root (CAP_SYS_ADMIN) and unshare(1); without them the state
// directories are separate but readable by both workers.
func isolate(t *testing.T, args, hide []string) []string {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		t.Logf("note: not root or no unshare(1): workers' state directories are separate but not hidden from each other")
		return args
	}
	script := ""
	for i := range hide {
		script += fmt.Sprintf(`mount -t tmpfs shipline-hidden "$%d" && `, i+1)
	}
	script += fmt.Sprintf(`shift %d && exec "$@"`, len(hide))
	out := []string{unshare, "--mount", "--propagation", "private", "sh", "-c", script, "isolate"}
	out = append(out, hide...)
	return append(out, args...)
}

func (w *workerProc) pid() int { return w.cmd.Process.Pid }

func (w *workerProc) alive() bool {
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// identity is the SDK's default worker identity prefix, "<pid>@<host>@".
func (w *workerProc) identity() string { return strconv.Itoa(w.pid()) + "@" }

func (w *workerProc) owns(identity string) bool { return strings.HasPrefix(identity, w.identity()) }

func workerName(ws []*workerProc, identity string) string {
	for _, w := range ws {
		if w.owns(identity) {
			return w.name
		}
	}
	return identity
}

func (w *workerProc) waitReady(t *testing.T, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if data, _ := os.ReadFile(w.log); bytes.Contains(data, []byte("shipline worker ready:")) {
			return
		}
		if !w.alive() {
			data, _ := os.ReadFile(w.log)
			t.Fatalf("worker %s exited before it was ready:\n%s", w.name, data)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("worker %s not ready after %s", w.name, limit)
}

func (w *workerProc) kill(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", w.name, err)
	}
	<-w.done
}

// orphanBuilds lists processes whose working directory is under root and
// that are not children of a live worker.
func orphanBuilds(root string, live []int) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || !strings.HasPrefix(cwd, root+string(filepath.Separator)) {
			continue
		}
		if slices.Contains(live, ppid(pid)) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(strings.TrimSpace(string(cmdline)), "\x00", " ")))
	}
	return out
}

func ppid(pid int) int {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(fields[1])
	return n
}

// --- project, fabrics, CLI -----------------------------------------------------

type fixture struct {
	e        env
	root     string
	remote   string
	work     string
	dags     string
	emu      *dbemu.Emulator
	platform map[string]string // worker name → its platform.yaml
	state    map[string]string // worker name → its state_dir
	starts   map[string]int    // worker name → processes started
}

func newFixture(t *testing.T, e env) *fixture {
	t.Helper()
	f := &fixture{e: e, root: e.dir, platform: map[string]string{}, state: map[string]string{}, starts: map[string]int{}}
	f.emu = dbemu.Start(dbemu.Options{Volumes: []string{volume}, Tokens: []string{token}, Seed: 11})
	t.Cleanup(f.emu.Close)
	f.remote = filepath.Join(f.root, "remotes", "demo.git")
	f.work = filepath.Join(f.root, "work")
	f.dags = filepath.Join(f.root, "airflow", "dags")
	for _, d := range []string{f.remote, f.dags} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	git(t, f.remote, "init", "--bare", "-q", "-b", "main")
	copyTree(t, filepath.Join("..", "..", "examples", "demo"), f.work) // the fixture: examples/demo with
	copyTree(t, filepath.Join("..", "testdata", "project"), f.work)    // test/testdata/project laid over it
	git(t, f.work, "init", "-q", "-b", "main")
	git(t, f.work, "add", ".")
	git(t, f.work, "commit", "-q", "-m", "demo project")
	git(t, f.work, "push", "-q", f.remote, "main")

	for _, name := range []string{"w1", "w2"} {
		state := filepath.Join(f.root, "state")
		if e.separateState {
			state = filepath.Join(f.root, "state-"+name)
		}
		cfg := fmt.Sprintf(`# written by test/cluster for worker %s
temporal: {namespace: %s, task_queue: shipline}
state_dir: %s
teams:
  developers: {members: [alice, bob]}
projects:
  demo: {repo: %s, admins: [alice], auto_deploy: true}
fabrics:
  dev:         {kind: databricks, owner: developers, host: %s, token_env: %s, artifact_root: %s, pause_schedules: true}
  airflow-dev: {kind: airflow, owner: developers, dags_folder: %s, artifact_fabric: dev}
  local-a:     {kind: local, owner: developers, root: %s}
  local-b:     {kind: local, owner: developers, root: %s}
  local-c:     {kind: local, owner: developers, root: %s}
`, name, e.namespace, state, f.remote, f.emu.URL, tokenEnv, volume, f.dags,
			filepath.Join(f.root, "fabrics", "local-a"), filepath.Join(f.root, "fabrics", "local-b"), filepath.Join(f.root, "fabrics", "local-c"))
		path := filepath.Join(f.root, "platform-"+name+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		f.platform[name] = path
		f.state[name] = state
		if err := os.MkdirAll(state, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// otherStates lists the state directories of the workers other than name.
func (f *fixture) otherStates(name string) []string {
	var out []string
	for w := range f.platform {
		if w != name {
			out = append(out, f.state[w])
		}
	}
	return out
}

// changePipelines changes every pipeline's sources (so nothing is cached) and
// adds a slow Python test, commits and pushes.
func (f *fixture) changePipelines(t *testing.T, version string) {
	t.Helper()
	for _, p := range []string{"ingest_orders", "score_churn"} {
		write(t, filepath.Join(f.work, "pipelines", p, "tests", "test_slow.py"), fmt.Sprintf(
			"import time\n\n\ndef test_takes_a_while():\n    # %s: long enough to kill the worker mid-build\n    time.sleep(%g)\n",
			version, slowTest.Seconds()))
	}
	java := filepath.Join(f.work, "pipelines", "enrich", "src", "main", "java", "demo", "Enrich.java")
	data, err := os.ReadFile(java)
	if err != nil {
		t.Fatal(err)
	}
	write(t, java, string(data)+"// "+version+"\n")
	git(t, f.work, "add", ".")
	git(t, f.work, "commit", "-q", "-m", "pipelines for "+version)
	git(t, f.work, "push", "-q", f.remote, "main")
}

// cli runs bin/shipline against the cluster and checks its exit code.
func (f *fixture) cli(t *testing.T, wantCode int, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(f.e.bin, "shipline"), append([]string{"--address", f.e.address, "--namespace", f.e.namespace}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("shipline %s: %v", strings.Join(args, " "), err)
	}
	if code != wantCode {
		t.Fatalf("shipline %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, wantCode, out.String(), errb.String())
	}
	return out.String()
}

// checkOneFile checks that dir holds name, naming version, and nothing else
// (no second copy, no temporary file left behind).
func (f *fixture) checkOneFile(t *testing.T, dir, name, version string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	var names []string
	for _, e := range entries {
		if e.Name() != "__pycache__" {
			names = append(names, e.Name())
		}
	}
	if !slices.Equal(names, []string{name}) {
		t.Errorf("%s holds %v, want exactly [%s]", dir, names, name)
		return
	}
	data, _ := os.ReadFile(filepath.Join(dir, name))
	if !bytes.Contains(data, []byte(version)) {
		t.Errorf("%s/%s does not name %s", dir, name, version)
	}
}

func (f *fixture) checkDAGs(t *testing.T, dir, name, version string) {
	t.Helper()
	f.checkOneFile(t, dir, name, version)
}

func git(t testing.TB, dir string, args ...string) { testkit.Git(t, dir, args...) }

func copyTree(t *testing.T, src, dst string) { testkit.CopyTree(t, src, dst) }

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(path string) ([]byte, bool) {
	data, err := os.ReadFile(path)
	return data, err == nil
}
