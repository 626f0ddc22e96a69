package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/internal/apperr"
)

// Project is a project's read-only entity, ID ProjectID. The commands that only
// read — `releases --refresh`, `plan`, `deployments` (drift against the live
// fabrics), `logs` and `check` — send it an Update (ListReleasesUpdate, PlanUpdate,
// InspectUpdate, ReadLogsUpdate, CheckUpdate) instead of starting a workflow per call, so the
// namespace's workflow list shows real work (releases, deployments, promotions)
// plus one row per project.
//
// Each update handler runs the very function that backs the workflow of the
// same read (ListReleases, Plan, Inspect, ReadLogs, Check), so both answer the same;
// those functions must therefore do nothing but run activities. The workflows
// stay registered for runs started from the Temporal UI or open during an
// upgrade; the CLI no longer starts them.
// Handlers run concurrently: a slow plan does not hold up a listing. A read is
// an ordinary activity, not a local one: a plan or a listing fetches git and may
// be retried for minutes, longer than a workflow task may last.
//
// Reads need no signature and anyone in the namespace may send them, as anyone
// may start the read workflows: they change nothing. A validator only refuses a
// read addressed to another project.
//
// The entity never completes and, between reads, waits without timers (no
// history is written while idle). Every read adds its update's and activities'
// events to the history (about 17 events a read, measured by
// TestReadOnlyCommandsShareOneProjectEntity), so a run answers a couple of
// hundred reads before Temporal suggests continue-as-new (history count or
// size); then the entity lets the reads in progress finish
// (workflow.AllHandlersFinished) and continues as new: a read arriving
// meanwhile is answered by this run before it closes.
func Project(ctx workflow.Context, in ProjectInput) error {
	p := &project{in: in, answered: in.Answered}
	if err := p.setup(ctx); err != nil {
		return err
	}
	if err := workflow.Await(ctx, func() bool { return workflow.GetInfo(ctx).GetContinueAsNewSuggested() }); err != nil {
		return err
	}
	// Drain: an update whose handler has not returned would be lost with this run.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	return workflow.NewContinueAsNewError(ctx, Project, ProjectInput{Project: in.Project, Answered: p.answered})
}

// project is one run of the Project entity.
type project struct {
	in       ProjectInput
	answered int // reads answered, earlier runs included
	inFlight int // reads being answered
}

// setup tags the entity with its project and registers the state query and the
// read handlers.
func (p *project) setup(ctx workflow.Context) error {
	if p.in.Project == "" {
		return apperr.New(apperr.InvalidInput, `a Project entity needs its project: start it with {"project":"<name>"}`)
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, ProjectKey.ValueSet(p.in.Project)); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (ProjectState, error) { return p.state(), nil }); err != nil {
		return err
	}
	if err := setRead(ctx, p, ListReleasesUpdate, ListReleases, func(in *ListReleasesInput) error {
		return p.own(&in.Project)
	}); err != nil {
		return err
	}
	if err := setRead(ctx, p, PlanUpdate, Plan, func(in *PlanInput) error {
		return p.own(&in.Project)
	}); err != nil {
		return err
	}
	if err := setRead(ctx, p, InspectUpdate, Inspect, func(in *InspectInput) error {
		for i := range in.Jobs {
			if err := p.own(&in.Jobs[i].Project); err != nil {
				return fmt.Errorf("job %s on %s: %w", in.Jobs[i].Job, in.Jobs[i].Fabric, err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := setRead(ctx, p, CheckUpdate, Check, func(in *CheckInput) error {
		return p.own(&in.Project)
	}); err != nil {
		return err
	}
	if err := setRead(ctx, p, ListRunsUpdate, ListRuns, func(in *ListRunsInput) error {
		return p.own(&in.Project)
	}); err != nil {
		return err
	}
	// Logs are found by key under logs/ in the shared store; the activity refuses any other path.
	return setRead(ctx, p, ReadLogsUpdate, ReadLogs, func(*ReadLogsInput) error { return nil })
}

// own accepts a read of this entity's project; an empty project means this one.
func (p *project) own(name *string) error {
	if *name == "" {
		*name = p.in.Project
	}
	if *name != p.in.Project {
		return fmt.Errorf("%s serves reads of project %s, not %s; send them to %s", ProjectID(p.in.Project), p.in.Project, *name, ProjectID(*name))
	}
	return nil
}

func (p *project) state() ProjectState {
	summary := fmt.Sprintf("answers read-only requests of %s: %d answered", p.in.Project, p.answered)
	if p.inFlight > 0 {
		summary += fmt.Sprintf(", %d in progress", p.inFlight)
	}
	return ProjectState{Progress: Progress{Status: StatusRunning, Summary: summary, Steps: []Step{}},
		Project: p.in.Project, Answered: p.answered, InFlight: p.inFlight}
}

// setRead registers the update handler of one read: check (and complete) the
// input, then run read with it.
func setRead[I, O any](ctx workflow.Context, p *project, name string, read func(workflow.Context, I) (O, error), check func(*I) error) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, name,
		func(ctx workflow.Context, in I) (O, error) {
			// The handler gets its own copy of the input: complete it again.
			if err := check(&in); err != nil {
				var zero O
				return zero, err
			}
			p.inFlight++
			defer func() { p.inFlight--; p.answered++ }()
			return read(ctx, in)
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, in I) error {
			if err := check(&in); err != nil {
				return apperr.New(apperr.InvalidInput, err.Error())
			}
			return nil
		}})
}
