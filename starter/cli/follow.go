package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/shipline/shipline/internal/views"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/workflows"
)

// Following a workflow: `--wait` of every command and `status --watch` print
// each change of the workflow's state until what was asked for is done, the
// workflow ends, parks, or waits for people. They never wait silently: a
// workflow that no worker runs is reported within seconds.

// followOpts say what the follower waits for.
type followOpts struct {
	// resumedAfter: a park that began before this time is the one just resumed.
	resumedAfter time.Time
	// resumed: the steps of the park just resumed; its failed step is not
	// printed again as if it had failed anew.
	resumed []workflows.Step
	// cancelling: the user cancelled it; any end is what was asked for (exit 0).
	cancelling bool
}

// follower polls one workflow's state.
type follower struct {
	g         *globals
	c         client.Client
	id, runID string
	failing   time.Time // since when the queries get no answer
}

// next queries the state into out. ok says the query answered; closed is the
// failure of a workflow that ended unsuccessfully; err ends the following.
func (f *follower) next(ctx context.Context, out any) (ok bool, closed error, err error) {
	var qerr error
	// A query waits for a worker: say so within seconds when none serves the queue.
	err = f.g.withWorker(ctx, f.c, f.id, func(ctx context.Context) error {
		closed, qerr = views.QueryState(ctx, f.c, f.id, f.runID, out)
		return nil
	})
	if err != nil {
		return false, nil, err
	}
	if qerr == nil {
		f.failing = time.Time{}
		return true, closed, nil
	}
	if closed != nil {
		return false, closed, nil
	}
	var nf *serviceerror.NotFound
	if errors.As(qerr, &nf) {
		return false, nil, notFound(f.id, qerr)
	}
	if f.failing.IsZero() {
		f.failing = time.Now()
	} else if time.Since(f.failing) >= f.g.workerWait() {
		if err := f.g.checkWorker(ctx, f.c, f.id); err != nil {
			return false, nil, failed(err)
		}
	}
	return false, nil, nil
}

// pause waits before the next poll.
func (f *follower) pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(f.g.pollInterval()):
		return nil
	}
}

func (g *globals) follower(c client.Client, id, runID string) *follower {
	return &follower{g: g, c: c, id: id, runID: runID}
}

// followKind follows any Shipline workflow by its type.
func followKind(ctx context.Context, g *globals, c client.Client, id, runID, typ string, o followOpts) (any, error) {
	switch typ {
	case workflows.ReleaseWorkflow:
		return followRelease(ctx, g, c, id, runID, o)
	case workflows.DeployWorkflow:
		return followDeploy(ctx, g, c, id, o)
	case workflows.PromoteWorkflow:
		return followPromote(ctx, g, c, id, o)
	case workflows.FabricWorkflow:
		return followFabric(ctx, g, c, id)
	case workflows.RunWorkflow:
		return followRun(ctx, g, c, id, o)
	default:
		return followOther(ctx, g, c, id, runID, o)
	}
}

// followRelease follows a release until its release steps are done (and the
// auto_deploy deployment with them), it parks or it ends. The release entity
// itself stays open as the record; following does not wait for that.
func followRelease(ctx context.Context, g *globals, c client.Client, id, runID string, o followOpts) (*workflows.ReleaseState, error) {
	p := &stepPrinter{g: g, quiet: o.cancelling}
	p.seenFailed(o.resumed)
	f := g.follower(c, id, runID)
	for {
		var state workflows.ReleaseState
		ok, closed, err := f.next(ctx, &state)
		if err != nil {
			return nil, err
		}
		if ok {
			p.print(state.Steps)
			switch state.Status {
			case workflows.StatusReleased:
				p.done(state.Summary)
				if state.DeployID == "" || o.cancelling {
					return &state, nil
				}
				if !g.json() {
					fmt.Fprintf(g.stdout, "deploying (auto_deploy): %s\n", state.DeployID)
				}
				if _, err := waitStarted(ctx, c, state.DeployID); err != nil {
					return &state, failed(err)
				}
				if _, err := followDeploy(ctx, g, c, state.DeployID, followOpts{}); err != nil {
					return &state, err
				}
				// The release records the deploy's outcome right after it ends.
				return waitDeployRecorded(ctx, g, c, id, runID)
			case workflows.StatusDeleted:
				p.done(state.Summary)
				return &state, nil
			case workflows.StatusRefused, workflows.StatusFailed, workflows.StatusCancelled:
				if o.cancelling {
					p.done(state.Summary)
					return &state, nil
				}
				return &state, failed(errors.New(state.Refusal))
			case workflows.StatusParked:
				if state.Parked != nil && !state.Parked.Since.After(o.resumedAfter) {
					break // the park just resumed; the workflow has not moved yet
				}
				p.done(state.Summary)
				return &state, failed(fmt.Errorf("%s is parked at %s: %s", id, state.Parked.Step, state.Parked.Reason))
			}
		}
		if closed != nil {
			return nil, endedWith(g, closed, o)
		}
		if err := f.pause(ctx); err != nil {
			return nil, err
		}
	}
}

