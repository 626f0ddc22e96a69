package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/internal/workerapp"
	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/workflows"
)

// Sizes of BenchmarkThroughput; flags win over the environment.
var (
	tpDeploys  = flag.Int("throughput-deploys", envInt("SHIPLINE_BENCH_THROUGHPUT_DEPLOYS", 20), "BenchmarkThroughput: deploys (of distinct projects) run at once, and no-op workflows run at once")
	tpLatency  = flag.Duration("fabric-latency", 0, "BenchmarkThroughput: latency the Databricks emulator adds to every call (0: none)")
	tpProfile  = flag.String("throughput-cpuprofile", os.Getenv("SHIPLINE_BENCH_THROUGHPUT_CPUPROFILE"), "BenchmarkThroughput: write CPU profiles of the deploy phase and of the no-op phase to FILE.deploy and FILE.noop")
	tpNoopOnly = flag.Bool("noop-markers-only", false, "BenchmarkThroughput: pad the no-op workflow with markers only (default: also the same number of workflow tasks)")
)

// BenchmarkThroughput measures deploys per minute on the embedded server
// against the ceiling of the same server, in one run: N no-op workflows that
// execute, per workflow, the same number of (no-op) activities and produce the
// same number of history events as one deploy, at the same concurrency.
//
// Deploy phase: N generated projects (the same shape as
// BenchmarkConcurrentDeploys: -project-pipelines Python pipelines, -project-jobs
// Databricks jobs on one emulated workspace, optionally with -fabric-latency on
// every API call) are released with --no-deploy and a warm-up project is
// deployed first, so every pipeline is in the build cache: the phase measures
// orchestration (Temporal, git resolve, cache lookups, uploads, job upserts),
// not `python3 -m build`. Then the N deploys start at once through the CLI's
// code (`shipline deploy`, update-with-start) and the phase lasts until the
// last history event any workflow wrote for them: the Deploy workflows and
// the entities they talk to (Fabric, Release, Audit), whose trailing work
// (verifying the last signal) belongs to the deploy too.
//
// From the histories of every workflow of the namespace, the events written
// during the phase are counted: events and activities per deploy, workflow
// tasks per deploy, and the rounds of activities the Deploy workflow itself
// schedules (the activities scheduled by one workflow task run in parallel).
//
// No-op phase: N NoopDeploy workflows on a second worker in this process (the
// same SDK worker options as shipline-worker's, its own task queue, the same
// server) run those rounds of no-op activities (the entities' activities as
// further rounds of one), with the same number of workflow tasks (signals to
// itself) and the rest of the events as markers, so each produces the deploy's
// event count. A calibration run adjusts the padding; the report shows the
// events both produced.
//
// Reported: deploys-per-min, noop-per-min, ratio-pct (target ≥ 70), events and
// activities per deploy and per no-op, CPU seconds per deploy and per no-op.
// It fails only when a deployment is wrong.
//
//	go test ./test/bench -run '^$' -bench Throughput -benchtime 1x -timeout 30m -v
//	go test ./test/bench -run '^$' -bench Throughput -benchtime 1x -timeout 30m -v -throughput-deploys 40 -fabric-latency 50ms
func BenchmarkThroughput(b *testing.B) {
	cfg := tpConfig{deploys: *tpDeploys, pipelines: *concPipelines, jobs: *concJobs, latency: *tpLatency}
	if cfg.deploys < 1 || cfg.deploys > 999 || cfg.pipelines < 1 || cfg.jobs < 1 {
		b.Fatalf("need 1..999 deploys and at least one pipeline and job: -throughput-deploys %d -project-pipelines %d -project-jobs %d",
			cfg.deploys, cfg.pipelines, cfg.jobs)
	}
	b.Setenv(benchTokenEnv, dbemu.DefaultToken)
	var r tpResult
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r = runThroughput(b, cfg)
	}
	b.ReportMetric(r.deploysPerMin, "deploys/min")
	b.ReportMetric(r.noopPerMin, "noop/min")
	b.ReportMetric(100*r.deploysPerMin/r.noopPerMin, "ratio-pct")
	b.ReportMetric(r.deployEvents, "events/deploy")
	b.ReportMetric(r.noopEvents, "events/noop")
	b.ReportMetric(0, "ns/op")
}

