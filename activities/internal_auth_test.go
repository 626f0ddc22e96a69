package activities

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/internal/msgauth"
)

// captureClient records the argument of the messages it is asked to send.
type captureClient struct {
	client.Client
	target, name string
	arg          any
}

func (c *captureClient) SignalWithStartWorkflow(_ context.Context, id, signal string, arg any, _ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	c.target, c.name, c.arg = id, signal, arg
	return nil, nil
}

func (c *captureClient) UpdateWorkflow(_ context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	c.target, c.name, c.arg = o.WorkflowID, o.UpdateName, o.Args[0]
	return nil, nil
}

func (c *captureClient) UpdateWithStartWorkflow(_ context.Context, o client.UpdateWithStartWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	c.target, c.name, c.arg = o.UpdateOptions.WorkflowID, o.UpdateOptions.UpdateName, o.UpdateOptions.Args[0]
	return nil, nil
}

// Messages sent by activities carry a seal the receiver accepts, and the
// seal binds the target, the message name and the content.
func TestSealingClientSealsMessages(t *testing.T) {
	auth := &InternalAuth{Secret: []byte(strings.Repeat("s", 32))}
	capture := &captureClient{}
	m := &Messages{Client: SealingClient{Client: capture, Auth: auth}}
	arg := json.RawMessage(`{"actor":"bob","reason":"refused","at":"2026-11-27T10:00:00Z"}`)
	if err := m.SignalWithStart(context.Background(), SignalWithStartInput{WorkflowID: "audit/demo", Signal: "refusal", Arg: arg}); err != nil {
		t.Fatal(err)
	}
	verify := func(target, name string) VerifyOutput {
		var obj struct {
			Seal *msgauth.Seal `json:"seal"`
		}
		raw := capture.arg.(json.RawMessage)
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatal(err)
		}
		payload, _ := msgauth.Payload(raw)
		out, _ := auth.VerifyMessage(context.Background(), VerifyInput{SealInput: SealInput{Target: target, Name: name, Payload: payload}, Seal: obj.Seal})
		return out
	}
	if out := verify("audit/demo", "refusal"); !out.OK || out.Nonce == "" {
		t.Fatalf("sealed signal refused: %+v", out)
	}
	if out := verify("audit/other", "refusal"); out.OK {
		t.Fatal("the seal is accepted by another workflow")
	}
	link := json.RawMessage(`{"stage":"qa","actor":"alice"}`)
	h, err := m.Client.UpdateWorkflow(context.Background(), client.UpdateWorkflowOptions{WorkflowID: "release/demo/v1", UpdateName: "link", Args: []any{link}})
	if err != nil || h != nil {
		t.Fatal(err)
	}
	if out := verify("release/demo/v1", "link"); !out.OK {
		t.Fatalf("sealed update refused: %+v", out)
	}
	if out := verify("release/demo/v1", "delete"); out.OK {
		t.Fatal("the seal is accepted for another message name")
	}
	// A request claim goes to the Audit entity with update-with-start.
	claim := json.RawMessage(`{"request_id":"r1","time":"2026-11-27T10:00:00Z","actor":"alice"}`)
	if _, err := m.Client.UpdateWithStartWorkflow(context.Background(), client.UpdateWithStartWorkflowOptions{
		UpdateOptions: client.UpdateWorkflowOptions{WorkflowID: "audit/demo", UpdateName: "claim-request", Args: []any{claim}}}); err != nil {
		t.Fatal(err)
	}
	if out := verify("audit/demo", "claim-request"); !out.OK {
		t.Fatalf("sealed update-with-start refused: %+v", out)
	}
	if out := verify("audit/demo", "refusal"); out.OK {
		t.Fatal("the claim's seal is accepted for another message name")
	}
	// Verify reads the clock: a seal from long ago is stale.
	s, _ := msgauth.Make(auth.Secret, "t", "n", []byte(`{}`), time.Now().Add(-msgauth.MaxAge-time.Minute))
	if out, _ := auth.VerifyMessage(context.Background(), VerifyInput{SealInput: SealInput{Target: "t", Name: "n", Payload: []byte(`{}`)}, Seal: &s}); out.OK || !strings.Contains(out.Reason, "stale") {
		t.Fatalf("stale seal: %+v", out)
	}
}

func TestVerifyMessageActivityName(t *testing.T) {
	if _, ok := reflect.TypeOf(&InternalAuth{}).MethodByName(VerifyMessageActivity); !ok {
		t.Fatalf("InternalAuth has no method %s: the activity's name changed", VerifyMessageActivity)
	}
}
