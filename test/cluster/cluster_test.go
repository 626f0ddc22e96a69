// Package cluster is Shipline's end-to-end test on a real Temporal cluster:
// temporal-server built from its Go module, on PostgreSQL, with two
// shipline-worker processes that share nothing but Temporal and an S3 bucket
// (SeaweedFS, test/s3server). test/cluster/run.sh (make cluster-test) starts
// PostgreSQL and the server and then runs TestCluster with SHIPLINE_CLUSTER=1;
// without it (plain `go test ./...`) the test is skipped.
package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/test/s3server"
	"github.com/shipline/shipline/test/testkit"
	"github.com/shipline/shipline/workflows"
)

const (
	volume   = "/Volumes/main/shipline/artifacts"
	tokenEnv = "SHIPLINE_CLUSTER_DEV_TOKEN"
	token    = "dapi-cluster-test"
	project  = "demo"
	// bucket and prefix: where the workers' shared storage lives in SeaweedFS.
	bucket, prefix = "shipline", "cluster"
	// secretEnv holds the internal message secret: workers that share no
	// state_dir need the same one (internal_auth).
	secretEnv = "SHIPLINE_CLUSTER_INTERNAL_SECRET"
)

// env is what run.sh hands the test.
type env struct {
	address, namespace, bin, dir string
}