type tpConfig struct {
	deploys, pipelines, jobs int
	latency                  time.Duration
}

type tpResult struct {
	deploysPerMin, noopPerMin float64
	deployEvents, noopEvents  float64
}

// phaseCount is what the histories say about one phase.
type phaseCount struct {
	events, activities, wfts, localActs int
	byType                              map[string][3]int // workflow type → events, activities, workflow tasks
	last                                time.Time         // the last event of the phase
}

func runThroughput(b *testing.B, cfg tpConfig) tpResult {
	root := b.TempDir()
	names := []string{concWarmProject}
	for i := 0; i < cfg.deploys; i++ {
		names = append(names, concProjectName(i))
	}
	remotes, jobs := generateProjects(b, root, names, cfg.pipelines, cfg.jobs)
	emu := dbemu.Start(dbemu.Options{Volumes: []string{benchVolume}})
	defer emu.Close()
	var pf strings.Builder
	fmt.Fprintf(&pf, "temporal: {namespace: default, task_queue: shipline}\nstate_dir: %s\nteams:\n  developers: {members: [%s]}\nprojects:\n",
		filepath.Join(root, "state"), benchActor)
	for _, name := range names {
		fmt.Fprintf(&pf, "  %s: {repo: %s, admins: [%s], auto_deploy: false}\n", name, remotes[name], benchActor)
	}
	fmt.Fprintf(&pf, "fabrics:\n  dev: {kind: databricks, owner: developers, host: %s, token_env: %s, artifact_root: %s}\n",
		emu.URL, benchTokenEnv, benchVolume)
	cfgPath := filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(cfgPath, []byte(pf.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	s := startStackDynamic(b, cfgPath, *benchParallel, nil)
	c, err := workerapp.Dial(context.Background(), s.address, "default", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	noop := startNoopWorker(b, c)
	defer noop.Stop()

	releaseAll(b, s, names, 4)
	warm := deployProject(s, c, concWarmProject, false)
	if warm.err != nil {
		b.Fatalf("warm-up deploy: %v", warm.err)
	}
	if cfg.latency > 0 {
		emu.Inject(dbemu.Fault{Latency: cfg.latency})
	}
	waitQuiet(b, c)

	// ---- deploy phase
	runtime.GC()
	stopProfile := startPhaseProfile(b, "deploy")
	cpu0 := cpuSeconds()
	runs := make([]*concRun, cfg.deploys)
	phaseStart := time.Now()
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i] = deployProject(s, c, concProjectName(i), false)
		}()
	}
	wg.Wait()
	waitQuiet(b, c)
	deployCPU := cpuSeconds() - cpu0
	stopProfile()
	for _, r := range runs {
		if r.err != nil {
			b.Fatalf("deploy of %s (%s): %v", r.project, r.workflowID, r.err)
		}
		for name, bld := range r.state.Builds {
			if bld.Status != workflows.StepDone || !bld.Cached {
				b.Fatalf("deploy of %s: pipeline %s was not taken from the build cache: %+v", r.project, name, bld)
			}
		}
	}
	checkProjectJobs(b, emu, append([]*concRun{warm}, runs...), jobs)
	dc := countPhase(b, c, phaseStart)
	deployWall := dc.last.Sub(phaseStart)
	perDeploy := func(n int) float64 { return float64(n) / float64(cfg.deploys) }

	// The shape of one deploy, for the no-op workflow.
	events := history(b, c, runs[0].workflowID)
	shape := deployShape(events)
	own := 0
	for _, n := range shape.Rounds {
		own += n
	}
	for range max(0, int(perDeploy(dc.activities)+0.5)-own) {
		shape.Rounds = append(shape.Rounds, 1) // the entities' activities (verifying the messages)
	}
	targetEvents := int(perDeploy(dc.events) + 0.5)
	targetWFTs := int(perDeploy(dc.wfts) + 0.5)
	shape = calibrate(b, c, shape, targetEvents, targetWFTs)

	// ---- no-op phase
	runtime.GC()
	stopProfile = startPhaseProfile(b, "noop")
	cpu0 = cpuSeconds()
	noopStart := time.Now()
	errs := make([]error, cfg.deploys)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = runNoop(c, fmt.Sprintf("noop-%03d", i+1), shape)
		}()
	}
	wg.Wait()
	waitQuiet(b, c)
	noopCPU := cpuSeconds() - cpu0
	stopProfile()
	for _, err := range errs {
		if err != nil {
			b.Fatalf("no-op workflow: %v", err)
		}
	}
	nc := countPhase(b, c, noopStart)
	noopWall := nc.last.Sub(noopStart)
	perNoop := func(n int) float64 { return float64(n) / float64(cfg.deploys) }

	res := tpResult{
		deploysPerMin: float64(cfg.deploys) / deployWall.Minutes(),
		noopPerMin:    float64(cfg.deploys) / noopWall.Minutes(),
		deployEvents:  perDeploy(dc.events),
		noopEvents:    perNoop(nc.events),
	}

	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format+"\n", args...) }
	load, _ := os.ReadFile("/proc/loadavg")
	w("")
	w("throughput benchmark: %d deploys at once (distinct projects, %d pipeline(s) from the build cache + %d Databricks job(s) each, emulator latency %s),",
		cfg.deploys, cfg.pipelines, cfg.jobs, cfg.latency)
	w("  then %d no-op workflows at once with the same activities and events; embedded Temporal server (SQLite) + worker in this process;", cfg.deploys)
	w("  %d CPUs, GOMAXPROCS %d, load average before the run: %s", runtime.NumCPU(), runtime.GOMAXPROCS(0), strings.TrimSpace(string(load)))
	w("")
	w("                         deploy     no-op")
	w("  wall (s)             %8.2f  %8.2f", deployWall.Seconds(), noopWall.Seconds())
	w("  per minute           %8.1f  %8.1f   ratio %.0f%% (target ≥ 70%%: %s)", res.deploysPerMin, res.noopPerMin,
		100*res.deploysPerMin/res.noopPerMin, verdict(res.deploysPerMin >= 0.7*res.noopPerMin))
	w("  events each          %8.1f  %8.1f", perDeploy(dc.events), perNoop(nc.events))
	w("  activities each      %8.1f  %8.1f", perDeploy(dc.activities), perNoop(nc.activities))
	w("  workflow tasks each  %8.1f  %8.1f", perDeploy(dc.wfts), perNoop(nc.wfts))
	w("  local activities     %8.1f  %8.1f", perDeploy(dc.localActs), perNoop(nc.localActs))
	w("  CPU s each           %8.3f  %8.3f   (this process: server, workers, CLI, emulator; and git children)", deployCPU/float64(cfg.deploys), noopCPU/float64(cfg.deploys))
	w("")
	w("  no-op shape: activity rounds %v, %d signal round trips with its entity, %d markers", shape.Rounds, shape.Signals, shape.Markers)
	w("  deploy phase by workflow type (events / activities / workflow tasks per deploy):")
	for _, t := range sortedKeys(dc.byType) {
		v := dc.byType[t]
		w("    %-14s %6.1f %6.1f %6.1f", t, perDeploy(v[0]), perDeploy(v[1]), perDeploy(v[2]))
	}
	b.Log(sb.String())
	return res
}

