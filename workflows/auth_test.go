package workflows

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
	"golang.org/x/crypto/ssh"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/signing"
)

func newKey(t *testing.T) (ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pub)
	return priv, string(ssh.MarshalAuthorizedKey(sp))
}

// sign signs a request the way the CLI does.
func sign(t *testing.T, key ed25519.PrivateKey, id, action, actor string, args any, at time.Time, reqID string) *signing.Auth {
	t.Helper()
	canonical, err := signing.Canonical(SignedArgs(args))
	if err != nil {
		t.Fatal(err)
	}
	a := signing.Sign(key, signing.Request{WorkflowID: id, Action: action, Actor: actor, Args: canonical, RequestID: reqID, Time: at})
	return &a
}

func TestReleaseSignatures(t *testing.T) {
	alice, alicePub := newKey(t)
	mallory, _ := newKey(t)
	const id = "default-test-workflow-id"
	for name, tc := range map[string]struct {
		key  ed25519.PrivateKey
		skew time.Duration
		want string // "" = released
	}{
		"unsigned":          {nil, 0, "unsigned: this platform requires signed requests"},
		"signed by alice":   {alice, 0, ""},
		"signed by mallory": {mallory, 0, "forged"},
		"signed long ago":   {alice, -10 * time.Minute, "stale"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newReleaseEnv(t, admins())
			e.pol = signing.Policy{Require: true, Keys: map[string][]string{"alice": {alicePub}}}
			e.okGit(true)
			in := ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"}
			if tc.key != nil {
				in.Auth = sign(t, tc.key, id, ActionRelease, "alice", in, e.Now().Add(tc.skew), "req-1")
			}
			if tc.want == "" {
				if s := e.runOpen(in); s.Status != StatusReleased || len(s.Requests) != 1 {
					t.Fatalf("state %+v", s)
				}
				return
			}
			_, msg := e.runFailing(in, apperr.SignatureRefused)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q lacks %q", msg, tc.want)
			}
		})
	}
}

// A signed approval cannot be replayed, and an unsigned or forged one is
// refused; each refusal is the update's recorded outcome and is audited.
func TestVoteSignatures(t *testing.T) {
	carol, carolPub := newKey(t)
	dave, davePub := newKey(t)
	alice, alicePub := newKey(t)
	st := stages()
	st.Stages[1].Required = 2
	e := newPromoteEnv(t, st, released())
	e.policy = signing.Policy{Require: true, Keys: map[string][]string{"alice": {alicePub}, "bob": {alicePub}, "carol": {carolPub}, "dave": {davePub}}}
	id := PromoteID("demo", "v1.2.0")
	in := PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"}
	in.Auth = sign(t, alice, id, ActionPromote, "alice", in, e.Now(), "p-1")
	approve := Vote{Stage: "qa", Actor: "bob", PlanHash: e.plans.hash("qa", "qa")}                    // the plan the gate will show
	approve.Auth = sign(t, alice, id, ActionApprove, "bob", approve, e.Now().Add(time.Minute), "v-1") // bob's registered key is alice's pair in this test
	var refusals []string
	send := func(at time.Duration, updateID string, v Vote) {
		e.RegisterDelayedCallback(func() {
			e.UpdateWorkflow(ApproveUpdate, updateID, &testsuite.TestUpdateCallback{
				OnReject: func(err error) { t.Errorf("%s rejected unrecorded: %v", updateID, err) },
				OnAccept: func() {},
				OnComplete: func(_ any, err error) {
					if err != nil {
						refusals = append(refusals, err.Error())
					}
				},
			}, v)
		}, at)
	}
	send(time.Minute, "unsigned", Vote{Stage: "qa", Actor: "bob"})
	forged := Vote{Stage: "qa", Actor: "bob"}
	forged.Auth = sign(t, carol, id, ActionApprove, "bob", forged, e.Now().Add(time.Minute), "v-2")
	send(2*time.Minute, "forged", forged)
	send(3*time.Minute, "good", approve)
	send(3*time.Minute+time.Second, "replay", approve)                             // same request, new update ID
	second := Vote{Stage: "qa", Actor: "dave", PlanHash: e.plans.hash("qa", "qa")} // dave stands in for a second developer here
	second.Auth = sign(t, dave, id, ActionApprove, "dave", second, e.Now().Add(4*time.Minute), "v-3")
	st.Stages[1].Members = append(st.Stages[1].Members, "dave")
	send(4*time.Minute, "second", second)
	e.ExecuteWorkflow(Promote, in)
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(refusals, " | ")
	if s.Status != StatusPromoted || len(refusals) != 3 || !strings.Contains(joined, "unsigned") || !strings.Contains(joined, "forged") || !strings.Contains(joined, "replayed") {
		t.Fatalf("status %s, refusals %q", s.Status, refusals)
	}
	// Each refusal is in the project's audit once, saying how it arrived.
	var via []string
	for _, r := range e.audit.refusals() {
		if r.Actor != "bob" || r.Action != ActionApprove || r.Stage != "qa" || r.Target != id || r.Reason == "" {
			t.Errorf("audited %+v", r)
		}
		via = append(via, r.Via)
	}
	if want := []string{ViaUnsigned, ViaBadSigned, ViaReplayed}; fmt.Sprint(via) != fmt.Sprint(want) {
		t.Errorf("audited arrivals %q, want %q", via, want)
	}
}
