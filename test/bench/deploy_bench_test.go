// Package bench holds Shipline's benchmarks of whole deployments on the
// embedded stack: the real worker and CLI code, the embedded Temporal server,
// real `python3 -m build` wheels, a real git remote and the Databricks
// emulator. Nothing here asserts timings; the benchmarks fail only when the
// deployment is wrong (duplicate jobs, rebuilds on a redeploy, moved job IDs).
package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/internal/build"
	"github.com/shipline/shipline/internal/workerapp"
	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/workflows"
)

// Sizes of the generated project; flags win over the environment.
var (
	benchPipelines = flag.Int("pipelines", envInt("SHIPLINE_BENCH_PIPELINES", 20), "BenchmarkDeploy: number of Python pipelines (N)")
	benchJobs      = flag.Int("jobs", envInt("SHIPLINE_BENCH_JOBS", 40), "BenchmarkDeploy: number of Databricks jobs (M), each running 1-3 pipelines")
	benchParallel  = flag.Int("build-parallelism", envInt("SHIPLINE_BENCH_BUILD_PARALLELISM", 0), "BenchmarkDeploy: worker BuildParallelism (0: number of CPUs)")
	benchServer    = flag.String("build-server", envString("SHIPLINE_BENCH_BUILD_SERVER", "both"), "BenchmarkDeploy: Python build server on, off (plain `python3 -m build`) or both (off, then on)")
)

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

const (
	benchProject  = "bench"
	benchVersion  = "v1.0.0"
	benchActor    = "alice"
	benchTokenEnv = "SHIPLINE_BENCH_DATABRICKS_TOKEN"
	benchVolume   = "/Volumes/main/shipline/artifacts"
)

// BenchmarkDeploy generates a project with N small Python pipelines (a
// pyproject.toml and a src package each; no tests/ directory, so a build is one
// `python3 -m build --wheel --no-isolation`) and M Databricks jobs (job i runs
// 1 + i%3 pipelines, each task installing its wheel through
// `libraries: [{"whl": "${artifact.X}"}]`) in a bare git remote. On the
// embedded stack, with a databricks fabric pointing at the emulator, it
// releases v1.0.0 with --no-deploy, empties the build cache the release
// filled, then:
//
//   - cold: `shipline deploy v1.0.0 --wait` on an empty build cache (wall time);
//   - warm: the same deploy again (wall time, number of builds: must be 0);
//
// once with the plain `python3 -m build` (server=off: SHIPLINE_BUILD_SERVER=off)
// and once through the worker's Python build server (server=on; see
// internal/build/server.go; -build-server on|off|both picks), and reports
//
//	cold-s            wall time of the cold `deploy --wait` (CLI start to CLI exit)
//	cpu-ms/wheel      mean CPU time of a cold build's Python tools (tool probe and
//	                  `python -m build`), from the build logs
//	build-critical-s  time during which at least one build tool was running
//	build-sum-s       sum of the builds' time inside build tools (DeployState builds[].seconds)
//	overhead-pct      (cold-s − build-critical-s) / cold-s × 100
//	warm-s            wall time of the warm redeploy
//	warm-builds       pipelines built (cached=false) by the warm redeploy
//	events            history events of the cold Deploy workflow
//	peak-rss-MB       VmHWM of this process: worker + embedded Temporal server + test code
//
// build-critical-s is measured, not estimated: each build's tool interval is
// [end − seconds, end], end being its log file's last write (the tools run
// back to back at the end of a build; only storing the artifact follows), and
// the metric is the length of the union of those intervals. Whatever is not in
// that union is time in which no build tool ran at all: Temporal round trips,
// git, the per-build tool probe and export, uploads, job upserts, the CLI's
// polling. The log also shows the ideal P-lane makespan of the same builds
// (greedy packing in start order), whose gap to the union is idle build slots.
//
// It fails when the deployment is wrong: every job must exist in the emulator
// exactly once (by its shipline tags), the warm redeploy must build nothing and
// leave every job ID unchanged.
//
//	go test ./test/bench -run '^$' -bench Deploy -benchtime 1x -timeout 30m -v
//	go test ./test/bench -run '^$' -bench Deploy -benchtime 1x -v -pipelines 3 -jobs 4
//
// (-v prints the whole report: without it Go cuts a benchmark's log to 10
// lines. The sizes can also come from SHIPLINE_BENCH_PIPELINES,
// SHIPLINE_BENCH_JOBS and SHIPLINE_BENCH_BUILD_PARALLELISM, e.g. when running
// more than this package.) The report breaks the cold and warm deployments
// down by step (from the workflow's state), by history event and activity type
// (from the workflow history) and by emulator API route, so a missed target
// can be traced to the step that dominates.
func BenchmarkDeploy(b *testing.B) {
	n, m := *benchPipelines, *benchJobs
	if n < 1 || m < 1 {
		b.Fatalf("need at least one pipeline and one job, got -pipelines %d -jobs %d", n, m)
	}
	parallelism := *benchParallel
	lanes := parallelism
	if lanes <= 0 {
		lanes = runtime.NumCPU()
	}
	b.Setenv(benchTokenEnv, dbemu.DefaultToken)
	var modes []string
	switch *benchServer {
	case "both":
		modes = []string{"off", "on"}
	case "on", "off":
		modes = []string{*benchServer}
	default:
		b.Fatalf("-build-server %q: use on, off or both", *benchServer)
	}
	for _, mode := range modes {
		b.Run("server="+mode, func(b *testing.B) {
			// Read by the worker's builds (internal/build: SHIPLINE_BUILD_SERVER=off
			// runs the plain `python3 -m build`).
			b.Setenv(build.ServerEnv, mode)
			benchmarkDeploy(b, n, m, parallelism, lanes)
		})
	}
}

