package workflows

import (
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
)

var notifyActs *activities.Notifier

// notifyRetry bounds how long one delivery is retried: a receiver down for
// longer misses the event (the Notify workflow's result and log say so).
const notifyRetry = time.Hour

// Notify delivers one event to its targets, all at once, each in its own
// activity retried with backoff for up to notifyRetry (a receiver that
// refuses, 4xx, is not retried). A target that stays down or refuses is
// logged and named in the outcome; Notify itself never fails. The workflow
// the event is about starts it and goes on without waiting (parent close
// policy abandon), so no receiver ever holds a promotion or a deployment.
func Notify(ctx workflow.Context, in NotifyInput) (NotifyOutcome, error) {
	var out NotifyOutcome
	state := Progress{Status: StatusRunning, Summary: fmt.Sprintf("delivering %s to %s", in.Event.Event, listOrNone(in.Targets))}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (NotifyState, error) { return NotifyState{Progress: state, Outcome: out}, nil }); err != nil {
		return NotifyOutcome{}, err
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: notifyRetry,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    5 * time.Minute,
		},
	})
	named := changeVersion(ctx, ChangeNotifyTargetIDs) >= 1
	futures := make([]workflow.Future, len(in.Targets))
	for i, t := range in.Targets {
		tctx := actx
		if named {
			ao := workflow.GetActivityOptions(actx)
			ao.ActivityID = NotifyActivityID(t)
			tctx = workflow.WithActivityOptions(actx, ao)
		}
		futures[i] = workflow.ExecuteActivity(tctx, notifyActs.Send, activities.NotifyInput{Target: t, Event: in.Event})
	}
	// Each target's outcome is recorded as it comes (the query shows it
	// while the others still retry); Delivered keeps the targets' order.
	done := make([]bool, len(futures))
	sel := workflow.NewSelector(ctx)
	for i, f := range futures {
		sel.AddFuture(f, func(f workflow.Future) {
			if err := f.Get(ctx, nil); err != nil {
				if out.Failed == nil {
					out.Failed = map[string]string{}
				}
				out.Failed[in.Targets[i]] = userMessage(err)
				workflow.GetLogger(ctx).Error("notification not delivered", "target", in.Targets[i], "event", in.Event.Event, "error", userMessage(err))
			}
			done[i] = true
			out.Delivered = out.Delivered[:0]
			for k, t := range in.Targets {
				if _, failed := out.Failed[t]; done[k] && !failed {
					out.Delivered = append(out.Delivered, t)
				}
			}
		})
	}
	for range futures {
		sel.Select(ctx)
	}
	summary := fmt.Sprintf("%s delivered to %s", in.Event.Event, listOrNone(out.Delivered))
	for _, t := range in.Targets {
		if why, failed := out.Failed[t]; failed {
			summary += fmt.Sprintf("; not to %s: %s", t, why)
		}
	}
	state.Status, state.Summary = StatusSucceeded, summary
	if len(out.Failed) > 0 {
		state.Status = StatusFailed
	}
	workflow.SetCurrentDetails(ctx, summary)
	return out, nil
}

// notices counts the events a run sent, for their IDs, and hands each to
// sent (set by the workflow: it keeps them in its state).
type notices struct {
	count int
	sent  func(Notice)
}

// keepNotice appends n to list, keeping the latest MaxNotices.
func keepNotice(list []Notice, n Notice) []Notice {
	list = append(list, n)
	if len(list) > MaxNotices {
		list = append([]Notice(nil), list[len(list)-MaxNotices:]...)
	}
	return list
}

// send starts a Notify workflow delivering the event to the targets of
// settings that want it (a stage's events go to the targets whose stages
// include it) and waits only until it started. The event's ID, time and
// workflow are filled in here.
func (n *notices) send(ctx workflow.Context, settings *activities.NotifySettings, e activities.NotifyEvent) {
	var targets []string
	if settings != nil {
		for _, t := range settings.Targets {
			if t.Wants(e.Event, e.Project, e.Stage) {
				targets = append(targets, t.Name)
			}
		}
	}
	n.sendTo(ctx, targets, e)
}

// sendTo starts a Notify workflow delivering the event to the named targets.
func (n *notices) sendTo(ctx workflow.Context, targets []string, e activities.NotifyEvent) {
	if len(targets) == 0 || changeVersion(ctx, ChangeNotify) == workflow.DefaultVersion {
		return
	}
	n.count++
	info := workflow.GetInfo(ctx)
	e.ID = NotifyID(info.WorkflowExecution.ID, info.WorkflowExecution.RunID[:8], n.count)
	e.Time, e.WorkflowID = workflow.Now(ctx), info.WorkflowExecution.ID
	// Disconnected: a gate decided while the child starts must not cancel it.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	cctx := workflow.WithChildOptions(dctx, workflow.ChildWorkflowOptions{
		WorkflowID: e.ID, ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		StaticSummary: fmt.Sprintf("Notify %s: %s", strings.Join(targets, ", "), firstLineOf(e.Summary)),
	})
	child := workflow.ExecuteChildWorkflow(cctx, NotifyWorkflow, NotifyInput{Event: e, Targets: targets})
	if err := child.GetChildWorkflowExecution().Get(dctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("notification not started", "event", e.Event, "targets", targets, "error", err)
	}
	if n.sent != nil {
		n.sent(Notice{ID: e.ID, Event: e.Event, Stage: e.Stage, Targets: targets, At: e.Time})
	}
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "no target"
	}
	return strings.Join(names, ", ")
}
