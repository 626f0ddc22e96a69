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
	record := func(r Refusal) {
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
