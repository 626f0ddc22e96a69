package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/access"
	"github.com/shipline/shipline/internal/apperr"
)

// Change windows and freezes (platform.yaml `windows:` and
// promotion.stages[].windows; computed by internal/window in the Config.Window
// activity, so time zones and the live config are read outside workflow code
// and recorded in history).
//
// What waits: a promotion, before it deploys a stage (after its gate, soak and
// hold); and a deployment not started by a promotion — `shipline deploy`, a
// release's auto_deploy — before it queues for fabrics that belong to a stage.
// A promotion's own deployment is not checked again; rollbacks never wait (they
// restore a release the stage verified). Work that began inside a window
// finishes.
//
// While closed, the workflow sleeps on a durable timer until the stage opens
// (at most windowRecheck at a time), then reads the windows again: a
// platform.yaml changed meanwhile counts. RecheckWindowSignal wakes it at once.
//
// --override-window --reason R (on deploy or promote, or on approve for one
// stage) enters a closed stage anyway when the actor is in the owner team of
// every fabric of the stage (access.OverrideWindow); the override is part of
// the signed request, recorded in the state and in the memo (MemoWindowOverride)
// that `shipline audit` shows.

// WindowOverride is a request to enter closed stages anyway.
type WindowOverride struct {
	// Reason is required: why the change cannot wait.
	Reason string `json:"reason"`
	// Actor and At are set by the workflow when it records whose override it
	// is (the request's actor, never the request's own claim).
	Actor string    `json:"actor,omitempty"`
	At    time.Time `json:"at,omitzero"`
}

// WindowWait is a closed stage that work waits for, or entered by override.
type WindowWait struct {
	Stage string `json:"stage"`
	// Message is what people read: "closed until Mon 08:00 Europe/Berlin: year-end freeze".
	Message string    `json:"message"`
	Reason  string    `json:"reason,omitempty"`
	Until   time.Time `json:"until,omitempty"`
	Since   time.Time `json:"since"`
	// Override is set once the closed stage was entered by override.
	Override *WindowOverride `json:"override,omitempty"`
	// Refused says why an override that was asked for does not apply here.
	Refused string `json:"refused,omitempty"`
}

// Text is the one line status and the CLI show.
func (w WindowWait) Text() string {
	msg := fmt.Sprintf("stage %s %s", w.Stage, w.Message)
	if o := w.Override; o != nil {
		return msg + fmt.Sprintf(" — entered by override of %s: %s", o.Actor, o.Reason)
	}
	if w.Refused != "" {
		msg += " (override refused: " + w.Refused + ")"
	}
	return msg
}

// windowRecheck bounds one sleep of a waiting workflow: a platform.yaml
// changed while it waits counts by then at the latest.
const windowRecheck = 24 * time.Hour

// windowRecheckPace is the least time between two reads of the windows that
// RecheckWindowSignal asks for: a flood of signals costs one read per pace.
const windowRecheckPace = time.Minute

// windowGate is what one workflow decides about windows.
type windowGate struct {
	in activities.WindowInput
	// override is the override that applies to a stage, and whose it is.
	override func(stage string) *WindowOverride
	// waiting records that the workflow waits (w) and publishes it.
	waiting func(ctx workflow.Context, w *WindowWait)
	// woken reports news that the wait should look at (a new override).
	woken func() bool
}

