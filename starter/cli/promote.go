package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/workflows"
)

func promoteCommand(g *globals) *ucli.Command {
	var project, to string
	var wait bool
	var window windowFlags
	return &ucli.Command{
		Name:      "promote",
		Usage:     "promote a release through the promotion stages (dev → qa → prod), with approvals",
		ArgsUsage: "VERSION",
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &project},
			&ucli.StringFlag{Name: "to", Usage: "stop after this stage (a later promote continues)", Destination: &to},
			&ucli.BoolFlag{Name: "wait", Usage: "print progress until promoted, or until it ends or waits for approvals or a window", Destination: &wait},
		}, window.flags()...),
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return invalid("promote takes exactly one VERSION")
			}
			override, err := window.request()
			if err != nil {
				return err
			}
			return runPromote(c.Context, g, c.Args().First(), project, to, wait, override)
		},
	}
}

func runPromote(ctx context.Context, g *globals, version, project, to string, wait bool, override *workflows.WindowOverride) error {
	if err := checkTarget(version, project); err != nil {
		return err
	}
	actor, c, err := g.session()
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.PromoteID(project, version)
	in := workflows.PromoteInput{Project: project, Version: version, Actor: actor, To: to, OverrideWindow: override}
	if in.Auth, err = g.auth(id, workflows.ActionPromote, actor, in); err != nil {
		return err
	}
	st, err := g.startAccepted(ctx, c, client.StartWorkflowOptions{
		ID: id, TaskQueue: g.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ProjectKey.ValueSet(project), workflows.VersionKey.ValueSet(version), workflows.ActorKey.ValueSet(actor)),
		StaticSummary: fmt.Sprintf("Promote %s of %s by %s", version, project, actor),
	}, workflows.PromoteWorkflow, in)
	if err != nil {
		return err
	}
	res := startResult{WorkflowID: id, RunID: st.RunID, UIURL: g.workflowURL(id), Existing: st.Existing}
	if st.Existing {
		if !g.json() {
			fmt.Fprintf(g.stdout, "%s is already running; showing it\n", id)
		}
	} else {
		res.Acceptance = &st.Acceptance
		if st.Undecided {
			res.Acceptance = nil
			undecided(g, id)
		} else if !st.Acceptance.Accepted {
			return printRefused(g, res, refusal(id, st.Acceptance))
		}
	}
	if !wait {
		if res.Existing {
			return runStatus(ctx, g, id)
		}
		return printStarted(g, res, fmt.Sprintf("promotion of %s of %s started for %s", version, project, actor))
	}
	state, err := followPromote(ctx, g, c, id, followOpts{})
	res.State = state
	if g.json() {
		if perr := printJSON(g, res); perr != nil {
			return perr
		}
	}
	return err
}

func stageLine(s workflows.StageState) string {
	line := fmt.Sprintf("%-10s %-10s", s.Status, s.Name)
	if s.Detail != "" {
		line += " " + firstLine(s.Detail)
	}
	if s.DeploymentID != "" && s.Status == workflows.StageDeploying {
		line += " " + s.DeploymentID
	}
	return strings.TrimRight(line, " ")
}

func voteCommand(g *globals, name, update, usage string) *ucli.Command {
	var project, stage, comment, rollback, reviewed string
	var window windowFlags
	flags := []ucli.Flag{
		&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &project},
		&ucli.StringFlag{Name: "stage", Aliases: []string{"s"}, Required: true, Usage: "the stage waiting for approval", Destination: &stage},
		&ucli.StringFlag{Name: "comment", Aliases: []string{"m"}, Usage: "why (recorded; required to reject)", Destination: &comment},
		&ucli.StringFlag{Name: "rollback", Usage: "vote on a rollback's gate: its ID (rollback/<project>/<stage>/<request>) instead of a VERSION", Destination: &rollback},
	}
	if update == workflows.ApproveUpdate {
		flags = append(flags, window.flags()...)
		flags = append(flags, &ucli.StringFlag{Name: "plan", Usage: "the hash of the plan you reviewed (as `status` prints it: 12 characters, or all 64); refused if the gate shows another plan", Destination: &reviewed})
	}
	return &ucli.Command{
		Name: name, Usage: usage, ArgsUsage: "VERSION (or --rollback ID)",
		Flags: flags,
		Action: func(c *ucli.Context) error {
			override, err := window.request()
			if err != nil {
				return err
			}
			if err := checkReviewedFlag(reviewed); err != nil {
				return err
			}
			if update == workflows.RejectUpdate && strings.TrimSpace(comment) == "" {
				return invalid("reject needs --comment: say why (it is recorded and shown to the requester), e.g. `shipline reject v1.2.0 --project demo --stage prod --comment \"failing smoke test\"`")
			}
			if rollback != "" {
				if c.NArg() != 0 || !strings.HasPrefix(rollback, workflows.RollbackID(project, stage, "")) {
					return invalid("--rollback takes the rollback's ID, rollback/%s/%s/<request>, and no VERSION", project, stage)
				}
				return runVote(c.Context, g, project, "", rollback, update, stage, comment, reviewed, override)
			}
			if c.NArg() != 1 {
				return invalid("%s takes exactly one VERSION", name)
			}
			version := c.Args().First()
			if err := versionCheckCLI(version); err != nil {
				return err
			}
			return runVote(c.Context, g, project, version, workflows.PromoteID(project, version), update, stage, comment, reviewed, override)
		},
	}
}

