package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/workerapp"
	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/test/testkit"
	"github.com/shipline/shipline/workflows"
)

// Sizes of BenchmarkConcurrentDeploys; flags win over the environment.
var (
	concProjects  = flag.Int("projects", envInt("SHIPLINE_BENCH_PROJECTS", 100), "BenchmarkConcurrentDeploys: number of projects deployed at once")
	concPipelines = flag.Int("project-pipelines", envInt("SHIPLINE_BENCH_PROJECT_PIPELINES", 1), "BenchmarkConcurrentDeploys: Python pipelines per project")
	concJobs      = flag.Int("project-jobs", envInt("SHIPLINE_BENCH_PROJECT_JOBS", 2), "BenchmarkConcurrentDeploys: Databricks jobs per project")
	concSingles   = flag.Int("singles", envInt("SHIPLINE_BENCH_SINGLES", 3), "BenchmarkConcurrentDeploys: single deploys (one after another, separate projects) for the baseline; the median is used")
	concProfile   = flag.String("phase-cpuprofile", os.Getenv("SHIPLINE_BENCH_PHASE_CPUPROFILE"), "BenchmarkConcurrentDeploys: write a CPU profile of the concurrent phase only to this file")
	concDynamic   = flag.String("dev-dynamic-config", os.Getenv("SHIPLINE_BENCH_DEV_DYNAMIC_CONFIG"), "BenchmarkConcurrentDeploys: what-if overrides of the embedded server's dynamic config, KEY=VALUE[,KEY=VALUE] (default: none, the shipped configuration)")
	concFollow    = flag.Bool("follow", os.Getenv("SHIPLINE_BENCH_FOLLOW") == "1", "BenchmarkConcurrentDeploys: every deploy runs `shipline deploy --wait` (polls the state query every 150ms) instead of waiting for the workflow's result")
)

const concWarmProject = "warm"

