package workflows

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/internal/signing"
)

// signAs signs a request the way the dashboard does: with a delegate's key, on
// the actor's behalf.
func signAs(t *testing.T, key ed25519.PrivateKey, delegate, id, action, actor string, args any, at time.Time, reqID string) *signing.Auth {
	t.Helper()
	canonical, err := signing.Canonical(SignedArgs(args))
	if err != nil {
		t.Fatal(err)
	}
	a := signing.Sign(key, signing.Request{WorkflowID: id, Action: action, Actor: actor, Args: canonical, RequestID: reqID, Time: at, Delegate: delegate})
	return &a
}

// A vote the dashboard signs with its delegate key counts for the user it
// names, under the CLI's rules, and is recorded "via web"; a delegate claim
// signed by any other key is refused and audited.
func TestDelegatedVotes(t *testing.T) {
	alice, alicePub := newKey(t)
	web, webPub := newKey(t)
	mallory, _ := newKey(t)
	e := newPromoteEnv(t, stages(), released())
	e.policy = signing.Policy{Require: true, Keys: map[string][]string{"alice": {alicePub}}, Delegates: map[string][]string{"web": {webPub}}}
	id := PromoteID("demo", "v1.2.0")
	in := PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"}
	in.Auth = sign(t, alice, id, ActionPromote, "alice", in, e.Now(), "p-1")
	var refusals []string
	send := func(at time.Duration, updateID string, v Vote) {
		e.RegisterDelayedCallback(func() {
			e.UpdateWorkflow(ApproveUpdate, updateID, &testsuite.TestUpdateCallback{
				OnReject: func(err error) { t.Errorf("%s rejected unrecorded: %v", updateID, err) },
				OnAccept: func() {},
				OnComplete: func(_ any, err error) {
					if err != nil {
						refusals = append(refusals, updateID+": "+err.Error())
					}
				},
			}, v)
		}, at)
	}
	forged := Vote{Stage: "qa", Actor: "bob"}
	forged.Auth = signAs(t, mallory, "web", id, ActionApprove, "bob", forged, e.Now().Add(time.Minute), "v-1")
	send(time.Minute, "forged", forged)
	relabelled := Vote{Stage: "qa", Actor: "alice"}
	relabelled.Auth = sign(t, alice, id, ActionApprove, "alice", relabelled, e.Now().Add(time.Minute), "v-2")
	relabelled.Auth.Delegate = "web" // alice's own signature passed off as the dashboard's
	send(2*time.Minute, "relabelled", relabelled)
	outsider := Vote{Stage: "qa", Actor: "zed", PlanHash: e.plans.hash("qa", "qa")} // not in the qa team: the CLI's rules hold for the user named
	outsider.Auth = signAs(t, web, "web", id, ActionApprove, "zed", outsider, e.Now().Add(2*time.Minute), "v-4")
	send(2*time.Minute+time.Second, "outsider", outsider)
	good := Vote{Stage: "qa", Actor: "bob", Comment: "ok", PlanHash: e.plans.hash("qa", "qa")} // the plan the gate shows
	good.Auth = signAs(t, web, "web", id, ActionApprove, "bob", good, e.Now().Add(3*time.Minute), "v-3")
	send(3*time.Minute, "good", good)
	e.ExecuteWorkflow(Promote, in)
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusPromoted || len(refusals) != 3 || !strings.Contains(refusals[0], "delegate web") || !strings.Contains(refusals[1], "delegate web") ||
		!strings.Contains(refusals[2], "zed may not vote on qa") {
		t.Fatalf("status %s, refusals %q", s.Status, refusals)
	}
	votes := s.Stages[1].Approvals
	if len(votes) != 1 || votes[0].Actor != "bob" || votes[0].Delegate != "web" || votes[0].Auth != nil {
		t.Errorf("recorded votes %+v", votes)
	}
	var via []string
	for _, r := range e.audit.refusals() {
		via = append(via, r.Via)
	}
	if want := []string{ViaBadSigned, ViaBadSigned, ViaSigned + " by delegate web"}; strings.Join(via, "|") != strings.Join(want, "|") {
		t.Errorf("audited arrivals %q, want %q", via, want)
	}
}
