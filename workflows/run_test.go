package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/signing"
)

const runWorkflowID = "run/demo/dev/nightly/r1"

// keyedRunner plays a fabric that runs jobs: runs are keyed by the start's
// idempotency Key (a second start with the same key returns the first run),
// and each GetRun advances the run one step along script.
type keyedRunner struct {
	fabric.Fabric // the deploy operations are not used by runs

	mu        sync.Mutex
	byKey     map[string]string // key → run ID
	starts    int               // StartRun calls
	failStart int               // the first failStart calls start the run, then fail as a lost answer
	reads     map[string]int    // run ID → GetRun calls
	script    []fabric.Run      // what the nth read returns (the last one repeats)
	cancelled []string
	requests  []fabric.RunRequest
}

func newKeyedRunner(script ...fabric.Run) *keyedRunner {
	return &keyedRunner{byKey: map[string]string{}, reads: map[string]int{}, script: script}
}

func (f *keyedRunner) StartRun(_ context.Context, r fabric.RunRequest) (fabric.RunRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts++
	f.requests = append(f.requests, r)
	id, ok := f.byKey[r.Key]
	if !ok {
		id = "9" + strings.Repeat("0", len(f.byKey)) // 9, 90, 900, …
		f.byKey[r.Key] = id
	}
	if f.starts <= f.failStart {
		// The fabric started the run, the answer was lost: the activity retries.
		return fabric.RunRef{}, &apperr.Error{Type: apperr.FabricUnavailable, Msg: "503 Service Unavailable (answer lost)"}
	}
	return fabric.RunRef{ID: id, URL: "https://dbc.example/#job/1/run/" + id}, nil
}

func (f *keyedRunner) GetRun(_ context.Context, _, _, id string) (fabric.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := min(f.reads[id], len(f.script)-1)
	f.reads[id]++
	r := f.script[n]
	r.ID = id
	return r, nil
}

func (f *keyedRunner) ListRuns(context.Context, string, string, int) ([]fabric.Run, error) {
	return nil, nil
}

func (f *keyedRunner) CancelRun(_ context.Context, _, _, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, id)
	return nil
}

func (f *keyedRunner) ActiveRuns(context.Context, string, string) ([]fabric.Run, error) {
	return nil, nil
}

func running(tasks ...fabric.TaskRun) fabric.Run {
	return fabric.Run{State: fabric.RunRunning, Tasks: tasks}
}

func ended(res fabric.RunResult, tasks ...fabric.TaskRun) fabric.Run {
	return fabric.Run{State: fabric.RunTerminated, Result: res, Tasks: tasks}
}

func task(key string, s fabric.RunState, res fabric.RunResult, msg string) fabric.TaskRun {
	return fabric.TaskRun{Key: key, State: s, Result: res, Message: msg}
}

type runEnv struct {
	*testsuite.TestWorkflowEnvironment
	t   *testing.T
	fab *keyedRunner
	// deployed is what the dev fabric's entity records (nil: no entity).
	deployed map[string]JobRecord
	// policy is platform.yaml's signing policy.
	policy signing.Policy
}

// newRunEnv runs the Run workflow with the real Runs activities on a fake
// fabric "dev" owned by developers (bob).
func newRunEnv(t *testing.T, fab *keyedRunner) *runEnv {
	var s testsuite.WorkflowTestSuite
	e := &runEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment(), t: t, fab: fab,
		deployed: map[string]JobRecord{"nightly": {Fabric: "dev", Job: "nightly", Version: "v1.0.0", DeploymentID: "deploy/demo/v1.0.0/x", Actor: "alice"}}}
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: runWorkflowID})
	e.RegisterWorkflowWithOptions(Run, workflow.RegisterOptions{Name: RunWorkflow})
	cfg := &platform.Config{
		Teams:    map[string]platform.Team{"developers": {Members: []string{"bob"}}},
		Projects: map[string]platform.Project{"demo": {}},
		Fabrics:  map[string]platform.Fabric{"dev": {Name: "dev", Kind: fabric.KindDatabricks, Owner: "developers"}},
	}
	e.RegisterActivity(&activities.Runs{Platform: cfg, Open: func(_ *platform.Config, name string, _ fabric.Env) (fabric.Fabric, error) {
		return fab, nil
	}})
	e.RegisterActivity(&activities.Config{})
	e.OnActivity(configActs.Signatures, mock.Anything).Return(func(context.Context) (signing.Policy, error) { return e.policy, nil })
	e.RegisterActivity(&activities.Messages{})
	e.OnActivity(messageActs.Query, mock.Anything, activities.QueryInput{WorkflowID: FabricID("demo", "dev"), Query: StateQuery}).Return(
		func(context.Context, activities.QueryInput) (activities.QueryOutput, error) {
			if e.deployed == nil {
				return activities.QueryOutput{Missing: true}, nil
			}
			b, err := json.Marshal(FabricState{Project: "demo", Fabric: "dev", Jobs: e.deployed})
			return activities.QueryOutput{Result: b}, err
		})
	return e
}