func clusterEnv(t testing.TB) env {
	if os.Getenv("SHIPLINE_CLUSTER") != "1" {
		t.Skip("cluster test: run test/cluster/run.sh (make cluster-test), which starts PostgreSQL and temporal-server and sets SHIPLINE_CLUSTER=1")
	}
	e := env{
		address:   os.Getenv("SHIPLINE_CLUSTER_ADDRESS"),
		namespace: os.Getenv("SHIPLINE_CLUSTER_NAMESPACE"),
		bin:       os.Getenv("SHIPLINE_CLUSTER_BIN"),
		dir:       os.Getenv("SHIPLINE_CLUSTER_DIR"),
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

	// 2. The object store the workers share: SeaweedFS's S3 gateway.
	if _, err := s3server.Binary(); err != nil {
		t.Fatalf("the cluster test needs SeaweedFS: %v", err)
	}
	s3 := s3server.Start(t, s3server.Options{Bucket: bucket, Dir: filepath.Join(e.dir, "seaweedfs")})
	phase("SeaweedFS S3 on %s, bucket %s", s3.Endpoint, s3.Bucket)

	// 3. A project remote, two emulated Databricks workspaces, local fabrics.
	f := newFixture(t, e, s3)

	// 4. Two workers, not --dev, each with its own state_dir.
	w1 := startWorker(ctx, t, e, f, "w1")
	w2 := startWorker(ctx, t, e, f, "w2")
	w1.waitReady(t, 2*time.Minute)
	w2.waitReady(t, 2*time.Minute)
	workers := []*workerProc{w1, w2}
	phase("workers ready: %s (pid %d), %s (pid %d)", w1.name, w1.pid(), w2.name, w2.pid())

	// 5. Release v1.0.0; auto_deploy deploys it to dev + airflow-dev.
	f.cli(t, 0, "release", "v1.0.0", "--project", project, "--as", "alice", "--wait")
	first := waitDeploy(ctx, t, c, workflows.DeployID(project, "v1.0.0", "release"), 3*time.Minute)
	if first.Status != workflows.StatusSucceeded {
		t.Fatalf("release deploy of v1.0.0: %s (%s)", first.Status, first.Summary)
	}
	phase("v1.0.0 released and deployed to %v", first.Fabrics)

	// 6. Two more versions whose pipelines all change (no cache hits) and
	// whose Python tests wait for a gate the test opens once it has killed a
	// worker in a build. Their releases start at once; the concurrent deploys
	// (two fabrics' queues: dev/airflow-dev gets v1.1.0 then v1.2.0; three
	// local fabrics in parallel) start once both are tagged. The builds run
	// in the releases or in the deploys, whichever builds first.
	commit11 := f.changePipelines(t, "v1.1.0")
	commit12 := f.changePipelines(t, "v1.2.0")
	releases := []string{workflows.ReleaseID(project, "v1.1.0"), workflows.ReleaseID(project, "v1.2.0")}
	f.cli(t, 0, "release", "v1.1.0", "--project", project, "--ref", commit11, "--as", "alice", "--no-deploy")
	f.cli(t, 0, "release", "v1.2.0", "--project", project, "--ref", commit12, "--as", "alice", "--no-deploy")
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
	sctx, stopSampler := context.WithCancel(ctx)
	defer stopSampler()
	samples := startSampler(sctx, c, workers, releases)
	deploysStarted := make(chan error, 1)
	go func() {
		deploysStarted <- func() error {
			for _, id := range releases {
				if st, err := waitRelease(ctx, c, id, 8*time.Minute); err != nil {
					return err
				} else if st.Status != workflows.StatusReleased {
					return fmt.Errorf("release %s: %s (%s)", id, st.Status, st.Summary)
				}
			}
			for _, d := range deploys {
				id, err := f.startDeploy(d.version, d.args...)
				if err != nil {
					return err
				}
				d.id = id
				samples.watch(id)
			}
			return nil
		}()
	}()

	// 7. SIGKILL a worker while it runs a build (held at the gate), then open it.
	act := samples.pickVictim(t, "Pipeline", 30*time.Second, time.Second, 5*time.Minute, deploysStarted)
	victim, survivor := act.worker, w1
	if victim == w1 {
		survivor = w2
	}
	phase("seen running so far: %v", samples.deploysOn())
	victim.kill(t)
	killedAt := time.Now()
	f.openGate(t)
	phase("SIGKILLed %s (pid %d) while it ran %s of %s (attempt %d, started %s ago); gate opened",
		victim.name, victim.pid(), act.activity, act.workflowID, act.attempt, act.runningFor.Round(100*time.Millisecond))
	select {
	case err := <-deploysStarted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Minute):
		t.Fatal("releases v1.1.0 and v1.2.0 not tagged within 10 minutes of the kill")
	}
	phase("v1.1.0 and v1.2.0 released; %d deploys started", len(deploys))
	ids := append([]string{workflows.DeployID(project, "v1.0.0", "release")}, releases...)
	for _, d := range deploys {
		ids = append(ids, d.id)
	}

	// 8. Every deploy completes.
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

	// 12. The artifacts went through the shared store: the bucket holds
	// each one, byte for byte (whatever its key), under the prefix.
	f.checkStored(ctx, t, s3, final)

	// 13. The killed worker comes back; the other one is SIGKILLed while it
	// uploads to Databricks: the emulator holds the first upload until the
	// worker is dead.
	back := startWorker(ctx, t, e, f, victim.name)
	back.waitReady(t, 2*time.Minute)
	workers = []*workerProc{survivor, back}
	phase("%s restarted (pid %d)", back.name, back.pid())
	commit13 := f.changePipelines(t, "v1.3.0")
	f.cli(t, 0, "release", "v1.3.0", "--project", project, "--ref", commit13, "--as", "alice", "--no-deploy", "--wait")
	hold, holding := make(chan struct{}), make(chan string, 1)
	f.emu.Inject(dbemu.Fault{Method: "PUT", Path: "/api/2.0/fs/files" + volume + "/*", Hold: hold, Holding: holding, Times: 1})
	deployID, err := f.startDeploy("v1.3.0")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case path := <-holding:
		phase("upload of %s held", path)
	case <-time.After(5 * time.Minute):
		t.Fatal("no upload to the dev volume within 5 minutes")
	}
	up := heldUpload(ctx, t, c, workers, deployID)
	up.worker.kill(t)
	killedAt = time.Now()
	close(hold)
	f.emu.ClearFaults()
	phase("SIGKILLed %s (pid %d) while it ran %s of %s (attempt %d), its upload held",
		up.worker.name, up.worker.pid(), up.activity, up.workflowID, up.attempt)
	st := waitDeploy(ctx, t, c, deployID, 5*time.Minute)
	phase("deploy of v1.3.0 ended %s after the kill: %s", time.Since(killedAt).Round(time.Second), st.Status)
	if st.Status != workflows.StatusSucceeded {
		t.Errorf("deploy %s: %s — %s", deployID, st.Status, st.Summary)
		if st.Parked != nil {
			t.Fatalf("  parked at %s: %s", st.Parked.Step, st.Parked.Reason)
		}
		t.FailNow()
	}
	for _, s := range activityStarts(ctx, t, c, deployID) {
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

// waitRelease polls a release's state until it is tagged (released) or
// ends otherwise, and returns it.
func waitRelease(ctx context.Context, c client.Client, id string, limit time.Duration) (workflows.ReleaseState, error) {
	deadline := time.Now().Add(limit)
	var st workflows.ReleaseState
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
			case workflows.StatusReleased, workflows.StatusFailed, workflows.StatusRefused,
				workflows.StatusCancelled, workflows.StatusParked, workflows.StatusDeleted:
				return st, nil
			}
		}
		time.Sleep(time.Second)
	}
	return st, fmt.Errorf("release %s did not end within %s: status %q (%s), last error %v", id, limit, st.Status, st.Summary, err)
}

