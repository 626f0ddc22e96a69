package cli

import (
	"cmp"
	"context"
	"fmt"

	ucli "github.com/urfave/cli/v2"
	enumspb "go.temporal.io/api/enums/v1"
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
	// Acceptance is the workflow's answer to the request (absent when Existing).
	Acceptance *workflows.Acceptance `json:"acceptance,omitempty"`
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
	st, err := g.startAccepted(ctx, c, releaseStartOptions(g, id, in), workflows.ReleaseWorkflow, in)
	if err != nil {
		return err
	}
	res.RunID, res.Existing = st.RunID, st.Existing
	if !st.Existing {
		res.Acceptance = &st.Acceptance
		if st.Undecided {
			res.Acceptance = nil
			undecided(g, id)
		} else if !st.Acceptance.Accepted {
			return printRefused(g, res, refusal(id, st.Acceptance))
		}
	}
	if st.Existing && !g.json() {
		fmt.Fprintf(g.stdout, "%s already exists; showing it (a release is made once per version)\n", id)
	}
	if !o.wait && !st.Existing {
		return printStarted(g, res, fmt.Sprintf("release %s of %s started for %s", o.version, o.project, actor))
	}
	state, err := followRelease(ctx, g, c, id, st.RunID, followOpts{})
	res.State = state
	if g.json() {
		if perr := printJSON(g, res); perr != nil {
			return perr
		}
	}
	return err
}

// releaseStartOptions start the Release entity, or find the running one of
// that version. A refused or failed earlier attempt is closed, so a new run starts.
func releaseStartOptions(g *globals, id string, in workflows.ReleaseInput) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                g.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ProjectKey.ValueSet(in.Project), workflows.VersionKey.ValueSet(in.Version), workflows.ActorKey.ValueSet(in.Actor)),
		StaticSummary: fmt.Sprintf("Release %s of %s by %s", in.Version, in.Project, in.Actor),
		StaticDetails: fmt.Sprintf("ref `%s`, requested with `shipline release`", cmp.Or(in.Ref, "main (or the tag "+in.Version+" if already on the remote)")),
	}
}

func printStarted(g *globals, res startResult, what string) error {
	if g.json() {
		return printJSON(g, res)
	}
	fmt.Fprintf(g.stdout, "%s\n  workflow: %s\n  follow:   shipline status %s --watch\n  UI:       %s\n", what, res.WorkflowID, res.WorkflowID, res.UIURL)
	return nil
}

// printRefused prints a refused start (JSON only: the text is the error) and
// returns the refusal.
func printRefused(g *globals, res startResult, refusal error) error {
	if g.json() {
		if err := printJSON(g, res); err != nil {
			return err
		}
	}
	return refusal
}
