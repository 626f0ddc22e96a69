package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/platform"
)

// runsPollInterval is how often a deployment waiting for active runs reads
// them again (a workflow timer between two short activities: nothing sleeps
// in a worker, and a worker crash loses nothing). A long active_runs_timeout
// polls less often, so that a wait adds at most about runsPolls reads to the
// deployment's history.
const (
	runsPollInterval = 30 * time.Second
	runsPolls        = 200
)

// settleRuns runs just before the schedule step replaces jobs: on each fabric
// (in name order) it plans the jobs against the live fabric and reads the
// active runs of those it is about to replace (update or recreate)
// and, per the fabric's active_runs, waits for them to end, refuses the
// deployment, or cancels them and waits until they stopped. The deployment
// holds its fabrics meanwhile: it is mid-deploy (artifacts uploaded, jobs
// not yet replaced), and a second deployment must not replace the job under
// the same run. A wait that outlasts active_runs_timeout parks the
// deployment naming the run; `resume` waits again.
func (d *deployment) settleRuns(ctx workflow.Context) error {
	for _, f := range d.state.Fabrics {
		jobs := d.jobsToSchedule(f)
		if len(jobs) == 0 {
			continue
		}
		if err := d.settleRunsOn(ctx, f, jobs); err != nil {
			return err
		}
	}
	return nil
}

// jobsToSchedule lists the jobs of the plan on fab not yet scheduled.
func (d *deployment) jobsToSchedule(fab string) []activities.ResolvedJob {
	var out []activities.ResolvedJob
	for _, j := range d.plan.Jobs {
		if _, ok := d.jobs[j.Fabric+"/"+j.Name]; !ok && j.Fabric == fab {
			out = append(out, j)
		}
	}
	return out
}

// replaced plans the jobs against the live fabric and keeps those the
// schedule step will change: a job left unchanged is not replaced, and its
// runs go on undisturbed.
func (d *deployment) replaced(ctx workflow.Context, todo []activities.ResolvedJob) ([]string, error) {
	files := map[string]string{}
	for _, p := range sortedNames(d.built) {
		files[p] = d.built[p].File
	}
	var plan activities.PlanJobsOutput
	in := activities.PlanJobsInput{Project: d.in.Project, Version: d.in.Version, Commit: d.plan.Commit, Jobs: todo, Files: files}
	if err := workflow.ExecuteActivity(fabricActivity(ctx), deployActs.PlanJobs, in).Get(ctx, &plan); err != nil {
		return nil, err
	}
	unchanged := map[string]bool{}
	for _, p := range plan.Jobs {
		unchanged[p.Job] = p.Action == "unchanged"
	}
	var out []string
	for _, j := range todo {
		if !unchanged[j.Name] {
			out = append(out, j.Name)
		}
	}
	return out, nil
}

func (d *deployment) settleRunsOn(ctx workflow.Context, fab string, todo []activities.ResolvedJob) error {
	jobs, err := d.replaced(ctx, todo)
	if err != nil || len(jobs) == 0 {
		return err
	}
	in := activities.ActiveRunsInput{Project: d.in.Project, Fabric: fab, Jobs: jobs}
	var out activities.ActiveRunsOutput
	if err := workflow.ExecuteActivity(fabricActivity(ctx), deployActs.ActiveRuns, in).Get(ctx, &out); err != nil {
		return err
	}
	if len(out.Runs) == 0 {
		return nil
	}
	policy := platform.ActiveRunsPolicy(out.Policy)
	since := workflow.Now(ctx)
	until := since.Add(out.Timeout)
	switch policy {
	case platform.ActiveRunsFail:
		return d.refuse(ctx, StepSchedule, apperr.ActiveRun, activeRunRefusal(fab, out))
	case platform.ActiveRunsCancel:
		if err := d.cancelRuns(ctx, fab, out.Runs); err != nil {
			return err
		}
	}
	defer func() {
		d.state.Runs = nil
		d.state.Summary = fmt.Sprintf("deploying %s of %s to %s", d.in.Version, d.in.Project, strings.Join(d.state.Fabrics, ", "))
	}()
	for len(out.Runs) > 0 {
		now := workflow.Now(ctx)
		first := out.Runs[0]
		if !now.Before(until) {
			return temporal.NewNonRetryableApplicationError(activeRunTimeout(fab, out, policy, now), apperr.ActiveRunTimeout, nil)
		}
		d.state.Runs = &RunsWait{Fabric: fab, Job: first.Job, RunID: first.Run.ID, URL: first.Run.URL, Policy: string(policy), Since: since, Until: until}
		d.state.Summary = waitingSummary(fab, out, policy, now)
		setStep(d.state.Steps, StepSchedule, StepRunning, d.state.Summary, now)
		workflow.SetCurrentDetails(ctx, d.state.Summary)
		// A cancel request ends the wait at once (it also cancels ctx for
		// deployments that stop running steps).
		poll := max(runsPollInterval, out.Timeout/runsPolls)
		if _, err := workflow.AwaitWithTimeout(ctx, min(poll, until.Sub(now)), func() bool { return d.ctl.cancel }); err != nil {
			return err
		}
		if d.ctl.cancel {
			return temporal.NewCanceledError("cancel requested")
		}
		out.Runs = nil
		if err := workflow.ExecuteActivity(fabricActivity(ctx), deployActs.ActiveRuns, in).Get(ctx, &out); err != nil {
			return err
		}
	}
	return nil
}