// heldUpload returns the Upload activity of deployment id whose call the
// emulator holds: once the deployment's other uploads have ended, the only
// Upload still started (the held call cannot end until the test releases it).
func heldUpload(ctx context.Context, t *testing.T, c client.Client, workers []*workerProc, id string) runningActivity {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last []string
	for time.Now().Before(deadline) {
		d, err := c.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			t.Fatalf("describe %s: %v", id, err)
		}
		var started []runningActivity
		last = last[:0]
		for _, pa := range d.GetPendingActivities() {
			if pa.GetActivityType().GetName() != "Upload" {
				continue
			}
			last = append(last, fmt.Sprintf("%s#%s %s on %s", pa.GetActivityType().GetName(), pa.GetActivityId(), pa.GetState(), pa.GetLastWorkerIdentity()))
			if w := workerOf(workers, pa.GetLastWorkerIdentity()); w != nil && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
				started = append(started, runningActivity{workflowID: id, activityID: pa.GetActivityId(), activity: pa.GetActivityType().GetName(),
					attempt: pa.GetAttempt(), runningFor: time.Since(pa.GetLastStartedTime().AsTime()), worker: w})
			}
		}
		if len(started) == 1 && len(last) == 1 {
			return started[0]
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no single started Upload activity in %s while its call is held: %v", id, last)
	return runningActivity{}
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
	ids     []string                              // workflows watched
	running map[string]runningActivity            // workflow/activity → latest observation
	seen    map[string]map[string]map[string]bool // worker → workflow → "type#id/attempt"
}

