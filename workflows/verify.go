package workflows

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/platform"
)

// verifyPoll is how often a verification reads its runs' state (run ID, URL)
// for `status` and `pending` while they run.
const verifyPoll = 30 * time.Second

// States of a verification's run (VerifyRun.State).
const (
	verifyStarting  = "starting"
	verifyRunning   = "running"
	verifySucceeded = "succeeded"
	verifyFailed    = "failed"
	verifyTimedOut  = "timed out"
)

// verifyOn reports whether this promotion verifies stages (runs that began
// before verification existed deploy and move on, as they did).
func (p *promotion) verifyOn(ctx workflow.Context) bool {
	return changeVersion(ctx, ChangeStageVerify) >= 1
}

// verifyFirst verifies the first stage before the promotion moves on when the
// release reached it before this promotion (a release's auto_deploy deploys
// the first stage, not a promotion) and was not verified there: its verify
// jobs run as for any other stage (a failure ends the promotion, on_failure
// applies), and a first stage without verify counts its deployment as
// verified. Either way the stage is recorded verified on the release and the
// Stage entity, so a rollback finds it. A release that already reached the
// second stage has moved past the first and is left as it is.
func (p *promotion) verifyFirst(ctx workflow.Context) error {
	if p.first == nil || p.firstOpen() != 1 || changeVersion(ctx, ChangeFirstStageVerify) < 1 {
		return nil
	}
	p.current = 0
	if s := &p.state.Stages[0]; s.DeployedBy == "" {
		s.DeployedBy = firstNonEmpty(p.first.Actor, p.state.Releaser)
	}
	return p.verify(ctx, 0)
}

// verify runs the stage's verify jobs on each of its fabrics, all at once, as
// child Run workflows, and waits until they all succeed, one fails, or the
// verification's timeout passes (the runs still going are then cancelled).
// It reads the stage's settings and sets the stage verified, recording it on
// the release; a failure ends the promotion with the failing run's message and
// URL. A stage without verify counts its deployment as verified.
func (p *promotion) verify(ctx workflow.Context, i int) error {
	s, st := &p.state.Stages[i], p.settings.Stages[i]
	if st.Verify == nil || len(st.Verify.Jobs) == 0 {
		s.Status, s.VerifiedAt = StageVerified, s.DeployedAt
		return p.recordVerified(ctx, i)
	}
	s.Verify = &StageVerify{Jobs: slices.Clone(st.Verify.Jobs), Params: maps.Clone(st.Verify.Params), Timeout: st.Verify.Timeout}
	s.Status, p.state.Status, s.Runs = StageVerifying, StatusRunning, nil
	request := "verify-" + s.Name + "-" + workflow.GetInfo(ctx).WorkflowExecution.RunID[:8]
	now := workflow.Now(ctx)
	for _, job := range s.Verify.Jobs {
		for _, f := range s.Fabrics {
			s.Runs = append(s.Runs, VerifyRun{Job: job, Fabric: f, WorkflowID: RunID(p.in.Project, f, job, request), State: verifyStarting, Started: now})
		}
	}
	p.publish(ctx)
	failed, err := p.runVerification(ctx, s)
	if err != nil {
		return err
	}
	if failed != nil {
		s.Status = StageFailed
		s.Detail = fmt.Sprintf("verification failed: %s on %s %s", failed.Job, failed.Fabric, failed.State)
		msg := fmt.Sprintf("verification of %s on %s failed: %s on %s %s: %s", p.in.Version, s.Name, failed.Job, failed.Fabric, failed.State, failed.Message)
		if failed.URL != "" {
			msg += " (" + failed.URL + ")"
		}
		p.notifyVerificationFailed(ctx, i, failed, msg)
		if st.OnFailure == platform.OnFailureRollback && !p.reverifying() {
			msg += p.rollBackAfter(ctx, i, msg)
		}
		return p.end(ctx, StatusFailed, apperr.VerificationFailed, msg)
	}
	s.Status, s.VerifiedAt = StageVerified, workflow.Now(ctx)
	s.Detail = fmt.Sprintf("verified: %s succeeded on %s", strings.Join(s.Verify.Jobs, ", "), strings.Join(s.Fabrics, ", "))
	return p.recordVerified(ctx, i)
}

