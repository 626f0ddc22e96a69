package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/signing"
)

// maxSeenRequests bounds the request IDs a workflow remembers against replays
// (older ones are also refused as stale after signing.MaxAge).
const maxSeenRequests = 1000

// requestGuard verifies the signed requests a workflow receives: its start and
// its updates. Validators call check (no state change); handlers call remember.
type requestGuard struct {
	Policy signing.Policy `json:"policy"`
	Loaded bool           `json:"loaded"`
	Seen   []string       `json:"seen,omitempty"`
}

// load reads the signing policy from platform.yaml (through an activity).
// Workflows started before signatures existed replay without it (and accept
// unsigned requests, as they did).
func (g *requestGuard) load(ctx workflow.Context) error {
	if g.Loaded {
		return nil
	}
	if changeVersion(ctx, ChangeSignedRequests) == workflow.DefaultVersion {
		g.Loaded = true
		return nil
	}
	if err := workflow.ExecuteActivity(shortActivity(ctx), configActs.Signatures).Get(ctx, &g.Policy); err != nil {
		return err
	}
	g.Loaded = true
	return nil
}

// carry returns the policy to hand to the next run (nil when none was loaded).
func (g *requestGuard) carry() *signing.Policy {
	if !g.Loaded {
		return nil
	}
	p := g.Policy
	return &p
}

// restore takes a policy carried over by continue-as-new.
func (g *requestGuard) restore(p *signing.Policy, seen []string) {
	g.Seen = seen
	if p != nil {
		g.Policy, g.Loaded = *p, true
	}
}

// check verifies one request: args are its arguments without their Auth.
func (g *requestGuard) check(ctx workflow.Context, workflowID, action, actor string, args any, auth *signing.Auth) error {
	if !g.Loaded {
		return errors.New("the workflow is still starting; send the request again in a moment")
	}
	canonical, err := signing.Canonical(args)
	if err != nil {
		return err
	}
	req := signing.Request{WorkflowID: workflowID, Action: action, Actor: actor, Args: canonical}
	return g.Policy.Check(req, auth, workflow.Now(ctx), func(id string) bool { return slices.Contains(g.Seen, id) })
}

// starting refuses a request while the policy is not loaded yet: the one check
// validators keep (it writes nothing and needs no audit).
func (g *requestGuard) starting() error {
	if !g.Loaded {
		return errors.New("the workflow is still starting; send the request again in a moment")
	}
	return nil
}

// remember records an accepted request's ID so it cannot be replayed.
func (g *requestGuard) remember(auth *signing.Auth) {
	if auth == nil || auth.RequestID == "" {
		return
	}
	g.Seen = append(g.Seen, auth.RequestID)
	if n := len(g.Seen); n > maxSeenRequests {
		g.Seen = slices.Clone(g.Seen[n-maxSeenRequests:])
	}
}

// claim claims an accepted signed request's ID in the project's Audit entity
// before the request acts, so that it is accepted once per project whatever
// workflow ID or run it arrives in (the run's own Seen list only covers the
// run). It returns an error wrapping signing.ErrReplayed when the ID was used
// already; any other error means the claim could not be made (the request must
// not act then either). Unsigned requests (accepted only when the platform does
// not require signatures) have no ID to claim. Runs that began before claims
// existed replay without them.
func (g *requestGuard) claim(ctx workflow.Context, project, target, action, actor string, auth *signing.Auth) error {
	if auth == nil || auth.RequestID == "" || auth.Signature == "" {
		return nil
	}
	if changeVersion(ctx, ChangeProjectReplayClaims) == workflow.DefaultVersion {
		return nil
	}
	res, err := claimRequest(ctx, project, RequestClaim{RequestID: auth.RequestID, Time: auth.Time, Target: target, Action: action, Actor: actor})
	if err != nil {
		return fmt.Errorf("claim request %s in %s: %s", auth.RequestID, AuditID(project), userMessage(err))
	}
	if !res.Accepted {
		return fmt.Errorf("%w: request %s was already used in project %s (first for %s); every request needs a new ID: sign it again",
			signing.ErrReplayed, auth.RequestID, project, res.FirstUse)
	}
	return nil
}

// refusalsInHandlers reports whether this run refuses signed updates in their
// handlers (recorded in history and in the project's audit) rather than in
// their validators (which leave no trace). Runs that accepted updates before
// replay with the old handlers.
func refusalsInHandlers(ctx workflow.Context) bool {
	return changeVersion(ctx, ChangeProjectReplayClaims) >= 1
}

