package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
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

	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/starter/cli"
	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/workflows"
)

// BenchmarkClusterWorkers measures deploys per minute on the PostgreSQL-backed
// cluster that run.sh starts, with one shipline-worker process and with two
// (CLUSTER_BENCH=1 test/cluster/run.sh, or make cluster-bench).
//
// The workload: P distinct projects (one Python pipeline, two Databricks jobs
// each) deploying to one emulated Databricks workspace that answers every API
// call after SHIPLINE_CLUSTER_BENCH_LATENCY (default 100ms, a typical
// Databricks REST round trip); every pipeline is in the build cache (a
// warm-up deploy builds the shared pipeline tree once), so the figures are
// orchestration, not `python3 -m build`. The workers share one state_dir (the
// build cache) and run with shipline-worker's defaults: the Temporal SDK's
// default worker options (2 pollers per task type, up to 1000 concurrent
// workflow and activity tasks) and --build-parallelism = the number of CPUs.
//
// After a warm-up round with one worker (reported, not counted), the rounds
// (SHIPLINE_CLUSTER_BENCH_WORKERS, default "1,2,1,2") each run
// SHIPLINE_CLUSTER_BENCH_DEPLOYS (default 20) deploys at once, started
// through the CLI's code (`shipline deploy`), with that many workers
// running; a round lasts from the first start to the last deploy's result.
// Alternating the worker count spreads a change of the machine's load over
// both. For each round it reads the CPU time each process used from /proc:
// the workers, temporal-server, PostgreSQL (postmaster and backends), this
// test process (CLI clients and the emulator), and the whole machine's busy
// time, so it shows which of them is the bottleneck.
//
// It fails only when a deployment fails or a job is duplicated.
func BenchmarkClusterWorkers(b *testing.B) {
	e := clusterEnv(b)
	counts, err := parseCounts(envOr("SHIPLINE_CLUSTER_BENCH_WORKERS", "1,2,1,2"))
	if err != nil {
		b.Fatal(err)
	}
	deploys, err := strconv.Atoi(envOr("SHIPLINE_CLUSTER_BENCH_DEPLOYS", "20"))
	if err != nil || deploys < 1 {
		b.Fatalf("SHIPLINE_CLUSTER_BENCH_DEPLOYS=%q: want a positive number", os.Getenv("SHIPLINE_CLUSTER_BENCH_DEPLOYS"))
	}
	latency, err := time.ParseDuration(envOr("SHIPLINE_CLUSTER_BENCH_LATENCY", "100ms"))
	if err != nil {
		b.Fatalf("SHIPLINE_CLUSTER_BENCH_LATENCY: %v", err)
	}
	for i := 0; i < b.N; i++ {
		runClusterBench(b, e, counts, deploys, latency)
	}
	b.ReportMetric(0, "ns/op")
}

type benchRound struct {
	workers int
	wall    time.Duration
	cpu     map[string]float64 // process group → CPU seconds
}

func (r benchRound) perMin(n int) float64 { return float64(n) / r.wall.Minutes() }

