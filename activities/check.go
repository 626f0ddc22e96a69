package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
)

// CheckJobsInput asks for every job of a deployment to be rendered and checked
// for its target fabric before anything is written anywhere.
type CheckJobsInput struct {
	Project      string        `json:"project"`
	Version      string        `json:"version"`
	Commit       string        `json:"commit"`
	DeploymentID string        `json:"deployment_id"`
	Jobs         []ResolvedJob `json:"jobs"`
	// Files maps each pipeline to its built artifact's file name; each
	// fabric's artifact path follows from it (Fabric.ArtifactPath), as the
	// upload will place it.
	Files map[string]string `json:"files"`
}

// CheckJobsOutput says how many job definitions were rendered and checked.
type CheckJobsOutput struct {
	Checked int `json:"checked"`
}

// CheckJobs renders every job for its fabric exactly as the schedule step
// will (placeholders, variables, pause state, artifact paths) and checks each
// offline: a Databricks payload must render to a JSON object, an Airflow DAG
// must compile and name its dag_id, which no other job may own on the fabric
// (fabric.CheckDagOwner, as plan and check ask). It writes nothing. Every invalid
// definition is listed in one permanent InvalidDefinition failure naming the
// source files; anything else (no Python on the worker, a git read) fails
// as it is, to be retried or parked.
func (d *Deploy) CheckJobs(ctx context.Context, in CheckJobsInput) (CheckJobsOutput, error) {
	jobs := slices.Clone(in.Jobs)
	slices.SortFunc(jobs, func(a, b ResolvedJob) int {
		return strings.Compare(a.Fabric+"/"+a.Name, b.Fabric+"/"+b.Name)
	})
	fabrics := map[string]fabric.Fabric{}
	var problems []string
	err := withHeartbeat(ctx, func() error {
		for _, j := range jobs {
			fab, ok := fabrics[j.Fabric]
			if !ok {
				var err error
				if fab, err = fabric.Open(d.Platform, j.Fabric, d.env()); err != nil {
					return err
				}
				fabrics[j.Fabric] = fab
			}
			paths := map[string]string{}
			for _, p := range j.Pipelines {
				paths[p] = fab.ArtifactPath(in.Project, in.Version, p, in.Files[p])
			}
			spec, err := d.render(ctx, UpsertJobInput{Project: in.Project, Version: in.Version, Commit: in.Commit,
				DeploymentID: in.DeploymentID, Job: j, Artifacts: paths})
			if err == nil {
				err = CheckRendered(ctx, d.env(), j, spec)
			}
			if err == nil {
				err = claimableDag(ctx, fab, j, spec)
			}
			switch {
			case err == nil:
			case apperr.IsType(err, apperr.InvalidDefinition):
				problems = append(problems, fmt.Sprintf("job %s on fabric %s: %s", j.Name, j.Fabric, indent(apperr.Message(err))))
			case isApplicationError(err), apperr.IsType(err, apperr.DagIDOwned):
				return err // already says which job
			default:
				return fmt.Errorf("check job %s for fabric %s: %w", j.Name, j.Fabric, err)
			}
		}
		return nil
	})
	if err != nil {
		return CheckJobsOutput{}, apperr.ForTemporal(err)
	}
	if len(problems) > 0 {
		return CheckJobsOutput{}, apperr.New(apperr.InvalidDefinition, fmt.Sprintf(
			"%d of %d job definitions are invalid; nothing was written to any fabric:\n  %s\nfix each definition (or the variables it uses on that fabric), commit, and release a new version",
			len(problems), len(jobs), strings.Join(problems, "\n  ")))
	}
	return CheckJobsOutput{Checked: len(jobs)}, nil
}

func isApplicationError(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app)
}

// indent keeps a multi-line message under its list item.
func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n    ") }