// admit decides about a signed update in its handler: who is asking (the
// signature), then its request ID (claimed once per project), then the
// workflow's own rules.
func (g *requestGuard) admit(ctx workflow.Context, project, action, actor string, args any, auth *signing.Auth, rules func() error) error {
	target := workflow.GetInfo(ctx).WorkflowExecution.ID
	if err := g.check(ctx, target, action, actor, args, auth); err != nil {
		return err
	}
	if err := g.claim(ctx, project, target, action, actor, auth); err != nil {
		return err
	}
	return rules()
}

// refuseAttempt records a refused update in the project's audit (with how it
// arrived and why it was refused) and returns the refusal, which the handler
// returns as the update's recorded outcome: a failure of type SignatureRefused
// (who asked could not be verified) or UpdateRefused (the workflow's rules),
// both of the refused class, by which `shipline` knows the workflow recorded it.
func refuseAttempt(ctx workflow.Context, project string, r Refusal, auth *signing.Auth, err error) error {
	r.Target = workflow.GetInfo(ctx).WorkflowExecution.ID
	r.Reason, r.Via = err.Error(), arrivedVia(auth, err)
	if r.Actor == "" {
		r.Actor = "unknown (no actor named)"
	}
	recordRefusal(ctx, project, r)
	typ := apperr.UpdateRefused
	for _, sig := range []error{signing.ErrUnsigned, signing.ErrForged, signing.ErrStale, signing.ErrReplayed} {
		if errors.Is(err, sig) {
			typ = apperr.SignatureRefused
		}
	}
	return apperr.New(typ, err.Error())
}

// Ways an attempt arrived (Refusal.Via).
const (
	ViaSigned    = "signed"
	ViaUnsigned  = "unsigned (not through the CLI)"
	ViaBadSigned = "signature does not verify (not through the CLI)"
	ViaStale     = "signed, stale"
	ViaReplayed  = "signed, replayed"
)

// arrivedVia tells how a refused request arrived from its Auth and refusal.
func arrivedVia(auth *signing.Auth, err error) string {
	switch {
	case auth == nil || auth.Signature == "":
		return ViaUnsigned
	case errors.Is(err, signing.ErrForged):
		return ViaBadSigned
	case errors.Is(err, signing.ErrStale):
		return ViaStale
	case errors.Is(err, signing.ErrReplayed):
		return ViaReplayed
	case auth.Delegate != "":
		return ViaSigned + " by delegate " + auth.Delegate // "signed by delegate web": sent from the dashboard
	}
	return ViaSigned
}

// claimRequest sends the claim to the project's Audit entity (starting it when
// needed) through an activity: workflow code cannot send an update itself.
func claimRequest(ctx workflow.Context, project string, c RequestClaim) (ClaimResult, error) {
	var res ClaimResult
	arg, err := json.Marshal(c)
	if err != nil {
		return res, err
	}
	input, err := json.Marshal(AuditInput{Project: project})
	if err != nil {
		return res, err
	}
	in := activities.UpdateWithStartInput{
		UpdateInput:  activities.UpdateInput{WorkflowID: AuditID(project), Update: ClaimRequestUpdate, Arg: arg},
		WorkflowType: AuditWorkflow, Input: input, TaskQueue: workflow.GetInfo(ctx).TaskQueueName,
	}
	var out activities.UpdateOutput
	if err := workflow.ExecuteActivity(shortActivity(ctx), messageActs.UpdateWithStart, in).Get(ctx, &out); err != nil {
		return res, err
	}
	return res, json.Unmarshal(out.Result, &res)
}

// SignedArgs returns what a request's signature covers: the input without its
// Auth (and, for workflow inputs, without continue-as-new carry-overs). The CLI
// signs exactly these values.
func SignedArgs(v any) any {
	switch in := v.(type) {
	case ReleaseInput:
		in.Auth, in.Carried, in.CarriedPolicy = nil, nil, nil
		return in
	case DeployInput:
		in.Auth = nil
		return in
	case PromoteInput:
		in.Auth, in.Carried, in.CarriedSettings, in.CarriedPolicy = nil, nil, nil, nil
		return in
	case Vote:
		in.Auth = nil
		return in
	case ControlRequest:
		in.Auth = nil
		return in
	case DeleteRequest:
		in.Auth = nil
		return in
	case RunInput:
		in.Auth, in.Carried = nil, nil
		return in
	case ReleaseHoldRequest:
		in.Auth = nil
		return in
	}
	return v
}