func runVote(ctx context.Context, g *globals, project, version, id, update, stage, comment, reviewed string, override *workflows.WindowOverride) error {
	actor, c, err := g.session()
	if err != nil {
		return err
	}
	defer c.Close()
	vote := workflows.Vote{Stage: stage, Actor: actor, Comment: comment, OverrideWindow: override}
	var st workflows.StageState
	var localErr error
	err = g.withWorker(ctx, c, id, func(ctx context.Context) error {
		// An approval names the plan the gate shows (printed first), or the
		// one the approver reviewed (--plan), signed with it.
		if update == workflows.ApproveUpdate {
			shown := gatePlan(ctx, c, id, stage)
			if shown != nil {
				if shown.Plan != nil {
					vote.PlanHash = shown.Plan.Hash
				}
				if !g.json() {
					printPlan(g.stdout, "", *shown)
				}
			}
			if reviewed != "" {
				if vote.PlanHash, localErr = reviewedPlan(shown, stage, id, reviewed); localErr != nil {
					return nil
				}
			}
		}
		if vote.Auth, localErr = g.auth(id, update, actor, vote); localErr != nil {
			return nil
		}
		return sendUpdate(ctx, c, id, update, vote, &st)
	})
	if localErr != nil {
		return localErr
	}
	if errors.Is(err, errNoWorker) {
		return err
	}
	if err != nil {
		auditRefusal(ctx, g, c, project, workflows.Refusal{Actor: actor, Action: update, Target: id, Version: version, Stage: stage, Reason: err.Error(), At: time.Now().UTC()}, err)
		return failed(fmt.Errorf("%s refused: %w", update, err))
	}
	if g.json() {
		return printJSON(g, st)
	}
	if override != nil && st.Status == workflows.StageClosed {
		fmt.Fprintln(g.stdout, windowOverrideLine(st))
		return nil
	}
	fmt.Fprintf(g.stdout, "%s: %d of %d approvals", st.Name, len(st.Approvals), st.Required)
	if vote.PlanHash != "" {
		fmt.Fprintf(g.stdout, " (you approved plan %s)", shortHash12(vote.PlanHash))
	}
	if st.Rejection != nil {
		fmt.Fprintf(g.stdout, "; rejected by %s", st.Rejection.Actor)
	}
	fmt.Fprintln(g.stdout)
	if override != nil {
		fmt.Fprintln(g.stdout, windowOverrideLine(st))
	}
	return nil
}

// sendUpdate sends an update and waits for its result; refusals come back as
// plain errors carrying the workflow's message.
func sendUpdate(ctx context.Context, c client.Client, id, update string, arg, out any) error {
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: update, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err == nil {
		err = h.Get(ctx, out)
	}
	if err == nil {
		return nil
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("%s is not running (finished, or never started)", id)
	}
	if apperr.Classify(err) == apperr.Refused {
		return recordedRefusal{msg: cleanWorkflowError(err)}
	}
	return errors.New(cleanWorkflowError(err))
}

// recordedRefusal is an update refused by its workflow's handler: the workflow
// recorded it in its history and in the project's audit, so the CLI does not.
type recordedRefusal struct{ msg string }

func (e recordedRefusal) Error() string { return e.msg }

// auditRefusal records a refused update in the project's Audit entity unless
// the workflow did (a refusal that never reached a handler: the workflow is
// not running, or was still starting).
func auditRefusal(ctx context.Context, g *globals, c client.Client, project string, r workflows.Refusal, err error) {
	if errors.As(err, &recordedRefusal{}) {
		return
	}
	recordRefusal(ctx, g, c, project, r)
}

func deleteCommand(g *globals) *ucli.Command {
	var project string
	return &ucli.Command{
		Name:      "delete",
		Usage:     "delete a release that only reached the first stage (tag, artifacts, jobs revert); refused once linked",
		ArgsUsage: "VERSION",
		Flags:     []ucli.Flag{&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &project}},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return invalid("delete takes exactly one VERSION")
			}
			version := c.Args().First()
			if err := versionCheckCLI(version); err != nil {
				return err
			}
			return runDelete(c.Context, g, project, version)
		},
	}
}

func runDelete(ctx context.Context, g *globals, project, version string) error {
	actor, c, err := g.session()
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.ReleaseID(project, version)
	var res workflows.DeleteResult
	req := workflows.DeleteRequest{Actor: actor}
	if req.Auth, err = g.auth(id, workflows.ActionDelete, actor, req); err != nil {
		return err
	}
	err = g.withWorker(ctx, c, id, func(ctx context.Context) error { return sendUpdate(ctx, c, id, workflows.DeleteUpdate, req, &res) })
	if errors.Is(err, errNoWorker) {
		return err
	}
	if err != nil {
		auditRefusal(ctx, g, c, project, workflows.Refusal{Actor: actor, Action: "delete", Target: id, Version: version, Reason: err.Error(), At: time.Now().UTC()}, err)
		return failed(fmt.Errorf("delete refused: %w", err))
	}
	if g.json() {
		return printJSON(g, res)
	}
	fmt.Fprintf(g.stdout, "deleted %s of %s: tag deleted %v, %d artifacts removed\n", version, project, res.TagDeleted, res.Artifacts)
	for _, r := range res.Reverted {
		fmt.Fprintf(g.stdout, "  reverted %s\n", r)
	}
	for _, r := range res.Removed {
		fmt.Fprintf(g.stdout, "  removed  %s\n", r)
	}
	return nil
}
