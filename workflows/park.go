package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/internal/signing"
)

// The park/resume/cancel mechanism shared by Release and Deploy. A step runs
// under a context that `cancel` cancels (so a step retrying an activity stops
// within seconds); a step that fails in a way a person can fix parks the
// workflow, which then waits on one condition — resume, cancel, or a message
// the workflow wants to read while parked — and on resume runs the step again.

// defaultGitRetry is how long git steps retry an unreachable remote before the
// step parks, when the project sets no git_retry in platform.yaml.
const defaultGitRetry = 10 * time.Minute

// gitActivity is for git reads where no project window applies (listings, plans).
func gitActivity(ctx workflow.Context) workflow.Context { return gitRetryActivity(ctx, 0) }

// gitRetryActivity is for fetches and pushes: a remote that is down is retried
// with backoff for the project's git_retry window (window <= 0: the default),
// then the step fails and parks. Release and Deploy use the same window.
func gitRetryActivity(ctx workflow.Context, window time.Duration) workflow.Context {
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

// control holds what the resume and cancel updates asked for.
type control struct {
	resume, cancel bool
	by             string // actor of the latest accepted request
	reason         string // the cancel request's reason
	// stop cancels the running step (nil between steps); stopSteps is false
	// for deployments started before cancel stopped a running step.
	stop      workflow.CancelFunc
	stopSteps bool
}

// controlRules are what each workflow decides itself about resume and cancel.
type controlRules struct {
	guard *requestGuard
	// project and version name the project (whose audit records refusals)
	// and the version the workflow is about.
	project, version string
	// remember records an accepted signed request.
	remember func(*signing.Auth)
	// state refuses the request in the workflow's current state ("not parked",
	// "already ended", "superseded").
	state func(cancel bool) error
	// may refuses an actor who may not send the request.
	may func(actor, action string) error
	// answer is the update's reply once accepted.
	answer func(cancel bool) string
}

// register adds the resume and cancel updates. Validators refuse at once,
// writing nothing: the workflow's state first, then the signature, then who asks.
func (c *control) register(ctx workflow.Context, rules controlRules) error {
	for _, u := range []struct {
		name, action string
		cancel       bool
	}{{ResumeUpdate, ActionResume, false}, {CancelUpdate, ActionCancel, true}} {
		err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, func(ctx workflow.Context, req ControlRequest) (string, error) {
			if refusalsInHandlers(ctx) {
				if err := rules.guard.admit(ctx, rules.project, u.action, req.Actor, SignedArgs(req), req.Auth, func() error {
					return rules.admit(req, u.action, u.cancel)
				}); err != nil {
					return "", refuseAttempt(ctx, rules.project, Refusal{Actor: req.Actor, Action: u.action, Version: rules.version}, req.Auth, err)
				}
			}
			rules.remember(req.Auth)
			c.by = req.Actor
			if !u.cancel {
				c.resume = true
				return rules.answer(false), nil
			}
			c.cancel, c.reason = true, req.Reason
			if c.stop != nil && c.stopSteps {
				c.stop()
			}
			return rules.answer(true), nil
		}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req ControlRequest) error {
			return rules.guard.starting()
		}})
		if err != nil {
			return err
		}
	}
	return nil
}

// admit applies a workflow's own rules to a resume or cancel: its state, then
// who asks.
func (rules controlRules) admit(req ControlRequest, action string, cancel bool) error {
	if err := rules.state(cancel); err != nil {
		return err
	}
	if req.Actor == "" {
		return errors.New("no actor was named; pass --as USER or set SHIPLINE_USER")
	}
	return rules.may(req.Actor, action)
}

// cancelledBy says who cancelled and why.
func (c *control) cancelledBy() string {
	reason := "cancelled by " + c.by
	if c.reason != "" {
		reason += ": " + c.reason
	}
	return reason
}

// parkHooks are what a workflow does around the shared step loop.
type parkHooks struct {
	// classify decides about a failed step: park it with a reason, or end the
	// workflow with the returned error.
	classify func(ctx workflow.Context, err error) (reason string, park bool, end error)
	// parked records the parked state (and releases what the workflow holds).
	parked func(ctx workflow.Context, p Parked)
	// resumed records that the workflow goes on after a resume.
	resumed func(ctx workflow.Context, step string)
	// cancelled ends the workflow on a user's cancel and returns its error.
	cancelled func(ctx workflow.Context, step string) error
	// inbox, when set, reports messages that arrived while parked; read reads them.
	inbox func() bool
	read  func(ctx workflow.Context)
}

// attempt runs a step until it succeeds: a parkable failure parks it until
// resume (run the step again) or cancel; anything else ends the workflow.
func (c *control) attempt(ctx workflow.Context, step string, fn func(workflow.Context) error, h parkHooks) error {
	for {
		if c.cancel {
			return h.cancelled(ctx, step)
		}
		sctx, stop := workflow.WithCancel(ctx)
		c.stop = stop
		err := fn(sctx)
		c.stop = nil
		if err == nil {
			return nil
		}
		if c.cancel && ctx.Err() == nil {
			// The cancel request stopped the step (or came while it ran).
			return h.cancelled(ctx, step)
		}
		reason, park, end := h.classify(ctx, err)
		if !park {
			return end
		}
		if err := c.park(ctx, step, reason, h); err != nil {
			return err
		}
	}
}

// park records why the step failed and waits for resume or cancel.
func (c *control) park(ctx workflow.Context, step, reason string, h parkHooks) error {
	// A resume accepted from here on counts: the hook may block (telling
	// other workflows), and the workflow says it is parked while it does.
	c.resume = false
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	h.parked(ctx, Parked{Step: step, Reason: reason, Since: workflow.Now(ctx), Resume: "shipline resume " + id})
	workflow.GetLogger(ctx).Warn("parked", "step", step, "reason", reason)
	for {
		err := workflow.Await(ctx, func() bool { return c.resume || c.cancel || (h.inbox != nil && h.inbox()) })
		if err != nil {
			return err
		}
		switch {
		case c.cancel:
			return h.cancelled(ctx, step)
		case c.resume:
			h.resumed(ctx, step)
			return nil
		}
		h.read(ctx)
	}
}

// parkedSummary is the one sentence of a parked workflow.
func parkedSummary(p Parked, id, hint string) string {
	return fmt.Sprintf("parked at %s: %s — %s, then `shipline resume %s` (or `shipline cancel %s`)", p.Step, firstLineOf(p.Reason), hint, id, id)
}
