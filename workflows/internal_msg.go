package workflows

import (
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/msgauth"
)

// Messages between Shipline's own workflows (a Deploy joining or leaving a
// Fabric entity's queue, the Fabric entity's grants, a Deploy telling the
// Release entity where it deployed and its Promote that it parked or goes on,
// Promote linking a release, refusals recorded in the Audit entity, request
// IDs claimed in it) are sealed by their sender and verified by
// their receiver (internal/msgauth), because anyone who can reach the
// namespace can send any workflow any signal or update. Sealing and verifying
// run in activities (internalActs), which hold the secret; history records the
// seal and the verdict only. Messages sent from activities (messageActs) are
// sealed by activities.SealingClient. A message that is not authentic changes
// nothing and is recorded in the project's audit.

var internalActs *activities.InternalAuth

// maxNonces bounds the nonces an entity remembers against copies of genuine
// messages (seals older than msgauth.MaxAge are refused anyway).
const maxNonces = 1000

// internalMessage is a payload that carries a seal.
type internalMessage interface {
	sealOf() *msgauth.Seal
	setSeal(*msgauth.Seal)
}

// internalAuthOn reports whether this run seals and verifies internal
// messages. Runs that began before sealing existed replay without it (and
// keep trusting unsealed messages until they continue as new).
func internalAuthOn(ctx workflow.Context) bool {
	return changeVersion(ctx, ChangeInternalAuth) >= 1
}

// signalInternal seals msg for (target, name) and signals it (its value) to target.
func signalInternal[T any, PT interface {
	*T
	internalMessage
}](ctx workflow.Context, target, name string, msg PT) workflow.Future {
	if err := sealInternal(ctx, target, name, msg); err != nil {
		f, set := workflow.NewFuture(ctx)
		set.SetError(fmt.Errorf("seal %s for %s: %w", name, target, err))
		return f
	}
	return workflow.SignalExternalWorkflow(ctx, target, "", name, *msg)
}

// sealInternal sets msg's seal for (target, name).
func sealInternal(ctx workflow.Context, target, name string, msg internalMessage) error {
	if !internalAuthOn(ctx) {
		return nil
	}
	msg.setSeal(nil)
	payload, err := msgauth.Payload(msg)
	if err != nil {
		return err
	}
	var s msgauth.Seal
	in := activities.SealInput{Target: target, Name: name, Payload: payload}
	if err := workflow.ExecuteActivity(shortActivity(ctx), internalActs.SealMessage, in).Get(ctx, &s); err != nil {
		return err
	}
	msg.setSeal(&s)
	return nil
}

// verifyInternal checks that msg, received by this workflow as name, was sent
// by Shipline and not before (seen holds the nonces accepted so far; an
// accepted nonce is added). It returns why the message is not authentic.
func verifyInternal(ctx workflow.Context, name string, msg internalMessage, seen *[]string) error {
	if !internalAuthOn(ctx) {
		return nil
	}
	s := msg.sealOf()
	switch {
	case s == nil:
		return errors.New("the message carries no seal: it was not sent by a Shipline workflow")
	case slices.Contains(*seen, s.Nonce):
		return errors.New("the message is a copy of one already received")
	}
	payload, err := msgauth.Payload(msg)
	if err != nil {
		return err
	}
	in := activities.VerifyInput{SealInput: activities.SealInput{Target: workflow.GetInfo(ctx).WorkflowExecution.ID, Name: name, Payload: payload}, Seal: s}
	var out activities.VerifyOutput
	if err := workflow.ExecuteActivity(shortActivity(ctx), internalActs.VerifyMessage, in).Get(ctx, &out); err != nil {
		return fmt.Errorf("the message could not be verified: %s", userMessage(err))
	}
	if !out.OK {
		return errors.New(out.Reason)
	}
	*seen = append(*seen, s.Nonce)
	if n := len(*seen); n > maxNonces {
		*seen = slices.Clone((*seen)[n-maxNonces:])
	}
	return nil
}

// refuseInternal verifies a received internal message. One that is not
// authentic is recorded in the project's audit as an attempt and its reason
// returned: the caller then changes nothing. claimedActor is whom the message
// claims to act for (not trusted; it only helps reading the audit).
func refuseInternal(ctx workflow.Context, project, name, claimedActor string, msg internalMessage, seen *[]string) error {
	err := verifyInternal(ctx, name, msg, seen)
	if err == nil {
		return nil
	}
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	err = fmt.Errorf("a %q message to %s was refused, nothing changed: %w", name, id, err)
	workflow.GetLogger(ctx).Warn("internal message refused", "message", name, "error", err)
	recordRefusal(ctx, project, Refusal{Actor: unauthenticatedActor(claimedActor), Action: name, Target: id, Reason: err.Error()})
	return err
}

// unauthenticatedActor names the sender of a message that is not authentic.
func unauthenticatedActor(claimed string) string {
	if claimed == "" {
		return "unknown (unauthenticated message)"
	}
	return "unknown (unauthenticated message claiming " + claimed + ")"
}