// followDeploy follows a deployment until it succeeds, parks or ends,
// printing steps, builds and queue position as they change.
func followDeploy(ctx context.Context, g *globals, c client.Client, id string, o followOpts) (*workflows.DeployState, error) {
	p := &stepPrinter{g: g, quiet: o.cancelling}
	p.seenFailed(o.resumed)
	f := g.follower(c, id, "")
	lastWait, lastRun := "", ""
	builds := map[string]workflows.StepStatus{}
	for {
		var s workflows.DeployState
		ok, closed, err := f.next(ctx, &s)
		if err != nil {
			return nil, err
		}
		if ok {
			if s.Waiting != nil && !p.quiet && !g.json() && s.Waiting.Holder != lastWait {
				lastWait = s.Waiting.Holder
				fmt.Fprintf(g.stdout, "  queued   fabric %s is busy: behind %s\n", s.Waiting.Fabric, s.Waiting.Holder)
			}
			if s.Runs != nil && !p.quiet && !g.json() && s.Runs.Fabric+"/"+s.Runs.RunID != lastRun {
				lastRun = s.Runs.Fabric + "/" + s.Runs.RunID
				fmt.Fprintf(g.stdout, "  %s\n", s.Summary)
			}
			if !p.quiet {
				printBuilds(g, s, builds)
			}
			p.print(s.Steps)
			switch s.Status {
			case workflows.StatusSucceeded:
				p.done(s.Summary)
				if o.cancelling {
					return &s, failed(fmt.Errorf("%s finished before the cancellation took effect", id))
				}
				return &s, nil
			case workflows.StatusParked:
				if s.Parked != nil && !s.Parked.Since.After(o.resumedAfter) {
					break // the park just resumed; the workflow has not moved yet
				}
				p.done(s.Summary)
				return &s, failed(fmt.Errorf("%s is parked at %s: %s", id, s.Parked.Step, s.Parked.Reason))
			case workflows.StatusRefused, workflows.StatusFailed, workflows.StatusCancelled:
				if o.cancelling {
					p.done(s.Summary)
					return &s, nil
				}
				return &s, failed(errors.New(s.Reason))
			case workflows.StatusWaiting:
				if s.Window != nil && !o.cancelling { // a window may open in days: say so and stop following
					p.done(s.Summary)
					if !g.json() {
						fmt.Fprintf(g.stdout, "it deploys by itself once the stage opens (`shipline status %s`); to deploy now, a member of the owner team of the stage's fabrics cancels it (`shipline cancel %s`) and deploys again with --override-window --reason R\n", id, id)
					}
					return &s, nil
				}
			case workflows.StatusSuperseded:
				if o.cancelling {
					p.done(s.Summary)
					return &s, nil
				}
				// Not a failure of the deployment, but what was asked for did not happen.
				return &s, failed(fmt.Errorf("%s was not deployed: superseded — %s", id, s.Reason))
			}
		}
		if closed != nil {
			return nil, endedWith(g, closed, o)
		}
		if err := f.pause(ctx); err != nil {
			return nil, err
		}
	}
}

