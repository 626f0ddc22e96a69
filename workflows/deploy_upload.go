package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
)

// sendArtifacts uploads the artifacts to every target fabric not done yet and
// returns how many were sent and what failed (one line per fabric).
//
// An artifact gone from the build cache (ArtifactMissing: the cache was
// cleaned, or its stored bytes failed their checksum) is a cache miss, not an upload
// to retry: its pipeline is built again — the same bytes, reproducibly, and
// checked against the release's pinned checksums — and the fabrics that failed
// are sent to once more. If it is still missing, the failure stands and the
// deployment parks with the reason.
func (d *deployment) sendArtifacts(ctx workflow.Context) (int, []string, error) {
	// A rebuild that failed parked the deployment with pipelines unbuilt:
	// build them before anything is sent.
	if missing := d.unbuilt(); len(missing) > 0 {
		if err := d.rebuild(ctx, missing, "not built"); err != nil {
			return 0, nil, err
		}
	}
	sent, failed, missing, err := d.uploadPass(ctx)
	if err != nil || len(missing) == 0 {
		return sent, failed, err
	}
	if changeVersion(ctx, ChangeRebuildMissingArtifacts) == workflow.DefaultVersion {
		return sent, failed, nil
	}
	if err := d.rebuild(ctx, missing, "gone from the build cache"); err != nil {
		return sent, nil, err
	}
	more, failed, still, err := d.uploadPass(ctx)
	if len(still) > 0 {
		failed = append(failed, fmt.Sprintf("the artifacts of %s are still missing from the build cache after a rebuild: check that every worker has the same storage in platform.yaml and that nothing cleans it during deploys, then resume",
			strings.Join(still, ", ")))
	}
	return sent + more, failed, err
}

// uploadPass runs one Upload activity per fabric not done yet, in parallel. It
// returns the artifacts sent, the failures, and the pipelines whose artifacts
// were missing from the build cache; its error is the workflow's cancellation.
func (d *deployment) uploadPass(ctx workflow.Context) (sent int, failed, missing []string, err error) {
	futures := map[string]workflow.Future{}
	for _, f := range d.state.Fabrics {
		if _, ok := d.uploads[f]; ok {
			continue
		}
		var arts []fabric.Artifact
		for _, p := range d.pipelinesOn(f) {
			arts = append(arts, d.built[p])
		}
		futures[f] = workflow.ExecuteActivity(fabricActivity(ctx), deployActs.Upload, activities.UploadInput{Project: d.in.Project, Version: d.in.Version, Fabric: f, Artifacts: arts})
	}
	for _, f := range sortedNames(futures) {
		var out activities.UploadOutput
		if err := futures[f].Get(ctx, &out); err != nil {
			if temporal.IsCanceledError(err) {
				return sent, failed, missing, err
			}
			failed = append(failed, fmt.Sprintf("%s: %s", f, userMessage(err)))
			if errorType(err) == apperr.ArtifactMissing {
				missing = append(missing, d.missingPipelines(f, err)...)
			}
			continue
		}
		d.uploads[f] = out.Paths
		sent += len(out.Uploaded)
	}
	slices.Sort(missing)
	return sent, failed, slices.Compact(missing), nil
}

// missingPipelines reads which pipelines an ArtifactMissing error names; when
// its details cannot be read, every pipeline the fabric needs.
func (d *deployment) missingPipelines(fab string, err error) []string {
	var app *temporal.ApplicationError
	var details activities.ArtifactMissingDetails
	if errors.As(err, &app) && app.HasDetails() && app.Details(&details) == nil && len(details.Pipelines) > 0 {
		return details.Pipelines
	}
	return d.pipelinesOn(fab)
}

// unbuilt lists the planned pipelines without an artifact (sorted).
func (d *deployment) unbuilt() []string {
	var out []string
	for _, p := range d.plan.Pipelines {
		if _, ok := d.built[p.Name]; !ok {
			out = append(out, p.Name)
		}
	}
	return out
}

// rebuild marks the pipelines' builds not done and runs the build step again
// (which builds only those), from within the upload step.
func (d *deployment) rebuild(ctx workflow.Context, pipelines []string, why string) error {
	workflow.GetLogger(ctx).Warn("rebuilding before upload", "pipelines", pipelines, "why", why)
	for _, p := range pipelines {
		delete(d.built, p)
		d.setBuild(p, func(b *PipelineBuild) { *b = PipelineBuild{Pipeline: p, Status: StepPending} })
	}
	setStep(d.state.Steps, StepBuild, StepRunning, fmt.Sprintf("rebuilding %s: %s", strings.Join(pipelines, ", "), why), workflow.Now(ctx))
	err := d.build(ctx)
	var ended *endError
	if err != nil && !temporal.IsCanceledError(err) && !errors.As(err, &ended) {
		setStep(d.state.Steps, StepBuild, StepFailed, userMessage(err), workflow.Now(ctx))
	}
	return err
}
