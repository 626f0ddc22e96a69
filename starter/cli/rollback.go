package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/shipline/shipline/internal/views"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/workflows"
)

// rollbackOptions are the flags of `shipline rollback`.
type rollbackOptions struct {
	project, stage, to, reason string
	emergency, wait            bool
}

func rollbackCommand(g *globals) *ucli.Command {
	var o rollbackOptions
	return &ucli.Command{
		Name:  "rollback",
		Usage: "redeploy a stage's previous verified release (or --to one it verified) and hold the stage",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &o.project},
			&ucli.StringFlag{Name: "stage", Aliases: []string{"s"}, Required: true, Usage: "the stage to roll back", Destination: &o.stage},
			&ucli.StringFlag{Name: "to", Usage: "the release to roll back to (one the stage verified); default: the one verified before the current", Destination: &o.to},
			&ucli.StringFlag{Name: "reason", Aliases: []string{"m"}, Usage: "why (recorded, shown with the stage's hold)", Destination: &o.reason},
			&ucli.BoolFlag{Name: "emergency", Usage: "skip the stage's approval gate (members of the stage's owner team only; recorded)", Destination: &o.emergency},
			&ucli.BoolFlag{Name: "wait", Usage: "print progress until rolled back, or until it ends or waits for approvals", Destination: &o.wait},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 0 {
				return invalid("rollback takes no arguments: name the release with --to VERSION")
			}
			if o.to != "" {
				if err := versionCheckCLI(o.to); err != nil {
					return err
				}
			}
			return runRollback(c.Context, g, o)
		},
	}
}

func runRollback(ctx context.Context, g *globals, o rollbackOptions) error {
	if err := checkProject(o.project); err != nil {
		return err
	}
	if err := checkStageName(o.stage); err != nil {
		return err
	}
	actor, c, err := g.session()
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.RollbackID(o.project, o.stage, g.newRequestID())
	in := workflows.PromoteInput{Project: o.project, Version: o.to, Actor: actor,
		Rollback: &workflows.RollbackRequest{Stage: o.stage, Reason: o.reason, Emergency: o.emergency}}
	if in.Auth, err = g.auth(id, workflows.ActionRollback, actor, in); err != nil {
		return err
	}
	st, err := g.startAccepted(ctx, c, client.StartWorkflowOptions{
		ID: id, TaskQueue: g.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.ProjectKey.ValueSet(o.project), workflows.ActorKey.ValueSet(actor)),
		StaticSummary:            fmt.Sprintf("Roll back stage %s of %s by %s", o.stage, o.project, actor),
	}, workflows.RollbackWorkflow, in)
	if err != nil {
		return err
	}
	res := startResult{WorkflowID: id, RunID: st.RunID, UIURL: g.workflowURL(id), Existing: st.Existing}
	res.Acceptance = &st.Acceptance
	if st.Undecided {
		res.Acceptance = nil
		undecided(g, id)
	} else if !st.Acceptance.Accepted {
		return printRefused(g, res, refusal(id, st.Acceptance))
	}
	if !o.wait {
		what := "the previous verified release"
		if o.to != "" {
			what = o.to
		}
		return printStarted(g, res, fmt.Sprintf("rollback of %s of %s to %s started for %s; approvals: `shipline approve --rollback %s --project %s --stage %s`",
			o.stage, o.project, what, actor, id, o.project, o.stage))
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

func releaseHoldCommand(g *globals) *ucli.Command {
	var project, stage string
	var clear bool
	return &ucli.Command{
		Name:  "release-hold",
		Usage: "show a stage's hold (set by a rollback), or --clear it (the stage's owner team)",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &project},
			&ucli.StringFlag{Name: "stage", Aliases: []string{"s"}, Required: true, Usage: "the held stage", Destination: &stage},
			&ucli.BoolFlag{Name: "clear", Usage: "clear the hold: promotions into the stage go on", Destination: &clear},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 0 {
				return invalid("release-hold takes no arguments")
			}
			return runReleaseHold(c.Context, g, project, stage, clear)
		},
	}
}

func runReleaseHold(ctx context.Context, g *globals, project, stage string, clear bool) error {
	if err := checkProject(project); err != nil {
		return err
	}
	if err := checkStageName(stage); err != nil {
		return err
	}
	actor, c, err := g.session()
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.StageID(project, stage)
	var ledger workflows.StageLedger
	if !clear {
		if _, err := views.QueryState(ctx, c, id, "", &ledger); err != nil {
			return failed(fmt.Errorf("stage %s of %s has no record yet (nothing verified nor rolled back there): %w", stage, project, err))
		}
		return printLedger(g, ledger)
	}
	req := workflows.ReleaseHoldRequest{Actor: actor, Clear: true}
	if req.Auth, err = g.auth(id, workflows.ActionClearHold, actor, req); err != nil {
		return err
	}
	err = g.withWorker(ctx, c, id, func(ctx context.Context) error {
		return sendUpdate(ctx, c, id, workflows.ReleaseHoldUpdate, req, &ledger)
	})
	if errors.Is(err, errNoWorker) {
		return err
	}
	if err != nil {
		auditRefusal(ctx, g, c, project, workflows.Refusal{Actor: actor, Action: workflows.ActionClearHold, Target: id, Stage: stage, Reason: err.Error(), At: time.Now().UTC()}, err)
		return failed(fmt.Errorf("release-hold refused: %w", err))
	}
	if g.json() {
		return printJSON(g, ledger)
	}
	fmt.Fprintf(g.stdout, "cleared the hold of %s of %s; promotions into it go on\n", stage, project)
	return nil
}

