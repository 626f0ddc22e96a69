package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
)

// check renders every job for every target fabric and checks it offline
// (activities.Deploy.CheckJobs) before the upload and schedule steps write
// anything, so a broken definition never leaves a fabric half deployed. Invalid
// definitions (class fails: the release's files cannot change, resume cannot
// help) end the deployment as failed with every problem listed; anything
// else (no Python on the worker) parks.
func (d *deployment) check(ctx workflow.Context) error {
	if changeVersion(ctx, ChangeCheckJobs) == workflow.DefaultVersion {
		setStep(d.state.Steps, StepCheck, StepSkipped, "started before definitions were checked ahead of the upload", workflow.Now(ctx))
		return nil
	}
	files := map[string]string{}
	for _, p := range sortedNames(d.built) {
		files[p] = d.built[p].File
	}
	in := activities.CheckJobsInput{Project: d.in.Project, Version: d.in.Version, Commit: d.plan.Commit,
		DeploymentID: d.state.DeploymentID, Jobs: d.plan.Jobs, Files: files}
	var out activities.CheckJobsOutput
	if err := workflow.ExecuteActivity(fabricActivity(ctx), deployActs.CheckJobs, in).Get(ctx, &out); err != nil {
		if apperr.Classify(err) == apperr.Fails {
			return d.fail(ctx, StepCheck, errorType(err), userMessage(err))
		}
		return err
	}
	setStep(d.state.Steps, StepCheck, StepDone, fmt.Sprintf("%d job definitions render and check for their fabrics", out.Checked), workflow.Now(ctx))
	return nil
}

// fail ends the deployment because the release itself cannot be deployed.
func (d *deployment) fail(ctx workflow.Context, step, errType, msg string) error {
	setStep(d.state.Steps, step, StepFailed, msg, workflow.Now(ctx))
	d.state.Summary = fmt.Sprintf("deploy of %s of %s failed at %s: %s", d.in.Version, d.in.Project, step, firstLineOf(msg))
	d.finish(ctx, StatusFailed, msg)
	return &endError{apperr.New(errType, msg)}
}
