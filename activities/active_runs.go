package activities

// Runs in progress on a fabric, as a deployment (or a release's deletion)
// must know them before it replaces a job or removes artifacts: which jobs
// have an active run, what the fabric's active_runs setting says to do about
// it, and cancelling them when that setting is cancel.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
)

// ActiveRunsInput names jobs of a project on one fabric.
type ActiveRunsInput struct {
	Project string   `json:"project"`
	Fabric  string   `json:"fabric"`
	Jobs    []string `json:"jobs"`
	// Version, when set, keeps only the runs that may use this release's
	// artifacts: runs of that version, and runs whose version the fabric
	// cannot tell (they may).
	Version string `json:"version,omitempty"`
}

// JobRun is one run of a named job.
type JobRun struct {
	Job string     `json:"job"`
	Run fabric.Run `json:"run"`
}

// ActiveRunsOutput lists the jobs' runs that have not ended and the fabric's
// active_runs setting.
type ActiveRunsOutput struct {
	// Policy is the fabric's active_runs: wait, fail or cancel.
	Policy string `json:"policy"`
	// Timeout is the fabric's active_runs_timeout (default 1h).
	Timeout time.Duration `json:"timeout"`
	// Blind is set when the fabric cannot show runs (an airflow fabric
	// without airflow_url): nothing was checked, and Runs is empty.
	Blind bool `json:"blind,omitempty"`
	// Runs are the active runs, job by job in the input's order, newest first.
	Runs []JobRun `json:"runs,omitempty"`
}

// ActiveRuns reads the active runs of the jobs on the fabric. A job that is
// not on the fabric has none.
func (d *Deploy) ActiveRuns(ctx context.Context, in ActiveRunsInput) (ActiveRunsOutput, error) {
	if _, ok := d.Platform.Projects[in.Project]; !ok {
		return ActiveRunsOutput{}, unknownProject(d.Platform, in.Project)
	}
	cfg, ok := d.Platform.Fabrics[in.Fabric]
	if !ok {
		return ActiveRunsOutput{}, apperr.ForTemporal(&apperr.Error{Type: apperr.FabricConfig,
			Msg: fmt.Sprintf("fabric %q is not in platform.yaml (any more): add it back, or cancel the deployment", in.Fabric)})
	}
	policy, timeout := cfg.RunsPolicy()
	out := ActiveRunsOutput{Policy: string(policy), Timeout: timeout}
	if !cfg.SeesRuns() {
		out.Blind = true
		return out, nil
	}
	runs, err := d.activeRuns(ctx, in)
	if runs == nil && err == nil {
		out.Blind = true
	}
	out.Runs = runs
	return out, apperr.ForTemporal(err)
}

// activeRuns reads the active runs of the jobs (nil when the fabric's kind
// cannot show runs, an empty list when there are none).
func (d *Deploy) activeRuns(ctx context.Context, in ActiveRunsInput) ([]JobRun, error) {
	runner, err := d.runner(in.Fabric)
	if err != nil || runner == nil {
		return nil, err
	}
	out := []JobRun{}
	err = withHeartbeat(ctx, func() error {
		for _, job := range in.Jobs {
			runs, err := runner.ActiveRuns(ctx, in.Project, job)
			if errors.Is(err, fabric.ErrJobNotDeployed) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read the active runs of job %s on fabric %s: %w", job, in.Fabric, err)
			}
			for _, r := range runs {
				// A fabric's listing may lag behind a run's end.
				if r.Active() && (in.Version == "" || r.Version == "" || r.Version == in.Version) {
					out = append(out, JobRun{Job: job, Run: r})
				}
			}
		}
		return nil
	})
	return out, err
}

// RunsUsing says which active runs use a release's artifacts, for a refusal:
// "job nightly has an active run 123 (https://...) of v1.2.0".
func RunsUsing(runs []JobRun) string {
	var parts []string
	for _, r := range runs {
		s := fmt.Sprintf("job %s has an active run %s", r.Job, r.Run.ID)
		if r.Run.URL != "" {
			s += " (" + r.Run.URL + ")"
		}
		if r.Run.Version == "" {
			s += " of a version the fabric does not tell"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// CancelRunsInput names runs to cancel on one fabric.
type CancelRunsInput struct {
	Project string   `json:"project"`
	Fabric  string   `json:"fabric"`
	Runs    []JobRun `json:"runs"`
	// For says why, for the fabric's logs: the deployment that cancels them.
	For string `json:"for,omitempty"`
}

// CancelRuns asks the fabric to cancel each run; a run that has already
// ended is left as it is. It does not wait for the runs to stop.
func (d *Deploy) CancelRuns(ctx context.Context, in CancelRunsInput) error {
	runner, err := d.runner(in.Fabric)
	if err != nil || runner == nil {
		return err
	}
	return apperr.ForTemporal(withHeartbeat(ctx, func() error {
		for _, r := range in.Runs {
			if err := runner.CancelRun(ctx, in.Project, r.Job, r.Run.ID); err != nil {
				return fmt.Errorf("cancel run %s of job %s on fabric %s: %w", r.Run.ID, r.Job, in.Fabric, err)
			}
		}
		return nil
	}))
}

// runner opens the fabric's run operations, or nil when its kind has none.
func (d *Deploy) runner(name string) (fabric.Runner, error) {
	fab, err := fabric.Open(d.Platform, name, d.env())
	if err != nil {
		return nil, apperr.ForTemporal(err)
	}
	r, ok := fabric.AsRunner(fab)
	if !ok {
		return nil, nil
	}
	return r, nil
}
