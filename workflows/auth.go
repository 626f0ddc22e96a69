package workflows

import (
	"errors"
	"slices"

	"go.temporal.io/sdk/workflow"

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
	if workflow.GetVersion(ctx, ChangeSignedRequests, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
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
	}
	return v
}
