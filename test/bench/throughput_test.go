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
	tpRounds   = flag.Int("throughput-rounds", envInt("SHIPLINE_BENCH_THROUGHPUT_ROUNDS", 3), "BenchmarkThroughput: rounds of (N deploys at once, then N no-ops at once)")
	tpLatency  = flag.Duration("fabric-latency", 0, "BenchmarkThroughput: latency the Databricks emulator adds to every call (0: none)")
	tpProfile  = flag.String("throughput-cpuprofile", os.Getenv("SHIPLINE_BENCH_THROUGHPUT_CPUPROFILE"), "BenchmarkThroughput: write CPU profiles of the deploy phase and of the no-op phase to FILE.deploy and FILE.noop")
	tpNoopOnly = flag.Bool("noop-markers-only", false, "BenchmarkThroughput: pad the no-op workflow with markers only (default: also the same number of workflow tasks)")
)

// BenchmarkThroughput measures deploys per minute on the embedded server
// against the ceiling of the same server, in one run: N no-op workflows that
// execute, per workflow, the same number of (no-op) activities and produce the
// same number of history events as one deploy, at the same concurrency.
//
// Set-up: (R+1)×N generated projects (the shape of BenchmarkConcurrentDeploys:
// -project-pipelines Python pipelines, -project-jobs Databricks jobs on one
// emulated workspace, optionally with -fabric-latency on every API call) are
// released with --no-deploy, and a warm-up project is deployed first, so every
// pipeline is in the build cache: the figures are orchestration (Temporal, git
// resolve, cache lookups, uploads, job upserts), not `python3 -m build`.
//
// A deploy phase starts N deploys of distinct projects at once through the
// CLI's code (`shipline deploy`: update-with-start, then the result through one
// shared client) and lasts until the last history event any workflow wrote
// for them: the Deploy workflows and the entities they talk to (Fabric,
// Release, Audit), whose trailing work (verifying the last signal) belongs to
// a deploy too. The events written during the phase, in the histories of
// every workflow of the namespace, give events, activities and workflow tasks
// per deploy, and the Deploy workflow's rounds of activities (those one
// workflow task schedules run in parallel).
//
// A no-op phase starts N NoopDeploy workflows at once on a second worker in
// this process (the SDK's default worker options, as shipline-worker's; its
// own task queue on the same server). Each runs the deploy's rounds of no-op
// activities (the entities' activities as further rounds of one), talks to a
// NoopEntity child as a Deploy does to its Fabric entity (signal round trips,
// as many as make the deploy's workflow tasks) and fills the rest of the
// deploy's events with markers; calibration runs fit the padding, and the
// report shows the events both wrote.
//
// Round 0 (a deploy phase, then a no-op phase) warms up and gives the no-op's
// shape; it is reported, not counted. Then R rounds (-throughput-rounds)
// alternate the two phases, so that a change of the machine's load hits both.
// Reported: deploys/min and noop/min over the R rounds (runs / summed wall
// time) and their ratio (target ≥ 70 %), and the CPU seconds per deploy and
// per no-op (this process and its children: on a machine whose other tenants
// take a changing share of the CPUs this ratio is steadier than the wall-time
// one); events by type and workflow. -throughput-cpuprofile FILE writes CPU
// profiles of the first measured deploy and no-op phases. It fails only when a
// deployment is wrong.
//
//	go test ./test/bench -run '^$' -bench Throughput -benchtime 1x -timeout 30m -v
//	go test ./test/bench -run '^$' -bench Throughput -benchtime 1x -timeout 30m -v -throughput-deploys 40 -fabric-latency 50ms
func BenchmarkThroughput(b *testing.B) {
	cfg := tpConfig{deploys: *tpDeploys, rounds: *tpRounds, pipelines: *concPipelines, jobs: *concJobs, latency: *tpLatency}
	if cfg.deploys < 1 || cfg.rounds < 1 || cfg.deploys*(cfg.rounds+1) > 999 || cfg.pipelines < 1 || cfg.jobs < 1 {
		b.Fatalf("need 1..999 deploys in all and at least one round, pipeline and job: -throughput-deploys %d -throughput-rounds %d -project-pipelines %d -project-jobs %d",
			cfg.deploys, cfg.rounds, cfg.pipelines, cfg.jobs)
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
	deploys, rounds, pipelines, jobs int
	latency                          time.Duration
}

type tpResult struct {
	deploysPerMin, noopPerMin float64
	deployEvents, noopEvents  float64
}

// phaseCount is what the histories say about one phase.
type phaseCount struct {
	events, activities, wfts, localActs int
	byType                              map[string][3]int // workflow type → events, activities, workflow tasks
	byEvent                             map[string]int    // event type → events
	last                                time.Time         // the last event of the phase
}

// phase is one measured phase: n deploys or n no-ops at once.
type phase struct {
	wall     time.Duration // start to the phase's last history event
	cpu      float64       // CPU seconds of this process and its children
	childCPU float64       // of which its children's (git)
	count    phaseCount
}

func (p phase) perMin(n int) float64 { return float64(n) / p.wall.Minutes() }

// tpEnv is the stack a throughput run measures.
type tpEnv struct {
	b    *testing.B
	cfg  tpConfig
	s    *stack
	c    client.Client
	emu  *dbemu.Emulator
	jobs []benchJob
	done []*concRun // every deploy so far, for the final check of the jobs
}

func runThroughput(b *testing.B, cfg tpConfig) tpResult {
	root := b.TempDir()
	names := []string{concWarmProject}
	for i := 0; i < cfg.deploys*(cfg.rounds+1); i++ {
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
	env := &tpEnv{b: b, cfg: cfg, s: s, c: c, emu: emu, jobs: jobs}

	releaseAll(b, s, names, 4)
	warm := deployProject(s, c, concWarmProject, false)
	if warm.err != nil {
		b.Fatalf("warm-up deploy: %v", warm.err)
	}
	env.done = append(env.done, warm)
	if cfg.latency > 0 {
		emu.Inject(dbemu.Fault{Latency: cfg.latency})
	}
	load, _ := os.ReadFile("/proc/loadavg")
	waitQuiet(b, c)

	// Rounds: N deploys at once, then N no-ops at once, alternately, so that
	// a change of the machine's load hits both alike. The no-op's shape comes
	// from the first deploy round.
	// Round 0 warms up (its deploys ran markedly slower than the next ones):
	// it gives the shape, and is reported but not counted.
	var deploys, noops []phase
	var shape noopShape
	for r := 0; r <= cfg.rounds; r++ {
		d := env.deployPhase(r)
		if r == 0 {
			shape = env.shapeOf(d)
		}
		deploys, noops = append(deploys, d), append(noops, env.noopPhase(r, shape))
	}
	warmD, warmN := deploys[0], noops[0]
	deploys, noops = deploys[1:], noops[1:]
	checkProjectJobs(b, emu, env.done, jobs)

	// Totals over the rounds.
	var dWall, nWall time.Duration
	var dCPU, nCPU, dChild float64
	for r := range deploys {
		dWall, nWall = dWall+deploys[r].wall, nWall+noops[r].wall
		dCPU, nCPU = dCPU+deploys[r].cpu, nCPU+noops[r].cpu
		dChild += deploys[r].childCPU
	}
	n := cfg.deploys * cfg.rounds
	dc, nc := warmD.count, warmN.count
	per := func(v int) float64 { return float64(v) / float64(cfg.deploys) }
	res := tpResult{
		deploysPerMin: float64(n) / dWall.Minutes(), noopPerMin: float64(n) / nWall.Minutes(),
		deployEvents: per(dc.events), noopEvents: per(nc.events),
	}

	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format+"\n", args...) }
	loadAfter, _ := os.ReadFile("/proc/loadavg")
	w("")
	w("throughput benchmark: %d rounds of %d deploys at once (distinct projects, %d pipeline(s) from the build cache + %d Databricks job(s) each,",
		cfg.rounds, cfg.deploys, cfg.pipelines, cfg.jobs)
	w("  emulator latency %s), each followed by %d no-op workflows at once with the same activities and events;", cfg.latency, cfg.deploys)
	w("  embedded Temporal server (SQLite) + shipline worker + no-op worker in this process; %d CPUs, GOMAXPROCS %d;", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	w("  load average before: %s, after: %s", strings.TrimSpace(string(load)), strings.TrimSpace(string(loadAfter)))
	w("")
	w("  (round 0, the warm-up: deploys %.2fs, no-ops %.2fs; not counted)", warmD.wall.Seconds(), warmN.wall.Seconds())
	for r := range deploys {
		w("  round %d: deploys %6.2fs %6.1f/min   no-ops %6.2fs %6.1f/min   ratio %3.0f%%", r+1,
			deploys[r].wall.Seconds(), deploys[r].perMin(cfg.deploys), noops[r].wall.Seconds(), noops[r].perMin(cfg.deploys),
			100*deploys[r].perMin(cfg.deploys)/noops[r].perMin(cfg.deploys))
	}
	w("")
	w("                         deploy     no-op")
	w("  per minute           %8.1f  %8.1f   ratio %.0f%% (target ≥ 70%%: %s)   [all rounds: runs / summed wall]", res.deploysPerMin, res.noopPerMin,
		100*res.deploysPerMin/res.noopPerMin, verdict(res.deploysPerMin >= 0.7*res.noopPerMin))
	w("  CPU s each           %8.3f  %8.3f   ratio %.0f%%   [this process — server, workers, CLI, emulator — and its git children]",
		dCPU/float64(n), nCPU/float64(n), 100*nCPU/dCPU)
	w("    of which children  %8.3f            [git run by the worker's activities]", dChild/float64(n))
	w("  events each          %8.1f  %8.1f   [round 0]", per(dc.events), per(nc.events))
	w("  activities each      %8.1f  %8.1f", per(dc.activities), per(nc.activities))
	w("  workflow tasks each  %8.1f  %8.1f", per(dc.wfts), per(nc.wfts))
	w("  local activities     %8.1f  %8.1f", per(dc.localActs), per(nc.localActs))
	w("")
	w("  no-op shape: activity rounds %v, %d signal round trips with its entity, %d markers", shape.Rounds, shape.Signals, shape.Markers)
	w("  deploy round 0 by workflow type (events / activities / workflow tasks per deploy):")
	for _, t := range sortedKeys(dc.byType) {
		v := dc.byType[t]
		w("    %-14s %6.1f %6.1f %6.1f", t, per(v[0]), per(v[1]), per(v[2]))
	}
	w("  events per deploy and per no-op by event type (round 0):")
	kinds := map[string]bool{}
	for k := range dc.byEvent {
		kinds[k] = true
	}
	for k := range nc.byEvent {
		kinds[k] = true
	}
	for _, k := range sortedKeys(kinds) {
		w("    %-46s %6.1f %6.1f", k, per(dc.byEvent[k]), per(nc.byEvent[k]))
	}
	b.Log(sb.String())
	return res
}

// deployPhase runs round r's N deploys at once and waits until every
// workflow they involved is idle.
func (e *tpEnv) deployPhase(r int) phase {
	b, n := e.b, e.cfg.deploys
	runtime.GC()
	stop := startPhaseProfile(b, "deploy", r)
	cpu0, child0 := cpuSeconds(), childCPUSeconds()
	runs := make([]*concRun, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i] = deployProject(e.s, e.c, concProjectName(r*n+i), false)
		}()
	}
	wg.Wait()
	waitQuiet(b, e.c)
	cpu, child := cpuSeconds()-cpu0, childCPUSeconds()-child0
	stop()
	for _, run := range runs {
		if run.err != nil {
			b.Fatalf("deploy of %s (%s): %v", run.project, run.workflowID, run.err)
		}
		for name, bld := range run.state.Builds {
			if bld.Status != workflows.StepDone || !bld.Cached {
				b.Fatalf("deploy of %s: pipeline %s was not taken from the build cache: %+v", run.project, name, bld)
			}
		}
	}
	e.done = append(e.done, runs...)
	pc := countPhase(b, e.c, start)
	return phase{wall: pc.last.Sub(start), cpu: cpu, childCPU: child, count: pc}
}