// await returns once every stage asked about is open, or closed and entered
// by an allowed override; the returned WindowWait says which closed stage was
// entered by override (nil: none).
func (g windowGate) await(ctx workflow.Context) (*WindowWait, error) {
	recheck := workflow.GetSignalChannel(ctx, RecheckWindowSignal)
	var last *WindowWait
	var recorded []string // stages whose override is in the memo already
	for {
		in := g.in
		in.At = workflow.Now(ctx)
		var out activities.WindowOutput
		if err := workflow.ExecuteActivity(shortActivity(ctx), configActs.Window, in).Get(ctx, &out); err != nil {
			return last, err
		}
		var blocking, overridden *WindowWait
		for _, st := range out.Stages {
			if st.Open {
				continue
			}
			w := &WindowWait{Stage: st.Stage, Message: st.Message, Reason: st.Reason, Until: st.Until, Since: in.At}
			if last != nil && last.Stage == st.Stage {
				w.Since = last.Since
			}
			if o := g.override(st.Stage); o != nil {
				err := access.OverrideWindow(st.Stage, windowOwners(st), o.Actor, o.Reason)
				if err == nil {
					w.Override = o
					if !slices.Contains(recorded, st.Stage) {
						recordOverride(ctx, w)
						recorded = append(recorded, st.Stage)
					}
					if overridden == nil {
						overridden = w
					}
					continue
				}
				w.Refused = err.Error()
			}
			blocking = w
			break
		}
		if blocking == nil {
			return overridden, nil
		}
		last = blocking
		g.waiting(ctx, blocking)
		sleep := windowRecheck
		if !blocking.Until.IsZero() {
			sleep = min(sleep, blocking.Until.Sub(in.At))
		}
		if sleep <= 0 {
			sleep = time.Second
		}
		ok, err := workflow.AwaitWithTimeout(ctx, sleep, func() bool { return recheck.Len() > 0 || g.woken() })
		if err != nil {
			return last, err
		}
		if early := in.At.Add(windowRecheckPace).Sub(workflow.Now(ctx)); ok && !g.woken() && early > 0 &&
			changeVersion(ctx, ChangeWindowRecheckPace) >= 1 {
			// A recheck soon after a read: read again once the pace allows
			// (or at the planned wake, or on news).
			for recheck.ReceiveAsync(nil) {
			}
			if _, err := workflow.AwaitWithTimeout(ctx, min(early, in.At.Add(sleep).Sub(workflow.Now(ctx))), g.woken); err != nil {
				return last, err
			}
		}
		for recheck.ReceiveAsync(nil) {
		}
	}
}

// windowOwners are the owner teams of a stage's fabrics, for access.
func windowOwners(st activities.StageWindow) []access.Owner {
	out := make([]access.Owner, 0, len(st.Owners))
	for _, o := range st.Owners {
		out = append(out, access.Owner{Fabric: o.Name, Team: o.Owner, Members: o.Members})
	}
	return out
}

// recordOverride puts the override in the memo, where `shipline audit` reads it.
func recordOverride(ctx workflow.Context, w *WindowWait) {
	if err := workflow.UpsertMemo(ctx, map[string]any{MemoWindowOverride: *w}); err != nil {
		workflow.GetLogger(ctx).Error("memo", "error", err)
	}
}

// ---- Deploy ------------------------------------------------------------------

// windowThenLock waits while a stage of the deployment's fabrics is closed,
// then queues for the fabrics (the queue step). A deployment a promotion
// started was checked by the promotion.
func (d *deployment) windowThenLock(ctx workflow.Context) error {
	if err := d.awaitWindow(ctx); err != nil {
		return err
	}
	if err := d.lock(ctx); err != nil {
		return err
	}
	return d.confirmPlanAtLock(ctx)
}

func (d *deployment) awaitWindow(ctx workflow.Context) error {
	if parent := workflow.GetInfo(ctx).ParentWorkflowExecution; parent != nil && d.in.Stage != "" {
		return nil
	}
	if changeVersion(ctx, ChangeWindows) < 1 {
		return nil
	}
	g := windowGate{
		in: activities.WindowInput{Fabrics: d.state.Fabrics},
		override: func(string) *WindowOverride {
			if d.in.OverrideWindow == nil {
				return nil
			}
			o := *d.in.OverrideWindow
			o.Actor, o.At = d.in.Actor, workflow.Now(ctx)
			return &o
		},
		waiting: func(ctx workflow.Context, w *WindowWait) {
			d.state.Status, d.state.Window = StatusWaiting, w
			d.state.Summary = "waiting: " + w.Text()
			setStep(d.state.Steps, StepLock, StepRunning, "waiting: "+w.Text(), workflow.Now(ctx))
			d.publish(ctx)
		},
		woken: func() bool { return false },
	}
	w, err := g.await(ctx)
	if err != nil {
		return err
	}
	d.state.Window = w
	if d.state.Status == StatusWaiting {
		d.state.Status = StatusRunning
	}
	if w != nil && w.Override != nil {
		setStep(d.state.Steps, StepLock, StepRunning, w.Text(), workflow.Now(ctx))
	}
	return nil
}

