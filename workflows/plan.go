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
	res, builds, files, err := planBuilds(ctx, in)
	if err != nil {
		return out, err
	}
	out.Commit, out.Builds = res.Commit, builds

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

// planBuilds is the first half of a plan, shared by Plan and a promotion
// gate's plan (promote_plan.go): resolve the release's jobs as a Deploy with
// the same input would (a stage's fabrics included), and ask the build cache
// for every needed pipeline, in parallel. files maps the cached pipelines to
// their artifact file names.
func planBuilds(ctx workflow.Context, in PlanInput) (res activities.ResolveDeployOutput, builds []PlannedBuild, files map[string]string, err error) {
	rin := activities.ResolveDeployInput{Project: in.Project, Version: in.Version, Fabric: in.Fabric, Jobs: in.Jobs, Stage: in.Fabrics}
	if err := workflow.ExecuteActivity(gitActivity(ctx), deployActs.Resolve, rin).Get(ctx, &res); err != nil {
		return res, nil, nil, err
	}
	keys := make([]workflow.Future, len(res.Pipelines))
	for i, p := range res.Pipelines {
		keys[i] = workflow.ExecuteActivity(gitActivity(ctx), buildActs.CacheKey, activities.BuildInput{Project: in.Project, Commit: res.Commit, Pipeline: p})
	}
	files = map[string]string{}
	for i, p := range res.Pipelines {
		var k activities.CacheKeyOutput
		if err := keys[i].Get(ctx, &k); err != nil {
			return res, nil, nil, err
		}
		b := PlannedBuild{Pipeline: p.Name, Action: "build", Key: k.Key}
		if k.Cached {
			b.Action, b.File = "cached", k.File
			files[p.Name] = k.File
		}
		builds = append(builds, b)
	}
	return res, builds, files, nil
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
