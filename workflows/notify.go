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
	state := Progress{Status: StatusRunning, Summary: fmt.Sprintf("delivering %s to %s", in.Event.Event, listOrNone(in.Targets))}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (Progress, error) { return state, nil }); err != nil {
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
	futures := make([]workflow.Future, len(in.Targets))
	for i, t := range in.Targets {
		futures[i] = workflow.ExecuteActivity(actx, notifyActs.Send, activities.NotifyInput{Target: t, Event: in.Event})
	}
	var out NotifyOutcome
	for i, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			if out.Failed == nil {
				out.Failed = map[string]string{}
			}
			out.Failed[in.Targets[i]] = userMessage(err)
			workflow.GetLogger(ctx).Error("notification not delivered", "target", in.Targets[i], "event", in.Event.Event, "error", userMessage(err))
			continue
		}
		out.Delivered = append(out.Delivered, in.Targets[i])
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

// notices counts the events a run sent, for their IDs.
type notices struct{ sent int }

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
	n.sent++
	info := workflow.GetInfo(ctx)
	e.ID = NotifyID(info.WorkflowExecution.ID, info.WorkflowExecution.RunID[:8], n.sent)
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
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "no target"
	}
	return strings.Join(names, ", ")
}
