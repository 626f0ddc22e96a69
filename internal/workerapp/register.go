package workerapp

import (
	"context"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/build"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/storage"
	"github.com/shipline/shipline/workflows"
)

// Deps is what register hands to the workflows and activities it registers.
type Deps struct {
	Config *platform.Config
	Logger *zap.Logger
	Client client.Client
	// BuildParallelism bounds the builds running at once on this worker.
	BuildParallelism int
	// InternalSecret authenticates the messages Shipline's workflows send each other.
	InternalSecret []byte
	// Store is the store workers share (build cache, build logs).
	Store *storage.Store
	// BuildServers are the worker's Python build servers.
	BuildServers *build.Servers
}

// register registers Shipline's workflows (under their contract names) and the
// activity structs that own every side effect.
func register(r worker.Registry, d Deps) {
	r.RegisterWorkflowWithOptions(workflows.Release, workflow.RegisterOptions{Name: workflows.ReleaseWorkflow})
	r.RegisterWorkflowWithOptions(workflows.ListReleases, workflow.RegisterOptions{Name: workflows.ListReleasesWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Deploy, workflow.RegisterOptions{Name: workflows.DeployWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Fabric, workflow.RegisterOptions{Name: workflows.FabricWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Plan, workflow.RegisterOptions{Name: workflows.PlanWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Inspect, workflow.RegisterOptions{Name: workflows.InspectWorkflow})
	r.RegisterWorkflowWithOptions(workflows.ReadLogs, workflow.RegisterOptions{Name: workflows.ReadLogsWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Check, workflow.RegisterOptions{Name: workflows.CheckWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Promote, workflow.RegisterOptions{Name: workflows.PromoteWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Verify, workflow.RegisterOptions{Name: workflows.VerifyWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Rollback, workflow.RegisterOptions{Name: workflows.RollbackWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Stage, workflow.RegisterOptions{Name: workflows.StageWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Audit, workflow.RegisterOptions{Name: workflows.AuditWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Project, workflow.RegisterOptions{Name: workflows.ProjectWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Run, workflow.RegisterOptions{Name: workflows.RunWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Notify, workflow.RegisterOptions{Name: workflows.NotifyWorkflow})

	git := &activities.Git{Platform: d.Config}
	r.RegisterActivity(&activities.Config{Platform: d.Config})
	r.RegisterActivity(git)
	r.RegisterActivity(&activities.Deploy{Git: git, Platform: d.Config, Store: d.Store})
	builds := &activities.Build{Platform: d.Config, Store: d.Store, Parallelism: d.BuildParallelism, Servers: d.BuildServers}
	r.RegisterActivity(builds)
	if d.BuildServers != nil {
		go activities.StartBuildServers(context.Background(), builds)
	}
	r.RegisterActivity(&activities.Runs{Platform: d.Config})
	r.RegisterActivity(&activities.Libraries{Platform: d.Config, Store: d.Store})
	for _, problem := range append(activities.UnsetIndexVariables(d.Config), activities.UnsetNotifyVariables(d.Config)...) {
		if d.Logger != nil {
			d.Logger.Warn(problem)
		}
	}
	r.RegisterActivity(&activities.Notifier{Platform: d.Config})
	auth := &activities.InternalAuth{Secret: d.InternalSecret}
	r.RegisterActivity(auth)
	r.RegisterActivity(&activities.Messages{Client: activities.SealingClient{Client: d.Client, Auth: auth}})
}