// BenchmarkConcurrentDeploys deploys P distinct generated projects at once on
// one worker and compares their latency with a single deploy of the same shape.
//
// Every project (p001..pP, the baseline projects s01..sK and one warm-up
// project) is registered in one platform.yaml, has its own bare git remote,
// and deploys its J Databricks jobs to one fabric, `dev`, on one emulated
// workspace (jobs are found by their shipline_project + shipline_job tags, so
// projects cannot collide there; the deploy lock is per project and fabric, so
// the deploys do not queue behind each other). A project has N Python
// pipelines (default 1) and J jobs (default 2).
//
// Builds are deliberately out of the picture: every project has the very same
// pipeline tree (same directory content, same pipeline names), and the build
// cache key is the tree hash plus the build settings, not the project. The
// warm-up project's deploy builds the wheels once; every measured deploy then
// takes them from the cache (the benchmark fails otherwise), so the figures
// measure orchestration — Temporal round trips, git resolve, cache lookups,
// uploads, job upserts — and not `python3 -m build` on the machine's CPUs.
//
// Steps: release every project with --no-deploy (not measured); deploy the
// warm-up project (fills the build cache, not measured); deploy the K baseline
// projects one after another (the single-deploy latency is their median);
// then start the P deploys at once, one goroutine each, and wait for all.
// Each deploy runs the CLI code of `shipline deploy VERSION --project X
// --output json` (dial, sign, start the Deploy workflow) and then waits on the
// workflow's result through one shared SDK client; with -follow it runs
// `shipline deploy --wait` instead, which polls the state query every 150ms
// (100 followers put their query load on the same worker). A deploy's latency
// is client-side, from just before the CLI starts to the result; the report
// also gives the server-side latency (WorkflowExecutionStarted to
// WorkflowExecutionCompleted).
//
// Reported:
//
//	single-s       median latency of the baseline single deploys
//	p50-s, p95-s   percentiles (nearest rank) of the concurrent deploys' latency
//	max-s          the slowest concurrent deploy
//	p95-ratio      p95-s / single-s                       (target ≤ 2)
//	wall-s         first start to last result of the concurrent phase
//	peak-rss-MB    VmHWM during the concurrent phase      (target ≤ 400)
//	life-rss-MB    VmHWM of the whole process life, set-up included
//	events-mean, events-max   history events per concurrent deploy
//
// The worker runs in this process together with the embedded Temporal server
// (SQLite), the Databricks emulator and the CLI clients, so the RSS figures
// are all of those together: an upper bound of the worker's own. The VmHWM is
// reset (/proc/self/clear_refs) just before the concurrent phase.
//
// It fails when a deployment is wrong: every deploy must succeed with every
// pipeline from the cache, and every project's jobs must exist exactly once
// in the emulator with the ID the deployment recorded.
//
//	go test ./test/bench -run '^$' -bench ConcurrentDeploys -benchtime 1x -timeout 30m -v
//	go test ./test/bench -run '^$' -bench ConcurrentDeploys -benchtime 1x -timeout 30m -v -projects 10
//
// (Sizes also from SHIPLINE_BENCH_PROJECTS, SHIPLINE_BENCH_PROJECT_PIPELINES,
// SHIPLINE_BENCH_PROJECT_JOBS, SHIPLINE_BENCH_SINGLES, SHIPLINE_BENCH_FOLLOW=1;
// -build-parallelism / SHIPLINE_BENCH_BUILD_PARALLELISM sets the worker's
// BuildParallelism as in BenchmarkDeploy.)
func BenchmarkConcurrentDeploys(b *testing.B) {
	cfg := concConfig{projects: *concProjects, pipelines: *concPipelines, jobs: *concJobs, singles: *concSingles, follow: *concFollow}
	if cfg.projects < 1 || cfg.pipelines < 1 || cfg.jobs < 1 || cfg.singles < 1 {
		b.Fatalf("need at least one project, pipeline, job and single deploy: -projects %d -project-pipelines %d -project-jobs %d -singles %d",
			cfg.projects, cfg.pipelines, cfg.jobs, cfg.singles)
	}
	if cfg.projects > 999 {
		b.Fatalf("-projects %d: at most 999", cfg.projects)
	}
	b.Setenv(benchTokenEnv, dbemu.DefaultToken)
	var r concResult
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r = runConcurrentScenario(b, cfg)
	}
	b.ReportMetric(r.single, "single-s")
	b.ReportMetric(r.p50, "p50-s")
	b.ReportMetric(r.p95, "p95-s")
	b.ReportMetric(r.max, "max-s")
	b.ReportMetric(r.p95/r.single, "p95-ratio")
	b.ReportMetric(r.wall, "wall-s")
	b.ReportMetric(r.peakRSS, "peak-rss-MB")
	b.ReportMetric(r.lifeRSS, "life-rss-MB")
	b.ReportMetric(r.eventsMean, "events-mean")
	b.ReportMetric(r.eventsMax, "events-max")
	b.ReportMetric(0, "ns/op") // the latencies above are the figures
}

type concConfig struct {
	projects, pipelines, jobs, singles int
	follow                             bool
}

type concResult struct {
	single, p50, p95, max, wall float64 // s
	peakRSS, lifeRSS            float64 // MB
	eventsMean, eventsMax       float64
}

// concRun is one measured deploy.
type concRun struct {
	project    string
	workflowID string
	latency    time.Duration // client-side: CLI start to result
	state      *workflows.DeployState
	err        error
	events     []*historypb.HistoryEvent
}

func concProjectName(i int) string { return fmt.Sprintf("p%03d", i+1) }
func concSingleName(i int) string  { return fmt.Sprintf("s%02d", i+1) }

