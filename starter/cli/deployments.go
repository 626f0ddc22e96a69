package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/shipline/shipline/internal/views"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/shipline/shipline/workflows"
)

func deploymentsCommand(g *globals) *ucli.Command {
	var project, fabric string
	return &ucli.Command{
		Name:  "deployments",
		Usage: "what runs where now: each fabric's jobs, versions, who deployed them, and drift against the live fabric",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &project},
			&ucli.StringFlag{Name: "fabric", Aliases: []string{"f"}, Usage: "only this fabric", Destination: &fabric},
		},
		Action: func(c *ucli.Context) error { return runDeployments(c.Context, g, project, fabric) },
	}
}

// fabricView is one fabric's state as `deployments` shows it.
type fabricView = views.FabricView

func runDeployments(ctx context.Context, g *globals, project, fabric string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	inspect := func(ctx context.Context, in workflows.InspectInput) (workflows.InspectOutput, error) {
		var out workflows.InspectOutput
		err := readProject(ctx, g, c, project, workflows.InspectUpdate, in, &out)
		return out, err
	}
	fabrics, err := views.Deployments(ctx, c, project, fabric, inspect)
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return err
	case err != nil:
		return failed(err)
	}
	if g.json() {
		return printJSON(g, fabrics)
	}
	if len(fabrics) == 0 {
		fmt.Fprintf(g.stdout, "nothing of %s is deployed yet\n", project)
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FABRIC\tJOB\tVERSION\tID\tDEPLOYED BY\tAT\tDEPLOYMENT\tDRIFT\t")
	for _, v := range fabrics {
		for _, j := range v.Jobs {
			dep := j.DeploymentID
			if slices.ContainsFunc(v.Parked, func(p workflows.ParkedDeployment) bool { return p.DeploymentID == dep }) {
				dep += " (parked)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", v.Fabric, j.Job, j.Version, j.ID, j.Actor, j.At.Local().Format("2006-01-02 15:04"), dep, j.Drift)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range fabrics {
		for _, p := range v.Parked {
			fmt.Fprintln(g.stdout, parkedLine(v.Fabric, p))
		}
		if len(v.Queue) > 0 {
			fmt.Fprintln(g.stdout, busyLine(v))
		}
	}
	return printStages(ctx, g, c, project)
}

// busyLine says who holds a fabric, what it waits for, and how many queue behind it.
func busyLine(v fabricView) string {
	line := fmt.Sprintf("fabric %s: %s is deploying", v.Fabric, v.Queue[0].DeploymentID)
	if v.Busy != "" {
		line += " — " + v.Busy
	}
	if len(v.Queue) > 1 {
		line += fmt.Sprintf("; %d waiting", len(v.Queue)-1)
	}
	return line
}

// parkedLine says what a parked deployment left on a fabric and how to go on.
func parkedLine(fabric string, p workflows.ParkedDeployment) string {
	left := "it changed no job here yet"
	if len(p.LeftBehind) > 0 {
		left = fmt.Sprintf("%s run %s from it", strings.Join(p.LeftBehind, ", "), p.Version)
	}
	next := fmt.Sprintf("`shipline resume %s` queues it again, `shipline cancel %s` ends it", p.DeploymentID, p.DeploymentID)
	if p.Superseded != nil {
		next = fmt.Sprintf("superseded (%s): resume is refused, `shipline cancel %s` ends it", p.Superseded.Reason, p.DeploymentID)
	}
	return fmt.Sprintf("fabric %s: %s (%s) is parked at %s: %s; %s; %s", fabric, p.DeploymentID, p.Version, p.Step, firstLine(p.Reason), left, next)
}

func historyCommand(g *globals) *ucli.Command {
	var project, fabric string
	var onlyFailed bool
	return &ucli.Command{
		Name:  "history",
		Usage: "every deployment of a project, failed and cancelled ones included, with reasons and log links",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &project},
			&ucli.StringFlag{Name: "fabric", Aliases: []string{"f"}, Usage: "only deployments to this fabric", Destination: &fabric},
			&ucli.BoolFlag{Name: "failed", Usage: "only failed, refused, parked and cancelled deployments", Destination: &onlyFailed},
		},
		Action: func(c *ucli.Context) error { return runHistory(c.Context, g, project, fabric, onlyFailed) },
	}
}

func runHistory(ctx context.Context, g *globals, project, fabric string, onlyFailed bool) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	rows, err := views.History(ctx, c, project, fabric, onlyFailed, g.workflowURL)
	if err != nil {
		return failed(err)
	}
	if g.json() {
		if rows == nil {
			rows = []views.HistoryRow{}
		}
		return printJSON(g, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(g.stdout, "no deployments of %s match\n", project)
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tDEPLOYMENT\tVERSION\tBY\tFABRICS\tSTATUS\tREASON\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Started.Local().Format("2006-01-02 15:04:05"), r.ID, r.Version, r.Actor, strings.Join(r.Fabrics, ","), r.Status, firstLine(r.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, "logs: shipline logs DEPLOYMENT · details: shipline status DEPLOYMENT")
	return nil
}

func planCommand(g *globals) *ucli.Command {
	var o deployOptions
	return &ucli.Command{
		Name:      "plan",
		Usage:     "what a deploy would build, upload, create, update or leave unchanged — changing nothing",
		ArgsUsage: "VERSION",
		Flags:     deploySelectionFlags(&o),
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return invalid("plan takes exactly one VERSION")
			}
			o.version, o.jobs = c.Args().First(), c.StringSlice("job")
			return runPlan(c.Context, g, o)
		},
	}
}

func runPlan(ctx context.Context, g *globals, o deployOptions) error {
	if err := checkTarget(o.version, o.project); err != nil {
		return err
	}
	actor, c, err := g.session()
	if err != nil {
		return err
	}
	defer c.Close()
	var p workflows.PlanOutput
	in := workflows.PlanInput{Project: o.project, Version: o.version, Actor: actor, Fabric: o.fabric, Jobs: o.jobs}
	if err := readProject(ctx, g, c, o.project, workflows.PlanUpdate, in, &p); err != nil {
		return err
	}
	if g.json() {
		return printJSON(g, p)
	}
	fmt.Fprintf(g.stdout, "plan for %s of %s (commit %s):\n", o.version, o.project, shortHash(p.Commit))
	fmt.Fprintln(g.stdout, "  build:")
	for _, b := range p.Builds {
		what := "build (not in the cache)"
		if b.Action == "cached" {
			what = "from cache: " + b.File
		}
		fmt.Fprintf(g.stdout, "    %-18s %s\n", b.Pipeline, what)
	}
	fmt.Fprintln(g.stdout, "  upload (skipped where the same bytes are already there):")
	for _, u := range p.Uploads {
		fmt.Fprintf(g.stdout, "    %-12s %s\n", u.Fabric, u.Path)
	}
	fmt.Fprintln(g.stdout, "  jobs:")
	for _, j := range p.Jobs {
		line := fmt.Sprintf("    %-12s %-18s %s", j.Fabric, j.Job, j.Action)
		if j.ID != "" {
			line += " (" + j.ID + ")"
		}
		if j.Detail != "" {
			line += ": " + firstLine(j.Detail)
		}
		fmt.Fprintln(g.stdout, line)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
