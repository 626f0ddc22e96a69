package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func keyPair(t *testing.T) (ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pub)
	return priv, string(ssh.MarshalAuthorizedKey(sp))
}

func TestCheck(t *testing.T) {
	alice, alicePub := keyPair(t)
	mallory, _ := keyPair(t)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	args, _ := Canonical(map[string]string{"project": "demo", "version": "v1.0.0"})
	req := Request{WorkflowID: "release/demo/v1.0.0", Action: "release", Actor: "alice", Args: args, RequestID: "r1", Time: now}
	p := Policy{Require: true, Keys: map[string][]string{"alice": {alicePub}}}
	good := Sign(alice, req)
	never := func(string) bool { return false }

	if err := p.Check(req, &good, now.Add(time.Minute), never); err != nil {
		t.Fatalf("valid request refused: %v", err)
	}
	for name, tc := range map[string]struct {
		req  Request
		auth *Auth
		now  time.Time
		seen func(string) bool
		want error
	}{
		"unsigned":              {req, nil, now, never, ErrUnsigned},
		"signed by another key": {req, ptr(Sign(mallory, req)), now, never, ErrForged},
		"other actor claimed":   {with(req, func(r *Request) { r.Actor = "bob" }), &good, now, never, ErrForged},
		"arguments changed":     {with(req, func(r *Request) { r.Args = []byte(`{"project":"demo","version":"v9.9.9"}`) }), &good, now, never, ErrForged},
		"other workflow":        {with(req, func(r *Request) { r.WorkflowID = "release/demo/v2.0.0" }), &good, now, never, ErrForged},
		"stale":                 {req, &good, now.Add(6 * time.Minute), never, ErrStale},
		"from the future":       {req, &good, now.Add(-6 * time.Minute), never, ErrStale},
		"replayed":              {req, &good, now, func(id string) bool { return id == "r1" }, ErrReplayed},
		"garbage signature":     {req, &Auth{RequestID: "r1", Time: now, Signature: "!!"}, now, never, ErrForged},
	} {
		if err := p.Check(tc.req, tc.auth, tc.now, tc.seen); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
	// Without require_signatures, unsigned requests pass but a bad signature does not.
	loose := Policy{Keys: p.Keys}
	if err := loose.Check(req, nil, now, never); err != nil {
		t.Fatalf("unsigned request refused without require_signatures: %v", err)
	}
	if err := loose.Check(req, ptr(Sign(mallory, req)), now, never); !errors.Is(err, ErrForged) {
		t.Fatalf("forged signature accepted without require_signatures: %v", err)
	}
}

func ptr(a Auth) *Auth { return &a }

func with(r Request, f func(*Request)) Request { f(&r); return r }