// shapeOf derives the no-op's shape from a deploy phase: the Deploy
// workflow's rounds of activities, the entities' activities as further rounds
// of one, padded to the same events and workflow tasks per deploy.
func (e *tpEnv) shapeOf(d phase) noopShape {
	n := float64(e.cfg.deploys)
	shape := deployShape(history(e.b, e.c, e.done[len(e.done)-1].workflowID))
	own := 0
	for _, k := range shape.Rounds {
		own += k
	}
	for range max(0, int(float64(d.count.activities)/n+0.5)-own) {
		shape.Rounds = append(shape.Rounds, 1)
	}
	return calibrate(e.b, e.c, shape, int(float64(d.count.events)/n+0.5), int(float64(d.count.wfts)/n+0.5))
}

// noopPhase runs round r's N no-op workflows at once.
func (e *tpEnv) noopPhase(r int, shape noopShape) phase {
	b, n := e.b, e.cfg.deploys
	runtime.GC()
	stop := startPhaseProfile(b, "noop", r)
	cpu0 := cpuSeconds()
	start := time.Now()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = runNoop(e.c, fmt.Sprintf("noop-%d-%03d", r+1, i+1), shape)
		}()
	}
	wg.Wait()
	waitQuiet(b, e.c)
	cpu := cpuSeconds() - cpu0
	stop()
	for _, err := range errs {
		if err != nil {
			b.Fatalf("no-op workflow: %v", err)
		}
	}
	pc := countPhase(b, e.c, start)
	return phase{wall: pc.last.Sub(start), cpu: cpu, count: pc}
}

// startPhaseProfile starts a CPU profile of this process into
// -throughput-cpuprofile.<phase> (round 1, the first measured, only); the
// returned func stops it.
func startPhaseProfile(b *testing.B, phase string, round int) func() {
	if *tpProfile == "" || round != 1 {
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
	pc := phaseCount{byType: map[string][3]int{}, byEvent: map[string]int{}}
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
			pc.byEvent[strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_")]++
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
