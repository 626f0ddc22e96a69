package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	ucli "github.com/urfave/cli/v2"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/gitrepo"
	"github.com/shipline/shipline/workflows"
)

type releaseOptions struct {
	version, project, ref, message string
	noDeploy, wait                 bool
}

func releaseCommand(g *globals) *ucli.Command {
	var o releaseOptions
	return &ucli.Command{
		Name:      "release",
		Usage:     "tag VERSION of a project on its remote (and deploy it with auto_deploy)",
		ArgsUsage: "VERSION",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &o.project},
			&ucli.StringFlag{Name: "ref", Usage: "branch, tag or commit to release (default: the tag VERSION when it is already on the remote, which adopts it; else main)", Destination: &o.ref},
			&ucli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "message of the annotated tag", Destination: &o.message},
			&ucli.BoolFlag{Name: "no-deploy", Usage: "only tag; deploy later with `shipline deploy`", Destination: &o.noDeploy},
			&ucli.BoolFlag{Name: "wait", Usage: "print progress until the release is done", Destination: &o.wait},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return invalid("release takes exactly one VERSION, e.g. `shipline release v1.0.0 --project demo`")
			}
			o.version = c.Args().First()
			return runRelease(c.Context, g, o)
		},
	}
}

// startResult is what every workflow-starting command prints with --output json.
type startResult struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	UIURL      string `json:"ui_url"`
	// Existing is true when the workflow was already there (nothing new started).
	Existing bool `json:"existing"`
	// State is the final state when --wait was given.
	State any `json:"state,omitempty"`
}

func runRelease(ctx context.Context, g *globals, o releaseOptions) error {
	if err := checkTarget(o.version, o.project); err != nil {
		return err
	}
	if err := workflows.CheckTagMessage(o.message); err != nil {
		return invalid("--message: %v", err)
	}
	if why := gitrepo.CheckRefName(o.ref); why != "" && o.ref != "" {
		return invalid("--ref %.60q is not a valid ref: %s; name a branch, tag or commit", o.ref, why)
	}
	actor, c, err := g.session()
	if err != nil {
		return err
	}
	defer c.Close()

	id := workflows.ReleaseID(o.project, o.version)
	res := startResult{WorkflowID: id, UIURL: g.workflowURL(id)}
	in := workflows.ReleaseInput{Project: o.project, Version: o.version, Actor: actor, Ref: o.ref, Message: o.message, NoDeploy: o.noDeploy}
	if in.Auth, err = g.auth(id, workflows.ActionRelease, actor, in); err != nil {
		return err
	}
	run, existing, err := startRelease(ctx, g, c, id, in)
	if err != nil {
		return err
	}
	res.RunID, res.Existing = run, existing
	if existing && !g.json() {
		fmt.Fprintf(g.stdout, "%s already exists; showing it (a release is made once per version)\n", id)
	}
	if !o.wait && !existing {
		return printStarted(g, res, fmt.Sprintf("release %s of %s started for %s", o.version, o.project, actor))
	}
	state, err := followRelease(ctx, g, c, id, run)
	res.State = state
	if g.json() {
		if perr := printJSON(g, res); perr != nil {
			return perr
		}
	}
	return err
}

// startRelease starts the Release entity, or finds the running one of that
// version. A refused or failed earlier attempt is closed, so a new run starts.
func startRelease(ctx context.Context, g *globals, c client.Client, id string, in workflows.ReleaseInput) (runID string, existing bool, err error) {
	opts := client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                g.taskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ProjectKey.ValueSet(in.Project), workflows.VersionKey.ValueSet(in.Version), workflows.ActorKey.ValueSet(in.Actor)),
		StaticSummary: fmt.Sprintf("Release %s of %s by %s", in.Version, in.Project, in.Actor),
		StaticDetails: fmt.Sprintf("ref `%s`, requested with `shipline release`", cmp.Or(in.Ref, "main (or the tag "+in.Version+" if already on the remote)")),
	}
	run, err := c.ExecuteWorkflow(ctx, opts, workflows.ReleaseWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case err == nil:
		return run.GetRunID(), false, nil
	case errors.As(err, &started):
		return started.RunId, true, nil
	default:
		return "", false, failed(fmt.Errorf("start %s: %w", id, err))
	}
}

// followRelease polls the release until the release step is over, printing
// each step as it moves. It returns an exit error when the release was refused
// or failed.
func followRelease(ctx context.Context, g *globals, c client.Client, id, runID string) (*workflows.ReleaseState, error) {
	p := &stepPrinter{g: g}
	for {
		var state workflows.ReleaseState
		closed, qerr := queryState(ctx, c, id, runID, &state)
		if qerr == nil {
			p.print(state.Steps)
			switch state.Status {
			case workflows.StatusReleased:
				p.done(state.Summary)
				if state.DeployID == "" {
					return &state, nil
				}
				if !g.json() {
					fmt.Fprintf(g.stdout, "deploying (auto_deploy): %s\n", state.DeployID)
				}
				if _, err := waitStarted(ctx, c, state.DeployID); err != nil {
					return &state, failed(err)
				}
				if _, err := followDeploy(ctx, g, c, state.DeployID); err != nil {
					return &state, err
				}
				// The release records the deploy's outcome right after it ends.
				return waitDeployRecorded(ctx, c, id, runID)
			case workflows.StatusRefused, workflows.StatusFailed, workflows.StatusCancelled:
				return &state, failed(errors.New(state.Refusal))
			case workflows.StatusParked:
				p.done(state.Summary)
				return &state, failed(fmt.Errorf("%s is parked at %s: %s", id, state.Parked.Step, state.Parked.Reason))
			}
		}
		if closed != nil {
			return nil, failed(closed)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func printStarted(g *globals, res startResult, what string) error {
	if g.json() {
		return printJSON(g, res)
	}
	fmt.Fprintf(g.stdout, "%s\n  workflow: %s\n  follow:   shipline status %s\n  UI:       %s\n", what, res.WorkflowID, res.WorkflowID, res.UIURL)
	return nil
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
func waitDeployRecorded(ctx context.Context, c client.Client, id, runID string) (*workflows.ReleaseState, error) {
	for {
		var state workflows.ReleaseState
		if _, err := queryState(ctx, c, id, runID, &state); err != nil {
			return nil, failed(err)
		}
		for _, s := range state.Steps {
			if s.Name == workflows.StepDeploy && s.Status != workflows.StepRunning {
				return &state, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
