package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/internal/signing"
)

// MaxAuditRefusals bounds the refusals an Audit entity keeps in its state (and
// carries over continue-as-new). Every refusal stays in the workflow's history
// regardless, which is what `shipline audit` reads.
const MaxAuditRefusals = 1000

// The flood cap: an Audit entity keeps at most MaxRefusalsPerActor refusals of
// one actor per RefusalWindow (windows start on the hour of workflow time);
// the rest are counted on one summary record per actor and window (Dropped).
const (
	MaxRefusalsPerActor = 20
	RefusalWindow       = time.Hour
)

// claimMargin is added to a request's freshness when its claim is kept, for
// the difference between the clocks of the workflows that check it.
const claimMargin = time.Minute

// Audit is a project's entity, ID AuditID. It records refused attempts
// (RefusalSignal, payload Refusal: sent by Shipline's workflows when they refuse
// a start or an update, and by the CLI for refusals that left no trace elsewhere)
// and holds the project's claimed request IDs (ClaimRequestUpdate): a signed
// request is accepted once per project, whatever workflow ID or run it arrives
// in, for as long as its signature is fresh. The `state` query returns the
// refusals kept, newest last.
//
// A refusal is believed only when Shipline sealed it (see internal_msg.go):
// anyone who can reach the namespace can signal this entity, so any other
// signal is kept as an unauthenticated attempt of its own, none of its claims
// copied.
//
// It never completes; it continues as new when Temporal suggests it, after
// draining the signals already delivered, carrying its refusals and the claims
// still fresh.
func Audit(ctx workflow.Context, in AuditInput) error {
	if in.carries() {
		// Forged entries are dropped; the attempt is recorded here like any
		// other refusal (the signal reaches this very run).
		if err := carriedStateAllowed(ctx); err != nil {
			recordRefusal(ctx, in.Project, carriedAttempt(ctx, err))
			in.Carried, in.CarriedClaims = nil, nil
		}
	}
	a := &audit{refusals: slices.Clone(in.Carried), claims: slices.Clone(in.CarriedClaims)}
	if a.refusals == nil {
		a.refusals = []Refusal{}
	}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() ([]Refusal, error) { return a.refusals, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, ClaimRequestUpdate, func(ctx workflow.Context, c RequestClaim) (ClaimResult, error) {
		a.claimsThisRun++
		// Only Shipline's workflows claim IDs: a forged claim (which could
		// block a genuine request) claims nothing, and is recorded.
		if err := a.authenticClaim(ctx, in.Project, &c); err != nil {
			return ClaimResult{}, err
		}
		if c.RequestID == "" {
			return ClaimResult{}, errors.New("the claim names no request ID")
		}
		return a.claim(workflow.Now(ctx), c), nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, c RequestClaim) error {
		// An unsealed claim reaches the handler, which records it as an attempt.
		if c.RequestID == "" && c.Seal != nil {
			return errors.New("the claim names no request ID")
		}
		return nil
	}}); err != nil {
		return err
	}
	if in.Project != "" {
		if err := workflow.UpsertTypedSearchAttributes(ctx, ProjectKey.ValueSet(in.Project)); err != nil {
			return err
		}
	}
	ch := workflow.GetSignalChannel(ctx, RefusalSignal)
	internalAuthOn(ctx) // decided once, before any record
	sealedClaimsOn(ctx)
	for {
		// Claims also grow the history: once Temporal suggests it, a run that
		// answered claims continues as new without waiting for a signal.
		if err := workflow.Await(ctx, func() bool {
			return ch.Len() > 0 || (a.claimsThisRun > 0 && workflow.GetInfo(ctx).GetContinueAsNewSuggested())
		}); err != nil {
			return err
		}
		// Drain what was delivered (before continuing as new, an unread signal
		// would be lost with this run).
		for {
			var r Refusal
			if !ch.ReceiveAsync(&r) {
				break
			}
			a.record(workflow.Now(ctx), authentic(ctx, r, a.refusals))
		}
		if !workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			continue
		}
		if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
			return err
		}
		next := AuditInput{Project: in.Project, Carried: a.refusals, CarriedClaims: a.fresh(workflow.Now(ctx))}
		return workflow.NewContinueAsNewError(ctx, Audit, next)
	}
}