// cancelRuns cancels the runs through the fabric and records them.
func (d *deployment) cancelRuns(ctx workflow.Context, fab string, runs []activities.JobRun) error {
	cin := activities.CancelRunsInput{Project: d.in.Project, Fabric: fab, Runs: runs, For: d.state.DeploymentID}
	if err := workflow.ExecuteActivity(fabricActivity(ctx), deployActs.CancelRuns, cin).Get(ctx, nil); err != nil {
		return err
	}
	now := workflow.Now(ctx)
	var names []string
	for _, r := range runs {
		d.state.CancelledRuns = append(d.state.CancelledRuns, CancelledRun{Fabric: fab, Job: r.Job, RunID: r.Run.ID, URL: r.Run.URL, At: now})
		names = append(names, fmt.Sprintf("run %s of %s", r.Run.ID, r.Job))
	}
	workflow.GetLogger(ctx).Info("cancelled active runs (active_runs: cancel)", "fabric", fab, "runs", strings.Join(names, ", "))
	return nil
}

// cancelledRunsText: "cancelled run 123 of nightly on qa (active_runs: cancel)".
func cancelledRunsText(runs []CancelledRun) string {
	if len(runs) == 0 {
		return ""
	}
	var parts []string
	for _, r := range runs {
		parts = append(parts, fmt.Sprintf("run %s of %s on %s", r.RunID, r.Job, r.Fabric))
	}
	return "cancelled " + strings.Join(parts, ", ") + " (active_runs: cancel)"
}

// waitingSummary: "waiting: nightly on qa has an active run 123 (running 4m);
// waiting up to 1h (active_runs: wait)".
func waitingSummary(fab string, out activities.ActiveRunsOutput, policy platform.ActiveRunsPolicy, now time.Time) string {
	r := out.Runs[0]
	what := "has an active run"
	if policy == platform.ActiveRunsCancel {
		what = "has a cancelled run still stopping:"
	}
	s := fmt.Sprintf("waiting: %s on %s %s %s (%s)", r.Job, fab, what, r.Run.ID, runAge(r, now))
	if n := len(out.Runs); n > 1 {
		s += fmt.Sprintf(" and %d more", n-1)
	}
	return s + fmt.Sprintf("; waiting up to %s (active_runs: %s)", shortDuration(out.Timeout), policy)
}

// activeRunRefusal is the message of active_runs: fail.
func activeRunRefusal(fab string, out activities.ActiveRunsOutput) string {
	return fmt.Sprintf("%s on fabric %s; the fabric's active_runs is fail, so the deployment does not replace a job while it runs: deploy again once the run ended, or cancel the run",
		listRuns(out.Runs), fab)
}

// activeRunTimeout is the park reason when the runs outlast the timeout.
func activeRunTimeout(fab string, out activities.ActiveRunsOutput, policy platform.ActiveRunsPolicy, now time.Time) string {
	what := "did not end"
	if policy == platform.ActiveRunsCancel {
		what = "was cancelled but did not stop"
	}
	return fmt.Sprintf("%s on fabric %s %s within %s (active_runs: %s, active_runs_timeout: %s); `resume` waits again, or end the run on the fabric first",
		listRuns(out.Runs), fab, what, shortDuration(out.Timeout), policy, shortDuration(out.Timeout))
}

// listRuns: "job nightly has an active run 123 (https://...)", for each run.
func listRuns(runs []activities.JobRun) string {
	var parts []string
	for _, r := range runs {
		s := fmt.Sprintf("job %s has an active run %s", r.Job, r.Run.ID)
		if r.Run.URL != "" {
			s += " (" + r.Run.URL + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// runAge: "running 4m", or "pending" for a run that has not started.
func runAge(r activities.JobRun, now time.Time) string {
	if r.Run.StartedAt.IsZero() || r.Run.StartedAt.After(now) {
		return string(r.Run.State)
	}
	return fmt.Sprintf("%s %s", r.Run.State, shortDuration(now.Sub(r.Run.StartedAt)))
}

// shortDuration: 45s, 4m, 1h, 1h30m, 10m.
func shortDuration(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	d = d.Round(time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}