// runVerification starts the stage's runs and follows them; it returns the
// first run that failed or timed out, or nil when all succeeded.
func (p *promotion) runVerification(ctx workflow.Context, s *StageState) (*VerifyRun, error) {
	runCtx, cancelRuns := workflow.WithCancel(ctx)
	defer cancelRuns()
	sel := workflow.NewSelector(ctx)
	left := len(s.Runs)
	var failed *VerifyRun
	for k := range s.Runs {
		r := &s.Runs[k]
		// A verification run belongs to its promotion: when the promotion
		// ends (cancelled, terminated, timed out), the run is asked to cancel,
		// which cancels the remote run too.
		cctx := workflow.WithChildOptions(runCtx, workflow.ChildWorkflowOptions{
			WorkflowID:        r.WorkflowID,
			ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
			StaticSummary:     fmt.Sprintf("Verify %s of %s on stage %s: run %s on %s", p.in.Version, p.in.Project, s.Name, r.Job, r.Fabric),
		})
		in := RunInput{Project: p.in.Project, Fabric: r.Fabric, Job: r.Job, Actor: s.DeployedBy, Params: s.Verify.Params, Version: p.in.Version, Trigger: "verify"}
		sel.AddFuture(workflow.ExecuteChildWorkflow(cctx, RunWorkflow, in), func(f workflow.Future) {
			left--
			var out RunOutcome
			err := f.Get(ctx, &out)
			r.Finished = workflow.Now(ctx)
			if err == nil {
				r.State, r.RunID, r.URL, r.Message = verifySucceeded, out.RunID, out.URL, ""
				return
			}
			r.State, r.Message = verifyFailed, userMessage(err)
			if o, ok := RunOutcomeOf(err); ok {
				r.RunID, r.URL = o.RunID, o.URL
				if o.Message != "" {
					r.Message = o.Message
				}
			}
			if failed == nil {
				failed = r
			}
		})
	}
	deadline := workflow.NewTimer(runCtx, s.Verify.Timeout)
	timedOut := false
	sel.AddFuture(deadline, func(f workflow.Future) { timedOut = f.Get(ctx, nil) == nil })
	var poll workflow.Future
	for left > 0 && failed == nil && !timedOut {
		if poll == nil {
			poll = workflow.NewTimer(runCtx, verifyPoll)
			sel.AddFuture(poll, func(workflow.Future) { poll = nil; p.readRuns(ctx, s) })
		}
		sel.Select(ctx)
		p.publish(ctx)
	}
	if timedOut {
		p.readRuns(ctx, s)
		for k := range s.Runs {
			if r := &s.Runs[k]; r.State != verifySucceeded && r.State != verifyFailed {
				r.State, r.Finished = verifyTimedOut, workflow.Now(ctx)
				r.Message = fmt.Sprintf("still %s after the stage's verify timeout of %s; it was cancelled", firstNonEmpty(r.Message, "running"), s.Verify.Timeout)
				if failed == nil {
					failed = r
				}
			}
		}
	}
	return failed, ctx.Err()
}

// readRuns reads the state of each run still going (its run ID and URL on
// the fabric) for `status` and `pending`. A run not readable yet is left as it is.
func (p *promotion) readRuns(ctx workflow.Context, s *StageState) {
	for k := range s.Runs {
		r := &s.Runs[k]
		if r.State == verifySucceeded || r.State == verifyFailed {
			continue
		}
		var q activities.QueryOutput
		in := activities.QueryInput{WorkflowID: r.WorkflowID, Query: StateQuery}
		if workflow.ExecuteActivity(shortActivity(ctx), messageActs.Query, in).Get(ctx, &q) != nil || q.Missing {
			continue
		}
		var out RunOutcome
		if json.Unmarshal(q.Result, &out) != nil {
			continue
		}
		if out.RunID != "" {
			r.RunID, r.URL, r.State = out.RunID, out.URL, verifyRunning
		}
	}
}

// recordVerified tells the Release entity the stage verified the release, so
// `releases`, `deployments` and rollbacks know it.
func (p *promotion) recordVerified(ctx workflow.Context, i int) error {
	s := &p.state.Stages[i]
	arg, _ := json.Marshal(VerifiedRequest{Stage: s.Name, Actor: s.DeployedBy, At: s.VerifiedAt, By: workflow.GetInfo(ctx).WorkflowExecution.ID})
	in := activities.UpdateInput{WorkflowID: ReleaseID(p.in.Project, p.in.Version), Update: VerifiedUpdate, Arg: arg}
	if err := workflow.ExecuteActivity(shortActivity(ctx), messageActs.Update, in).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("record verified on the release", "stage", s.Name, "error", err)
	}
	rec := StageRecord{Kind: StageRecordVerified, Version: p.in.Version, Actor: s.DeployedBy, At: s.VerifiedAt, Via: workflow.GetInfo(ctx).WorkflowExecution.ID}
	if err := sendStageRecord(ctx, p.in.Project, s.Name, rec); err != nil {
		workflow.GetLogger(ctx).Error("record verified on the stage", "stage", s.Name, "error", err)
	}
	p.publish(ctx)
	return nil
}

// verifyingPending is the `pending` sentence of a verifying stage, e.g.
// "verifying: nightly on qa (run 123, running 4m)".
func verifyingPending(s StageState, now time.Time) string {
	var parts []string
	for _, r := range s.Runs {
		if r.State == verifySucceeded {
			continue
		}
		what := fmt.Sprintf("%s on %s (", r.Job, r.Fabric)
		if r.RunID != "" {
			what += "run " + r.RunID + ", "
		}
		what += fmt.Sprintf("%s %s)", r.State, fmtAge(now.Sub(r.Started)))
		parts = append(parts, what)
	}
	msg := s.Name + ": verifying: " + strings.Join(parts, "; ")
	if s.Verify != nil && len(s.Runs) > 0 {
		msg += "; times out " + fmtTime(s.Runs[0].Started.Add(s.Verify.Timeout))
	}
	return msg
}

// fmtAge renders how long something has run: 40s, 4m, 1h5m.
func fmtAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