func (e *runEnv) run(in RunInput) (RunOutcome, error) {
	e.ExecuteWorkflow(Run, in)
	if !e.IsWorkflowCompleted() {
		e.t.Fatal("the run workflow did not complete")
	}
	var out RunOutcome
	err := e.GetWorkflowResult(&out)
	return out, err
}

var nightly = RunInput{Project: "demo", Fabric: "dev", Job: "nightly", Actor: "bob", Params: map[string]string{"mode": "smoke"}, Trigger: "cli"}

func TestRunFollowsTheRunToSuccess(t *testing.T) {
	fab := newKeyedRunner(
		fabric.Run{State: fabric.RunPending, Tasks: []fabric.TaskRun{task("ingest", fabric.RunPending, "", ""), task("score", fabric.RunPending, "", "")}},
		running(task("ingest", fabric.RunRunning, "", ""), task("score", fabric.RunPending, "", "")),
		running(task("ingest", fabric.RunTerminated, fabric.RunSucceeded, ""), task("score", fabric.RunRunning, "", "")),
		ended(fabric.RunSucceeded, task("ingest", fabric.RunTerminated, fabric.RunSucceeded, ""), task("score", fabric.RunTerminated, fabric.RunSucceeded, "")),
	)
	e := newRunEnv(t, fab)
	var seen []string
	for _, at := range []time.Duration{3 * time.Second, 8 * time.Second, 18 * time.Second, 38 * time.Second} {
		e.RegisterDelayedCallback(func() {
			v, err := e.QueryWorkflow(StateQuery)
			if err != nil {
				t.Errorf("query: %v", err)
				return
			}
			var s RunOutcome
			_ = v.Get(&s)
			seen = append(seen, taskSummary(s.Tasks))
		}, at)
	}
	out, err := e.run(nightly)
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	if out.Status != StatusSucceeded || out.RunID != "9" || out.Result != fabric.RunSucceeded || out.Version != "v1.0.0" ||
		!strings.Contains(out.URL, "/run/9") || out.Polls != 4 || len(out.Tasks) != 2 {
		t.Fatalf("outcome = %+v", out)
	}
	if !strings.Contains(out.Summary, "nightly on dev succeeded (run 9") {
		t.Errorf("summary = %q", out.Summary)
	}
	// The state query showed the tasks advancing (pending → running → success).
	want := []string{"no tasks reported", "2 pending", "1 running, 1 pending", "1 success, 1 running"}
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("states seen = %q, want %q", seen, want)
	}
	r := fab.requests[0]
	if r.Key != RunKey(runWorkflowID, r.Key[strings.Index(r.Key, "#")+1:]) || !strings.HasPrefix(r.Key, runWorkflowID+"#") ||
		r.TriggeredBy != "bob" || r.Params["mode"] != "smoke" || r.Job != "nightly" {
		t.Errorf("start request = %+v", r)
	}
}

func TestRunFailureSaysWhichTaskFailedAndWhere(t *testing.T) {
	fab := newKeyedRunner(
		running(task("ingest", fabric.RunRunning, "", "")),
		ended(fabric.RunFailed, task("ingest", fabric.RunTerminated, fabric.RunFailed, "ValueError: no orders for 2026-11-27"), task("score", fabric.RunTerminated, fabric.RunCancelled, "")),
	)
	e := newRunEnv(t, fab)
	_, err := e.run(nightly)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != apperr.RunFailed || Outcome(app.Type()) != StatusFailed {
		t.Fatalf("error = %v", err)
	}
	if !strings.Contains(err.Error(), "task ingest failed: ValueError: no orders for 2026-11-27") || !strings.Contains(err.Error(), "https://dbc.example/#job/1/run/9") {
		t.Errorf("message = %q", err.Error())
	}
	out, ok := RunOutcomeOf(err)
	if !ok || out.Status != StatusFailed || out.Message != "task ingest failed: ValueError: no orders for 2026-11-27" || out.RunID != "9" {
		t.Errorf("outcome = %+v, %v", out, ok)
	}
}