// printLedger prints a stage's record: what it runs, what it verified, its hold.
func printLedger(g *globals, l workflows.StageLedger) error {
	if g.json() {
		return printJSON(g, l)
	}
	current := "-"
	if l.Current != nil {
		current = l.Current.Version
	}
	var verified []string
	for _, v := range l.Verified {
		verified = append(verified, v.Version)
	}
	fmt.Fprintf(g.stdout, "stage %s of %s runs %s; verified: %s\n", l.Stage, l.Project, current, orDash(strings.Join(verified, ", ")))
	if l.Hold != nil {
		fmt.Fprintln(g.stdout, l.Hold.Held(l.Project, l.Stage))
	} else {
		fmt.Fprintln(g.stdout, "not held")
	}
	return nil
}

// checkStageName refuses a stage name that cannot be one (stage names follow platform.yaml's name rule).
func checkStageName(stage string) error {
	if !platform.NameRE.MatchString(stage) {
		return invalid("--stage %q is not a stage name: stages are named in platform.yaml's promotion.stages (e.g. qa)", stage)
	}
	return nil
}

func verifyCommand(g *globals) *ucli.Command {
	var project, stage string
	var wait bool
	return &ucli.Command{
		Name:      "verify",
		Usage:     "rerun a stage's verification of a release (its verify jobs on the stage's fabrics) and record the result",
		ArgsUsage: "VERSION",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &project},
			&ucli.StringFlag{Name: "stage", Aliases: []string{"s"}, Required: true, Usage: "the stage whose verification to rerun", Destination: &stage},
			&ucli.BoolFlag{Name: "wait", Usage: "print progress until the verification ends", Destination: &wait},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return invalid("verify takes exactly one VERSION")
			}
			return runVerify(c.Context, g, c.Args().First(), project, stage, wait)
		},
	}
}

func runVerify(ctx context.Context, g *globals, version, project, stage string, wait bool) error {
	if err := checkTarget(version, project); err != nil {
		return err
	}
	if err := checkStageName(stage); err != nil {
		return err
	}
	actor, c, err := g.session()
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.VerifyID(project, stage, version, g.newRequestID())
	in := workflows.PromoteInput{Project: project, Version: version, Actor: actor, Reverify: stage}
	if in.Auth, err = g.auth(id, workflows.ActionVerify, actor, in); err != nil {
		return err
	}
	st, err := g.startAccepted(ctx, c, client.StartWorkflowOptions{
		ID: id, TaskQueue: g.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ProjectKey.ValueSet(project), workflows.VersionKey.ValueSet(version), workflows.ActorKey.ValueSet(actor)),
		StaticSummary: fmt.Sprintf("Verify %s of %s on stage %s by %s", version, project, stage, actor),
	}, workflows.VerifyWorkflow, in)
	if err != nil {
		return err
	}
	res := startResult{WorkflowID: id, RunID: st.RunID, UIURL: g.workflowURL(id), Existing: st.Existing}
	res.Acceptance = &st.Acceptance
	if st.Undecided {
		res.Acceptance = nil
		undecided(g, id)
	} else if !st.Acceptance.Accepted {
		return printRefused(g, res, refusal(id, st.Acceptance))
	}
	if !wait {
		return printStarted(g, res, fmt.Sprintf("verification of %s of %s on %s started for %s", version, project, stage, actor))
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

// printStages prints, under `releases` and `deployments`, each stage's
// record: the release it runs, the one it verified before, and its hold.
// Stages that never verified nor rolled back a release have no record.
func printStages(ctx context.Context, g *globals, c client.Client, project string) error {
	ledgers, err := views.StageLedgers(ctx, c, project)
	if err != nil {
		return failed(err)
	}
	for _, l := range ledgers {
		fmt.Fprintln(g.stdout, stageSummary(l))
	}
	return nil
}

// stageSummary is one stage's line, e.g. "stage qa: runs v1.0.0; previous verified v0.9.0; held since …".
func stageSummary(l workflows.StageLedger) string {
	line := "stage " + l.Stage + ": runs "
	current := ""
	if l.Current != nil {
		current = l.Current.Version
	}
	line += orDash(current)
	for i := len(l.Verified) - 1; i >= 0; i-- {
		if v := l.Verified[i].Version; v != current {
			line += "; previous verified " + v
			break
		}
	}
	if l.Hold != nil {
		return line + "; " + l.Hold.Held(l.Project, l.Stage)
	}
	return line + "; not held"
}