// followPromote prints stage changes until the promotion ends or waits for
// people. A stage whose deployment parks or fails ends the following (exit 1)
// with the deployment, the reason and what to do.
func followPromote(ctx context.Context, g *globals, c client.Client, id string, o followOpts) (*workflows.PromoteState, error) {
	seen := map[string]workflows.StageStatus{}
	f := g.follower(c, id, "")
	for {
		var s workflows.PromoteState
		ok, closed, err := f.next(ctx, &s)
		if err != nil {
			return nil, err
		}
		if ok {
			for _, st := range s.Stages {
				if seen[st.Name] != st.Status {
					seen[st.Name] = st.Status
					if !g.json() && !o.cancelling {
						fmt.Fprintf(g.stdout, "  %s\n", stageLine(st))
					}
				}
			}
			switch s.Status {
			case workflows.StatusPromoted, workflows.StatusRolledBack, workflows.StatusSucceeded:
				if !g.json() {
					fmt.Fprintln(g.stdout, s.Summary)
				}
				return &s, nil
			case workflows.StatusWaiting:
				if o.cancelling {
					break // wait for the cancellation to end it
				}
				if !g.json() && s.Pending != "" {
					printGatePlans(g, "", s.Stages)
					fmt.Fprintf(g.stdout, "pending: %s\n", s.Pending)
				}
				return &s, nil
			case workflows.StatusRejected, workflows.StatusExpired, workflows.StatusRefused, workflows.StatusFailed, workflows.StatusCancelled:
				if o.cancelling {
					return &s, nil
				}
				return &s, failed(errors.New(s.Summary))
			case workflows.StatusParked:
				// A stage's deployment parked: the summary names it, the
				// reason and the resume command.
				if !o.cancelling {
					return &s, failed(errors.New(s.Summary))
				}
			}
			if err := stageDeployStopped(ctx, c, s); err != nil {
				return &s, err
			}
		}
		if closed != nil {
			return nil, endedWith(g, closed, o)
		}
		if err := f.pause(ctx); err != nil {
			return nil, err
		}
	}
}

// stageDeployStopped reads the deployment of the stage being deployed: when it
// parked or failed, the promotion cannot go on by itself.
func stageDeployStopped(ctx context.Context, c client.Client, s workflows.PromoteState) error {
	for _, st := range s.Stages {
		if st.DeploymentID == "" || st.Status == workflows.StageDeployed || st.Status == workflows.StageReached {
			continue
		}
		var d workflows.DeployState
		if _, err := views.QueryState(ctx, c, st.DeploymentID, "", &d); err != nil {
			continue
		}
		switch d.Status {
		case workflows.StatusParked:
			why := d.Summary
			if d.Parked != nil {
				why = fmt.Sprintf("parked at %s: %s", d.Parked.Step, d.Parked.Reason)
			}
			return failed(fmt.Errorf("stage %s: deployment %s is %s; fix the cause, then `shipline resume %s` to go on from that step (or `shipline cancel %s`)",
				st.Name, st.DeploymentID, why, st.DeploymentID, st.DeploymentID))
		case workflows.StatusFailed, workflows.StatusRefused, workflows.StatusCancelled:
			return failed(fmt.Errorf("stage %s: deployment %s %s: %s", st.Name, st.DeploymentID, d.Status, d.Reason))
		}
	}
	return nil
}

// endedWith is the outcome of a workflow that closed unsuccessfully.
func endedWith(g *globals, closed error, o followOpts) error {
	if o.cancelling {
		if !g.json() {
			fmt.Fprintln(g.stdout, closed.Error())
		}
		return nil
	}
	return failed(closed)
}

// waitStarted waits until a workflow the worker starts (a child) exists.
func waitStarted(ctx context.Context, c client.Client, id string) (string, error) {
	for i := 0; ; i++ {
		desc, err := c.DescribeWorkflow(ctx, id, "")
		if err == nil {
			return desc.WorkflowExecution.RunID, nil
		}
		if i > 300 {
			return "", fmt.Errorf("%s did not start: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitDeployRecorded waits until the release's deploy step shows the outcome.
func waitDeployRecorded(ctx context.Context, g *globals, c client.Client, id, runID string) (*workflows.ReleaseState, error) {
	f := g.follower(c, id, runID)
	for {
		var state workflows.ReleaseState
		ok, _, err := f.next(ctx, &state)
		if err != nil {
			return nil, err
		}
		if ok {
			for _, s := range state.Steps {
				if s.Name == workflows.StepDeploy && s.Status != workflows.StepRunning {
					return &state, nil
				}
			}
		}
		if err := f.pause(ctx); err != nil {
			return nil, err
		}
	}
}