func benchmarkDeploy(b *testing.B, n, m, parallelism, lanes int) {
	var r result
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r = runDeployScenario(b, n, m, parallelism, lanes)
	}
	b.ReportMetric(r.cold.Seconds(), "cold-s")
	b.ReportMetric(1000*r.cpuPerWheel, "cpu-ms/wheel")
	b.ReportMetric(r.critical, "build-critical-s")
	b.ReportMetric(r.buildSum, "build-sum-s")
	b.ReportMetric(100*(r.cold.Seconds()-r.critical)/r.cold.Seconds(), "overhead-pct")
	b.ReportMetric(r.warm.Seconds(), "warm-s")
	b.ReportMetric(float64(r.warmBuilds), "warm-builds")
	b.ReportMetric(float64(r.events), "events")
	b.ReportMetric(r.peakRSS, "peak-rss-MB")
	b.ReportMetric(0, "ns/op") // the wall times above are the figures; ns/op would mix in set-up
}

// result holds one scenario's figures.
type result struct {
	cold, warm time.Duration
	critical   float64 // s, union of build-tool intervals
	buildSum   float64 // s, sum of builds' tool seconds
	warmBuilds int
	events     int
	peakRSS    float64 // MB
	// cpuPerWheel is the mean CPU time (s) of a cold build's tools, as its log
	// records it: the tool probe and `python -m build` (plain processes: their
	// rusage; through the build server: the forked child's, with the hook
	// processes it waited for).
	cpuPerWheel float64
}

