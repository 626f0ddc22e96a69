package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/shipline/shipline/internal/views"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/workflows"
)

// readProject asks the project's read-only entity (workflows.ProjectID) for one
// read — update is workflows.ListReleasesUpdate, PlanUpdate, InspectUpdate, CheckUpdate or
// ReadLogsUpdate — and decodes its answer into out. The entity is started on
// demand (update-with-start, USE_EXISTING), so every read of a project shares
// one workflow instead of adding one to the namespace's list per call. Like
// every command that waits on the worker, it says within seconds when none
// polls the task queue.
func readProject(ctx context.Context, g *globals, c client.Client, project, update string, in, out any) error {
	if err := g.checkPollers(ctx, c); err != nil {
		return failed(err)
	}
	id := workflows.ProjectID(project)
	err := g.withWorker(ctx, c, id, func(ctx context.Context) error {
		return views.ReadProject(ctx, c, g.taskQueue, project, update, in, out)
	})
	var ee *exitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return err
	default:
		return failed(fmt.Errorf("%s: %s", readWhat(update, project), cleanWorkflowError(err)))
	}
}

// readWhat names a read in an error message.
func readWhat(update, project string) string {
	switch update {
	case workflows.ListReleasesUpdate:
		return "refresh tags of " + project
	case workflows.PlanUpdate:
		return "plan of " + project
	case workflows.InspectUpdate:
		return "inspect the live jobs of " + project
	case workflows.ReadLogsUpdate:
		return "read the build logs of " + project
	case workflows.CheckUpdate:
		return "check of " + project + " on the worker"
	}
	return update + " of " + project
}

// deploymentProject names the project of a deployment: from its state, else
// from its ID (deploy/<project>/<version>/<request>).
func deploymentProject(id string, state json.RawMessage) string {
	var s struct {
		Project string `json:"project"`
	}
	if json.Unmarshal(state, &s) == nil && s.Project != "" {
		return s.Project
	}
	if rest, ok := strings.CutPrefix(id, "deploy/"); ok {
		project, _, _ := strings.Cut(rest, "/")
		return project
	}
	return ""
}
