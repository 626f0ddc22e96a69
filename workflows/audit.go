package workflows

import (
	"slices"

	"go.temporal.io/sdk/workflow"
)

// MaxAuditRefusals bounds the refusals an Audit entity keeps in its state (and
// carries over continue-as-new). Every refusal stays in the workflow's history
// regardless, which is what `shipline audit` reads.
const MaxAuditRefusals = 1000

// Audit is a project's entity, ID AuditID, that records refused attempts which
// left no trace elsewhere: an update (approve, reject, delete, resume, cancel)
// refused by its validator is never written to the target's history, so the CLI
// signals the refusal here (RefusalSignal, payload Refusal) with
// signal-with-start. The `state` query returns the refusals kept, newest last.
//
// A refusal is believed only when Shipline sealed it (see internal_msg.go):
// anyone who can reach the namespace can signal this entity, so any other
// signal is kept as an unauthenticated attempt of its own, none of its claims
// copied.
//
// It never completes; it continues as new when Temporal suggests it, after
// draining the signals already delivered, carrying its state.
func Audit(ctx workflow.Context, in AuditInput) error {
	if in.carries() {
		// Forged entries are dropped; the attempt is recorded here like any
		// other refusal (the signal reaches this very run).
		if err := carriedStateAllowed(ctx); err != nil {
			recordRefusal(ctx, in.Project, carriedAttempt(ctx, err))
			in.Carried = nil
		}
	}
	refusals := slices.Clone(in.Carried)
	if refusals == nil {
		refusals = []Refusal{}
	}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() ([]Refusal, error) { return refusals, nil }); err != nil {
		return err
	}
	if in.Project != "" {
		if err := workflow.UpsertTypedSearchAttributes(ctx, ProjectKey.ValueSet(in.Project)); err != nil {
			return err
		}
	}
	ch := workflow.GetSignalChannel(ctx, RefusalSignal)
	internalAuthOn(ctx) // decided once, before any record
	record := func(r Refusal) {
		r = authentic(ctx, r, refusals)
		if r.At.IsZero() {
			r.At = workflow.Now(ctx)
		}
		refusals = append(refusals, r)
		if n := len(refusals); n > MaxAuditRefusals {
			refusals = slices.Clone(refusals[n-MaxAuditRefusals:])
		}
	}
	for {
		var r Refusal
		ch.Receive(ctx, &r)
		record(r)
		if !workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			continue
		}
		// Drain what was delivered before continuing as new: an unread signal
		// would be lost with this run.
		for {
			var more Refusal
			if !ch.ReceiveAsync(&more) {
				break
			}
			record(more)
		}
		return workflow.NewContinueAsNewError(ctx, Audit, AuditInput{Project: in.Project, Carried: refusals})
	}
}

// authentic returns r when it was sent by Shipline (and not before: kept
// holds the records so far); else the Audit entity's own record of the
// attempt, which trusts nothing the signal claimed.
func authentic(ctx workflow.Context, r Refusal, kept []Refusal) Refusal {
	var seen []string
	for _, k := range kept {
		if k.Seal != nil {
			seen = append(seen, k.Seal.Nonce)
		}
	}
	err := verifyInternal(ctx, RefusalSignal, &r, &seen)
	if err == nil {
		return r
	}
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	workflow.GetLogger(ctx).Warn("audit record refused", "error", err)
	return Refusal{Actor: unauthenticatedActor(""), Action: RefusalSignal, Target: id, At: workflow.Now(ctx), Unauthenticated: true,
		Reason: "an audit record not sent by Shipline was refused; its content is not trusted: " + err.Error()}
}
