package activities

import (
	"context"
	"encoding/json"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/internal/msgauth"
)

// InternalAuth seals and verifies the messages Shipline's workflows send each
// other (see internal/msgauth). It holds the workers' secret, which workflow
// code never sees: a workflow hands it a message and gets back a seal or a
// verdict, which is all that its history records.
type InternalAuth struct {
	Secret []byte
}

// SealInput names one message to seal: its target workflow ID, its signal or
// update name, and its canonical payload (msgauth.Payload).
type SealInput struct {
	Target  string          `json:"target"`
	Name    string          `json:"name"`
	Payload json.RawMessage `json:"payload"`
}

// SealMessage seals a message now.
func (a *InternalAuth) SealMessage(_ context.Context, in SealInput) (msgauth.Seal, error) {
	return msgauth.Make(a.Secret, in.Target, in.Name, in.Payload, time.Now())
}

// VerifyInput is a received message and its seal (nil when it had none).
type VerifyInput struct {
	SealInput
	Seal *msgauth.Seal `json:"seal,omitempty"`
}

// VerifyOutput is the verdict: OK, or the reason the message is not authentic.
// Nonce repeats the seal's nonce, so a reader of history can pair a message
// with its verdict.
type VerifyOutput struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
	Nonce  string `json:"nonce,omitempty"`
}

// VerifyMessageActivity is the activity name of VerifyMessage, whose results
// `shipline audit` reads from history.
const VerifyMessageActivity = "VerifyMessage"

// VerifyMessage checks a received message's seal now.
func (a *InternalAuth) VerifyMessage(_ context.Context, in VerifyInput) (VerifyOutput, error) {
	out := VerifyOutput{OK: true}
	if in.Seal != nil {
		out.Nonce = in.Seal.Nonce
	}
	if err := msgauth.Check(a.Secret, in.Target, in.Name, in.Payload, in.Seal, time.Now()); err != nil {
		out.OK, out.Reason = false, err.Error()
	}
	return out, nil
}

// SealingClient is the Temporal client of the activities that message
// workflows (Messages): every signal-with-start and update it sends carries a
// seal in its (single, JSON object) argument, so the receiving workflow knows
// it comes from Shipline.
type SealingClient struct {
	client.Client
	Auth *InternalAuth
}

// seal returns arg with a seal for (target, name) added.
func (c SealingClient) seal(target, name string, arg any) (json.RawMessage, error) {
	payload, err := msgauth.Payload(arg)
	if err != nil {
		return nil, err
	}
	s, err := msgauth.Make(c.Auth.Secret, target, name, payload, time.Now())
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(payload, &obj); err != nil {
		return nil, err
	}
	if obj[msgauth.Field], err = json.Marshal(s); err != nil {
		return nil, err
	}
	return json.Marshal(obj)
}

// SignalWithStartWorkflow seals the signal's argument.
func (c SealingClient) SignalWithStartWorkflow(ctx context.Context, workflowID, signalName string, signalArg any,
	options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error) {
	sealed, err := c.seal(workflowID, signalName, signalArg)
	if err != nil {
		return nil, err
	}
	return c.Client.SignalWithStartWorkflow(ctx, workflowID, signalName, sealed, options, workflow, workflowArgs...)
}

// SignalWorkflow seals the signal's argument.
func (c SealingClient) SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error {
	sealed, err := c.seal(workflowID, signalName, arg)
	if err != nil {
		return err
	}
	return c.Client.SignalWorkflow(ctx, workflowID, runID, signalName, sealed)
}

// UpdateWorkflow seals the update's argument.
func (c SealingClient) UpdateWorkflow(ctx context.Context, opts client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	if len(opts.Args) == 1 {
		sealed, err := c.seal(opts.WorkflowID, opts.UpdateName, opts.Args[0])
		if err != nil {
			return nil, err
		}
		opts.Args = []any{sealed}
	}
	return c.Client.UpdateWorkflow(ctx, opts)
}

// UpdateWithStartWorkflow seals the update's argument.
func (c SealingClient) UpdateWithStartWorkflow(ctx context.Context, opts client.UpdateWithStartWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	if u := &opts.UpdateOptions; len(u.Args) == 1 {
		sealed, err := c.seal(u.WorkflowID, u.UpdateName, u.Args[0])
		if err != nil {
			return nil, err
		}
		u.Args = []any{sealed}
	}
	return c.Client.UpdateWithStartWorkflow(ctx, opts)
}
