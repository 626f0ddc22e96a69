package signing

import (
	"errors"
	"testing"
	"time"
)

// A delegate (the dashboard) signs on behalf of the actor it names: valid only
// with a key registered for that delegate, never with the actor's own key
// relabelled, nor with a delegate's signature passed off as the actor's.
func TestDelegatedRequests(t *testing.T) {
	carol, carolPub := keyPair(t)
	web, webPub := keyPair(t)
	mallory, _ := keyPair(t)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	args, _ := Canonical(map[string]string{"stage": "prod", "actor": "carol"})
	req := Request{WorkflowID: "promote/demo/v1.0.0", Action: "approve", Actor: "carol", Args: args, RequestID: "r1", Time: now}
	delegated := req
	delegated.Delegate = "web"
	never := func(string) bool { return false }
	for _, require := range []bool{true, false} {
		p := Policy{Require: require, Keys: map[string][]string{"carol": {carolPub}}, Delegates: map[string][]string{"web": {webPub}}}
		good := Sign(web, delegated)
		if good.Delegate != "web" {
			t.Fatalf("Sign dropped the delegate: %+v", good)
		}
		if err := p.Check(req, &good, now, never); err != nil {
			t.Fatalf("require=%v: a request signed by the registered delegate was refused: %v", require, err)
		}
		if got := Via("carol", &good); got != "carol via web" {
			t.Errorf("Via = %q", got)
		}
		stripped := good
		stripped.Delegate = ""
		relabelled := Sign(carol, req)
		relabelled.Delegate = "web"
		unknown := Sign(web, with(delegated, func(r *Request) { r.Delegate = "robot" }))
		for name, a := range map[string]Auth{
			"another key claims the delegate":    Sign(mallory, delegated),
			"the delegate claim is stripped":     stripped,
			"the actor's own key claims web":     relabelled,
			"an unregistered delegate":           unknown,
			"the delegate signs for another one": func() Auth { a := good; a.Delegate = "robot"; return a }(),
		} {
			if err := p.Check(req, &a, now, never); !errors.Is(err, ErrForged) {
				t.Errorf("require=%v, %s: got %v, want forged", require, name, err)
			}
		}
		// The actor's own signature still works beside the delegate.
		if err := p.Check(req, ptr(Sign(carol, req)), now, never); err != nil {
			t.Errorf("require=%v: carol's own signature refused: %v", require, err)
		}
		// A delegated request for another actor than the one signed is forged.
		if err := p.Check(with(req, func(r *Request) { r.Actor = "dave" }), &good, now, never); !errors.Is(err, ErrForged) {
			t.Errorf("require=%v: the delegate's signature for carol passed for dave: %v", require, err)
		}
	}
}
