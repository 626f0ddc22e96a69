package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/workflows"
)

// started is what starting a Release, Deploy or Promote gave.
type started struct {
	RunID string
	// Existing: a running workflow of that ID was there (nothing new started).
	Existing bool
	// Acceptance is the workflow's answer to the request (zero when Existing).
	Acceptance workflows.Acceptance
	// Undecided: the workflow had not answered within acceptWait (a step
	// before authorize is still running); a refusal will show in its status.
	Undecided bool
}

// acceptTimeout is how long a start waits for the workflow's answer.
const acceptTimeout = 30 * time.Second

func (g *globals) acceptWait() time.Duration {
	if g.acceptEvery > 0 {
		return g.acceptEvery
	}
	return acceptTimeout
}

// undecided prints that the request is started but not yet accepted.
func undecided(g *globals, id string) {
	if !g.json() {
		fmt.Fprintf(g.stdout, "%s has not passed its authorize step yet; a refusal will show in `shipline status %s`\n", id, id)
	}
}

// startAccepted starts a workflow together with its AcceptUpdate
// (update-with-start) and returns once the workflow has accepted or refused
// the request, so a refusal is reported at once, also without --wait. It says
// within seconds when no worker polls the task queue, before anything starts.
// opts must set a WorkflowIDConflictPolicy; with FAIL a running workflow of
// the same ID is reported as Existing.
func (g *globals) startAccepted(ctx context.Context, c client.Client, opts client.StartWorkflowOptions, workflowType string, in any) (started, error) {
	var st started
	if err := g.checkPollers(ctx, c); err != nil {
		return st, failed(err)
	}
	err := g.withWorker(ctx, c, opts.ID, func(ctx context.Context) error {
		op := c.NewWithStartWorkflowOperation(opts, workflowType, in)
		h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
			StartWorkflowOperation: op,
			UpdateOptions:          client.UpdateWorkflowOptions{UpdateName: workflows.AcceptUpdate, WaitForStage: client.WorkflowUpdateStageAccepted},
		})
		if err != nil {
			return err
		}
		if run, err := op.Get(ctx); err == nil {
			st.RunID = run.GetRunID()
		}
		// The answer comes after the authorize step; a step before it (a slow
		// git fetch) must not hold the command silently.
		actx, cancel := context.WithTimeout(ctx, g.acceptWait())
		defer cancel()
		err = h.Get(actx, &st.Acceptance)
		if err != nil && ctx.Err() == nil && actx.Err() != nil {
			st.Acceptance = workflows.Acceptance{Status: workflows.StatusRunning}
			st.Undecided = true
			return nil
		}
		if err != nil && strings.Contains(err.Error(), "unknown update") {
			// A worker older than the accepted update: the workflow started,
			// and reports a refusal through its state, as before.
			st.Acceptance = workflows.Acceptance{Accepted: true, Status: workflows.StatusRunning}
			return nil
		}
		return err
	})
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	var ee *exitError
	switch {
	case err == nil:
		return st, nil
	case errors.As(err, &already):
		st.RunID, st.Existing = already.RunId, true
		return st, nil
	case errors.As(err, &ee):
		return st, err
	default:
		return st, failed(fmt.Errorf("start %s: %s", opts.ID, cleanWorkflowError(err)))
	}
}

// refusal is the exit error for a request the workflow did not accept.
func refusal(id string, a workflows.Acceptance) error {
	if a.Status == workflows.StatusParked {
		return failed(fmt.Errorf("%s is parked at %s: %s; fix the cause, then `shipline resume %s` (or `shipline cancel %s`)", id, a.Step, a.Reason, id, id))
	}
	return failed(errors.New(a.Reason))
}
