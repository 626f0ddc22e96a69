package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
)

// Plan computes what a Deploy with the same input would do — which pipelines it
// would build or take from cache, which artifacts it would upload where, and
// which jobs it would create, update or leave unchanged — changing nothing.
func Plan(ctx workflow.Context, in PlanInput) (PlanOutput, error) {
	out := PlanOutput{Project: in.Project, Version: in.Version}
	var res activities.ResolveDeployOutput
	rin := activities.ResolveDeployInput{Project: in.Project, Version: in.Version, Fabric: in.Fabric, Jobs: in.Jobs}
	if err := workflow.ExecuteActivity(gitActivity(ctx), deployActs.Resolve, rin).Get(ctx, &res); err != nil {
		return out, err
	}
	out.Commit = res.Commit

	// Builds: ask the cache for every needed pipeline, in parallel.
	keys := make([]workflow.Future, len(res.Pipelines))
	for i, p := range res.Pipelines {
		keys[i] = workflow.ExecuteActivity(gitActivity(ctx), buildActs.CacheKey, activities.BuildInput{Project: in.Project, Commit: res.Commit, Pipeline: p})
	}
	files := map[string]string{}
	for i, p := range res.Pipelines {
		var k activities.CacheKeyOutput
		if err := keys[i].Get(ctx, &k); err != nil {
			return out, err
		}
		b := PlannedBuild{Pipeline: p.Name, Action: "build", Key: k.Key}
		if k.Cached {
			b.Action, b.File = "cached", k.File
			files[p.Name] = k.File
		}
		out.Builds = append(out.Builds, b)
	}

	// Jobs (and the uploads they need): render each as a deploy would and compare with the live fabric.
	var jobs activities.PlanJobsOutput
	pin := activities.PlanJobsInput{Project: in.Project, Version: in.Version, Commit: res.Commit, Jobs: res.Jobs, Files: files}
	if err := workflow.ExecuteActivity(fabricActivity(ctx), deployActs.PlanJobs, pin).Get(ctx, &jobs); err != nil {
		return out, err
	}
	out.Jobs = jobs.Jobs
	out.Uploads = jobs.Uploads
	return out, nil
}

// Inspect compares recorded jobs with the live fabrics (drift).
func Inspect(ctx workflow.Context, in InspectInput) (InspectOutput, error) {
	var out InspectOutput
	err := workflow.ExecuteActivity(fabricActivity(ctx), deployActs.InspectJobs, activities.InspectJobsInput{Jobs: in.Jobs}).Get(ctx, &out)
	return out, err
}

// Check renders, checks and plans the jobs of a tree that is not released
// (a pull request's, sent by `shipline check`) against this worker's
// platform.yaml and the live fabrics, changing nothing.
func Check(ctx workflow.Context, in CheckInput) (CheckOutput, error) {
	var out CheckOutput
	err := workflow.ExecuteActivity(fabricActivity(ctx), deployActs.CheckTree, in).Get(ctx, &out)
	return out, err
}

// ReadLogs returns a deployment's build logs from the shared store.
func ReadLogs(ctx workflow.Context, in ReadLogsInput) (ReadLogsOutput, error) {
	var out ReadLogsOutput
	err := workflow.ExecuteActivity(shortActivity(ctx), deployActs.ReadLogs, in).Get(ctx, &out)
	return out, err
}
