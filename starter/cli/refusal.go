package cli

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/workflows"
)

// recordRefusal records a refused attempt in the project's Audit entity
// (signal-with-start of workflows.AuditID(project)), so `shipline audit` shows
// an update that no workflow handler saw (its target is not running, or was
// still starting). Refusals by a handler are recorded by the workflow itself
// (see auditRefusal).
//
// Recording is best effort: a failure is only reported on stderr, and the
// caller still exits 1 with the refusal's own message.
func recordRefusal(ctx context.Context, g *globals, c client.Client, project string, r workflows.Refusal) {
	if r.At.IsZero() {
		r.At = time.Now().UTC()
	}
	id := workflows.AuditID(project)
	// The caller's context may already be cancelled or near its deadline after a
	// refusal; give the signal its own short budget.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := c.SignalWithStartWorkflow(sctx, id, workflows.RefusalSignal, r, client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             g.taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.ProjectKey.ValueSet(project)),
		StaticSummary:         "Audit of " + project + ": refused attempts",
	}, workflows.AuditWorkflow, workflows.AuditInput{Project: project})
	if err != nil {
		fmt.Fprintf(g.stderr, "warning: could not record the refusal in %s: %v\n", id, err)
	}
}