func runDeployScenario(b *testing.B, n, m, parallelism, lanes int) result {
	root := b.TempDir()
	remote, jobs := generateProject(b, root, n, m)
	used := usedPipelines(jobs)

	emu := dbemu.Start(dbemu.Options{Volumes: []string{benchVolume}})
	defer emu.Close()

	cfgPath := filepath.Join(root, "platform.yaml")
	platformYAML := fmt.Sprintf(`temporal: {namespace: default, task_queue: shipline}
state_dir: %s
teams:
  developers: {members: [%s]}
projects:
  %s:
    repo: %s
    admins: [%s]
    auto_deploy: true
fabrics:
  dev: {kind: databricks, owner: developers, host: %s, token_env: %s, artifact_root: %s}
`, filepath.Join(root, "state"), benchActor, benchProject, remote, benchActor, emu.URL, benchTokenEnv, benchVolume)
	if err := os.WriteFile(cfgPath, []byte(platformYAML), 0o644); err != nil {
		b.Fatal(err)
	}
	s := startStack(b, cfgPath, parallelism)
	global := []string{"--as", benchActor}

	// Release without deploying: the tag only.
	if code, out, errOut := s.shipline(global, "release", benchVersion, "--project", benchProject, "--wait", "--no-deploy"); code != 0 {
		b.Fatalf("release: exit %d\n%s%s", code, out, errOut)
	}

	// Cold deploy: empty build cache. (The release built and tested every
	// pipeline into the cache before tagging; drop what it built.)
	for _, dir := range []string{"cache", filepath.Join("logs", "builds")} {
		if err := os.RemoveAll(filepath.Join(root, "state", dir)); err != nil {
			b.Fatal(err)
		}
	}
	emu.ResetRequests()
	b.StartTimer()
	start := time.Now()
	cold := deploy(b, s, global)
	coldWall := time.Since(start)
	b.StopTimer()
	coldRequests := emu.Requests()
	coldJobs := checkJobs(b, emu, jobs, cold.State)
	for _, p := range used {
		if bld, ok := cold.State.Builds[p]; !ok || bld.Status != workflows.StepDone || bld.Cached {
			b.Fatalf("cold deploy: pipeline %s was not built: %+v", p, bld)
		}
	}
	if got := countArtifacts(emu); got != len(used) {
		b.Fatalf("cold deploy: %d artifacts under %s/%s/%s, want %d", got, benchVolume, benchProject, benchVersion, len(used))
	}
	builds := buildSpans(b, filepath.Join(root, "state"), cold.State)

	// Warm redeploy: everything from the cache, every job unchanged.
	emu.ResetRequests()
	b.StartTimer()
	start = time.Now()
	warm := deploy(b, s, global)
	warmWall := time.Since(start)
	b.StopTimer()
	warmRequests := emu.Requests()
	warmJobs := checkJobs(b, emu, jobs, warm.State)
	warmBuilds := 0
	for _, bld := range warm.State.Builds {
		if !bld.Cached {
			warmBuilds++
		}
	}
	if warmBuilds != 0 {
		b.Errorf("warm redeploy built %d pipelines, want 0", warmBuilds)
	}
	for name, id := range coldJobs {
		if warmJobs[name] != id {
			b.Errorf("warm redeploy moved job %s: id %s → %s", name, id, warmJobs[name])
		}
	}

	// History of both deployments.
	c, err := workerapp.Dial(context.Background(), s.address, "default", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	coldHist := history(b, c, cold.WorkflowID)
	warmHist := history(b, c, warm.WorkflowID)

	r := result{cold: coldWall, warm: warmWall, warmBuilds: warmBuilds, events: len(coldHist), peakRSS: peakRSSMB()}
	r.critical, r.buildSum = builds.union(), builds.sum()
	r.cpuPerWheel = builds.cpu() / float64(len(builds))
	mode := "plain `python3 -m build` (" + build.ServerEnv + "=off)"
	if os.Getenv(build.ServerEnv) != "off" {
		mode = "through the build server"
	}

	// The human-readable report.
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format+"\n", args...) }
	w("")
	w("deploy benchmark: %d pipelines (%d used), %d jobs, build parallelism %d, %d CPUs, python builds without tests, %s", n, len(used), m, lanes, runtime.NumCPU(), mode)
	w("  %-34s %10s  %s", "figure", "value", "target")
	w("  %-34s %9.2fs  ≤ 3s", "cold deploy wall", coldWall.Seconds())
	w("  %-34s %8.0fms  ≤ 100ms", "  CPU per wheel (build tools)", 1000*r.cpuPerWheel)
	w("  %-34s %9.2fs", "  build tools running (critical)", r.critical)
	w("  %-34s %9.2fs", "  sum of build tool time", r.buildSum)
	w("  %-34s %9.2fs", "  ideal makespan on P lanes", builds.lanes(lanes))
	w("  %-34s %9.2fs", "  union of whole build activities", builds.spanUnion())
	w("  %-34s %9.2fs", "  mean non-tool time per build", builds.meanOverhead())
	w("  %-34s %9.1f%%  ≤ 10%%", "  overhead (cold − critical)/cold", 100*(coldWall.Seconds()-r.critical)/coldWall.Seconds())
	w("  %-34s %9.2fs  ≤ 1.5s", "warm redeploy wall", warmWall.Seconds())
	w("  %-34s %10d  0", "  builds on warm redeploy", warmBuilds)
	w("  %-34s %10d  ≤ 300", "history events, cold deploy", len(coldHist))
	w("  %-34s %10d", "history events, warm redeploy", len(warmHist))
	w("  %-34s %10d / %d", "emulator requests cold / warm", len(coldRequests), len(warmRequests))
	w("  %-34s %9.0fMB  (worker + embedded Temporal server + test process)", "peak RSS (VmHWM)", r.peakRSS)
	w("  job actions cold: %s; warm: %s", actions(cold.State), actions(warm.State))
	w("")
	w("cold deploy steps (from the workflow's state):")
	writeSteps(w, cold.State)
	w("cold deploy history:")
	writeHistory(w, coldHist)
	w("cold deploy emulator requests:")
	writeRequests(w, coldRequests)
	w("warm redeploy steps:")
	writeSteps(w, warm.State)
	w("warm redeploy history:")
	writeHistory(w, warmHist)
	w("warm redeploy emulator requests:")
	writeRequests(w, warmRequests)
	b.Logf("%s", sb.String())
	return r
}