// A start whose answer was lost is retried by Temporal with the same key: the
// fabric returns the run it started, so there is one remote run.
func TestRetriedStartMakesOneRemoteRun(t *testing.T) {
	fab := newKeyedRunner(ended(fabric.RunSucceeded))
	fab.failStart = 2
	e := newRunEnv(t, fab)
	out, err := e.run(nightly)
	if err != nil {
		t.Fatal(err)
	}
	if fab.starts != 3 || len(fab.byKey) != 1 || out.RunID != "9" {
		t.Fatalf("starts = %d, runs = %v, outcome run %s", fab.starts, fab.byKey, out.RunID)
	}
	keys := map[string]bool{}
	for _, r := range fab.requests {
		keys[r.Key] = true
	}
	if len(keys) != 1 {
		t.Errorf("the retries used %d keys: %v", len(keys), keys)
	}
}

func TestCancellingTheRunWorkflowCancelsTheRemoteRun(t *testing.T) {
	fab := newKeyedRunner(running(task("ingest", fabric.RunRunning, "", "")))
	e := newRunEnv(t, fab)
	e.RegisterDelayedCallback(e.CancelWorkflow, 2*time.Minute)
	out, err := e.run(nightly)
	if !temporal.IsCanceledError(err) {
		t.Fatalf("error = %v, outcome %+v", err, out)
	}
	if len(fab.cancelled) != 1 || fab.cancelled[0] != "9" {
		t.Fatalf("cancelled remote runs = %v", fab.cancelled)
	}
	v, qerr := e.QueryWorkflow(StateQuery)
	if qerr != nil {
		t.Fatal(qerr)
	}
	var s RunOutcome
	_ = v.Get(&s)
	if s.Status != StatusCancelled || s.Result != fabric.RunCancelled || !strings.Contains(s.Message, "run 9 on dev cancelled") {
		t.Errorf("state = %+v", s)
	}
}

// The waits between reads grow from 5 s to 30 s: a run of an hour is read
// about 120 times, not 720.
func TestRunPollsWithBackoff(t *testing.T) {
	script := make([]fabric.Run, 0, 200)
	for range 150 {
		script = append(script, running())
	}
	fab := newKeyedRunner(append(script, ended(fabric.RunSucceeded))...)
	e := newRunEnv(t, fab)
	start := e.Now()
	out, err := e.run(nightly)
	if err != nil {
		t.Fatal(err)
	}
	// 5 + 10 + 20 + 148 × 30 s of waits before the 151st read.
	if took := out.Finished.Sub(start); took != 35*time.Second+148*30*time.Second {
		t.Errorf("151 reads took %s", took)
	}
}