// authorizeOverride refuses an --override-window the actor may not give: a
// member of the owner team of every fabric of each stage the deployment
// targets, with a reason.
func (d *deployment) authorizeOverride(ctx workflow.Context) error {
	o := d.in.OverrideWindow
	if o == nil {
		return nil
	}
	var out activities.WindowOutput
	in := activities.WindowInput{Fabrics: d.state.Fabrics, At: workflow.Now(ctx)}
	if err := workflow.ExecuteActivity(shortActivity(ctx), configActs.Window, in).Get(ctx, &out); err != nil {
		return err
	}
	refused := access.OverrideWindow("", nil, d.in.Actor, o.Reason) // the reason first
	for _, st := range out.Stages {
		if refused != nil {
			break
		}
		refused = access.OverrideWindow(st.Stage, windowOwners(st), d.in.Actor, o.Reason)
	}
	if refused != nil {
		return d.refuse(ctx, StepAccess, apperr.AccessDenied, "--override-window: "+refused.Error())
	}
	return nil
}

// ---- Promote -----------------------------------------------------------------

// window waits while stage i is closed, saying until when and why, unless an
// override applies: an approver's for this stage, else the requester's.
func (p *promotion) window(ctx workflow.Context, i int) error {
	if changeVersion(ctx, ChangeWindows) < 1 {
		return nil
	}
	s := &p.state.Stages[i]
	had := s.Override
	g := windowGate{
		in: activities.WindowInput{Stages: []string{s.Name}},
		override: func(string) *WindowOverride {
			if s.Override != nil {
				return s.Override
			}
			if p.in.OverrideWindow != nil {
				o := *p.in.OverrideWindow
				o.Actor, o.At = p.in.Actor, workflow.Now(ctx)
				return &o
			}
			return nil
		},
		waiting: func(ctx workflow.Context, w *WindowWait) {
			had = s.Override
			s.Status, s.Window, s.Detail, p.state.Status = StageClosed, w, w.Message, StatusWaiting
			if w.Refused != "" {
				s.Detail += " (override refused: " + w.Refused + ")"
			}
			p.publish(ctx)
		},
		woken: func() bool { return s.Override != had },
	}
	w, err := g.await(ctx)
	if err != nil {
		if temporal.IsCanceledError(err) {
			return err
		}
		return p.end(ctx, StatusFailed, errorType(err), fmt.Sprintf("read the change windows of %s: %s", s.Name, userMessage(err)))
	}
	s.Window = w
	if s.Status == StageClosed {
		s.Status, p.state.Status = StagePending, StatusRunning
		s.Detail = "window open"
	}
	if w != nil && w.Override != nil {
		s.Detail = w.Text()
	}
	return nil
}

// checkOverride refuses at the start a promotion whose --override-window the
// actor may not give for its target stage.
func (p *promotion) checkOverride(ctx workflow.Context) error {
	o := p.in.OverrideWindow
	if o == nil {
		return nil
	}
	t := p.targetIndex()
	if err := access.OverrideWindow(p.state.Stages[t].Name, stageOwners(p.settings.Stages[t]), p.in.Actor, o.Reason); err != nil {
		return p.end(ctx, StatusRefused, apperr.AccessDenied, "--override-window: "+err.Error())
	}
	return nil
}

// checkWindowVote is the validator's rule for an approval that carries
// --override-window: the approver is in the owner team of the stage's
// fabrics, and gives a reason. On a stage waiting for its window, such an
// approval only overrides the window (the gate was passed).
func (p *promotion) checkWindowVote(i int, v Vote, reject bool) error {
	if v.OverrideWindow == nil {
		return nil
	}
	if reject {
		return fmt.Errorf("--override-window goes with approve, not reject")
	}
	return access.OverrideWindow(p.state.Stages[i].Name, stageOwners(p.settings.Stages[i]), v.Actor, v.OverrideWindow.Reason)
}

// voteOverride records an approver's override on the stage; it reports
// whether the vote was only that (the stage waited for its window).
func (p *promotion) voteOverride(ctx workflow.Context, s *StageState, v Vote) bool {
	if v.OverrideWindow == nil {
		return false
	}
	o := *v.OverrideWindow
	o.Actor, o.At = v.Actor, workflow.Now(ctx)
	s.Override = &o
	return s.Status == StageClosed
}

// windowPending is the pending sentence of a stage waiting for its window.
func windowPending(s StageState) string {
	if s.Window == nil {
		return s.Name + ": closed"
	}
	msg := s.Name + ": " + s.Window.Message
	if s.Window.Refused != "" {
		msg += " (override refused: " + s.Window.Refused + ")"
	}
	return msg
}