// ---- the generated project ---------------------------------------------

// benchJob is one generated job and the pipelines it runs.
type benchJob struct {
	name      string
	pipelines []string
}

func pipelineName(i int) string { return fmt.Sprintf("pipe_%02d", i+1) }

// generateProject writes the project, commits it and pushes it to a new bare
// remote under root; it returns the remote and the jobs.
func generateProject(b *testing.B, root string, n, m int) (string, []benchJob) {
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
	var man strings.Builder
	fmt.Fprintf(&man, "name: %s\nvariables: {schema: bench_dev}\npipelines:\n", benchProject)
	for i := 0; i < n; i++ {
		p := pipelineName(i)
		fmt.Fprintf(&man, "  %s: {path: pipelines/%s, language: python}\n", p, p)
		write("pipelines/"+p+"/pyproject.toml", fmt.Sprintf(`[build-system]
requires = ["setuptools>=61", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "%[1]s"
version = "1.0.0"
description = "Benchmark pipeline %[1]s"
requires-python = ">=3.9"

[project.scripts]
%[1]s = "%[1]s.main:main"

[tool.setuptools.packages.find]
where = ["src"]
`, p))
		write("pipelines/"+p+"/src/"+p+"/__init__.py", "")
		write("pipelines/"+p+"/src/"+p+"/main.py", fmt.Sprintf(`import argparse


def main(argv=None):
    parser = argparse.ArgumentParser(prog=%q)
    parser.add_argument("--schema", default="bench_dev")
    args = parser.parse_args(argv)
    print("pipeline %s writes to", args.schema)


if __name__ == "__main__":
    main()
`, p, p))
	}
	man.WriteString("jobs:\n")
	jobs := make([]benchJob, m)
	for i := 0; i < m; i++ {
		j := benchJob{name: fmt.Sprintf("job_%02d", i+1)}
		for k := 0; k < min(1+i%3, n); k++ {
			j.pipelines = append(j.pipelines, pipelineName((i+k)%n))
		}
		jobs[i] = j
		fmt.Fprintf(&man, "  %s:\n    scheduler: databricks\n    fabric: dev\n    pipelines: [%s]\n    definition: jobs/%s/job.json\n",
			j.name, strings.Join(j.pipelines, ", "), j.name)
		write("jobs/"+j.name+"/job.json", jobDefinition(j))
	}
	write("shipline.yaml", man.String())

	remote := filepath.Join(root, "remotes", benchProject+".git")
	if err := os.MkdirAll(remote, 0o755); err != nil {
		b.Fatal(err)
	}
	git(b, remote, "init", "--bare", "-q", "-b", "main")
	git(b, work, "init", "-q", "-b", "main")
	git(b, work, "add", ".")
	git(b, work, "commit", "-q", "-m", "benchmark project")
	git(b, work, "remote", "add", "origin", remote)
	git(b, work, "push", "-q", "origin", "main")
	return remote, jobs
}