func TestRunRefusals(t *testing.T) {
	cases := []struct {
		name     string
		in       RunInput
		deployed map[string]JobRecord
		typ      string
		want     string
	}{
		{"not the owner team", RunInput{Project: "demo", Fabric: "dev", Job: "nightly", Actor: "dave"}, nil, apperr.AccessDenied,
			"dave may not run jobs on fabric dev: fabric dev is owned by team developers (bob)"},
		{"unknown fabric", RunInput{Project: "demo", Fabric: "prod", Job: "nightly", Actor: "bob"}, nil, apperr.InvalidInput,
			`fabric "prod" is not defined`},
		{"unknown project", RunInput{Project: "nope", Fabric: "dev", Job: "nightly", Actor: "bob"}, nil, apperr.UnknownProject,
			`project "nope" is not registered`},
		{"not deployed", RunInput{Project: "demo", Fabric: "dev", Job: "hourly", Actor: "bob"}, nil, apperr.NotDeployed,
			"job hourly of demo is not deployed on fabric dev by Shipline (deployed there: nightly)"},
		{"another version", RunInput{Project: "demo", Fabric: "dev", Job: "nightly", Actor: "bob", Version: "v2.0.0"}, nil, apperr.NotDeployed,
			"job nightly on fabric dev runs v1.0.0 (deployment deploy/demo/v1.0.0/x), not v2.0.0"},
		{"no actor", RunInput{Project: "demo", Fabric: "dev", Job: "nightly"}, nil, apperr.InvalidInput, `the input has no "actor"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fab := newKeyedRunner(ended(fabric.RunSucceeded))
			e := newRunEnv(t, fab)
			_, err := e.run(c.in)
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != c.typ || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v (type %s), want %s: %q", err, apperr.Type(err), c.typ, c.want)
			}
			if Outcome(app.Type()) != StatusRefused || fab.starts != 0 {
				t.Errorf("outcome %s, %d starts", Outcome(app.Type()), fab.starts)
			}
		})
	}
}

// A long run continues as new when Temporal suggests it, carrying the started
// run; the next run reads the same remote run (no second start) to its end.
func TestLongRunContinuesAsNewWithItsRun(t *testing.T) {
	fab := newKeyedRunner(running(task("ingest", fabric.RunRunning, "", "")), running(task("ingest", fabric.RunRunning, "", "")),
		ended(fabric.RunSucceeded, task("ingest", fabric.RunTerminated, fabric.RunSucceeded, "")))
	e := newRunEnv(t, fab)
	e.SetContinueAsNewSuggested(true)
	e.ExecuteWorkflow(Run, nightly)
	var can *workflow.ContinueAsNewError
	if err := e.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("error = %v, want continue-as-new", err)
	}
	var next RunInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.Carried == nil || next.Carried.RunID != "9" || next.Carried.Polls != 1 || next.Auth != nil || next.Job != "nightly" {
		t.Fatalf("carried input = %+v", next)
	}

	e2 := newRunEnv(t, fab)
	e2.SetContinuedExecutionRunID("previous-run")
	out, err := e2.run(next)
	if err != nil || out.Status != StatusSucceeded || out.Polls != 3 || fab.starts != 1 {
		t.Fatalf("continued run: %v, %+v, %d starts", err, out, fab.starts)
	}

	// Carried state in a direct start is refused, nothing is read or started.
	e3 := newRunEnv(t, fab)
	_, err = e3.run(next)
	if apperr.Type(err) != apperr.CarriedStateRefused || fab.starts != 1 {
		t.Fatalf("direct start with carried state: %v, %d starts", err, fab.starts)
	}
}

// With require_signatures, an unsigned run request is refused before anything runs.
func TestUnsignedRunRefusedWhenSignaturesAreRequired(t *testing.T) {
	fab := newKeyedRunner(ended(fabric.RunSucceeded))
	e := newRunEnv(t, fab)
	e.policy = signing.Policy{Require: true, Keys: map[string][]string{}}
	_, err := e.run(nightly)
	if apperr.Type(err) != apperr.SignatureRefused || fab.starts != 0 {
		t.Fatalf("error = %v, %d starts", err, fab.starts)
	}
}

// A stage's verification: the project's Promote workflow (or its Verify, a
// verification rerun on demand) starts Run as a child (its own request was
// verified), pinning the version; the child needs no signature and its
// failure carries the outcome to the parent.
func TestRunAsChildOfPromote(t *testing.T) {
	for _, parent := range []string{PromoteID("demo", "v1.0.0"), VerifyID("demo", "qa", "v1.0.0", "req-1")} {
		fab := newKeyedRunner(ended(fabric.RunFailed, task("ingest", fabric.RunTerminated, fabric.RunFailed, "boom")))
		e := newRunEnv(t, fab)
		e.policy = signing.Policy{Require: true, Keys: map[string][]string{}}
		e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: parent})
		verify := func(ctx workflow.Context) (RunOutcome, error) {
			in := nightly
			in.Version, in.Trigger = "v1.0.0", "verify"
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: RunID("demo", "dev", "nightly", "verify-qa-1")})
			var out RunOutcome
			err := workflow.ExecuteChildWorkflow(cctx, RunWorkflow, in).Get(ctx, &out)
			if o, ok := RunOutcomeOf(err); ok {
				return o, nil
			}
			return out, err
		}
		e.RegisterWorkflowWithOptions(verify, workflow.RegisterOptions{Name: "verify"})
		e.ExecuteWorkflow("verify")
		var out RunOutcome
		if err := e.GetWorkflowResult(&out); err != nil {
			t.Fatal(err)
		}
		if out.Status != StatusFailed || out.Message != "task ingest failed: boom" || out.Version != "v1.0.0" || fab.starts != 1 ||
			!strings.HasPrefix(fab.requests[0].Key, RunKey(RunID("demo", "dev", "nightly", "verify-qa-1"), "")) {
			t.Fatalf("parent %s: outcome = %+v, %d starts, requests %+v", parent, out, fab.starts, fab.requests)
		}
	}
}
