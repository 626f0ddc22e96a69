package views

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/shipline/shipline/workflows"
)

// Promotion is one promotion of a project as visibility lists it.
type Promotion struct {
	ID      string    `json:"workflow_id"`
	Version string    `json:"version"`
	Actor   string    `json:"actor"`
	Started time.Time `json:"started"`
	Status  string    `json:"status"`
	Running bool      `json:"running"`
}

// Promotions lists the project's promotions (one per version: its latest
// run), newest first.
func Promotions(ctx context.Context, c client.Client, project string) ([]Promotion, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", workflows.PromoteWorkflow, workflows.ProjectKey.GetName(), project)
	dc := converter.GetDefaultDataConverter()
	byID := map[string]Promotion{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 500})
		if err != nil {
			return nil, fmt.Errorf("list promotions of %s: %w", project, err)
		}
		for _, ex := range resp.Executions {
			p := Promotion{ID: ex.GetExecution().GetWorkflowId(), Started: ex.GetStartTime().AsTime(), Version: versionOfWorkflowID(ex.GetExecution().GetWorkflowId())}
			var status string
			_ = dc.FromPayload(ex.GetMemo().GetFields()[workflows.MemoStatus], &status)
			if a := ex.GetSearchAttributes().GetIndexedFields()[workflows.ActorKey.GetName()]; a != nil {
				_ = dc.FromPayload(a, &p.Actor)
			}
			p.Running = ex.GetCloseTime() == nil
			p.Status = HistoryStatus(status, !p.Running, ex.GetStatus())
			if prev, ok := byID[p.ID]; !ok || prev.Started.Before(p.Started) {
				byID[p.ID] = p
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	out := make([]Promotion, 0, len(byID))
	for _, p := range byID {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out, nil
}
