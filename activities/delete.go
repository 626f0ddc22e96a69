package activities

// The side effects of deleting a release: its remote tag, its artifacts on a
// fabric, and its jobs. Each is idempotent (something already gone is
// success); the workflow decides what to delete and what to revert to the
// previous release (by UpsertJob) instead.

import (
	"context"
	"fmt"
	"strings"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
)

// DeleteTagInput names the release tag to delete and the commit it must
// still point to.
type DeleteTagInput struct {
	Project string `json:"project"`
	Version string `json:"version"` // the tag name, e.g. v1.2.3
	Commit  string `json:"commit"`  // full 40-hex hash the release was tagged on
}

// DeleteTagOutput says what happened.
type DeleteTagOutput struct {
	// Deleted is false when the remote had no such tag (already deleted).
	Deleted bool `json:"deleted"`
}

// DeleteTag deletes the release tag on the project's remote (and in the
// mirror), only while it still points to Commit: a tag moved elsewhere is a
// permanent error of type apperr.TagConflict and is left alone.
func (g *Git) DeleteTag(ctx context.Context, in DeleteTagInput) (DeleteTagOutput, error) {
	m, err := g.mirror(in.Project)
	if err != nil {
		return DeleteTagOutput{}, err
	}
	var deleted bool
	err = withHeartbeat(ctx, func() (err error) {
		deleted, err = m.DeleteTag(ctx, in.Version, in.Commit)
		return err
	})
	if err != nil {
		return DeleteTagOutput{}, apperr.ForTemporal(err)
	}
	return DeleteTagOutput{Deleted: deleted}, nil
}

// DeleteJobInput names a job Shipline manages on a fabric.
type DeleteJobInput struct {
	Project string `json:"project"`
	Fabric  string `json:"fabric"`
	Job     string `json:"job"`
}

// DeleteJobOutput says what was removed.
type DeleteJobOutput struct {
	// Action is "deleted", or "absent" when there was nothing to remove.
	Action string `json:"action"`
	// IDs are the Databricks job IDs (or the files) removed: more than one when
	// duplicates carrying the job's Shipline tags were found; all are deleted.
	IDs []string `json:"ids,omitempty"`
	// Note explains anything unusual (duplicates), for the audit.
	Note string `json:"note,omitempty"`
}

// DeleteJob removes the job from its fabric: the Databricks job(s) tagged
// with the project and job, or the job's file (local, Airflow DAG).
func (d *Deploy) DeleteJob(ctx context.Context, in DeleteJobInput) (DeleteJobOutput, error) {
	if _, ok := d.Platform.Projects[in.Project]; !ok {
		return DeleteJobOutput{}, unknownProject(d.Platform, in.Project)
	}
	fab, err := fabric.Open(d.Platform, in.Fabric, d.env())
	if err != nil {
		return DeleteJobOutput{}, apperr.ForTemporal(err)
	}
	var res fabric.JobResult
	err = withHeartbeat(ctx, func() (err error) {
		res, err = fab.DeleteJob(ctx, in.Project, in.Job)
		return err
	})
	if err != nil {
		return DeleteJobOutput{}, apperr.ForTemporal(fmt.Errorf("delete job %s of %s on fabric %s: %w", in.Job, in.Project, in.Fabric, err))
	}
	out := DeleteJobOutput{Action: string(res.Action), IDs: res.IDs()}
	if len(out.IDs) > 1 {
		out.Note = fmt.Sprintf("%d jobs on fabric %s carried the tags of %s/%s (copies made outside Shipline); all were deleted: %s",
			len(out.IDs), in.Fabric, in.Project, in.Job, strings.Join(out.IDs, ", "))
	}
	return out, nil
}

// DeleteArtifactsInput names a release's artifacts on a fabric.
type DeleteArtifactsInput struct {
	Project string `json:"project"`
	Version string `json:"version"`
	Fabric  string `json:"fabric"`
	// Jobs are the project's jobs on the fabric: while one of them has an
	// active run that may use the artifacts, nothing is removed.
	Jobs []string `json:"jobs,omitempty"`
}

// DeleteArtifactsOutput says how many files were removed.
type DeleteArtifactsOutput struct {
	// Removed counts the files this attempt removed (0 when they were already
	// gone; after a retried partial delete, only what was left).
	Removed int `json:"removed"`
}

// DeleteArtifacts removes <artifact_root>/<project>/<version>/ from the fabric
// (an Airflow fabric's from its artifact fabric or folder), and nothing else.
// Artifacts a running job uses are never removed: while one of Jobs has an
// active run of Version (or of a version the fabric cannot tell), it refuses
// with apperr.ActiveRun naming the runs.
func (d *Deploy) DeleteArtifacts(ctx context.Context, in DeleteArtifactsInput) (DeleteArtifactsOutput, error) {
	if _, ok := d.Platform.Projects[in.Project]; !ok {
		return DeleteArtifactsOutput{}, unknownProject(d.Platform, in.Project)
	}
	if cfg, ok := d.Platform.Fabrics[in.Fabric]; ok && cfg.SeesRuns() && len(in.Jobs) > 0 {
		runs, err := d.activeRuns(ctx, ActiveRunsInput{Project: in.Project, Fabric: in.Fabric, Jobs: in.Jobs, Version: in.Version})
		if err != nil {
			return DeleteArtifactsOutput{}, apperr.ForTemporal(err)
		}
		if len(runs) > 0 {
			return DeleteArtifactsOutput{}, apperr.ForTemporal(&apperr.Error{Type: apperr.ActiveRun, Msg: fmt.Sprintf(
				"artifacts of %s %s on fabric %s are not removed while a job may use them: %s; wait for the runs to end (or cancel them), then delete again",
				in.Project, in.Version, in.Fabric, RunsUsing(runs))})
		}
	}
	fab, err := fabric.Open(d.Platform, in.Fabric, d.env())
	if err != nil {
		return DeleteArtifactsOutput{}, apperr.ForTemporal(err)
	}
	var n int
	err = withHeartbeat(ctx, func() (err error) {
		n, err = fab.DeleteArtifacts(ctx, in.Project, in.Version)
		return err
	})
	if err != nil {
		return DeleteArtifactsOutput{}, apperr.ForTemporal(fmt.Errorf("delete artifacts of %s %s on fabric %s: %w", in.Project, in.Version, in.Fabric, err))
	}
	return DeleteArtifactsOutput{Removed: n}, nil
}