func startSampler(ctx context.Context, c client.Client, workers []*workerProc, ids []string) *sampler {
	s := &sampler{ids: slices.Clone(ids), running: map[string]runningActivity{}, seen: map[string]map[string]map[string]bool{}}
	go func() {
		for ctx.Err() == nil {
			now := map[string]runningActivity{}
			s.mu.Lock()
			ids := slices.Clone(s.ids)
			s.mu.Unlock()
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

// watch adds a workflow to the sampled ones.
func (s *sampler) watch(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = append(s.ids, id)
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
// the workflows (or spreadWait passes) and an activity of the given type has
// run for at least minAge, and returns it and its worker. An error from
// failed fails the test at once; a nil from it is put back.
func (s *sampler) pickVictim(t *testing.T, activity string, spreadWait, minAge, limit time.Duration, failed chan error) runningActivity {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		select {
		case err := <-failed:
			if err != nil {
				t.Fatalf("while waiting for a %s activity: %v", activity, err)
			}
			failed <- nil
		default:
		}
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
	args = isolate(t, args, f.otherStates(name))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = f.root
	// The S3 identity comes from the environment, as for any AWS SDK client;
	// nothing from the machine's AWS configuration.
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+e.address, "TEMPORAL_NAMESPACE="+e.namespace, tokenEnv+"="+token,
		"AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull, "AWS_EC2_METADATA_DISABLED=true")
	cmd.Env = append(cmd.Env, f.s3.Env()...)
	cmd.Env = append(cmd.Env, secretEnv+"="+f.secret)
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
// that are not children of a live worker (nor of the test: SeaweedFS).
func orphanBuilds(root string, live []int) []string {
	live = append(live, os.Getpid())
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
	gate     string // the slow Python tests wait until this file exists
	s3       *s3server.Server
	secret   string // internal_auth's secret, the same for every worker
	emu      *dbemu.Emulator
	platform map[string]string // worker name → its platform.yaml
	state    map[string]string // worker name → its state_dir
	starts   map[string]int    // worker name → processes started
}

// newFixture writes each worker's platform.yaml: its own state_dir, and
// the store they share, a prefix of s3's bucket.
func newFixture(t *testing.T, e env, s3 *s3server.Server) *fixture {
	t.Helper()
	f := &fixture{e: e, root: e.dir, s3: s3, platform: map[string]string{}, state: map[string]string{}, starts: map[string]int{}}
	storage := s3.StorageURL(prefix)
	f.gate = filepath.Join(f.root, "gates", "builds")
	f.secret = rand.Text() + rand.Text()
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
		state := filepath.Join(f.root, "state-"+name)
		cfg := fmt.Sprintf(`# written by test/cluster for worker %s
temporal: {namespace: %s, task_queue: shipline}
state_dir: %s
storage: %q
internal_auth: {secret_env: %s}
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
`, name, e.namespace, state, storage, secretEnv, f.remote, f.emu.URL, tokenEnv, volume, f.dags,
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

// changePipelines changes every pipeline's sources (so nothing is cached),
// adds a Python test that waits for the gate (f.openGate), commits and
// pushes; it returns the commit.
func (f *fixture) changePipelines(t *testing.T, version string) string {
	t.Helper()
	for _, p := range []string{"ingest_orders", "score_churn"} {
		write(t, filepath.Join(f.work, "pipelines", p, "tests", "test_slow.py"), fmt.Sprintf(`import os
import time

GATE = %q


def test_waits_for_the_gate():
    # %s: the cluster test kills a worker while this build waits, then opens the gate.
    deadline = time.monotonic() + 900
    while not os.path.exists(GATE):
        assert time.monotonic() < deadline, "the cluster test never opened " + GATE
        time.sleep(0.2)
`, f.gate, version))
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
	return git(t, f.work, "rev-parse", "HEAD")
}

// openGate lets every waiting Python test (and every later one) pass.
func (f *fixture) openGate(t *testing.T) {
	t.Helper()
	write(t, f.gate, "open\n")
}

// startDeploy starts a deployment with the CLI and returns its workflow ID.
func (f *fixture) startDeploy(version string, args ...string) (string, error) {
	out, code, err := f.run(append([]string{"--output", "json", "deploy", version, "--project", project, "--as", "bob"}, args...)...)
	if err != nil || code != 0 {
		return "", fmt.Errorf("shipline deploy %s %v: exit %d, %v\n%s", version, args, code, err, out)
	}
	var res struct {
		WorkflowID string `json:"workflow_id"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.WorkflowID == "" {
		return "", fmt.Errorf("deploy output: %v\n%s", err, out)
	}
	return res.WorkflowID, nil
}

// checkStored checks that the shared store holds every artifact the
// deployments built, byte for byte, whatever its key under the prefix.
func (f *fixture) checkStored(ctx context.Context, t *testing.T, srv *s3server.Server, final map[string]workflows.DeployState) {
	t.Helper()
	stored := map[string]string{} // sha256 → key
	p := s3.NewListObjectsV2Paginator(srv.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket), Prefix: aws.String(prefix + "/")})
	objects := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list s3://%s/%s/: %v", srv.Bucket, prefix, err)
		}
		for _, o := range page.Contents {
			objects++
			key := aws.ToString(o.Key)
			if !strings.HasSuffix(key, ".whl") && !strings.HasSuffix(key, ".jar") {
				continue
			}
			out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: o.Key})
			if err != nil {
				t.Fatalf("get %s: %v", key, err)
			}
			h := sha256.New()
			_, err = io.Copy(h, out.Body)
			out.Body.Close()
			if err != nil {
				t.Fatalf("read %s: %v", key, err)
			}
			stored[hex.EncodeToString(h.Sum(nil))] = key
		}
	}
	n := 0
	for id, st := range final {
		for p, b := range st.Builds {
			if _, ok := stored[b.SHA256]; !ok {
				t.Errorf("%s: artifact %s of %s (sha256 %s) is not in s3://%s/%s/", id, b.File, p, b.SHA256, srv.Bucket, prefix)
			}
			n++
		}
	}
	t.Logf("s3://%s/%s/ holds %d objects; the %d artifacts the deployments used are among them", srv.Bucket, prefix, objects, n)
}

// cli runs bin/shipline against the cluster and checks its exit code.
func (f *fixture) cli(t *testing.T, wantCode int, args ...string) string {
	t.Helper()
	out, code, err := f.run(args...)
	if err != nil {
		t.Fatalf("shipline %s: %v", strings.Join(args, " "), err)
	}
	if code != wantCode {
		t.Fatalf("shipline %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out)
	}
	return out
}

// run runs bin/shipline against the cluster: its stdout (with stderr after
// it when it fails) and exit code. A command still running after cliLimit
// is killed and reported.
func (f *fixture) run(args ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cliLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(f.e.bin, "shipline"), append([]string{"--address", f.e.address, "--namespace", f.e.namespace}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String() + errb.String(), -1, fmt.Errorf("still running after %s; killed", cliLimit)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String() + errb.String(), exit.ExitCode(), nil
	}
	return out.String(), 0, err
}

// cliLimit bounds one CLI command (release --wait builds and tests).
const cliLimit = 6 * time.Minute

// checkOneFile checks that dir holds name, naming version, and nothing else
// (no second copy, no temporary file left behind).
func (f *fixture) checkOneFile(t *testing.T, dir, name, version string) {
	t.Helper()
	f.checkFiles(t, dir, name, version, nil)
}

// checkFiles checks that dir holds exactly name (naming version) and the
// entries of also, leaving out Python's __pycache__.
func (f *fixture) checkFiles(t *testing.T, dir, name, version string, also []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	var names []string
	for _, e := range entries {
		if e.Name() != "__pycache__" && !slices.Contains(also, e.Name()) {
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

// checkDAGs checks that a DAG folder holds exactly the DAG name (naming
// version) and, under .shipline/owners, the one record saying that the
// project owns its dag_id (the file's name without .py) — no second DAG, no
// leftover temporary file.
func (f *fixture) checkDAGs(t *testing.T, dir, name, version string) {
	t.Helper()
	f.checkFiles(t, dir, name, version, []string{".shipline"})
	dagID := strings.TrimSuffix(name, ".py")
	owners := filepath.Join(dir, ".shipline", "owners")
	entries, err := os.ReadDir(owners)
	if err != nil {
		t.Errorf("the ownership records of %s: %v", dir, err)
		return
	}
	if len(entries) != 1 || entries[0].Name() != dagID+".json" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%s holds %v, want exactly [%s.json]", owners, names, dagID)
		return
	}
	var rec struct {
		DagID   string `json:"dag_id"`
		Project string `json:"project"`
	}
	data, _ := os.ReadFile(filepath.Join(owners, dagID+".json"))
	if err := json.Unmarshal(data, &rec); err != nil || rec.DagID != dagID || rec.Project != project {
		t.Errorf("%s/%s.json = %s, want dag_id %s owned by project %s", owners, dagID, data, dagID, project)
	}
}

func git(t testing.TB, dir string, args ...string) string { return testkit.Git(t, dir, args...) }

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
