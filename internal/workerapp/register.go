package workerapp

import (
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/workflows"
)

// Deps is what register hands to the workflows and activities it registers.
type Deps struct {
	Config *platform.Config
	Logger *zap.Logger
	Client client.Client
}

// register registers Shipline's workflows (under their contract names) and the
// activity structs that own every side effect.
func register(r worker.Registry, d Deps) {
	r.RegisterWorkflowWithOptions(workflows.Release, workflow.RegisterOptions{Name: workflows.ReleaseWorkflow})
	r.RegisterWorkflowWithOptions(workflows.ListReleases, workflow.RegisterOptions{Name: workflows.ListReleasesWorkflow})

	r.RegisterActivity(&activities.Config{Platform: d.Config})
	r.RegisterActivity(&activities.Git{Platform: d.Config})
}