func runClusterBench(b *testing.B, e env, counts []int, deploys int, latency time.Duration) {
	ctx := context.Background()
	registerNamespace(ctx, b, e)
	c := dial(ctx, b, e)
	defer c.Close()

	maxWorkers := 0
	for _, n := range counts {
		maxWorkers = max(maxWorkers, n)
	}
	names := []string{"warm"}
	for i := 0; i < deploys*(1+len(counts)); i++ {
		names = append(names, fmt.Sprintf("b%03d", i+1))
	}
	f := newBenchFixture(b, e, names)
	workers := make([]*benchWorker, maxWorkers)
	workers[0] = f.startWorker(b, "w1")

	f.releaseAll(b, names, 4)
	warm := f.deploy(c, "warm")
	if warm.err != nil {
		b.Fatalf("warm-up deploy: %v", warm.err)
	}
	f.emu.Inject(dbemu.Fault{Latency: latency})

	// Round 0 warms the server, PostgreSQL and the worker up (its first
	// round ran markedly slower); it is reported, not counted.
	counts = append([]int{1}, counts...)
	var rounds []benchRound
	next := 1
	for _, n := range counts {
		for i := range workers {
			switch {
			case i < n && workers[i] == nil:
				workers[i] = f.startWorker(b, fmt.Sprintf("w%d", i+1))
			case i >= n && workers[i] != nil:
				workers[i].stop(b)
				workers[i] = nil
			}
		}
		before := sampleCPU(b, e, workers)
		start := time.Now()
		results := make([]*benchDeploy, deploys)
		var wg sync.WaitGroup
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = f.deploy(c, names[next+i])
			}()
		}
		wg.Wait()
		wall := time.Since(start)
		after := sampleCPU(b, e, workers)
		next += deploys
		for _, r := range results {
			if r.err != nil {
				b.Fatalf("deploy of %s (%s): %v", r.project, r.id, r.err)
			}
		}
		cpu := map[string]float64{}
		for k, v := range after {
			cpu[k] = v - before[k]
		}
		rounds = append(rounds, benchRound{workers: n, wall: wall, cpu: cpu})
		b.Logf("round %d: %d worker(s), %d deploys in %.2fs", len(rounds)-1, n, deploys, wall.Seconds())
	}
	for _, w := range workers {
		if w != nil {
			w.stop(b)
		}
	}
	if got, want := len(f.emu.Jobs()), 2*len(names); got != want {
		b.Fatalf("%d jobs in the emulator, want %d (one per project and job)", got, want)
	}

	// The report.
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format+"\n", args...) }
	w("")
	w("cluster benchmark: temporal-server + PostgreSQL, %d deploys at once per round (distinct projects, 1 pipeline from the build cache + 2 Databricks jobs each,", deploys)
	w("  emulator latency %s per API call); shipline-worker with its default options; %d CPUs on this machine", latency, numCPU())
	w("")
	groups := []string{"workers", "temporal-server", "postgresql", "test (CLI, emulator)", "machine busy", "others"}
	w("  round workers   wall s  deploys/min   CPU s: %s", strings.Join(groups, " | "))
	byCount := map[int][]float64{}
	for i, r := range rounds {
		if i == 0 {
			w("  (round 0, the warm-up with 1 worker: %.2fs, %.1f deploys/min; not counted)", r.wall.Seconds(), r.perMin(deploys))
			continue
		}
		var cells []string
		for _, g := range groups {
			cells = append(cells, fmt.Sprintf("%.1f", r.cpu[g]))
		}
		w("  %5d %7d %8.2f %12.1f   %s", i, r.workers, r.wall.Seconds(), r.perMin(deploys), strings.Join(cells, " | "))
		byCount[r.workers] = append(byCount[r.workers], r.wall.Seconds())
	}
	w("")
	rate := func(n int) float64 {
		total := 0.0
		for _, s := range byCount[n] {
			total += s
		}
		return float64(deploys*len(byCount[n])) / (total / 60)
	}
	if len(byCount[1]) > 0 && len(byCount[2]) > 0 {
		one, two := rate(1), rate(2)
		w("  one worker %.1f deploys/min, two workers %.1f deploys/min: %.2f× (target ≥ 1.6×: %s)", one, two, two/one, map[bool]string{true: "met", false: "MISSED"}[two >= 1.6*one])
		b.ReportMetric(one, "deploys/min-1w")
		b.ReportMetric(two, "deploys/min-2w")
		b.ReportMetric(two/one, "scaling")
	}
	w("  CPU seconds per deploy, by process (all rounds of a worker count):")
	for _, n := range sortedInts(byCount) {
		per := map[string]float64{}
		k := 0
		for _, r := range rounds[1:] {
			if r.workers == n {
				k++
				for g, v := range r.cpu {
					per[g] += v
				}
			}
		}
		var cells []string
		for _, g := range groups {
			cells = append(cells, fmt.Sprintf("%s %.3f", g, per[g]/float64(deploys*k)))
		}
		w("    %d worker(s): %s", n, strings.Join(cells, ", "))
	}
	// Where the bottleneck is: how busy the machine was, and how the
	// cluster's CPU per deploy splits between the worker(s) and the rest.
	var wall, busy, others, work, stack float64
	for _, r := range rounds[1:] {
		wall += r.wall.Seconds()
		busy += r.cpu["machine busy"]
		others += r.cpu["others"]
		work += r.cpu["workers"]
		stack += r.cpu["workers"] + r.cpu["temporal-server"] + r.cpu["postgresql"] + r.cpu["test (CLI, emulator)"]
	}
	cores := float64(numCPU())
	n := float64(deploys * (len(rounds) - 1))
	w("  the machine was %.0f%% busy during the rounds (%.0f%% of it by other processes than this benchmark's);", 100*busy/(wall*cores), 100*others/max(busy, 1e-9))
	w("  per deploy the cluster used %.3f CPU s, the worker(s) %.3f of it (%.0f%%): on %.0f cores of its own the whole cluster could do at most", stack/n, work/n, 100*work/max(stack, 1e-9), cores)
	w("  %.0f deploys/min, the workers alone %.0f — a second worker adds capacity only where the worker is what runs out", 60*cores/(stack/n), 60*cores/(work/n))
	b.Log(sb.String())
}