// startPhaseProfile starts a CPU profile of this process into
// -throughput-cpuprofile.<phase>; the returned func stops it.
func startPhaseProfile(b *testing.B, phase string) func() {
	if *tpProfile == "" {
		return func() {}
	}
	f, err := os.Create(*tpProfile + "." + phase)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatalf("-throughput-cpuprofile: %v (not together with -cpuprofile)", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func runNoop(c client.Client, id string, shape noopShape) error {
	ctx := context.Background()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: noopTaskQueue}, noopWorkflowName, shape)
	if err != nil {
		return err
	}
	return run.Get(ctx, nil)
}

// deployShape reads the rounds of activities a workflow schedules: the
// activities scheduled by one workflow task (they run in parallel).
func deployShape(events []*historypb.HistoryEvent) noopShape {
	var s noopShape
	n := 0
	for _, e := range events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			n++
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			if n > 0 {
				s.Rounds = append(s.Rounds, n)
			}
			n = 0
		}
	}
	if n > 0 {
		s.Rounds = append(s.Rounds, n)
	}
	return s
}

// calibrate fits the padding of a no-op of shape (its activity rounds set) to
// the deploy's events and workflow tasks: one run without signals and one with
// four give what a signal round trip adds (in the no-op and its entity); a
// third run fixes the markers. The calibration runs are not measured.
func calibrate(b *testing.B, c client.Client, shape noopShape, events, wfts int) noopShape {
	run := func(id string, s noopShape) phaseCount {
		start := time.Now()
		if err := runNoop(c, id, s); err != nil {
			b.Fatalf("no-op calibration %s: %v", id, err)
		}
		waitQuiet(b, c)
		return countPhase(b, c, start)
	}
	const probe = 4
	base := run("noop-calibrate-0", shape)
	if !*tpNoopOnly {
		s := shape
		s.Signals = probe
		withSignals := run("noop-calibrate-1", s)
		perWFT := float64(withSignals.wfts-base.wfts) / probe
		if perWFT > 0 {
			shape.Signals = max(0, int(float64(wfts-base.wfts)/perWFT+0.5))
		}
		perEvent := float64(withSignals.events-base.events) / probe
		shape.Markers = max(0, events-base.events-int(float64(shape.Signals)*perEvent+0.5))
	} else {
		shape.Markers = max(0, events-base.events)
	}
	fit := run("noop-calibrate-2", shape)
	shape.Markers = max(0, shape.Markers+events-fit.events)
	return shape
}

