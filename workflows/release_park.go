package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/internal/access"
	"github.com/shipline/shipline/internal/apperr"
)

// defaultGitRetry is how long a release retries an unreachable remote before it parks.
const defaultGitRetry = 10 * time.Minute

// parkable marks a step failure that parks the release instead of ending it.
type parkable struct {
	step, reason string
}

func (p *parkable) Error() string { return p.reason }

// failOrPark ends the release on a permanent failure (bad credentials, a moved
// tag, an unknown ref); anything else — a remote that stayed unreachable for
// the whole retry window — parks it until `resume`.
func (r *release) failOrPark(ctx workflow.Context, step string, err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.NonRetryable() {
		return r.fail(ctx, step, err)
	}
	if temporal.IsCanceledError(err) {
		return err
	}
	return &parkable{step: step, reason: userMessage(err)}
}

// attempt runs a git step, parking it on a transient failure and running it
// again on resume; cancel ends the release.
func (r *release) attempt(ctx workflow.Context, step func(workflow.Context) error) error {
	for {
		err := step(ctx)
		var p *parkable
		if !errors.As(err, &p) {
			return err
		}
		now := workflow.Now(ctx)
		setStep(r.state.Steps, p.step, StepFailed, p.reason, now)
		r.state.Status, r.state.Parked = StatusParked, &Parked{Step: p.step, Reason: p.reason, Since: now}
		id := workflow.GetInfo(ctx).WorkflowExecution.ID
		r.state.Summary = fmt.Sprintf("parked at %s: %s — when the remote is back, `shipline resume %s` (or `shipline cancel %s`)", p.step, firstLineOf(p.reason), id, id)
		r.publishQuiet(ctx)
		r.control.resume = false
		if err := workflow.Await(ctx, func() bool { return r.control.resume || r.control.cancel }); err != nil {
			return err
		}
		r.state.Parked = nil
		if r.control.cancel {
			return r.end(ctx, p.step, apperr.Cancelled, "cancelled by "+r.control.by)
		}
		r.state.Status = StatusRunning
		r.state.Summary = fmt.Sprintf("resumed by %s at %s", r.control.by, p.step)
		r.publishQuiet(ctx)
	}
}

// gitActivity: the project's git_retry window (default 10m) bounds the retries.
func (r *release) gitActivity(ctx workflow.Context) workflow.Context {
	window := r.settings.GitRetry
	if window <= 0 {
		window = defaultGitRetry
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    min(5*time.Minute, window),
		ScheduleToCloseTimeout: window,
		HeartbeatTimeout:       heartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}

// registerControlHandlers adds resume and cancel for a parked release: the
// releaser or a project admin may send them, signed where signatures are required.
func (r *release) registerControlHandlers(ctx workflow.Context) error {
	validate := func(action string) func(workflow.Context, ControlRequest) error {
		return func(ctx workflow.Context, req ControlRequest) error {
			if r.state.Status != StatusParked {
				return fmt.Errorf("release %s of %s is %s, not parked", r.in.Version, r.in.Project, r.state.Status)
			}
			if err := r.guard.check(ctx, workflow.GetInfo(ctx).WorkflowExecution.ID, action, req.Actor, SignedArgs(req), req.Auth); err != nil {
				return err
			}
			return access.ControlRelease(action, r.in.Actor, r.state.Admins, req.Actor)
		}
	}
	for _, u := range []struct {
		name, action string
		cancel       bool
	}{{ResumeUpdate, ActionResume, false}, {CancelUpdate, ActionCancel, true}} {
		cancel := u.cancel
		err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, func(ctx workflow.Context, req ControlRequest) (string, error) {
			r.remember(req.Auth)
			r.control.by = req.Actor
			if cancel {
				r.control.cancel = true
				return "cancelling release " + r.in.Version, nil
			}
			r.control.resume = true
			return fmt.Sprintf("resuming release %s from %s", r.in.Version, r.state.Parked.Step), nil
		}, workflow.UpdateHandlerOptions{Validator: validate(u.action)})
		if err != nil {
			return err
		}
	}
	return nil
}
