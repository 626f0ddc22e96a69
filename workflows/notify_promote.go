package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/platform"
)

// What a promotion tells notification targets (platform.yaml notifications):
// a gate that opens (approval_needed, with who may approve and a link to the
// promotion's page), reminders while it stays open and one escalation, a
// failed verification, a rollback's start and end, and the promotion's end.

// notify sends an event about this promotion (at stage, "" for none).
func (p *promotion) notify(ctx workflow.Context, event, stage string, fill func(*activities.NotifyEvent)) {
	if p.settings.Notify == nil {
		return
	}
	e := p.event(event, stage)
	if fill != nil {
		fill(&e)
	}
	p.notices.send(ctx, p.settings.Notify, e)
}

// event is an event of this promotion with what every event says.
func (p *promotion) event(event, stage string) activities.NotifyEvent {
	e := activities.NotifyEvent{Event: event, Project: p.in.Project, Version: p.in.Version, Stage: stage, Actor: p.in.Actor, Summary: p.state.Summary}
	if p.settings.Notify != nil {
		e.URL = activities.PromotionURL(p.settings.Notify.WebURL, p.in.Project, p.in.Version)
	}
	return e
}

// gateEvent is an event of stage i's open gate: who may approve, and why it waits.
func (p *promotion) gateEvent(ctx workflow.Context, event string, i int, lead string) activities.NotifyEvent {
	s := p.state.Stages[i]
	e := p.event(event, s.Name)
	e.Approvers = p.mayApprove(i)
	what := fmt.Sprintf("%s of %s, requested by %s", p.in.Version, p.in.Project, p.in.Actor)
	if p.rollingBack() {
		what = fmt.Sprintf("the rollback of %s of %s to %s, requested by %s", s.Name, p.in.Project, p.in.Version, p.in.Actor)
	}
	e.Summary = lead + what + ", waits for approval — " + p.pending(workflow.Now(ctx))
	return e
}

// gateNotices tells the targets that stage i's gate opened (when it just
// opened), then keeps, in a coroutine, each target's reminders (every
// remind_every from the gate's opening) and its one escalation (escalate_after
// from the opening, to escalate_to). The returned stop cancels the coroutine's
// timers: the gate calls it when it is decided, expires or continues as new
// (the next run keeps the schedule, counted from the opening).
func (p *promotion) gateNotices(ctx workflow.Context, i int, opened bool) (stop func()) {
	n := p.settings.Notify
	if n == nil {
		return func() {}
	}
	s := p.state.Stages[i]
	if opened {
		p.notices.send(ctx, n, p.gateEvent(ctx, platform.EventApprovalNeeded, i, ""))
	}
	plan := gatePlan(n, p.in.Project, s.Name, s.OpenedAt, workflow.Now(ctx))
	if len(plan) == 0 {
		return func() {}
	}
	tctx, cancel := workflow.WithCancel(ctx)
	sending := false
	workflow.Go(tctx, func(ctx workflow.Context) {
		for len(plan) > 0 {
			next := plan[0].at
			for _, d := range plan {
				if d.at.Before(next) {
					next = d.at
				}
			}
			if err := workflow.Sleep(ctx, next.Sub(workflow.Now(ctx))); err != nil {
				return // the gate was decided
			}
			sending = true
			// Targets due together get one event; plan keeps config order.
			var reminded, escalated []string
			var after time.Duration
			for _, d := range plan {
				switch {
				case d.at.After(next):
				case d.event == platform.EventReminder:
					reminded = append(reminded, d.target)
					d.at = d.at.Add(d.every)
				case !slices.Contains(escalated, d.target):
					escalated, after = append(escalated, d.target), d.after
				}
			}
			plan = slices.DeleteFunc(plan, func(d *due) bool { return d.event == platform.EventEscalation && !d.at.After(next) })
			waited := fmtAge(workflow.Now(ctx).Sub(s.OpenedAt))
			p.notices.sendTo(ctx, reminded, p.gateEvent(ctx, platform.EventReminder, i, "Still waiting after "+waited+": "))
			if len(escalated) > 0 {
				e := p.gateEvent(ctx, platform.EventEscalation, i, fmt.Sprintf("Escalated: nobody decided within %s: ", fmtAge(after)))
				e.Reason = fmt.Sprintf("the %s gate has been open since %s", s.Name, fmtTime(s.OpenedAt))
				p.notices.sendTo(ctx, escalated, e)
			}
			sending = false
		}
	})
	return func() {
		cancel()
		// A delivery being started finishes starting first.
		_ = workflow.Await(ctx, func() bool { return !sending })
	}
}

// due is a reminder or an escalation of an open gate.
type due struct {
	at     time.Time
	event  string
	target string
	every  time.Duration // of a reminder
	after  time.Duration // of an escalation
}

// gatePlan is what is due next for a gate of a stage opened at opened, seen
// at now (later than opened after a continue-as-new): each target's next
// reminder (a multiple of its remind_every from the opening) and its
// escalation, unless its time has passed (it was sent then).
func gatePlan(n *activities.NotifySettings, project, stage string, opened, now time.Time) []*due {
	var plan []*due
	for _, t := range n.Targets {
		if t.RemindEvery > 0 && t.Wants(platform.EventReminder, project, stage) {
			k := now.Sub(opened)/t.RemindEvery + 1
			plan = append(plan, &due{at: opened.Add(k * t.RemindEvery), event: platform.EventReminder, target: t.Name, every: t.RemindEvery})
		}
		if t.EscalateAfter > 0 && t.EscalateTo != "" && t.Wants(platform.EventApprovalNeeded, project, stage) {
			if at := opened.Add(t.EscalateAfter); at.After(now) {
				plan = append(plan, &due{at: at, event: platform.EventEscalation, target: t.EscalateTo, after: t.EscalateAfter})
			}
		}
	}
	return plan
}

// notifyPromoted tells the targets the promotion reached its target stage.
func (p *promotion) notifyPromoted(ctx workflow.Context) {
	p.notify(ctx, platform.EventPromoted, p.state.Target, nil)
}

// notifyVerificationFailed tells the targets stage i's verification failed.
func (p *promotion) notifyVerificationFailed(ctx workflow.Context, i int, failed *VerifyRun, msg string) {
	s := p.state.Stages[i]
	p.notify(ctx, platform.EventVerificationFailed, s.Name, func(e *activities.NotifyEvent) {
		e.Actor, e.Summary, e.Reason = s.DeployedBy, msg, failed.Message
	})
}

// notifyRollback tells the targets a rollback started, finished or ended
// otherwise (phase: started, rolled-back, or the promotion's end status).
func (p *promotion) notifyRollback(ctx workflow.Context, phase string) {
	if !p.rollingBack() {
		return
	}
	p.notify(ctx, platform.EventRollback, p.in.Rollback.Stage, func(e *activities.NotifyEvent) {
		e.Phase, e.Reason = phase, p.in.Rollback.Reason
	})
}