// ---- fixture ------------------------------------------------------------------

type benchFixture struct {
	e        env
	root     string
	platform string
	emu      *dbemu.Emulator
}

// newBenchFixture writes one remote per project (the same pipeline tree in
// each, so the build cache serves them all), one platform.yaml for every
// worker (a shared state_dir) and starts the emulator.
func newBenchFixture(b *testing.B, e env, names []string) *benchFixture {
	f := &benchFixture{e: e, root: filepath.Join(e.dir, "bench")}
	f.emu = dbemu.Start(dbemu.Options{Volumes: []string{volume}, Tokens: []string{token}, Seed: 7})
	b.Cleanup(f.emu.Close)
	work := filepath.Join(f.root, "work")
	files := map[string]string{
		"pipelines/ingest/pyproject.toml": "[build-system]\nrequires = [\"setuptools>=61\", \"wheel\"]\nbuild-backend = \"setuptools.build_meta\"\n\n" +
			"[project]\nname = \"ingest\"\nversion = \"1.0.0\"\nrequires-python = \">=3.9\"\n\n[tool.setuptools.packages.find]\nwhere = [\"src\"]\n",
		"pipelines/ingest/src/ingest/__init__.py": "",
		"pipelines/ingest/src/ingest/main.py":     "def main():\n    print(\"ingest\")\n",
	}
	for _, j := range []string{"daily", "hourly"} {
		def, _ := json.MarshalIndent(map[string]any{
			"name": "${project.name}-" + j,
			"job_clusters": []map[string]any{{"job_cluster_key": "main", "new_cluster": map[string]any{
				"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_D4ds_v5", "num_workers": 1}}},
			"tasks": []map[string]any{{"task_key": "ingest", "job_cluster_key": "main",
				"python_wheel_task": map[string]any{"package_name": "ingest", "entry_point": "main"},
				"libraries":         []map[string]string{{"whl": "${artifact.ingest}"}}}},
		}, "", "  ")
		files["jobs/"+j+"/job.json"] = string(def) + "\n"
	}
	for p, content := range files {
		write(b, filepath.Join(work, p), content)
	}
	git(b, work, "init", "-q", "-b", "main")
	var projects strings.Builder
	for _, name := range names {
		write(b, filepath.Join(work, "shipline.yaml"), fmt.Sprintf(`name: %s
pipelines:
  ingest: {path: pipelines/ingest, language: python}
jobs:
  daily: {scheduler: databricks, fabric: dev, pipelines: [ingest], definition: jobs/daily/job.json}
  hourly: {scheduler: databricks, fabric: dev, pipelines: [ingest], definition: jobs/hourly/job.json}
`, name))
		git(b, work, "add", ".")
		git(b, work, "commit", "-q", "-m", "project "+name)
		remote := filepath.Join(f.root, "remotes", name+".git")
		if err := os.MkdirAll(remote, 0o755); err != nil {
			b.Fatal(err)
		}
		git(b, remote, "init", "--bare", "-q", "-b", "main")
		git(b, work, "push", "-q", remote, "main")
		fmt.Fprintf(&projects, "  %s: {repo: %s, admins: [alice], auto_deploy: false}\n", name, remote)
	}
	f.platform = filepath.Join(f.root, "platform.yaml")
	write(b, f.platform, fmt.Sprintf(`# written by BenchmarkClusterWorkers
temporal: {namespace: %s, task_queue: shipline-bench}
state_dir: %s
teams:
  developers: {members: [alice]}
projects:
%sfabrics:
  dev: {kind: databricks, owner: developers, host: %s, token_env: %s, artifact_root: %s}
`, e.namespace, filepath.Join(f.root, "state"), projects.String(), f.emu.URL, tokenEnv, volume))
	return f
}

