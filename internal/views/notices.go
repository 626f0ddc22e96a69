package views

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/workflows"
)

// Delivery states of a notice to one target.
const (
	DeliveryDelivered = "delivered"
	DeliverySending   = "sending"
	DeliveryRetrying  = "retrying"
	DeliveryFailed    = "not delivered"
	DeliveryUnknown   = "unknown"
)

// NoticeStatus is one event a workflow sent and how its delivery went to
// each target: read from its Notify workflow.
type NoticeStatus struct {
	workflows.Notice
	Deliveries []Delivery `json:"deliveries"`
}

// Delivery is how a notice's delivery to one target went.
type Delivery struct {
	Target string `json:"target"`
	State  string `json:"state"`
	// Detail is the receiver's last answer (retrying, not delivered) or why
	// the state is unknown.
	Detail string `json:"detail,omitempty"`
	// Attempt is the attempt under way while retrying.
	Attempt int32 `json:"attempt,omitempty"`
	// Next is when a retrying delivery is tried again.
	Next *time.Time `json:"next,omitempty"`
}

// Failed reports whether a delivery did not reach its target, or has not
// yet after a failed attempt.
func (d Delivery) Failed() bool { return d.State == DeliveryRetrying || d.State == DeliveryFailed }

// Text renders a delivery for the CLI and the dashboard: "team: delivered",
// "team: retrying (attempt 3): notification target team answered 503 …".
func (d Delivery) Text() string {
	s := d.Target + ": " + d.State
	if d.Attempt > 1 {
		s += fmt.Sprintf(" (attempt %d)", d.Attempt)
	}
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	return s
}

// Notices reads how each notice's delivery went, from its Notify workflow:
// its result once it ended; while it runs, the targets it has finished
// (its state query) and the retries of the others (its pending activities).
func Notices(ctx context.Context, c client.Client, notices []workflows.Notice) []NoticeStatus {
	// One deadline for all: a worker that does not answer the queries costs
	// one wait, not one per notice.
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out := make([]NoticeStatus, 0, len(notices))
	for _, n := range notices {
		out = append(out, NoticeStatus{Notice: n, Deliveries: deliveries(ctx, c, n)})
	}
	return out
}

func deliveries(ctx context.Context, c client.Client, n workflows.Notice) []Delivery {
	all := func(state, detail string) []Delivery {
		out := make([]Delivery, len(n.Targets))
		for i, t := range n.Targets {
			out[i] = Delivery{Target: t, State: state, Detail: detail}
		}
		return out
	}
	desc, err := c.DescribeWorkflowExecution(ctx, n.ID, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return all(DeliveryUnknown, "its Notify workflow "+n.ID+" is not found (past the namespace's retention, or never started: see the worker's log)")
	case err != nil:
		return all(DeliveryUnknown, "cannot read its Notify workflow "+n.ID+": "+err.Error())
	}
	info := desc.GetWorkflowExecutionInfo()
	var outcome workflows.NotifyOutcome
	unread := "" // why the finished targets' outcome is not known
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		if err := c.GetWorkflow(ctx, n.ID, info.GetExecution().GetRunId()).Get(ctx, &outcome); err != nil {
			return all(DeliveryUnknown, "cannot read the result of its Notify workflow "+n.ID+": "+err.Error())
		}
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		var st workflows.NotifyState
		v, err := c.QueryWorkflow(ctx, n.ID, info.GetExecution().GetRunId(), workflows.StateQuery)
		if err == nil {
			err = v.Get(&st) // a Notify older than its outcome query answers Progress only
		}
		if err != nil {
			unread = "cannot ask its Notify workflow " + n.ID + ": " + err.Error()
		}
		outcome = st.Outcome
	default:
		return all(DeliveryUnknown, "its Notify workflow "+n.ID+" was "+strings.ToLower(spaced(ExecutionStatus(info.GetStatus())))+" before it said")
	}
	pending := map[string]Delivery{}
	for _, pa := range desc.GetPendingActivities() {
		target, ok := strings.CutPrefix(pa.GetActivityId(), workflows.NotifyActivityID(""))
		if !ok && len(n.Targets) == 1 {
			target, ok = n.Targets[0], true // a Notify from before its activities were named
		}
		if !ok {
			continue
		}
		d := Delivery{Target: target, State: DeliverySending, Attempt: pa.GetAttempt()}
		if f := pa.GetLastFailure(); f != nil {
			d.State, d.Detail = DeliveryRetrying, f.GetMessage()
			if t := pa.GetNextAttemptScheduleTime(); t != nil {
				next := t.AsTime()
				d.Next = &next
			}
		}
		pending[target] = d
	}
	out := make([]Delivery, len(n.Targets))
	for i, t := range n.Targets {
		switch why, failed := outcome.Failed[t]; {
		case failed:
			out[i] = Delivery{Target: t, State: DeliveryFailed, Detail: why}
		case slices.Contains(outcome.Delivered, t):
			out[i] = Delivery{Target: t, State: DeliveryDelivered}
		case pending[t].Target != "":
			out[i] = pending[t]
		case unread != "":
			out[i] = Delivery{Target: t, State: DeliveryUnknown, Detail: unread}
		default:
			out[i] = Delivery{Target: t, State: DeliverySending}
		}
	}
	return out
}

// spaced writes an execution status with spaces: "TimedOut" → "Timed out".
func spaced(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
