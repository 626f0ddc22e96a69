package codec

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/shipline/shipline/internal/msgauth"
	"github.com/shipline/shipline/internal/signing"
	"github.com/shipline/shipline/workflows"
)

// Request signatures and internal-message seals cover Go values (canonical
// JSON of the arguments), never encoded payloads: a signed request and a
// sealed message still verify after an encrypted round trip, and the
// ciphertext differs every time without changing that.
func TestSignaturesAndSealsSurviveEncryption(t *testing.T) {
	dc := mustParse(t, "k1:"+newKey(t)).DataConverter()
	now := time.Now()

	// A signed release request, as the CLI makes it.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	in := workflows.ReleaseInput{Project: "demo", Version: "v1.2.3", Actor: "alice", Message: "secret note"}
	args, _ := signing.Canonical(workflows.SignedArgs(in))
	req := signing.Request{WorkflowID: workflows.ReleaseID("demo", "v1.2.3"), Action: "release", Actor: "alice", Args: args, RequestID: "r-1", Time: now}
	auth := signing.Sign(priv, req)
	in.Auth = &auth
	var got workflows.ReleaseInput
	roundTrip(t, dc, in, &got)
	args2, _ := signing.Canonical(workflows.SignedArgs(got))
	req.Args = args2
	sig, _ := base64.StdEncoding.DecodeString(got.Auth.Signature)
	if !ed25519.Verify(priv.Public().(ed25519.PublicKey), req.Payload(), sig) {
		t.Error("the signature of a release request does not verify after encryption")
	}

	// A sealed internal message (a deployment joining a fabric's queue).
	secret := make([]byte, msgauth.MinSecretLen)
	_, _ = rand.Read(secret)
	msg := workflows.QueueEntry{DeploymentID: "deploy/demo/v1.2.3/x", Version: "v1.2.3", Actor: "alice", Jobs: []string{"daily_orders"}}
	payload, _ := msgauth.Payload(msg)
	seal, err := msgauth.Make(secret, workflows.FabricID("demo", "dev"), "enqueue", payload, now)
	if err != nil {
		t.Fatal(err)
	}
	msg.Seal = &seal
	var gotMsg workflows.QueueEntry
	roundTrip(t, dc, msg, &gotMsg)
	payload2, _ := msgauth.Payload(gotMsg)
	if err := msgauth.Check(secret, workflows.FabricID("demo", "dev"), "enqueue", payload2, gotMsg.Seal, now); err != nil {
		t.Errorf("the seal of an internal message does not verify after encryption: %v", err)
	}
}

func roundTrip(t *testing.T, dc converter.DataConverter, v, out any) {
	t.Helper()
	p, err := dc.ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Metadata[MetadataKeyID]) != "k1" {
		t.Fatalf("not encrypted: %v", p.Metadata)
	}
	if err := dc.FromPayload(p, out); err != nil {
		t.Fatal(err)
	}
}