func runConcurrentScenario(b *testing.B, cfg concConfig) concResult {
	root := b.TempDir()
	var names []string
	names = append(names, concWarmProject)
	for i := 0; i < cfg.singles; i++ {
		names = append(names, concSingleName(i))
	}
	for i := 0; i < cfg.projects; i++ {
		names = append(names, concProjectName(i))
	}
	setupStart := time.Now()
	remotes, jobs := generateProjects(b, root, names, cfg.pipelines, cfg.jobs)

	emu := dbemu.Start(dbemu.Options{Volumes: []string{benchVolume}})
	defer emu.Close()

	var pf strings.Builder
	fmt.Fprintf(&pf, `temporal: {namespace: default, task_queue: shipline}
state_dir: %s
teams:
  developers: {members: [%s]}
projects:
`, filepath.Join(root, "state"), benchActor)
	for _, name := range names {
		fmt.Fprintf(&pf, "  %s: {repo: %s, admins: [%s], auto_deploy: false}\n", name, remotes[name], benchActor)
	}
	fmt.Fprintf(&pf, "fabrics:\n  dev: {kind: databricks, owner: developers, host: %s, token_env: %s, artifact_root: %s}\n",
		emu.URL, benchTokenEnv, benchVolume)
	cfgPath := filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(cfgPath, []byte(pf.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	dyn, err := parseDynamicConfig(*concDynamic)
	if err != nil {
		b.Fatal(err)
	}
	s := startStackDynamic(b, cfgPath, *benchParallel, dyn)
	c, err := workerapp.Dial(context.Background(), s.address, "default", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	// Release every project, a few at a time: tags only.
	releaseAll(b, s, names, 4)
	setupSecs := time.Since(setupStart).Seconds()

	// Warm-up: builds the shared pipelines into the cache.
	warm := deployProject(s, c, concWarmProject, cfg.follow)
	if warm.err != nil {
		b.Fatalf("warm-up deploy: %v", warm.err)
	}
	for name, bld := range warm.state.Builds {
		if bld.Status != workflows.StepDone {
			b.Fatalf("warm-up deploy: pipeline %s: %+v", name, bld)
		}
	}

	// Baseline: single deploys, one after another.
	var singles []*concRun
	var singleCPUs []float64
	for i := 0; i < cfg.singles; i++ {
		before := cpuSeconds()
		r := deployProject(s, c, concSingleName(i), cfg.follow)
		singleCPUs = append(singleCPUs, cpuSeconds()-before)
		if r.err != nil {
			b.Fatalf("single deploy of %s: %v", r.project, r.err)
		}
		singles = append(singles, r)
	}
	singleLat := make([]float64, len(singles))
	for i, r := range singles {
		singleLat[i] = r.latency.Seconds()
	}
	single, singleCPU := percentile(singleLat, 0.5), percentile(singleCPUs, 0.5)

	// The concurrent phase.
	runtime.GC()
	lifeBefore, rssBefore := peakRSSMB(), currentRSSMB()
	resetPeakRSS()
	sampling := startSampler(100 * time.Millisecond)
	cpuBefore := cpuSeconds()
	if *concProfile != "" {
		f, err := os.Create(*concProfile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatalf("-phase-cpuprofile: %v (not together with -cpuprofile)", err)
		}
	}
	runs := make([]*concRun, cfg.projects)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			runs[i] = deployProject(s, c, concProjectName(i), cfg.follow)
		}()
	}
	b.StartTimer()
	phaseStart := time.Now()
	close(gate)
	wg.Wait()
	wall := time.Since(phaseStart)
	b.StopTimer()
	if *concProfile != "" {
		pprof.StopCPUProfile()
	}
	cpu := cpuSeconds() - cpuBefore
	samples := sampling.stop()
	peakRSS := peakRSSMB()

	// Correctness.
	failed := 0
	for _, r := range runs {
		if r.err != nil {
			failed++
			if failed <= 5 {
				b.Errorf("deploy of %s (%s): %v", r.project, r.workflowID, r.err)
			}
		}
	}
	if failed > 0 {
		b.Fatalf("%d of %d concurrent deploys did not succeed", failed, len(runs))
	}
	for _, r := range runs {
		for name, bld := range r.state.Builds {
			if bld.Status != workflows.StepDone || !bld.Cached {
				b.Fatalf("deploy of %s: pipeline %s was not taken from the build cache: %+v", r.project, name, bld)
			}
		}
	}
	all := append(append([]*concRun{warm}, singles...), runs...)
	checkProjectJobs(b, emu, all, jobs)

	// Histories.
	for _, r := range append(slices.Clone(singles), runs...) {
		r.events = history(b, c, r.workflowID)
	}

	lat := make([]float64, len(runs))
	serverLat := make([]float64, len(runs))
	events := make([]float64, len(runs))
	for i, r := range runs {
		lat[i] = r.latency.Seconds()
		serverLat[i] = histSpan(r.events)
		events[i] = float64(len(r.events))
	}
	res := concResult{
		single: single, p50: percentile(lat, 0.5), p95: percentile(lat, 0.95), max: slices.Max(lat),
		wall: wall.Seconds(), peakRSS: peakRSS, lifeRSS: max(lifeBefore, peakRSS),
		eventsMean: mean(events), eventsMax: slices.Max(events),
	}
	singleServer := make([]float64, len(singles))
	singleEvents := make([]float64, len(singles))
	for i, r := range singles {
		singleServer[i] = histSpan(r.events)
		singleEvents[i] = float64(len(r.events))
	}

	// The report.
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format+"\n", args...) }
	mode := "CLI start, then the workflow result through one shared client"
	if cfg.follow {
		mode = "`shipline deploy --wait` each (state query every 150ms)"
	}
	lanes := *benchParallel
	if lanes <= 0 {
		lanes = runtime.NumCPU()
	}
	w("")
	w("concurrent deploy benchmark: %d projects at once, each %d pipeline(s) + %d job(s) on one databricks fabric (emulator);", cfg.projects, cfg.pipelines, cfg.jobs)
	w("  one worker in this process with the embedded Temporal server (SQLite), %d CPUs, GOMAXPROCS %d, build parallelism %d;", runtime.NumCPU(), runtime.GOMAXPROCS(0), lanes)
	w("  builds from the cache (same pipeline tree in every project, built once by the warm-up deploy); waiting: %s", mode)
	if len(dyn) > 0 {
		w("  WHAT-IF: embedded server dynamic config overridden: %s", *concDynamic)
	}
	w("  set-up (generate %d projects, start the stack, release all): %.1fs; warm-up deploy (builds) %.2fs", len(names), setupSecs, warm.latency.Seconds())
	w("")
	w("  %-42s %10s  %s", "figure", "value", "target")
	w("  %-42s %9.2fs  (median of %d: %s)", "single deploy latency", single, len(singles), joinSecs(singleLat))
	w("  %-42s %9.2fs", "concurrent p50", res.p50)
	w("  %-42s %9.2fs", "concurrent p95", res.p95)
	w("  %-42s %9.2fs", "concurrent max", res.max)
	w("  %-42s %9.2f×  ≤ 2×  %s", "p95 / single", res.p95/single, verdict(res.p95/single <= 2))
	w("  %-42s %9.2fs  (%.1f deploys/s)", "wall, first start to last result", res.wall, float64(cfg.projects)/res.wall)
	w("  %-42s %9.2fs / %.2fs / %.2fs  (single %.2fs)", "server-side p50 / p95 / max", percentile(serverLat, 0.5), percentile(serverLat, 0.95), slices.Max(serverLat), percentile(singleServer, 0.5))
	w("  %-42s %9.2fs  (%.0f%% of %d CPUs over the wall; %.3fs per deploy)", "CPU time of this process in the phase", cpu, 100*cpu/res.wall/float64(runtime.NumCPU()), runtime.NumCPU(), cpu/float64(cfg.projects))
	w("  %-42s %9.2fs  (%.0f%% of %d CPUs)", "CPU time of a single deploy", singleCPU, 100*singleCPU/single/float64(runtime.NumCPU()), runtime.NumCPU())
	w("  %-42s %9.0fMB  ≤ 400MB  %s", "peak RSS during the phase (VmHWM)", res.peakRSS, verdict(res.peakRSS <= 400))
	w("  %-42s %9.0fMB  (before the phase: %.0fMB)", "peak RSS of the whole process life", res.lifeRSS, rssBefore)
	w("  %-42s %9.0fMB / %9.0fMB / %d", "peak Go heap objects / Go total / goroutines", samples.heapMB, samples.totalMB, samples.goroutines)
	w("  %-42s %9.1f / %.0f  (single %.0f)", "history events per deploy mean / max", res.eventsMean, res.eventsMax, mean(singleEvents))
	w("  %-42s %10d", "jobs in the emulator", len(emu.Jobs()))
	w("  RSS = worker + embedded Temporal server + Databricks emulator + CLI clients + test code (one process).")
	w("")
	w("latency distribution of the concurrent deploys (client-side):")
	writeHistogram(w, lat)
	w("")
	w("where the time goes, single (median run) vs concurrent (mean / p95 / max over %d):", len(runs))
	writeStepCompare(w, singles, runs)
	w("")
	w("Temporal task queueing and execution per deploy, single (mean) vs concurrent (mean / p95 / max):")
	writeQueueCompare(w, singles, runs)
	w("")
	slowest := runs[slices.Index(lat, slices.Max(lat))]
	w("slowest concurrent deploy %s (%.2fs):", slowest.workflowID, slowest.latency.Seconds())
	writeSteps(w, slowest.state)
	writeHistory(w, slowest.events)
	writeWaits(w, slowest.events)
	for _, r := range singles {
		w("single deploy %s (%.2fs):", r.workflowID, r.latency.Seconds())
		writeSteps(w, r.state)
		writeHistory(w, r.events)
		writeWaits(w, r.events)
	}
	w("RSS and goroutines during the phase (every second):")
	for i, smp := range samples.series {
		if i%10 == 0 || i == len(samples.series)-1 {
			w("  %6.1fs  RSS %5.0fMB  heap %5.0fMB  goroutines %d", smp.at, smp.rssMB, smp.heapMB, smp.goroutines)
		}
	}
	b.Logf("%s", sb.String())
	return res
}