// audit is an Audit entity's state.
type audit struct {
	refusals []Refusal
	claims   []ClaimedRequest
	// claimsThisRun counts the claims this run answered.
	claimsThisRun int
}

// record keeps one refusal, under the flood cap, at workflow time now.
func (a *audit) record(now time.Time, r Refusal) {
	a.refusals = KeepRefusal(a.refusals, now, r)
	if n := len(a.refusals); n > MaxAuditRefusals {
		a.refusals = slices.Clone(a.refusals[n-MaxAuditRefusals:])
	}
}

// KeepRefusal adds r, received at now, to the refusals kept (newest last)
// under the flood cap: past MaxRefusalsPerActor refusals of r.Actor in now's
// RefusalWindow, r is only counted on the window's summary record (Dropped).
// The Audit entity keeps its state with it (bounded to MaxAuditRefusals), and
// `shipline audit` shows the refusals it reads from history through it.
func KeepRefusal(refusals []Refusal, now time.Time, r Refusal) []Refusal {
	if r.At.IsZero() {
		r.At = now
	}
	r.Dropped = 0
	window := now.Truncate(RefusalWindow)
	kept := 0
	summary := -1
	for i, k := range refusals {
		if k.Actor != r.Actor {
			continue
		}
		switch {
		case k.Dropped > 0 && k.At.Equal(window):
			summary = i
		case k.Dropped == 0 && !k.At.Before(window):
			kept++
		}
	}
	if kept >= MaxRefusalsPerActor {
		if summary >= 0 {
			refusals[summary].Dropped++
			return refusals
		}
		r = Refusal{Actor: r.Actor, Action: "flood", Target: r.Target, At: window, Dropped: 1,
			Reason: fmt.Sprintf("more refusals of this actor in this hour than the audit keeps (%d); the rest are counted, not kept", MaxRefusalsPerActor)}
	}
	return append(refusals, r)
}

// claim accepts a request ID the first time it is claimed while fresh.
func (a *audit) claim(now time.Time, c RequestClaim) ClaimResult {
	a.claims = a.fresh(now)
	for _, k := range a.claims {
		if k.RequestID == c.RequestID {
			return ClaimResult{FirstUse: k.Action + " of " + k.Target}
		}
	}
	until := c.Time.Add(signing.MaxAge + claimMargin)
	// A signature is never accepted when it is further ahead than MaxAge, so
	// no claim needs keeping longer than this.
	if limit := now.Add(2*signing.MaxAge + claimMargin); until.After(limit) || c.Time.IsZero() {
		until = limit
	}
	k := ClaimedRequest{RequestID: c.RequestID, Target: c.Target, Action: c.Action, Until: until}
	if c.Seal != nil {
		k.Nonce = c.Seal.Nonce
	}
	a.claims = append(a.claims, k)
	return ClaimResult{Accepted: true}
}

// fresh returns the claims whose requests could still be accepted at now.
func (a *audit) fresh(now time.Time) []ClaimedRequest {
	out := a.claims[:0:0]
	for _, k := range a.claims {
		if !k.Until.Before(now) {
			out = append(out, k)
		}
	}
	return out
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

// sealedClaimsOn reports whether this run answers only claims Shipline sealed.
// Runs that answered claims before replay without the check (and keep
// answering unsealed claims until they continue as new).
func sealedClaimsOn(ctx workflow.Context) bool {
	return changeVersion(ctx, ChangeSealedClaims) >= 1
}

// authenticClaim verifies that c was sealed by Shipline for this entity and is
// not a copy of a claim already answered (the nonces of the claims kept). One
// that is not authentic is recorded in the audit as an attempt (like any
// forged internal message), and the refusal returned: the update's outcome.
func (a *audit) authenticClaim(ctx workflow.Context, project string, c *RequestClaim) error {
	if !sealedClaimsOn(ctx) {
		return nil
	}
	var seen []string
	for _, k := range a.claims {
		if k.Nonce != "" {
			seen = append(seen, k.Nonce)
		}
	}
	return refuseInternal(ctx, project, ClaimRequestUpdate, c.Actor, c, &seen)
}