// cli runs the CLI's code in this process against the cluster.
func (f *benchFixture) cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	full := append([]string{"shipline", "--address", f.e.address, "--namespace", f.e.namespace, "--task-queue", "shipline-bench", "--as", "alice"}, args...)
	code := cli.Main(full, &out, &errb)
	return code, out.String(), errb.String()
}

func (f *benchFixture) releaseAll(b *testing.B, names []string, par int) {
	sem := make(chan struct{}, par)
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if code, out, errOut := f.cli("release", "v1.0.0", "--project", name, "--no-deploy", "--wait"); code != 0 {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("release of %s: exit %d\n%s%s", name, code, out, errOut))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		b.Fatal(strings.Join(failed, "\n"))
	}
}

type benchDeploy struct {
	project, id string
	err         error
}

// deploy starts `shipline deploy v1.0.0 --project P` and waits for the
// workflow's result; it never calls b.Fatal (it runs in goroutines).
func (f *benchFixture) deploy(c client.Client, project string) *benchDeploy {
	d := &benchDeploy{project: project}
	code, out, errOut := f.cli("--output", "json", "deploy", "v1.0.0", "--project", project)
	var started struct {
		WorkflowID string `json:"workflow_id"`
	}
	if err := json.Unmarshal([]byte(out), &started); code != 0 || err != nil || started.WorkflowID == "" {
		d.err = fmt.Errorf("start: exit %d (%v): %s%s", code, err, out, errOut)
		return d
	}
	d.id = started.WorkflowID
	var st workflows.DeployState
	if err := c.GetWorkflow(context.Background(), d.id, "").Get(context.Background(), &st); err != nil {
		d.err = err
	} else if st.Status != workflows.StatusSucceeded {
		d.err = fmt.Errorf("status %s: %s", st.Status, st.Summary)
	}
	return d
}

// ---- workers --------------------------------------------------------------------

type benchWorker struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (f *benchFixture) startWorker(b *testing.B, name string) *benchWorker {
	logPath := filepath.Join(f.root, name+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(f.e.bin, "shipline-worker"), "--config", f.platform, "--log-format", "json", "--log-level", "warn")
	cmd.Dir = f.root
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+f.e.address, "TEMPORAL_NAMESPACE="+f.e.namespace, tokenEnv+"="+token)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", name, err)
	}
	w := &benchWorker{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(w.done)
	}()
	b.Cleanup(func() { w.stop(b) })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if data, _ := os.ReadFile(logPath); bytes.Contains(data, []byte("shipline worker ready:")) {
			return w
		}
		select {
		case <-w.done:
			data, _ := os.ReadFile(logPath)
			b.Fatalf("worker %s exited before it was ready:\n%s", name, data)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("worker %s not ready after 2 minutes", name)
		}
	}
}