// jobDefinition is a Jobs API 2.2 create payload: one task per pipeline, in a chain.
func jobDefinition(j benchJob) string {
	var tasks []map[string]any
	for i, p := range j.pipelines {
		t := map[string]any{
			"task_key":          p,
			"job_cluster_key":   "main",
			"python_wheel_task": map[string]any{"package_name": p, "entry_point": "main", "parameters": []string{"--schema", "${var.schema}"}},
			"libraries":         []map[string]string{{"whl": "${artifact." + p + "}"}},
		}
		if i > 0 {
			t["depends_on"] = []map[string]string{{"task_key": j.pipelines[i-1]}}
		}
		tasks = append(tasks, t)
	}
	def := map[string]any{
		"name":                "${project.name}-" + j.name,
		"description":         "Benchmark job " + j.name + ", release ${release.version}.",
		"max_concurrent_runs": 1,
		"schedule":            map[string]string{"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "UTC"},
		"job_clusters": []map[string]any{{"job_cluster_key": "main", "new_cluster": map[string]any{
			"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_D4ds_v5", "num_workers": 1}}},
		"tasks": tasks,
	}
	data, _ := json.MarshalIndent(def, "", "  ") // cannot fail: plain maps
	return string(data) + "\n"
}

func usedPipelines(jobs []benchJob) []string {
	set := map[string]bool{}
	for _, j := range jobs {
		for _, p := range j.pipelines {
			set[p] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ---- deploying and checking ----------------------------------------------

type deployOutput struct {
	WorkflowID string                 `json:"workflow_id"`
	State      *workflows.DeployState `json:"state"`
}

// deploy runs `shipline deploy VERSION --project P --wait --output json`.
func deploy(b *testing.B, s *stack, global []string) deployOutput {
	code, out, errOut := s.shipline(append(global, "--output", "json"), "deploy", benchVersion, "--project", benchProject, "--wait")
	var d deployOutput
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.State == nil {
		b.Fatalf("deploy: exit %d, cannot read its JSON output (%v):\n%s%s", code, err, out, errOut)
	}
	if code != 0 || d.State.Status != workflows.StatusSucceeded {
		b.Fatalf("deploy %s: exit %d, status %s: %s\n%s", d.WorkflowID, code, d.State.Status, d.State.Summary, errOut)
	}
	return d
}

// checkJobs checks that every job exists in the emulator exactly once (by its
// shipline tags), that no other job exists, and that the deployment recorded
// the same ID; it returns job name → ID.
func checkJobs(b *testing.B, emu *dbemu.Emulator, jobs []benchJob, st *workflows.DeployState) map[string]string {
	recorded := map[string]string{}
	for _, j := range st.Jobs {
		recorded[j.Job] = j.ID
	}
	if all := emu.Jobs(); len(all) != len(jobs) {
		b.Fatalf("%d jobs in the emulator, want %d", len(all), len(jobs))
	}
	ids := map[string]string{}
	for _, j := range jobs {
		found := emu.JobsTagged(map[string]string{"shipline_project": benchProject, "shipline_job": j.name})
		if len(found) != 1 {
			b.Fatalf("job %s exists %d times in the emulator, want once", j.name, len(found))
		}
		id := strconv.FormatInt(found[0].ID, 10)
		if recorded[j.name] != id {
			b.Fatalf("job %s: the deployment recorded id %q, the emulator has %s", j.name, recorded[j.name], id)
		}
		if v := found[0].Tags()["shipline_version"]; v != benchVersion {
			b.Fatalf("job %s is tagged version %q, want %s", j.name, v, benchVersion)
		}
		ids[j.name] = id
	}
	return ids
}

func countArtifacts(emu *dbemu.Emulator) int {
	prefix := benchVolume + "/" + benchProject + "/" + benchVersion + "/"
	n := 0
	for _, f := range emu.Files() {
		if strings.HasPrefix(f, prefix) && strings.HasSuffix(f, ".whl") {
			n++
		}
	}
	return n
}

func actions(st *workflows.DeployState) string {
	count := map[string]int{}
	for _, j := range st.Jobs {
		count[j.Action]++
	}
	var parts []string
	for _, a := range sortedKeys(count) {
		parts = append(parts, fmt.Sprintf("%d %s", count[a], a))
	}
	return strings.Join(parts, ", ")
}

// ---- build intervals ------------------------------------------------------

// buildSpan is one build: [began, end] is the whole build (export, tool probe,
// tools, storing), and the tools ran for seconds just before end.
type buildSpan struct {
	pipeline   string
	began, end time.Time
	seconds    float64
	cpu        float64 // CPU seconds of its tools, from the log's last line
}

// logCPU matches the CPU time on a build log's "built …" line.
var logCPU = regexp.MustCompile(`### built .*, ([0-9.]+)s CPU\n`)

type spans []buildSpan

// buildSpans reads each built pipeline's interval: the end is the last write to
// its build log, the start of the whole build is the cache entry's built_at.
func buildSpans(b *testing.B, stateDir string, st *workflows.DeployState) spans {
	var out spans
	for _, name := range sortedKeys(st.Builds) {
		bld := st.Builds[name]
		if bld.Cached {
			continue
		}
		// The store is state_dir: the log's key is its path there.
		logFile := filepath.Join(stateDir, filepath.FromSlash(bld.LogPath))
		fi, err := os.Stat(logFile)
		if err != nil {
			b.Fatalf("build log of %s: %v", name, err)
		}
		sp := buildSpan{pipeline: name, end: fi.ModTime(), seconds: bld.Seconds}
		if data, err := os.ReadFile(logFile); err == nil {
			if m := logCPU.FindSubmatch(data); m != nil {
				sp.cpu, _ = strconv.ParseFloat(string(m[1]), 64)
			}
		}
		key := strings.TrimSuffix(filepath.Base(logFile), ".log")
		meta := filepath.Join(stateDir, "cache", key, "meta.json")
		var m struct {
			BuiltAt time.Time `json:"built_at"`
		}
		if data, err := os.ReadFile(meta); err == nil && json.Unmarshal(data, &m) == nil {
			sp.began = m.BuiltAt
		} else {
			sp.began = sp.end.Add(-time.Duration(bld.Seconds * float64(time.Second)))
		}
		out = append(out, sp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].began.Before(out[j].began) })
	return out
}

func (s spans) cpu() float64 {
	t := 0.0
	for _, sp := range s {
		t += sp.cpu
	}
	return t
}

func (s spans) sum() float64 {
	t := 0.0
	for _, sp := range s {
		t += sp.seconds
	}
	return t
}

// union is the length of the union of the tool intervals [end − seconds, end].
func (s spans) union() float64 {
	iv := make([][2]time.Time, len(s))
	for i, sp := range s {
		iv[i] = [2]time.Time{sp.end.Add(-time.Duration(sp.seconds * float64(time.Second))), sp.end}
	}
	return unionLen(iv)
}

// spanUnion is the length of the union of whole builds [began, end].
func (s spans) spanUnion() float64 {
	iv := make([][2]time.Time, len(s))
	for i, sp := range s {
		iv[i] = [2]time.Time{sp.began, sp.end}
	}
	return unionLen(iv)
}

func unionLen(iv [][2]time.Time) float64 {
	sort.Slice(iv, func(i, j int) bool { return iv[i][0].Before(iv[j][0]) })
	var total time.Duration
	var cur [2]time.Time
	for i, v := range iv {
		switch {
		case i == 0:
			cur = v
		case v[0].After(cur[1]):
			total += cur[1].Sub(cur[0])
			cur = v
		case v[1].After(cur[1]):
			cur[1] = v[1]
		}
	}
	if len(iv) > 0 {
		total += cur[1].Sub(cur[0])
	}
	return total.Seconds()
}

// lanes is the makespan of the builds' tool times packed greedily, in the
// order they started, onto p lanes: the build phase with no overhead at all.
func (s spans) lanes(p int) float64 {
	free := make([]float64, p)
	for _, sp := range s {
		i := slices.Index(free, slices.Min(free))
		free[i] += sp.seconds
	}
	return slices.Max(free)
}

// meanOverhead is the mean time of a build spent outside build tools (export,
// tool probe, storing).
func (s spans) meanOverhead() float64 {
	if len(s) == 0 {
		return 0
	}
	t := 0.0
	for _, sp := range s {
		t += sp.end.Sub(sp.began).Seconds() - sp.seconds
	}
	return t / float64(len(s))
}

// ---- history ---------------------------------------------------------------

// history returns every event of a workflow's latest run.
func history(b *testing.B, c client.Client, id string) []*historypb.HistoryEvent {
	it := c.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			b.Fatalf("history of %s: %v", id, err)
		}
		events = append(events, e)
	}
	return events
}

// writeSteps prints each step's start (from the deployment's start) and duration.
func writeSteps(w func(string, ...any), st *workflows.DeployState) {
	total := st.Finished.Sub(st.Started)
	for _, s := range st.Steps {
		if s.Started.IsZero() {
			w("  %-10s %-8s", s.Name, s.Status)
			continue
		}
		w("  %-10s %-8s at %6.2fs took %6.2fs  %s", s.Name, s.Status, s.Started.Sub(st.Started).Seconds(), s.Finished.Sub(s.Started).Seconds(), firstLine(s.Detail, 70))
	}
	w("  %-10s %-8s        took %6.2fs  (workflow start to finish, as the workflow saw it)", "total", st.Status, total.Seconds())
}

// writeHistory prints events by type, workflow-task count and latency, and each
// activity type's count, first schedule and last completion (relative to the
// workflow's start) and summed schedule-to-start queueing.
func writeHistory(w func(string, ...any), events []*historypb.HistoryEvent) {
	if len(events) == 0 {
		return
	}
	t0 := events[0].GetEventTime().AsTime()
	at := func(e *historypb.HistoryEvent) float64 { return e.GetEventTime().AsTime().Sub(t0).Seconds() }
	byType := map[string]int{}
	for _, e := range events {
		byType[strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_")]++
	}
	var parts []string
	for _, k := range sortedKeys(byType) {
		parts = append(parts, fmt.Sprintf("%s %d", k, byType[k]))
	}
	w("  %d events, last at %.2fs: %s", len(events), at(events[len(events)-1]), strings.Join(parts, ", "))

	type actStats struct {
		n                  int
		first, last        float64
		queued, ran        float64
		scheduled, started map[int64]float64
	}
	acts := map[string]*actStats{}
	typeOf := map[int64]string{}
	wftScheduled := map[int64]float64{}
	wftLatency, wfts := 0.0, 0
	for _, e := range events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			wftScheduled[e.GetEventId()] = at(e)
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			wfts++
			wftLatency += at(e) - wftScheduled[e.GetWorkflowTaskCompletedEventAttributes().GetScheduledEventId()]
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			name := e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			typeOf[e.GetEventId()] = name
			a := acts[name]
			if a == nil {
				a = &actStats{first: at(e), scheduled: map[int64]float64{}, started: map[int64]float64{}}
				acts[name] = a
			}
			a.n++
			a.scheduled[e.GetEventId()] = at(e)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			id := e.GetActivityTaskStartedEventAttributes().GetScheduledEventId()
			a := acts[typeOf[id]]
			a.started[id] = at(e)
			a.queued += at(e) - a.scheduled[id]
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			id := e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			a := acts[typeOf[id]]
			a.last = max(a.last, at(e))
			a.ran += at(e) - a.started[id]
		}
	}
	w("  %d workflow tasks, %.2fs summed from scheduled to completed", wfts, wftLatency)
	for _, name := range sortedKeys(acts) {
		a := acts[name]
		w("  activity %-12s ×%-3d first scheduled %6.2fs, last completed %6.2fs; summed queueing %6.2fs, running %7.2fs",
			name, a.n, a.first, a.last, a.queued, a.ran)
	}
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n-1] + "…"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeRequests prints the emulator's requests by method and API route: how
// many, when the first and the last came (from the first request), and the
// mean gap between two of them.
func writeRequests(w func(string, ...any), reqs []dbemu.Request) {
	if len(reqs) == 0 {
		return
	}
	t0 := reqs[0].Time
	type routeStats struct {
		n           int
		first, last time.Time
	}
	routes := map[string]*routeStats{}
	for _, r := range reqs {
		route := r.Method + " " + apiRoute(r.Path)
		st := routes[route]
		if st == nil {
			st = &routeStats{first: r.Time}
			routes[route] = st
		}
		st.n++
		st.last = r.Time
	}
	for _, name := range sortedKeys(routes) {
		st := routes[name]
		gap := 0.0
		if st.n > 1 {
			gap = st.last.Sub(st.first).Seconds() / float64(st.n-1) * 1000
		}
		w("  %-36s ×%-3d first %6.2fs last %6.2fs, mean gap %5.1fms", name, st.n, st.first.Sub(t0).Seconds(), st.last.Sub(t0).Seconds(), gap)
	}
}

// apiRoute drops the object path from Files, Workspace and DBFS routes.
func apiRoute(p string) string {
	for _, prefix := range []string{"/api/2.0/fs/files/", "/api/2.0/fs/directories/"} {
		if strings.HasPrefix(p, prefix) {
			return strings.TrimSuffix(prefix, "/")
		}
	}
	return p
}