// ---- projects --------------------------------------------------------------

// generateProjects writes one work tree with n Python pipelines and m jobs
// (the pipelines a minimal version of BenchmarkDeploy's, the jobs the same), then, per name, a
// shipline.yaml naming that project, a commit and a push to the project's own
// bare remote under root. Every project's pipeline directories are identical,
// so their git tree hashes — and build cache keys — are the same.
func generateProjects(b *testing.B, root string, names []string, n, m int) (map[string]string, []benchJob) {
	work := filepath.Join(root, "work")
	write := func(rel, content string) {
		p := filepath.Join(work, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var pipes strings.Builder
	for i := 0; i < n; i++ {
		p := pipelineName(i)
		fmt.Fprintf(&pipes, "  %s: {path: pipelines/%s, language: python}\n", p, p)
		write("pipelines/"+p+"/pyproject.toml", fmt.Sprintf(`[build-system]
requires = ["setuptools>=61", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "%[1]s"
version = "1.0.0"
description = "Benchmark pipeline %[1]s"
requires-python = ">=3.9"

[tool.setuptools.packages.find]
where = ["src"]
`, p))
		write("pipelines/"+p+"/src/"+p+"/__init__.py", "")
		write("pipelines/"+p+"/src/"+p+"/main.py", fmt.Sprintf(`def main():
    print("pipeline %s")
`, p))
	}
	var jobsYAML strings.Builder
	jobs := make([]benchJob, m)
	for i := 0; i < m; i++ {
		j := benchJob{name: fmt.Sprintf("job_%02d", i+1)}
		for k := 0; k < min(1+i%3, n); k++ {
			j.pipelines = append(j.pipelines, pipelineName((i+k)%n))
		}
		jobs[i] = j
		fmt.Fprintf(&jobsYAML, "  %s:\n    scheduler: databricks\n    fabric: dev\n    pipelines: [%s]\n    definition: jobs/%s/job.json\n",
			j.name, strings.Join(j.pipelines, ", "), j.name)
		write("jobs/"+j.name+"/job.json", jobDefinition(j))
	}
	git(b, work, "init", "-q", "-b", "main")
	remotes := map[string]string{}
	for _, name := range names {
		write("shipline.yaml", fmt.Sprintf("name: %s\nvariables: {schema: bench_dev}\npipelines:\n%sjobs:\n%s", name, pipes.String(), jobsYAML.String()))
		git(b, work, "add", ".")
		git(b, work, "commit", "-q", "-m", "project "+name)
		remote := filepath.Join(root, "remotes", name+".git")
		if err := os.MkdirAll(remote, 0o755); err != nil {
			b.Fatal(err)
		}
		git(b, remote, "init", "--bare", "-q", "-b", "main")
		git(b, work, "push", "-q", remote, "main")
		remotes[name] = remote
	}
	return remotes, jobs
}

// releaseAll releases benchVersion of every project with --no-deploy, at most
// par at a time.
func releaseAll(b *testing.B, s *stack, names []string, par int) {
	sem := make(chan struct{}, par)
	errs := make(chan string, len(names))
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			code, out, errOut := s.shipline([]string{"--as", benchActor}, "release", benchVersion, "--project", name, "--wait", "--no-deploy")
			if code != 0 {
				errs <- fmt.Sprintf("release of %s: exit %d\n%s%s", name, code, out, errOut)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		b.Fatal(e)
	}
}

// deployProject deploys benchVersion of project the way `shipline deploy`
// does and waits for the outcome; it never calls b.Fatal (it runs in
// goroutines).
func deployProject(s *stack, c client.Client, project string, follow bool) *concRun {
	r := &concRun{project: project}
	global := []string{"--as", benchActor, "--output", "json"}
	start := time.Now()
	if follow {
		code, out, errOut := s.shipline(global, "deploy", benchVersion, "--project", project, "--wait")
		r.latency = time.Since(start)
		var d deployOutput
		if err := json.Unmarshal([]byte(out), &d); err != nil || d.State == nil {
			r.err = fmt.Errorf("exit %d, cannot read the JSON output (%v): %s%s", code, err, out, errOut)
			return r
		}
		r.workflowID, r.state = d.WorkflowID, d.State
		if code != 0 || d.State.Status != workflows.StatusSucceeded {
			r.err = fmt.Errorf("exit %d, status %s: %s %s", code, d.State.Status, d.State.Summary, errOut)
		}
		return r
	}
	code, out, errOut := s.shipline(global, "deploy", benchVersion, "--project", project)
	var started struct {
		WorkflowID string `json:"workflow_id"`
	}
	if err := json.Unmarshal([]byte(out), &started); code != 0 || err != nil || started.WorkflowID == "" {
		r.err = fmt.Errorf("start: exit %d (%v): %s%s", code, err, out, errOut)
		return r
	}
	r.workflowID = started.WorkflowID
	var st workflows.DeployState
	err := c.GetWorkflow(context.Background(), r.workflowID, "").Get(context.Background(), &st)
	r.latency = time.Since(start)
	r.state = &st
	switch {
	case err != nil:
		r.err = err
	case st.Status != workflows.StatusSucceeded:
		r.err = fmt.Errorf("status %s: %s", st.Status, st.Summary)
	}
	return r
}

// checkProjectJobs checks that every project's every job exists in the
// emulator exactly once (by its shipline tags), with the ID its deployment
// recorded and the released version, and that no other job exists.
func checkProjectJobs(b *testing.B, emu *dbemu.Emulator, runs []*concRun, jobs []benchJob) {
	if got, want := len(emu.Jobs()), len(runs)*len(jobs); got != want {
		b.Fatalf("%d jobs in the emulator, want %d (%d projects × %d jobs)", got, want, len(runs), len(jobs))
	}
	for _, r := range runs {
		recorded := map[string]string{}
		for _, j := range r.state.Jobs {
			recorded[j.Job] = j.ID
		}
		for _, j := range jobs {
			found := emu.JobsTagged(map[string]string{"shipline_project": r.project, "shipline_job": j.name})
			if len(found) != 1 {
				b.Fatalf("project %s: job %s exists %d times in the emulator, want once", r.project, j.name, len(found))
			}
			if id := strconv.FormatInt(found[0].ID, 10); recorded[j.name] != id {
				b.Fatalf("project %s: job %s: the deployment recorded id %q, the emulator has %s", r.project, j.name, recorded[j.name], id)
			}
			if v := found[0].Tags()["shipline_version"]; v != benchVersion {
				b.Fatalf("project %s: job %s is tagged version %q, want %s", r.project, j.name, v, benchVersion)
			}
		}
	}
}

// parseDynamicConfig reads KEY=VALUE[,KEY=VALUE]; a value is an int, a
// float, a bool, a duration or else a string.
func parseDynamicConfig(spec string) (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range strings.Split(spec, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("-dev-dynamic-config: %q is not KEY=VALUE", kv)
		}
		if i, err := strconv.Atoi(v); err == nil {
			out[k] = i
		} else if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[k] = f
		} else if bv, err := strconv.ParseBool(v); err == nil {
			out[k] = bv
		} else if d, err := time.ParseDuration(v); err == nil {
			out[k] = d
		} else {
			out[k] = v
		}
	}
	return out, nil
}

