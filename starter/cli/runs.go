package cli

import (
	"context"
	"fmt"
	"github.com/shipline/shipline/internal/views"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/workflows"
)

type runsOptions struct {
	project, fabric, job string
	limit                int
}

func runsCommand(g *globals) *ucli.Command {
	var o runsOptions
	return &ucli.Command{
		Name:  "runs",
		Usage: "run history of the project's deployed jobs, read from their fabrics, newest first (who triggered runs started through Shipline)",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &o.project},
			&ucli.StringFlag{Name: "fabric", Aliases: []string{"f"}, Usage: "only runs on this fabric", Destination: &o.fabric},
			&ucli.StringFlag{Name: "job", Aliases: []string{"j"}, Usage: "only runs of this job", Destination: &o.job},
			&ucli.IntFlag{Name: "limit", Value: 25, Usage: "read at most `N` runs per job", Destination: &o.limit},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 0 {
				return invalid("runs takes no arguments, e.g. `shipline runs --project demo --fabric dev`")
			}
			return runRuns(c.Context, g, o)
		},
	}
}

// runRow is one run as `runs` shows it.
type runRow struct {
	activities.FabricRun
	// Duration is from start to end of an ended run, in seconds.
	Duration float64 `json:"duration_seconds,omitempty"`
	// WorkflowID is the Run workflow that started it (runs started through Shipline).
	WorkflowID string `json:"workflow_id,omitempty"`
}

// runsResult is the JSON form of `runs`.
type runsResult struct {
	Runs []runRow `json:"runs"`
	// Errors name the jobs whose fabric could not be read.
	Errors []activities.JobRunsError `json:"errors,omitempty"`
}

func runRuns(ctx context.Context, g *globals, o runsOptions) error {
	if err := checkProject(o.project); err != nil {
		return err
	}
	if o.limit < 0 {
		return invalid("--limit %d: give a positive number of runs per job", o.limit)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	// Which jobs Shipline deployed where: the fabric entities' records.
	states, err := views.FabricStates(ctx, c, o.project, o.fabric)
	if err != nil {
		return failed(err)
	}
	in := workflows.ListRunsInput{Project: o.project, Limit: o.limit}
	for _, s := range states {
		for _, name := range sortedKeys(s.Jobs) {
			if o.job == "" || o.job == name {
				in.Jobs = append(in.Jobs, activities.RunsOf{Fabric: s.Fabric, Job: name})
			}
		}
	}
	res := runsResult{Runs: []runRow{}}
	if len(in.Jobs) > 0 {
		// The CLI holds no fabric credentials: the worker reads the fabrics.
		var out workflows.ListRunsOutput
		if err := readProject(ctx, g, c, o.project, workflows.ListRunsUpdate, in, &out); err != nil {
			return err
		}
		started, err := shiplineRuns(ctx, c, o.project)
		if err != nil {
			return failed(err)
		}
		for _, r := range out.Runs {
			row := runRow{FabricRun: r}
			if w, ok := started[r.Fabric+"/"+r.Job+"/"+r.ID]; ok {
				row.WorkflowID = w.id
				if row.TriggeredBy == "" {
					row.TriggeredBy = w.actor
				}
			}
			if !r.StartedAt.IsZero() && !r.EndedAt.IsZero() {
				row.Duration = r.EndedAt.Sub(r.StartedAt).Round(time.Second).Seconds()
			}
			res.Runs = append(res.Runs, row)
		}
		res.Errors = out.Errors
	}
	if g.json() {
		return printJSON(g, res)
	}
	if len(in.Jobs) == 0 {
		fmt.Fprintf(g.stdout, "no job of %s is deployed%s; `shipline deployments --project %s` shows what is\n", o.project, where(o.fabric, o.job), o.project)
		return nil
	}
	if len(res.Runs) == 0 {
		fmt.Fprintf(g.stdout, "no runs of %s%s yet; start one with `shipline run JOB --project %s --fabric FABRIC`\n", o.project, where(o.fabric, o.job), o.project)
	} else {
		tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FABRIC\tJOB\tRUN\tSTATE\tRESULT\tSTARTED\tDURATION\tTRIGGERED BY\tVERSION\tLINK\t")
		for _, r := range res.Runs {
			started := "-"
			if !r.StartedAt.IsZero() {
				started = r.StartedAt.Local().Format("2006-01-02 15:04:05")
			}
			dur := "-"
			if !r.EndedAt.IsZero() && !r.StartedAt.IsZero() {
				dur = (time.Duration(r.Duration) * time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Fabric, r.Job, r.ID, r.State, orDash(string(r.Result)), started, dur,
				orDash(r.TriggeredBy), orDash(r.Version), orDash(r.URL))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, e := range res.Errors {
		fmt.Fprintf(g.stdout, "runs of %s on %s could not be read: %s\n", e.Job, e.Fabric, e.Error)
	}
	return nil
}

func where(fabric, job string) string {
	s := ""
	if job != "" {
		s += " job " + job
	}
	if fabric != "" {
		s += " on fabric " + fabric
	}
	return s
}

type startedRun struct{ id, actor string }

// shiplineRuns maps fabric/job/run ID to the Run workflow that started the
// run and its actor, from the Run workflows' memo and search attributes.
func shiplineRuns(ctx context.Context, c client.Client, project string) (map[string]startedRun, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", workflows.RunWorkflow, workflows.ProjectKey.GetName(), project)
	out := map[string]startedRun{}
	dc := converter.GetDefaultDataConverter()
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 500})
		if err != nil {
			return nil, fmt.Errorf("list runs of %s: %w", project, err)
		}
		for _, ex := range resp.Executions {
			id := ex.GetExecution().GetWorkflowId()
			_, fab, job, _, ok := workflows.ParseRunID(id)
			runID := views.PayloadAsString(ex.GetMemo().GetFields()[workflows.MemoRunID])
			if !ok || runID == "" {
				continue
			}
			var actor string
			if p := ex.GetSearchAttributes().GetIndexedFields()[workflows.ActorKey.GetName()]; p != nil {
				_ = dc.FromPayload(p, &actor)
			}
			key := fab + "/" + job + "/" + runID
			if _, seen := out[key]; !seen {
				out[key] = startedRun{id: id, actor: actor}
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return out, nil
		}
	}
}
