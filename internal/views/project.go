package views

import (
	"context"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/workflows"
)

// ReadProject asks the project's read-only entity (workflows.ProjectID) for one
// read — update is workflows.ListReleasesUpdate, PlanUpdate, InspectUpdate,
// CheckUpdate or ReadLogsUpdate — and decodes its answer into out. The entity
// is started on demand (update-with-start, USE_EXISTING), so every read of a
// project shares one workflow instead of adding one to the namespace's list
// per call.
func ReadProject(ctx context.Context, c client.Client, taskQueue, project, update string, in, out any) error {
	id := workflows.ProjectID(project)
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.ProjectKey.ValueSet(project)),
		StaticSummary:            "Reads of " + project + ": releases --refresh, plan, deployments, logs, check",
	}, workflows.ProjectWorkflow, workflows.ProjectInput{Project: project})
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			WorkflowID: id, UpdateName: update, Args: []any{in}, WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return err
	}
	return h.Get(ctx, out)
}
