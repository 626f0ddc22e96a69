package cli

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/shipline/shipline/activities"
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

// deploymentRow is one job on one fabric.
type deploymentRow struct {
	workflows.JobRecord
	Drift string `json:"drift"` // in sync, drifted: …, missing, unknown: …
}

// fabricView is one fabric's state as `deployments` shows it.
type fabricView struct {
	Fabric string                 `json:"fabric"`
	Queue  []workflows.QueueEntry `json:"queue"`
	Jobs   []deploymentRow        `json:"jobs"`
	// Parked deployments hold no lock; the jobs they changed before parking
	// are among Jobs, with their deployment ID.
	Parked []workflows.ParkedDeployment `json:"parked,omitempty"`
	// Busy is what the deployment holding the fabric waits for, when it
	// waits for a job's active run to end (its summary).
	Busy string `json:"busy,omitempty"`
}

func runDeployments(ctx context.Context, g *globals, project, fabric string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	states, err := fabricStates(ctx, c, project, fabric)
	if err != nil {
		return failed(err)
	}
	var recorded []activities.DeployedJob
	for _, s := range states {
		for _, name := range sortedKeys(s.Jobs) {
			j := s.Jobs[name]
			recorded = append(recorded, activities.DeployedJob{Project: project, Fabric: s.Fabric, Job: j.Job, Scheduler: j.Scheduler,
				Version: j.Version, Commit: j.Commit, DeploymentID: j.DeploymentID, Artifacts: j.Artifacts})
		}
	}
	drift := map[string]activities.JobDrift{}
	if len(recorded) > 0 {
		var out workflows.InspectOutput
		if err := readProject(ctx, g, c, project, workflows.InspectUpdate, workflows.InspectInput{Jobs: recorded}, &out); err != nil {
			return err
		}
		for _, d := range out.Jobs {
			drift[d.Fabric+"/"+d.Job] = d
		}
	}
	views := make([]fabricView, 0, len(states))
	for _, s := range states {
		// An empty queue or job list is [] in JSON, not null.
		v := fabricView{Fabric: s.Fabric, Queue: s.Queue, Jobs: []deploymentRow{}, Parked: s.Parked}
		if v.Queue == nil {
			v.Queue = []workflows.QueueEntry{}
		}
		for _, name := range sortedKeys(s.Jobs) {
			j := s.Jobs[name]
			v.Jobs = append(v.Jobs, deploymentRow{JobRecord: j, Drift: driftText(drift[s.Fabric+"/"+name])})
		}
		if len(v.Queue) > 0 {
			// Best effort: a holder that does not answer is shown as deploying.
			var holder workflows.DeployState
			if _, err := queryState(ctx, c, v.Queue[0].DeploymentID, "", &holder); err == nil && holder.Runs != nil {
				v.Busy = holder.Summary
			}
		}
		views = append(views, v)
	}
	if g.json() {
		return printJSON(g, views)
	}
	if len(views) == 0 {
		fmt.Fprintf(g.stdout, "nothing of %s is deployed yet\n", project)
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FABRIC\tJOB\tVERSION\tID\tDEPLOYED BY\tAT\tDEPLOYMENT\tDRIFT\t")
	for _, v := range views {
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
	for _, v := range views {
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

func driftText(d activities.JobDrift) string {
	switch {
	case d.Error != "":
		return "unknown: " + firstLine(d.Error)
	case d.Job == "":
		return "unknown"
	case !d.Exists:
		return "missing (deleted on the fabric)"
	case d.Drift:
		return "drifted: " + firstLine(d.Detail)
	default:
		return "in sync"
	}
}

// fabricStates queries every Fabric entity of the project (or one).
func fabricStates(ctx context.Context, c client.Client, project, fabric string) ([]workflows.FabricState, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s' AND ExecutionStatus = 'Running'", workflows.FabricWorkflow, workflows.ProjectKey.GetName(), project)
	if fabric != "" {
		query += fmt.Sprintf(" AND %s = '%s'", workflows.FabricKey.GetName(), fabric)
	}
	ids, err := listIDs(ctx, c, query)
	if err != nil {
		return nil, fmt.Errorf("list fabrics of %s: %w", project, err)
	}
	var states []workflows.FabricState
	for _, id := range ids {
		var s workflows.FabricState
		if _, err := queryState(ctx, c, id, "", &s); err != nil {
			return nil, fmt.Errorf("query %s: %w", id, err)
		}
		states = append(states, s)
	}
	sort.Slice(states, func(i, j int) bool { return states[i].Fabric < states[j].Fabric })
	return states, nil
}

func listIDs(ctx context.Context, c client.Client, query string) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 500})
		if err != nil {
			return nil, err
		}
		for _, ex := range resp.Executions {
			id := ex.GetExecution().GetWorkflowId()
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return ids, nil
		}
	}
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

// historyRow is one deployment.
type historyRow struct {
	ID      string    `json:"deployment_id"`
	Version string    `json:"version"`
	Actor   string    `json:"actor"`
	Fabrics []string  `json:"fabrics"`
	Started time.Time `json:"started"`
	Status  string    `json:"status"`
	Reason  string    `json:"reason,omitempty"`
	Logs    string    `json:"logs"`
	UIURL   string    `json:"ui_url"`
}

func runHistory(ctx context.Context, g *globals, project, fabric string, onlyFailed bool) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", workflows.DeployWorkflow, workflows.ProjectKey.GetName(), project)
	if fabric != "" {
		query += fmt.Sprintf(" AND %s = '%s'", workflows.FabricKey.GetName(), fabric)
	}
	var rows []historyRow
	var token []byte
	dc := converter.GetDefaultDataConverter()
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 500})
		if err != nil {
			return failed(fmt.Errorf("list deployments of %s: %w", project, err))
		}
		for _, ex := range resp.Executions {
			id := ex.GetExecution().GetWorkflowId()
			r := historyRow{ID: id, Started: ex.GetStartTime().AsTime(), Logs: "shipline logs " + id, UIURL: g.workflowURL(id)}
			fields := ex.GetMemo().GetFields()
			_ = dc.FromPayload(fields[workflows.MemoStatus], &r.Status)
			_ = dc.FromPayload(fields[workflows.MemoReason], &r.Reason)
			for k, v := range ex.GetSearchAttributes().GetIndexedFields() {
				switch k {
				case workflows.VersionKey.GetName():
					_ = dc.FromPayload(v, &r.Version)
				case workflows.ActorKey.GetName():
					_ = dc.FromPayload(v, &r.Actor)
				case workflows.FabricKey.GetName():
					_ = dc.FromPayload(v, &r.Fabrics)
				}
			}
			r.Status = historyStatus(r.Status, ex.GetCloseTime() != nil, ex.GetStatus())
			if onlyFailed && !isFailure(r.Status) {
				continue
			}
			rows = append(rows, r)
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Started.After(rows[j].Started) })
	if g.json() {
		if rows == nil {
			rows = []historyRow{}
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

func isFailure(status string) bool {
	switch workflows.Status(status) {
	case workflows.StatusFailed, workflows.StatusRefused, workflows.StatusParked, workflows.StatusCancelled:
		return true
	}
	return status == "terminated" || status == "timed out"
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