// stop ends the worker with SIGTERM (it finishes its tasks) and waits.
func (w *benchWorker) stop(b *testing.B) {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
		b.Logf("worker %s did not stop within 30s after SIGTERM: killed", w.name)
	}
}

// ---- CPU accounting ---------------------------------------------------------------

// sampleCPU reads the CPU seconds used so far by each process group: the
// running workers (with their waited-for children: git, build tools),
// temporal-server (SHIPLINE_CLUSTER_SERVER_PID), PostgreSQL (the postmaster
// SHIPLINE_CLUSTER_PG_PID with its exited and live backends), this process
// (with its children), and the machine (busy time of all CPUs, from
// /proc/stat); "others" is the machine's busy time not used by any of them.
func sampleCPU(b *testing.B, e env, workers []*benchWorker) map[string]float64 {
	out := map[string]float64{}
	for _, w := range workers {
		if w != nil {
			out["workers"] += procCPU(w.cmd.Process.Pid, true)
		}
	}
	if pid, err := strconv.Atoi(os.Getenv("SHIPLINE_CLUSTER_SERVER_PID")); err == nil {
		out["temporal-server"] = procCPU(pid, true)
	}
	if pid, err := strconv.Atoi(os.Getenv("SHIPLINE_CLUSTER_PG_PID")); err == nil {
		out["postgresql"] = procCPU(pid, true)
		for _, child := range childrenOf(pid) {
			out["postgresql"] += procCPU(child, false)
		}
	}
	out["test (CLI, emulator)"] = procCPU(os.Getpid(), true)
	out["machine busy"] = machineBusy(b)
	out["others"] = out["machine busy"]
	for _, g := range []string{"workers", "temporal-server", "postgresql", "test (CLI, emulator)"} {
		out["others"] -= out[g]
	}
	return out
}

const clockTicks = 100 // USER_HZ on Linux

// procCPU is utime+stime of pid (plus cutime+cstime: its waited-for
// children), in seconds; 0 when it cannot be read.
func procCPU(pid int, children bool) float64 {
	f := statFields(pid)
	if len(f) < 17 {
		return 0
	}
	n := 2 // utime, stime (fields 14, 15)
	if children {
		n = 4 // and cutime, cstime
	}
	t := 0.0
	for i := 0; i < n; i++ {
		v, _ := strconv.ParseFloat(f[13+i], 64)
		t += v
	}
	return t / clockTicks
}

// statFields splits /proc/PID/stat into its fields (the command, which may
// hold spaces, as one).
func statFields(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return nil
	}
	return append([]string{s[:open-1], s[open+1 : end]}, strings.Fields(s[end+1:])...)
}

func childrenOf(pid int) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		child, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if f := statFields(child); len(f) > 3 && f[3] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// machineBusy is the busy time of all CPUs since boot (user, nice, system,
// irq, softirq, steal), in seconds.
func machineBusy(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Logf("no /proc/stat: %v", err)
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	t := 0.0
	for i, v := range f {
		if i == 0 || i == 4 || i == 5 || i > 8 {
			continue
		}
		x, _ := strconv.ParseFloat(v, 64)
		t += x
	}
	return t / clockTicks
}

func numCPU() int {
	data, _ := os.ReadFile("/proc/stat")
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "cpu") && !strings.HasPrefix(l, "cpu ") {
			n++
		}
	}
	return n
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("SHIPLINE_CLUSTER_BENCH_WORKERS=%q: want worker counts like 1,2,1,2", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func sortedInts[V any](m map[int]V) []int { return slices.Sorted(maps.Keys(m)) }
