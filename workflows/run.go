package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/access"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/signing"
)

var runActs *activities.Runs

// Polling of a started run: the first read after firstPoll, then twice as
// long each time up to maxPoll. The waits are durable timers: a worker that
// crashes loses nothing, the next one replays the history and goes on polling.
const (
	firstPoll = 5 * time.Second
	maxPoll   = 30 * time.Second
	// maxPollFailures ends a run the fabric could not be read for this many
	// polls in a row (about maxPollFailures × maxPoll plus the retries).
	maxPollFailures = 20
)

// Run runs a job Shipline deployed on a fabric, once, and follows it:
//
//  1. authorize: the fabric can run jobs, and the actor may deploy there
//     (running on a fabric needs the same right as deploying there);
//  2. resolve: the fabric's entity says which version of the job runs there;
//  3. start: the fabric starts the run, with a key derived from this workflow
//     run (a retried start returns the run the first one started);
//  4. wait: read the run's state with a growing timer until it ends; a long
//     run continues as new when Temporal suggests it, carrying the run's ID.
//
// It succeeds when the run succeeded and fails (type RunFailed, the outcome
// as details) with the failing task's message and the run's URL otherwise.
// Cancelling the workflow cancels the remote run.
func Run(ctx workflow.Context, in RunInput) (RunOutcome, error) {
	r := &runner{in: in}
	if err := r.setup(ctx); err != nil {
		return r.state, err
	}
	return r.run(ctx)
}

// RunOutcomeOf returns the outcome a failed Run carries (a child workflow's
// error, or the error of its result); ok is false for other errors.
func RunOutcomeOf(err error) (RunOutcome, bool) {
	var app *temporal.ApplicationError
	var out RunOutcome
	if !errors.As(err, &app) || app.Type() != apperr.RunFailed || !app.HasDetails() {
		return out, false
	}
	return out, app.Details(&out) == nil
}

type runner struct {
	in     RunInput
	state  RunOutcome
	guard  requestGuard
	target activities.RunTarget
}

// setup seeds the state and registers the state query and the accepted update.
func (r *runner) setup(ctx workflow.Context) error {
	r.state = RunOutcome{
		Progress: Progress{Status: StatusRunning, Steps: newSteps(StepRunAccess, StepRunResolve, StepRunStart, StepRunWait),
			Summary: fmt.Sprintf("running %s of %s on %s for %s", r.in.Job, r.in.Project, r.in.Fabric, r.in.Actor)},
		Project: r.in.Project, Fabric: r.in.Fabric, Job: r.in.Job, Actor: r.in.Actor, Started: workflow.Now(ctx),
	}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (RunOutcome, error) { return r.state, nil }); err != nil {
		return err
	}
	return registerAccept(ctx, r.acceptance)
}

// acceptance: decided once the job is known to be deployed and the actor may
// run it (resolve done), or when the run ended before that.
func (r *runner) acceptance() (Acceptance, bool) {
	if stepDone(r.state.Steps, StepRunResolve) {
		return Acceptance{Accepted: true, Status: r.state.Status}, true
	}
	if Ended(r.state.Status) {
		return Acceptance{Status: r.state.Status, Step: failedStep(r.state.Steps), Reason: r.state.Message}, true
	}
	return Acceptance{}, false
}

func (r *runner) run(ctx workflow.Context) (RunOutcome, error) {
	if err := r.checkInput(); err != nil {
		return r.state, r.refuse(ctx, StepRunAccess, apperr.InvalidInput, err.Error())
	}
	if r.in.Carried != nil {
		// A continued run: the remote run started in an earlier run.
		if err := carriedStateAllowed(ctx); err != nil {
			return r.state, r.refuse(ctx, StepRunAccess, apperr.CarriedStateRefused, err.Error())
		}
		r.state = *r.in.Carried
		r.publish(ctx)
		return r.state, r.wait(ctx)
	}
	r.publish(ctx)
	for _, step := range []func(workflow.Context) error{r.checkSignature, r.authorize, r.resolve} {
		if err := step(ctx); err != nil {
			return r.state, err
		}
	}
	if err := r.start(ctx); err != nil {
		return r.state, err
	}
	return r.state, r.wait(ctx)
}

