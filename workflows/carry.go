package workflows

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
)

// Carried state (the `carried*` fields of ReleaseInput, PromoteInput,
// FabricInput and AuditInput) is what a run hands to the next one when it
// continues as new. Anyone who can reach the namespace can start a workflow
// with any input, so a run believes its carried fields only when Temporal
// itself says the run was continued as new from a run of the same workflow ID.
// Every entity asks carriedStateAllowed, here, and nothing else. A refused
// Release or Promote ends as refused (its history is the audit record); a
// Fabric or Audit entity, which others signal and must not lose, drops the
// state, records the attempt in the project's audit and goes on empty.

// carriedRefusal is the reason every refused carry-over starts with.
const carriedRefusal = "carried state is accepted only from continue-as-new"

// runOrigin is what Temporal says about how a run began (from workflow.GetInfo).
type runOrigin struct {
	// WorkflowID is the run's workflow ID.
	WorkflowID string
	// ContinuedFrom is the run this one continues (continue-as-new, and also a
	// retry or a cron run); empty for a run a client started.
	ContinuedFrom string
	// Cron is the run's cron schedule; Attempt counts retries from 1.
	Cron    string
	Attempt int32
}

func originOf(ctx workflow.Context) runOrigin {
	info := workflow.GetInfo(ctx)
	return runOrigin{WorkflowID: info.WorkflowExecution.ID, ContinuedFrom: info.ContinuedExecutionRunID,
		Cron: info.CronSchedule, Attempt: info.Attempt}
}

// checkCarried decides whether a run may take carried state: only a run that
// continued as new may (continue-as-new keeps the workflow ID, so it continues
// a run of this very workflow). A cron run or a retry is also "continued", but
// from a copy of the input a client gave, so both are refused.
func checkCarried(o runOrigin) error {
	switch {
	case o.ContinuedFrom == "":
		return fmt.Errorf("%s: %s was started directly with \"carried\" fields in its input; start it without them", carriedRefusal, o.WorkflowID)
	case o.Cron != "":
		return fmt.Errorf("%s: %s runs on a cron schedule (%s), which repeats a client's input; start it once, without a schedule and without \"carried\" fields", carriedRefusal, o.WorkflowID, o.Cron)
	case o.Attempt > 1:
		return fmt.Errorf("%s: %s is a retry (attempt %d) of a client's start, which repeats its input; start it without a retry policy and without \"carried\" fields", carriedRefusal, o.WorkflowID, o.Attempt)
	}
	return nil
}

// carriedStateAllowed returns nil when the run may believe its carried input,
// else the refusal. Runs that began before this check existed (and replay
// without its marker) believed their input; they still do, so their histories
// replay unchanged. The marker is only written on the refusing path, so
// legitimate runs issue the same commands as before.
func carriedStateAllowed(ctx workflow.Context) error {
	err := checkCarried(originOf(ctx))
	if err == nil {
		return nil
	}
	if changeVersion(ctx, ChangeCarriedStateCheck) == workflow.DefaultVersion {
		return nil
	}
	return err
}

// recordRefusal records a refused attempt in the project's Audit entity (the
// same signal `shipline` sends for refusals that leave no other trace), so
// `shipline audit` shows it. It is best effort: the refusal stands even when the
// record cannot be written, and the failure is logged.
// The project is the one the target's workflow ID names (an input may name
// another); fallback is used for IDs that name none.
func recordRefusal(ctx workflow.Context, fallback string, r Refusal) {
	project := projectOfID(r.Target)
	if project == "" {
		project = fallback
	}
	if project == "" {
		workflow.GetLogger(ctx).Warn("refusal names no project; not audited", "target", r.Target, "reason", r.Reason)
		return
	}
	if r.At.IsZero() {
		r.At = workflow.Now(ctx)
	}
	arg, err := json.Marshal(r)
	if err == nil {
		var input []byte
		input, err = json.Marshal(AuditInput{Project: project})
		if err == nil {
			in := activities.SignalWithStartInput{WorkflowID: AuditID(project), Signal: RefusalSignal, Arg: arg,
				WorkflowType: AuditWorkflow, Input: input, TaskQueue: workflow.GetInfo(ctx).TaskQueueName}
			err = workflow.ExecuteActivity(shortActivity(ctx), messageActs.SignalWithStart, in).Get(ctx, nil)
		}
	}
	if err != nil {
		workflow.GetLogger(ctx).Error("record refusal in the audit", "audit", AuditID(project), "error", err)
	}
}

// projectOfID is the project named by an entity's workflow ID
// (<kind>/<project>/...), or "".
func projectOfID(id string) string {
	parts := strings.SplitN(id, "/", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// carriedAttempt is the audit record of a refused carry-over by an entity that
// goes on running (Fabric, Audit). A Release or Promote ends as refused
// instead, and `shipline audit` reads the refusal from its own history.
func carriedAttempt(ctx workflow.Context, err error) Refusal {
	info := workflow.GetInfo(ctx)
	return Refusal{Actor: "unknown (a direct start names no actor)", Action: ActionStart, Target: info.WorkflowExecution.ID,
		Reason: err.Error() + " (started through the Temporal API as " + info.WorkflowType.Name + ")"}
}

// carries reports whether an input holds any continue-as-new carry-over.
func (in ReleaseInput) carries() bool { return in.Carried != nil || in.CarriedPolicy != nil }

func (in PromoteInput) carries() bool {
	return in.Carried != nil || in.CarriedSettings != nil || in.CarriedPolicy != nil
}

func (in FabricInput) carries() bool { return in.Carried != nil }

func (in AuditInput) carries() bool { return in.Carried != nil || in.CarriedClaims != nil }
