// Package views reads what Shipline's workflows record — releases, deployments,
// stages, promotions, history and the audit — from Temporal (visibility,
// queries, workflow histories) into plain structs. The CLI (`shipline
// releases`, `deployments`, `history`, `status`, `audit`) and the dashboard
// (internal/web) both show these, so they read them here, one way.
package views

import (
	"context"
	"errors"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/workflows"
)

// QueryState asks a workflow for its state. closed is the workflow's failure when
// it has ended unsuccessfully (the query may still answer from history).
func QueryState(ctx context.Context, c client.Client, id, runID string, out any) (closed error, qerr error) {
	desc, err := c.DescribeWorkflow(ctx, id, runID)
	if err != nil {
		return nil, err
	}
	switch desc.Status {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
	default:
		msg := CloseFailure(ctx, c, id, runID)
		if msg == "" {
			msg = "the workflow ended: " + strings.ToLower(ExecutionStatus(desc.Status))
		}
		closed = errors.New(msg)
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, id, runID, workflows.StateQuery)
	if err != nil {
		return closed, err
	}
	return closed, v.Get(out)
}

// CloseFailure returns the message a closed workflow failed with, if any.
func CloseFailure(ctx context.Context, c client.Client, id, runID string) string {
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return ""
		}
		if a := ev.GetWorkflowExecutionFailedEventAttributes(); a != nil {
			return a.GetFailure().GetMessage()
		}
		if a := ev.GetWorkflowExecutionTerminatedEventAttributes(); a != nil {
			return "terminated: " + a.GetReason()
		}
		if ev.GetWorkflowExecutionTimedOutEventAttributes() != nil {
			return "timed out"
		}
		if ev.GetWorkflowExecutionCanceledEventAttributes() != nil {
			return "cancelled"
		}
	}
	return ""
}

// ExecutionStatus names a Temporal execution status: Running, Completed, ContinuedAsNew, …
func ExecutionStatus(s enumspb.WorkflowExecutionStatus) string {
	name := strings.TrimPrefix(s.String(), "WORKFLOW_EXECUTION_STATUS_")
	if name == "" {
		return "Unknown"
	}
	parts := strings.Split(strings.ToLower(name), "_")
	for i, p := range parts {
		parts[i] = strings.ToUpper(p[:1]) + p[1:]
	}
	return strings.Join(parts, "")
}

// ListIDs lists the workflow IDs matching a visibility query, each once.
func ListIDs(ctx context.Context, c client.Client, query string) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 500})
		if err != nil {
			return nil, err
		}
		for _, ex := range resp.Executions {
			id := ex.GetExecution().GetWorkflowId()
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return ids, nil
		}
	}
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}
