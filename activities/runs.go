package activities

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/platform"
)

// Runs owns the side effects of runs of deployed jobs: it opens the fabric a
// run is on (internal/fabric, which owns each fabric's client) and starts,
// reads, lists and cancels runs there.
type Runs struct {
	Platform *platform.Config
	// Getenv reads fabric credentials; nil means os.Getenv.
	Getenv func(string) string
	// Open opens a fabric by name; nil means fabric.Open. Tests hand in fabrics
	// of their own.
	Open func(cfg *platform.Config, name string, env fabric.Env) (fabric.Fabric, error)
}

// runner opens the named fabric's run operations. A fabric that is not
// defined, or whose kind cannot run jobs, is refused.
func (r *Runs) runner(name string) (fabric.Runner, error) {
	if _, ok := r.Platform.Fabrics[name]; !ok {
		return nil, unknownFabric(r.Platform, name)
	}
	open := r.Open
	if open == nil {
		open = fabric.Open
	}
	env := fabric.Env(os.Getenv)
	if r.Getenv != nil {
		env = r.Getenv
	}
	f, err := open(r.Platform, name, env)
	if err != nil {
		return nil, apperr.ForTemporal(err)
	}
	run, ok := fabric.AsRunner(f)
	if !ok {
		msg := fmt.Sprintf("fabric %s (kind %s) cannot run jobs; run the job on a fabric of a kind that can (local, databricks, airflow)",
			name, r.Platform.Fabrics[name].Kind)
		return nil, temporal.NewNonRetryableApplicationError(msg, apperr.RunsUnsupported, nil)
	}
	return run, nil
}

func unknownFabric(cfg *platform.Config, name string) error {
	known := make([]string, 0, len(cfg.Fabrics))
	for k := range cfg.Fabrics {
		known = append(known, k)
	}
	sort.Strings(known)
	msg := fmt.Sprintf("fabric %q is not defined in %s (defined: %s); name one of them with --fabric", name, platformFile(cfg), strings.Join(known, ", "))
	return temporal.NewNonRetryableApplicationError(msg, apperr.InvalidInput, nil)
}

// RunTargetInput names where a run is asked for.
type RunTargetInput struct {
	Project string `json:"project"`
	Fabric  string `json:"fabric"`
}

// RunTarget is what a Run workflow decides on: the fabric, its kind and owner.
type RunTarget struct {
	Fabric FabricInfo `json:"fabric"`
}

// RunTarget checks that the project is registered and the fabric is defined
// and can run jobs, and returns the fabric's owner team (who may run there).
func (r *Runs) RunTarget(_ context.Context, in RunTargetInput) (RunTarget, error) {
	if _, ok := r.Platform.Projects[in.Project]; !ok {
		return RunTarget{}, unknownProject(r.Platform, in.Project)
	}
	if _, err := r.runner(in.Fabric); err != nil {
		return RunTarget{}, err
	}
	f := r.Platform.Fabrics[in.Fabric]
	return RunTarget{Fabric: FabricInfo{Name: in.Fabric, Kind: string(f.Kind), Owner: f.Owner,
		Members: slices.Clone(r.Platform.Teams[f.Owner].Members)}}, nil
}

// StartRunInput asks for one run of a deployed job on a fabric.
type StartRunInput struct {
	Fabric  string            `json:"fabric"`
	Request fabric.RunRequest `json:"request"`
}

// StartRun triggers the job once: the request's Key makes a second call (a
// retried activity) return the run the first one started.
func (r *Runs) StartRun(ctx context.Context, in StartRunInput) (fabric.RunRef, error) {
	run, err := r.runner(in.Fabric)
	if err != nil {
		return fabric.RunRef{}, err
	}
	var ref fabric.RunRef
	err = withHeartbeat(ctx, func() error {
		var err error
		ref, err = run.StartRun(ctx, in.Request)
		return err
	})
	if err != nil {
		return ref, apperr.ForTemporal(fmt.Errorf("start job %s on fabric %s: %w", in.Request.Job, in.Fabric, err))
	}
	return ref, nil
}

// RunOnFabric names one run of a job on a fabric.
type RunOnFabric struct {
	Fabric  string `json:"fabric"`
	Project string `json:"project"`
	Job     string `json:"job"`
	RunID   string `json:"run_id"`
}

// GetRun reads the run's state and its tasks' states.
func (r *Runs) GetRun(ctx context.Context, in RunOnFabric) (fabric.Run, error) {
	run, err := r.runner(in.Fabric)
	if err != nil {
		return fabric.Run{}, err
	}
	var out fabric.Run
	err = withHeartbeat(ctx, func() error {
		var err error
		out, err = run.GetRun(ctx, in.Project, in.Job, in.RunID)
		return err
	})
	if err != nil {
		return out, apperr.ForTemporal(fmt.Errorf("read run %s of job %s on fabric %s: %w", in.RunID, in.Job, in.Fabric, err))
	}
	return out, nil
}

// CancelRun asks the fabric to cancel the run (a run that ended is left as it is).
func (r *Runs) CancelRun(ctx context.Context, in RunOnFabric) error {
	run, err := r.runner(in.Fabric)
	if err != nil {
		return err
	}
	err = withHeartbeat(ctx, func() error { return run.CancelRun(ctx, in.Project, in.Job, in.RunID) })
	if err != nil {
		return apperr.ForTemporal(fmt.Errorf("cancel run %s of job %s on fabric %s: %w", in.RunID, in.Job, in.Fabric, err))
	}
	return nil
}

// RunsOf names one deployed job whose runs to list.
type RunsOf struct {
	Fabric string `json:"fabric"`
	Job    string `json:"job"`
}

// ListRunsInput lists the runs of deployed jobs of a project.
type ListRunsInput struct {
	Project string   `json:"project"`
	Jobs    []RunsOf `json:"jobs"`
	// Limit bounds the runs read per job (0: the fabric's default page).
	Limit int `json:"limit,omitempty"`
}

// FabricRun is one run of one job on one fabric, as `shipline runs` lists it.
type FabricRun struct {
	Fabric string `json:"fabric"`
	Job    string `json:"job"`
	fabric.Run
}

// JobRunsError says why one job's runs could not be read.
type JobRunsError struct {
	Fabric string `json:"fabric"`
	Job    string `json:"job"`
	Error  string `json:"error"`
}

// ListRunsOutput holds every job's runs, newest first; a fabric that cannot
// be read is reported per job in Errors, so it does not hide the rest.
type ListRunsOutput struct {
	Runs   []FabricRun    `json:"runs"`
	Errors []JobRunsError `json:"errors,omitempty"`
}

// ListRuns reads each job's runs from its fabric and merges them, newest first.
func (r *Runs) ListRuns(ctx context.Context, in ListRunsInput) (ListRunsOutput, error) {
	out := ListRunsOutput{Runs: []FabricRun{}}
	for _, j := range in.Jobs {
		var runs []fabric.Run
		run, err := r.runner(j.Fabric)
		if err == nil {
			err = withHeartbeat(ctx, func() error {
				var err error
				runs, err = run.ListRuns(ctx, in.Project, j.Job, in.Limit)
				return err
			})
		}
		if err != nil {
			out.Errors = append(out.Errors, JobRunsError{Fabric: j.Fabric, Job: j.Job, Error: userMessageOf(err)})
			continue
		}
		for _, x := range runs {
			out.Runs = append(out.Runs, FabricRun{Fabric: j.Fabric, Job: j.Job, Run: x})
		}
	}
	sort.SliceStable(out.Runs, func(a, b int) bool { return out.Runs[a].StartedAt.After(out.Runs[b].StartedAt) })
	return out, nil
}