// startStackDynamic is startStack with the embedded server's dynamic config
// overridden by dyn (nil: exactly startStack).
func startStackDynamic(tb testing.TB, cfgPath string, buildParallelism int, dyn map[string]any) *stack {
	tb.Helper()
	return startStackWith(tb, cfgPath, testkit.Options{NoUI: true, BuildParallelism: buildParallelism, DynamicConfig: dyn,
		LogLevel: zap.NewAtomicLevelAt(zap.ErrorLevel)})
}

// ---- memory ----------------------------------------------------------------

// resetPeakRSS resets this process's VmHWM to its current RSS (Linux ≥ 4.0);
// without it the phase's peak includes the set-up's.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

func currentRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

type sample struct {
	at, rssMB, heapMB float64
	goroutines        int
}

type samplerResult struct {
	series          []sample
	heapMB, totalMB float64 // peaks
	goroutines      int     // peak
}

type sampler struct {
	quit chan struct{}
	done chan samplerResult
}

// startSampler records RSS, the Go heap and the goroutine count every period
// until stop.
func startSampler(period time.Duration) *sampler {
	s := &sampler{quit: make(chan struct{}), done: make(chan samplerResult, 1)}
	go func() {
		ms := []metrics.Sample{
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/memory/classes/total:bytes"},
			{Name: "/sched/goroutines:goroutines"},
		}
		var res samplerResult
		t0 := time.Now()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			metrics.Read(ms)
			smp := sample{at: time.Since(t0).Seconds(), rssMB: currentRSSMB(),
				heapMB: float64(ms[0].Value.Uint64()) / (1 << 20), goroutines: int(ms[2].Value.Uint64())}
			res.series = append(res.series, smp)
			res.heapMB = max(res.heapMB, smp.heapMB)
			res.totalMB = max(res.totalMB, float64(ms[1].Value.Uint64())/(1<<20))
			res.goroutines = max(res.goroutines, smp.goroutines)
			select {
			case <-s.quit:
				s.done <- res
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() samplerResult {
	close(s.quit)
	return <-s.done
}

// ---- statistics and report ---------------------------------------------------

// percentile is the nearest-rank percentile of xs (0 < p ≤ 1).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	k := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

func joinSecs(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2fs", x)
	}
	return strings.Join(parts, ", ")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// histSpan is WorkflowExecutionStarted to the last event, in seconds.
func histSpan(events []*historypb.HistoryEvent) float64 {
	if len(events) == 0 {
		return 0
	}
	return events[len(events)-1].GetEventTime().AsTime().Sub(events[0].GetEventTime().AsTime()).Seconds()
}

func writeHistogram(w func(string, ...any), lat []float64) {
	lo, hi := slices.Min(lat), slices.Max(lat)
	const buckets = 10
	width := (hi - lo) / buckets
	if width <= 0 {
		w("  all %d at %.2fs", len(lat), lo)
		return
	}
	counts := make([]int, buckets)
	for _, x := range lat {
		counts[min(int((x-lo)/width), buckets-1)]++
	}
	for i, n := range counts {
		w("  %6.2fs – %6.2fs  %3d  %s", lo+float64(i)*width, lo+float64(i+1)*width, n, strings.Repeat("#", n))
	}
}

// writeStepCompare prints each step's duration (from the deployments' states).
func writeStepCompare(w func(string, ...any), singles, runs []*concRun) {
	steps := func(r *concRun) map[string]float64 {
		out := map[string]float64{}
		for _, s := range r.state.Steps {
			if !s.Started.IsZero() && !s.Finished.IsZero() {
				out[s.Name] = s.Finished.Sub(s.Started).Seconds()
			}
		}
		// Time before the first step: workflow start to the first workflow task.
		if len(r.events) > 0 && len(r.state.Steps) > 0 && !r.state.Steps[0].Started.IsZero() {
			out["(first task)"] = r.state.Steps[0].Started.Sub(r.events[0].GetEventTime().AsTime()).Seconds()
		}
		return out
	}
	var order []string
	order = append(order, "(first task)")
	for _, s := range singles[0].state.Steps {
		order = append(order, s.Name)
	}
	for _, name := range order {
		var sv, cv []float64
		for _, r := range singles {
			if v, ok := steps(r)[name]; ok {
				sv = append(sv, v)
			}
		}
		for _, r := range runs {
			if v, ok := steps(r)[name]; ok {
				cv = append(cv, v)
			}
		}
		if len(cv) == 0 {
			continue
		}
		w("  %-14s single %6.2fs   concurrent %6.2fs / %6.2fs / %6.2fs", name, percentile(sv, 0.5), mean(cv), percentile(cv, 0.95), slices.Max(cv))
	}
}

// queueStats are one deployment's summed Temporal task times.
type queueStats struct {
	wfts             int
	wftQueue, wftRun float64 // workflow tasks: scheduled→started, started→completed
	actQueue, actRun float64 // activity tasks
	perAct           map[string][2]float64
	firstWFT         float64 // workflow start → first workflow task started
}

func queueOf(events []*historypb.HistoryEvent) queueStats {
	q := queueStats{perAct: map[string][2]float64{}}
	if len(events) == 0 {
		return q
	}
	at := func(e *historypb.HistoryEvent) float64 {
		return e.GetEventTime().AsTime().Sub(events[0].GetEventTime().AsTime()).Seconds()
	}
	sched := map[int64]float64{}
	started := map[int64]float64{}
	actType := map[int64]string{}
	for _, e := range events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			sched[e.GetEventId()] = at(e)
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			started[e.GetEventId()] = at(e)
			d := at(e) - sched[e.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId()]
			if q.wfts == 0 {
				q.firstWFT = at(e)
			}
			q.wftQueue += d
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			q.wfts++
			q.wftRun += at(e) - started[e.GetWorkflowTaskCompletedEventAttributes().GetStartedEventId()]
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			sched[e.GetEventId()] = at(e)
			actType[e.GetEventId()] = e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			id := e.GetActivityTaskStartedEventAttributes().GetScheduledEventId()
			started[id] = at(e)
			d := at(e) - sched[id]
			q.actQueue += d
			v := q.perAct[actType[id]]
			v[0] += d
			q.perAct[actType[id]] = v
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			id := e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			d := at(e) - started[id]
			q.actRun += d
			v := q.perAct[actType[id]]
			v[1] += d
			q.perAct[actType[id]] = v
		}
	}
	return q
}

// writeWaits lists the gaps of 50ms or more between two consecutive events
// of a history, naming both: where a deployment waited.
func writeWaits(w func(string, ...any), events []*historypb.HistoryEvent) {
	var parts []string
	for i := 1; i < len(events); i++ {
		gap := events[i].GetEventTime().AsTime().Sub(events[i-1].GetEventTime().AsTime()).Seconds()
		if gap >= 0.05 {
			parts = append(parts, fmt.Sprintf("%.2fs %s→%s", gap,
				strings.TrimPrefix(events[i-1].GetEventType().String(), "EVENT_TYPE_"), strings.TrimPrefix(events[i].GetEventType().String(), "EVENT_TYPE_")))
		}
	}
	w("  waits ≥ 50ms between events: %s", strings.Join(parts, "; "))
}

func writeQueueCompare(w func(string, ...any), singles, runs []*concRun) {
	sq := make([]queueStats, len(singles))
	for i, r := range singles {
		sq[i] = queueOf(r.events)
	}
	cq := make([]queueStats, len(runs))
	for i, r := range runs {
		cq[i] = queueOf(r.events)
	}
	row := func(name string, f func(queueStats) float64) {
		sv := make([]float64, len(sq))
		for i, q := range sq {
			sv[i] = f(q)
		}
		cv := make([]float64, len(cq))
		for i, q := range cq {
			cv[i] = f(q)
		}
		w("  %-40s single %7.3fs   concurrent %7.3fs / %7.3fs / %7.3fs", name, mean(sv), mean(cv), percentile(cv, 0.95), slices.Max(cv))
	}
	counts := func(qs []queueStats) []float64 {
		out := make([]float64, len(qs))
		for i, q := range qs {
			out[i] = float64(q.wfts)
		}
		return out
	}
	w("  %-40s single %7.1f    concurrent %7.1f  / %7.0f  / %7.0f", "workflow tasks per deploy", mean(counts(sq)), mean(counts(cq)), percentile(counts(cq), 0.95), slices.Max(counts(cq)))
	row("start → first workflow task started", func(q queueStats) float64 { return q.firstWFT })
	row("workflow tasks: summed schedule→start", func(q queueStats) float64 { return q.wftQueue })
	row("workflow tasks: summed start→complete", func(q queueStats) float64 { return q.wftRun })
	row("activities: summed schedule→start", func(q queueStats) float64 { return q.actQueue })
	row("activities: summed start→complete", func(q queueStats) float64 { return q.actRun })
	types := map[string]bool{}
	for _, q := range cq {
		for t := range q.perAct {
			types[t] = true
		}
	}
	for _, t := range sortedKeys(types) {
		row("  "+t+" queued", func(q queueStats) float64 { return q.perAct[t][0] })
		row("  "+t+" running", func(q queueStats) float64 { return q.perAct[t][1] })
	}
}
