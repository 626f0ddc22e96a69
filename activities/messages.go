package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
)

// Messages lets a workflow ask another workflow something synchronously (a
// query, or an update whose validator may refuse), which workflow code cannot do
// itself. Names come from the caller (workflows/contract.go), so this package
// stays free of the workflow contract.
type Messages struct {
	Client client.Client
}

// QueryInput names a workflow and one of its queries.
type QueryInput struct {
	WorkflowID string `json:"workflow_id"`
	Query      string `json:"query"`
}

// QueryOutput is the query's JSON answer; Missing is true when there is no such workflow.
type QueryOutput struct {
	Result  json.RawMessage `json:"result,omitempty"`
	Missing bool            `json:"missing,omitempty"`
}

// Query asks a workflow (running or closed) a query.
func (m *Messages) Query(ctx context.Context, in QueryInput) (QueryOutput, error) {
	v, err := m.Client.QueryWorkflow(ctx, in.WorkflowID, "", in.Query)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return QueryOutput{Missing: true}, nil
		}
		return QueryOutput{}, err
	}
	var raw json.RawMessage
	if err := v.Get(&raw); err != nil {
		return QueryOutput{}, err
	}
	return QueryOutput{Result: raw}, nil
}

// UpdateInput sends one update with one JSON argument.
type UpdateInput struct {
	WorkflowID string          `json:"workflow_id"`
	Update     string          `json:"update"`
	Arg        json.RawMessage `json:"arg"`
}

// UpdateOutput is the update's JSON result.
type UpdateOutput struct {
	Result json.RawMessage `json:"result,omitempty"`
}

// Update sends an update and waits for its result. A refusal (validator or
// handler error) is permanent and carries the target's message.
func (m *Messages) Update(ctx context.Context, in UpdateInput) (UpdateOutput, error) {
	h, err := m.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: in.WorkflowID, UpdateName: in.Update, WaitForStage: client.WorkflowUpdateStageCompleted,
		Args: []any{in.Arg},
	})
	if err == nil {
		var raw json.RawMessage
		if err = h.Get(ctx, &raw); err == nil {
			return UpdateOutput{Result: raw}, nil
		}
	}
	var app *temporal.ApplicationError
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return UpdateOutput{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s is not running", in.WorkflowID), apperr.UpdateRefused, nil)
	case errors.As(err, &app):
		return UpdateOutput{}, temporal.NewNonRetryableApplicationError(app.Message(), apperr.UpdateRefused, nil)
	}
	return UpdateOutput{}, err
}

// SignalWithStartInput sends one signal to a workflow, starting it first (with
// WorkflowType and Input on TaskQueue) when it is not running.
type SignalWithStartInput struct {
	WorkflowID   string          `json:"workflow_id"`
	Signal       string          `json:"signal"`
	Arg          json.RawMessage `json:"arg"`
	WorkflowType string          `json:"workflow_type"`
	Input        json.RawMessage `json:"input"`
	TaskQueue    string          `json:"task_queue"`
}

// SignalWithStart signals a workflow, starting it if needed: how a workflow
// reaches an entity (such as a project's audit) that may not be running yet.
func (m *Messages) SignalWithStart(ctx context.Context, in SignalWithStartInput) error {
	_, err := m.Client.SignalWithStartWorkflow(ctx, in.WorkflowID, in.Signal, in.Arg, client.StartWorkflowOptions{
		ID: in.WorkflowID, TaskQueue: in.TaskQueue,
	}, in.WorkflowType, in.Input)
	return err
}

// UpdateWithStartInput sends one update to a workflow, starting it first when
// it is not running (an entity such as a project's audit).
type UpdateWithStartInput struct {
	UpdateInput
	// WorkflowType, Input and TaskQueue start the workflow when it is not running.
	WorkflowType string          `json:"workflow_type"`
	Input        json.RawMessage `json:"input"`
	TaskQueue    string          `json:"task_queue"`
}

// UpdateWithStart sends an update, starting its target when needed, and waits
// for its result. A refusal is permanent and carries the target's message.
func (m *Messages) UpdateWithStart(ctx context.Context, in UpdateWithStartInput) (UpdateOutput, error) {
	start := m.Client.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID: in.WorkflowID, TaskQueue: in.TaskQueue, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, in.WorkflowType, in.Input)
	h, err := m.Client.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{WorkflowID: in.WorkflowID, UpdateName: in.Update,
			WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{in.Arg}},
	})
	if err == nil {
		var raw json.RawMessage
		if err = h.Get(ctx, &raw); err == nil {
			return UpdateOutput{Result: raw}, nil
		}
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return UpdateOutput{}, temporal.NewNonRetryableApplicationError(app.Message(), apperr.UpdateRefused, nil)
	}
	return UpdateOutput{}, err
}
