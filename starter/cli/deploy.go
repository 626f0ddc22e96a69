package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	ucli "github.com/urfave/cli/v2"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/version"
	"github.com/shipline/shipline/workflows"
)

type deployOptions struct {
	version, project, fabric string
	jobs                     []string
	wait                     bool
	window                   windowFlags
}

func deploySelectionFlags(o *deployOptions) []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &o.project},
		&ucli.StringFlag{Name: "fabric", Aliases: []string{"f"}, Usage: "deploy every job to this fabric instead of its own", Destination: &o.fabric},
		&ucli.StringSliceFlag{Name: "job", Aliases: []string{"j"}, Usage: "deploy only this job (repeatable; needs selective_jobs)"},
	}
}

func deployCommand(g *globals) *ucli.Command {
	var o deployOptions
	return &ucli.Command{
		Name:      "deploy",
		Usage:     "build, upload and schedule a released VERSION on its fabrics",
		ArgsUsage: "VERSION",
		Flags: append(append(deploySelectionFlags(&o),
			&ucli.BoolFlag{Name: "wait", Usage: "print progress until the deployment is done, parked or waiting for its stage's window", Destination: &o.wait}), o.window.flags()...),
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return invalid("deploy takes exactly one VERSION, e.g. `shipline deploy v1.0.0 --project demo`")
			}
			o.version, o.jobs = c.Args().First(), c.StringSlice("job")
			return runDeploy(c.Context, g, o)
		},
	}
}

func runDeploy(ctx context.Context, g *globals, o deployOptions) error {
	if err := checkTarget(o.version, o.project); err != nil {
		return err
	}
	actor, c, err := g.session()
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.DeployID(o.project, o.version, g.newRequestID())
	in := workflows.DeployInput{Project: o.project, Version: o.version, Actor: actor, Fabric: o.fabric, Jobs: o.jobs, Trigger: "cli"}
	if in.OverrideWindow, err = o.window.request(); err != nil {
		return err
	}
	if in.Auth, err = g.auth(id, workflows.ActionDeploy, actor, in); err != nil {
		return err
	}
	st, err := g.startAccepted(ctx, c, client.StartWorkflowOptions{
		ID: id, TaskQueue: g.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ProjectKey.ValueSet(o.project), workflows.VersionKey.ValueSet(o.version), workflows.ActorKey.ValueSet(actor)),
		StaticSummary: fmt.Sprintf("Deploy %s of %s by %s", o.version, o.project, actor),
	}, workflows.DeployWorkflow, in)
	if err != nil {
		return err
	}
	res := startResult{WorkflowID: id, RunID: st.RunID, UIURL: g.workflowURL(id), Acceptance: &st.Acceptance}
	if st.Undecided {
		res.Acceptance = nil
		undecided(g, id)
	} else if !st.Acceptance.Accepted {
		return printRefused(g, res, refusal(id, st.Acceptance))
	}
	if !o.wait {
		return printStarted(g, res, fmt.Sprintf("deploy of %s of %s started for %s", o.version, o.project, actor))
	}
	if !g.json() {
		fmt.Fprintf(g.stdout, "deploying %s of %s (%s)\n", o.version, o.project, id)
	}
	state, err := followDeploy(ctx, g, c, id, followOpts{})
	res.State = state
	if g.json() {
		if perr := printJSON(g, res); perr != nil {
			return perr
		}
	}
	return err
}

// newRequestID names one deployment: a sortable time plus a random suffix.
func newRequestID() string {
	return time.Now().UTC().Format("20060102-150405") + "-" + uuid.NewString()[:4]
}

// printBuilds prints each pipeline's build state once per change.
func printBuilds(g *globals, s workflows.DeployState, seen map[string]workflows.StepStatus) {
	if g.json() {
		return
	}
	for _, name := range sortedKeys(s.Builds) {
		b := s.Builds[name]
		// A running build is not announced: it may be a cache hit.
		if b.Status == workflows.StepPending || b.Status == workflows.StepRunning || seen[name] == b.Status {
			continue
		}
		seen[name] = b.Status
		fmt.Fprintf(g.stdout, "    %s\n", buildLine(b))
	}
}

func buildLine(b workflows.PipelineBuild) string {
	switch {
	case b.Status == workflows.StepDone && b.Cached:
		return fmt.Sprintf("%-8s %-18s %s (from cache)", "cached", b.Pipeline, b.File)
	case b.Status == workflows.StepDone:
		return fmt.Sprintf("%-8s %-18s %s built in %.1fs", "built", b.Pipeline, b.File, b.Seconds)
	case b.Status == workflows.StepFailed:
		return fmt.Sprintf("%-8s %-18s %s", "failed", b.Pipeline, firstLine(b.Error))
	default: // running: a cache lookup or a build, not known yet
		return fmt.Sprintf("%-8s %s", "running", b.Pipeline)
	}
}

// versionCheckCLI refuses a malformed version before anything starts (exit 2).
func versionCheckCLI(v string) error {
	if err := version.Check(v); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// checkTarget refuses a malformed version or project before anything starts (exit 2).
func checkTarget(v, project string) error {
	if err := versionCheckCLI(v); err != nil {
		return err
	}
	return checkProject(project)
}

// parseWorkflowID reads the project and version from a deployment ID
// (deploy/<project>/<version>/<request>) or a release ID (release/<project>/<version>).
func parseWorkflowID(id string) (project, version string, ok bool) {
	if p, v, ok := workflows.ParseReleaseID(id); ok {
		return p, v, true
	}
	parts := strings.Split(id, "/")
	if len(parts) != 4 || parts[0] != "deploy" {
		return "", "", false
	}
	return parts[1], parts[2], true
}