// waitQuiet waits until no running workflow of the namespace has a pending
// activity or workflow task: the entities finished what the phase gave them.
func waitQuiet(b *testing.B, c client.Client) {
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		busy := ""
		for _, ex := range listWorkflows(b, c, "ExecutionStatus = 'Running'") {
			d, err := c.DescribeWorkflowExecution(ctx, ex.GetExecution().GetWorkflowId(), "")
			if err != nil {
				continue // it ended meanwhile
			}
			if len(d.GetPendingActivities()) > 0 || d.GetPendingWorkflowTask() != nil {
				busy = ex.GetExecution().GetWorkflowId()
				break
			}
		}
		if busy == "" {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s still has pending work after 5 minutes", busy)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countPhase counts the history events written since start by every workflow
// of the namespace.
func countPhase(b *testing.B, c client.Client, start time.Time) phaseCount {
	pc := phaseCount{byType: map[string][3]int{}}
	for _, ex := range listWorkflows(b, c, "") {
		if ex.GetCloseTime() != nil && ex.GetCloseTime().AsTime().Before(start) {
			continue
		}
		typ := ex.GetType().GetName()
		v := pc.byType[typ]
		it := c.GetWorkflowHistory(context.Background(), ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				b.Fatalf("history of %s: %v", ex.GetExecution().GetWorkflowId(), err)
			}
			at := e.GetEventTime().AsTime()
			if at.Before(start) {
				continue
			}
			pc.events++
			v[0]++
			if at.After(pc.last) {
				pc.last = at
			}
			switch e.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				pc.activities++
				v[1]++
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
				pc.wfts++
				v[2]++
			case enumspb.EVENT_TYPE_MARKER_RECORDED:
				if e.GetMarkerRecordedEventAttributes().GetMarkerName() == "LocalActivity" {
					pc.localActs++
				}
			}
		}
		pc.byType[typ] = v
	}
	return pc
}

func listWorkflows(b *testing.B, c client.Client, query string) []*workflowpb.WorkflowExecutionInfo {
	var out []*workflowpb.WorkflowExecutionInfo
	var token []byte
	for {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", PageSize: 1000, NextPageToken: token, Query: query})
		if err != nil {
			b.Fatalf("list workflows: %v", err)
		}
		out = append(out, resp.GetExecutions()...)
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].GetExecution().GetWorkflowId() < out[j].GetExecution().GetWorkflowId()
	})
	return slices.Clip(out)
}