func (r *runner) checkInput() error {
	const example = `start a Run with {"project":"demo","fabric":"dev","job":"nightly","actor":"bob"}`
	for _, f := range []struct{ name, value string }{{"project", r.in.Project}, {"fabric", r.in.Fabric}, {"job", r.in.Job}, {"actor", r.in.Actor}} {
		if f.value == "" {
			return fmt.Errorf("the input has no %q; %s", f.name, example)
		}
		if strings.Contains(f.value, "/") {
			return fmt.Errorf("%s %q may not contain '/'", f.name, f.value)
		}
	}
	if r.in.Version != "" {
		return versionCheck(r.in.Version)
	}
	return nil
}

// checkSignature verifies the request that started the run, unless the
// project's Promote or Verify workflow started it (a stage's verification:
// that workflow verified its own request).
func (r *runner) checkSignature(ctx workflow.Context) error {
	if err := r.guard.load(ctx); err != nil {
		return err
	}
	if parent := workflow.GetInfo(ctx).ParentWorkflowExecution; parent != nil &&
		(strings.HasPrefix(parent.ID, PromoteID(r.in.Project, "")) || strings.HasPrefix(parent.ID, VerifyIDPrefix(r.in.Project))) {
		return nil
	}
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	if err := r.guard.check(ctx, id, ActionRun, r.in.Actor, SignedArgs(r.in), r.in.Auth); err != nil {
		return r.refuse(ctx, StepRunAccess, apperr.SignatureRefused, err.Error())
	}
	if err := r.guard.claim(ctx, r.in.Project, id, ActionRun, r.in.Actor, r.in.Auth); err != nil {
		if errors.Is(err, signing.ErrReplayed) {
			return r.refuse(ctx, StepRunAccess, apperr.SignatureRefused, err.Error())
		}
		return err
	}
	r.guard.remember(r.in.Auth)
	return nil
}

// authorize reads the fabric (defined, can run jobs, its owner team) and
// checks the actor may deploy there.
func (r *runner) authorize(ctx workflow.Context) error {
	in := activities.RunTargetInput{Project: r.in.Project, Fabric: r.in.Fabric}
	if err := workflow.ExecuteActivity(shortActivity(ctx), runActs.RunTarget, in).Get(ctx, &r.target); err != nil {
		if ctx.Err() != nil {
			return r.cancelled(ctx)
		}
		if apperr.Classify(err) == apperr.Refused {
			return r.refuse(ctx, StepRunAccess, errorType(err), userMessage(err))
		}
		return r.fail(ctx, StepRunAccess, userMessage(err))
	}
	f := r.target.Fabric
	if err := access.Run(f.Name, f.Owner, f.Members, r.in.Actor); err != nil {
		return r.refuse(ctx, StepRunAccess, apperr.AccessDenied, err.Error())
	}
	setStep(r.state.Steps, StepRunAccess, StepDone, r.in.Actor+" may run jobs on "+f.Name, workflow.Now(ctx))
	return nil
}

// resolve reads from the fabric's entity which version of the job Shipline
// deployed there: a job it did not deploy is not run.
func (r *runner) resolve(ctx workflow.Context) error {
	var q activities.QueryOutput
	qin := activities.QueryInput{WorkflowID: FabricID(r.in.Project, r.in.Fabric), Query: StateQuery}
	if err := workflow.ExecuteActivity(shortActivity(ctx), messageActs.Query, qin).Get(ctx, &q); err != nil {
		if ctx.Err() != nil {
			return r.cancelled(ctx)
		}
		return r.fail(ctx, StepRunResolve, "read "+qin.WorkflowID+": "+userMessage(err))
	}
	var fs FabricState
	if !q.Missing {
		if err := json.Unmarshal(q.Result, &fs); err != nil {
			return r.fail(ctx, StepRunResolve, "read "+qin.WorkflowID+": "+err.Error())
		}
	}
	rec, ok := fs.Jobs[r.in.Job]
	if !ok {
		return r.refuse(ctx, StepRunResolve, apperr.NotDeployed, fmt.Sprintf(
			"job %s of %s is not deployed on fabric %s by Shipline (deployed there: %s); deploy it first: `shipline deploy VERSION --project %s --fabric %s`",
			r.in.Job, r.in.Project, r.in.Fabric, orNone(sortedNames(fs.Jobs)), r.in.Project, r.in.Fabric))
	}
	if r.in.Version != "" && rec.Version != r.in.Version {
		return r.refuse(ctx, StepRunResolve, apperr.NotDeployed, fmt.Sprintf(
			"job %s on fabric %s runs %s (deployment %s), not %s", r.in.Job, r.in.Fabric, rec.Version, rec.DeploymentID, r.in.Version))
	}
	r.state.Version, r.state.DeploymentID = rec.Version, rec.DeploymentID
	setStep(r.state.Steps, StepRunResolve, StepDone, fmt.Sprintf("%s runs %s on %s (deployed by %s)", r.in.Job, rec.Version, r.in.Fabric, rec.Actor), workflow.Now(ctx))
	r.publish(ctx)
	return nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// RunKey is the idempotency key of the remote run started by one workflow
// run: a retried start (or a worker that crashed after starting it) finds the
// run already started under this key.
func RunKey(workflowID, runID string) string { return workflowID + "#" + runID }

// start asks the fabric for the run. The start is not interrupted by a
// cancel: once it returns, a cancel requested meanwhile cancels the run it
// started.
func (r *runner) start(ctx workflow.Context) error {
	now := workflow.Now(ctx)
	setStep(r.state.Steps, StepRunStart, StepRunning, "", now)
	info := workflow.GetInfo(ctx)
	req := activities.StartRunInput{Fabric: r.in.Fabric, Request: fabric.RunRequest{
		Project: r.in.Project, Job: r.in.Job, Params: r.in.Params, TriggeredBy: r.in.Actor,
		Key: RunKey(info.WorkflowExecution.ID, info.WorkflowExecution.RunID),
	}}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var ref fabric.RunRef
	if err := workflow.ExecuteActivity(fabricActivity(dctx), runActs.StartRun, req).Get(dctx, &ref); err != nil {
		if apperr.Classify(err) == apperr.Refused {
			return r.refuse(ctx, StepRunStart, errorType(err), userMessage(err))
		}
		return r.fail(ctx, StepRunStart, userMessage(err))
	}
	r.state.RunID, r.state.URL, r.state.State = ref.ID, ref.URL, fabric.RunPending
	setStep(r.state.Steps, StepRunStart, StepDone, "run "+ref.ID+" "+ref.URL, workflow.Now(ctx))
	r.state.Summary = fmt.Sprintf("%s on %s: run %s started for %s", r.in.Job, r.in.Fabric, ref.ID, r.in.Actor)
	r.publish(ctx)
	if ctx.Err() != nil {
		return r.cancelled(ctx)
	}
	return nil
}

// wait reads the run until it ends, with timers from firstPoll to maxPoll.
func (r *runner) wait(ctx workflow.Context) error {
	delay, failures := firstPoll, 0
	if r.in.Carried == nil {
		setStep(r.state.Steps, StepRunWait, StepRunning, "run "+r.state.RunID, workflow.Now(ctx))
	} else {
		delay = maxPoll
	}
	for {
		if err := workflow.Sleep(ctx, delay); err != nil {
			return r.cancelled(ctx)
		}
		delay = min(2*delay, maxPoll)
		var got fabric.Run
		err := workflow.ExecuteActivity(fabricActivity(ctx), runActs.GetRun, r.ref()).Get(ctx, &got)
		switch {
		case ctx.Err() != nil:
			return r.cancelled(ctx)
		case err != nil:
			failures++
			r.state.Summary = fmt.Sprintf("cannot read run %s on %s (%d in a row): %s", r.state.RunID, r.in.Fabric, failures, userMessage(err))
			workflow.SetCurrentDetails(ctx, r.state.Summary)
			if failures >= maxPollFailures {
				return r.fail(ctx, StepRunWait, r.state.Summary)
			}
			continue
		}
		failures = 0
		r.observe(ctx, got)
		if !got.Active() {
			return r.finish(ctx, got)
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			// A long run: go on reading it in a new run with a short history.
			next := r.in
			next.Auth, next.Carried = nil, &r.state
			return workflow.NewContinueAsNewError(ctx, RunWorkflow, next)
		}
	}
}

func (r *runner) ref() activities.RunOnFabric {
	return activities.RunOnFabric{Fabric: r.in.Fabric, Project: r.in.Project, Job: r.in.Job, RunID: r.state.RunID}
}

// observe records a read of the run; the memo and search attributes change
// only when its state does.
func (r *runner) observe(ctx workflow.Context, got fabric.Run) {
	r.state.Polls++
	changed := got.State != r.state.State || got.Result != r.state.Result || !sameTasks(got.Tasks, r.state.Tasks)
	r.state.State, r.state.Result, r.state.Tasks = got.State, got.Result, got.Tasks
	if got.URL != "" {
		r.state.URL = got.URL
	}
	if changed {
		r.state.Summary = fmt.Sprintf("%s on %s: run %s %s (%s)", r.in.Job, r.in.Fabric, r.state.RunID, got.State, taskSummary(got.Tasks))
		setStep(r.state.Steps, StepRunWait, StepRunning, r.state.Summary, workflow.Now(ctx))
		workflow.SetCurrentDetails(ctx, r.state.Summary)
	}
}

func sameTasks(a, b []TaskState) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// taskSummary says how many tasks are in each state: "1 success, 1 running".
func taskSummary(tasks []TaskState) string {
	var parts []string
	count := map[string]int{}
	for _, t := range tasks {
		s := string(t.State)
		if t.Result != "" {
			s = string(t.Result)
		}
		if count[s] == 0 {
			parts = append(parts, s)
		}
		count[s]++
	}
	for i, s := range parts {
		parts[i] = fmt.Sprintf("%d %s", count[s], s)
	}
	if len(parts) == 0 {
		return "no tasks reported"
	}
	return strings.Join(parts, ", ")
}

// finish ends the workflow with the run's result: success, or RunFailed with
// the failing task's message and the run's URL.
func (r *runner) finish(ctx workflow.Context, got fabric.Run) error {
	now := workflow.Now(ctx)
	r.state.Finished = now
	took := now.Sub(r.state.Started).Round(time.Second)
	if got.Result == fabric.RunSucceeded {
		setStep(r.state.Steps, StepRunWait, StepDone, fmt.Sprintf("run %s succeeded", r.state.RunID), now)
		r.state.Status = StatusSucceeded
		r.state.Summary = fmt.Sprintf("%s on %s succeeded (run %s, %s): %s", r.in.Job, r.in.Fabric, r.state.RunID, took, r.state.URL)
		r.publish(ctx)
		return nil
	}
	r.state.Message = failureMessage(got)
	setStep(r.state.Steps, StepRunWait, StepFailed, r.state.Message, now)
	r.state.Status = StatusFailed
	r.state.Summary = fmt.Sprintf("%s on %s %s (run %s, %s): %s — %s", r.in.Job, r.in.Fabric, orWord(got.Result, "ended"), r.state.RunID, took, r.state.Message, r.state.URL)
	r.publish(ctx)
	return temporal.NewNonRetryableApplicationError(r.state.Summary, apperr.RunFailed, nil, r.state)
}

func orWord(res fabric.RunResult, word string) string {
	if res == "" {
		return word
	}
	return string(res)
}

// failureMessage names the failing task and its error, else the run's message.
func failureMessage(got fabric.Run) string {
	for _, t := range got.Tasks {
		if t.Result == fabric.RunFailed || t.Result == fabric.RunTimedOut {
			msg := fmt.Sprintf("task %s %s", t.Key, t.Result)
			if t.Message != "" {
				msg += ": " + t.Message
			}
			return msg
		}
	}
	if got.Message != "" {
		return got.Message
	}
	return fmt.Sprintf("the run ended %s", orWord(got.Result, "without a result"))
}

// cancelled cancels the remote run (the workflow was cancelled) and ends the
// workflow as cancelled.
func (r *runner) cancelled(ctx workflow.Context) error {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	r.state.Message = "cancelled through Temporal"
	if r.state.RunID != "" {
		if err := workflow.ExecuteActivity(fabricActivity(dctx), runActs.CancelRun, r.ref()).Get(dctx, nil); err != nil {
			r.state.Message += fmt.Sprintf("; cancelling run %s on %s failed: %s", r.state.RunID, r.in.Fabric, userMessage(err))
		} else {
			r.state.Message += fmt.Sprintf("; run %s on %s cancelled", r.state.RunID, r.in.Fabric)
			r.state.Result = fabric.RunCancelled
		}
	}
	// The status moves last, so a query never sees a cancelled run whose
	// remote run is still being cancelled.
	now := workflow.Now(dctx)
	setStep(r.state.Steps, StepRunWait, StepFailed, r.state.Message, now)
	r.state.Status, r.state.Finished = StatusCancelled, now
	r.state.Summary = fmt.Sprintf("%s on %s %s", r.in.Job, r.in.Fabric, r.state.Message)
	r.publish(dctx)
	return temporal.NewCanceledError(r.state)
}

// refuse ends the run before it started: the request is wrong or not allowed.
func (r *runner) refuse(ctx workflow.Context, step, errType, msg string) error {
	setStep(r.state.Steps, step, StepFailed, msg, workflow.Now(ctx))
	r.state.Status, r.state.Message, r.state.Finished = Outcome(errType), msg, workflow.Now(ctx)
	r.state.Summary = fmt.Sprintf("run of %s on %s %s: %s", r.in.Job, r.in.Fabric, r.state.Status, msg)
	r.publish(ctx)
	return temporal.NewNonRetryableApplicationError(msg, errType, nil, r.state)
}

// fail ends the run on a failure that is not the request's fault (the fabric
// or the worker); the user can start the run again once it is fixed.
func (r *runner) fail(ctx workflow.Context, step, msg string) error {
	setStep(r.state.Steps, step, StepFailed, msg, workflow.Now(ctx))
	r.state.Status, r.state.Message, r.state.Finished = StatusFailed, msg, workflow.Now(ctx)
	r.state.Summary = fmt.Sprintf("run of %s on %s failed at %s: %s", r.in.Job, r.in.Fabric, step, msg)
	r.publish(ctx)
	return temporal.NewNonRetryableApplicationError(r.state.Summary, apperr.RunFailed, nil, r.state)
}

// publish sets the search attributes (project, actor, fabric, version) and the
// memo (status, reason, the remote run's ID and URL) `shipline runs` reads.
func (r *runner) publish(ctx workflow.Context) {
	attrs := []temporal.SearchAttributeUpdate{ProjectKey.ValueSet(r.in.Project), ActorKey.ValueSet(r.in.Actor), FabricKey.ValueSet([]string{r.in.Fabric})}
	if r.state.Version != "" {
		attrs = append(attrs, VersionKey.ValueSet(r.state.Version))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, attrs...); err != nil {
		workflow.GetLogger(ctx).Error("search attributes", "error", err)
	}
	memo := map[string]any{MemoStatus: string(r.state.Status), MemoReason: r.state.Message, MemoRunID: r.state.RunID, MemoRunURL: r.state.URL}
	if err := workflow.UpsertMemo(ctx, memo); err != nil {
		workflow.GetLogger(ctx).Error("memo", "error", err)
	}
	workflow.SetCurrentDetails(ctx, r.state.Summary)
}

// ListRuns reads the run history of deployed jobs from their fabrics (the
// read behind `shipline runs`, answered by the Project entity).
func ListRuns(ctx workflow.Context, in ListRunsInput) (ListRunsOutput, error) {
	var out ListRunsOutput
	err := workflow.ExecuteActivity(fabricActivity(ctx), runActs.ListRuns, in).Get(ctx, &out)
	return out, err
}
