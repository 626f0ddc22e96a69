package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/shipline/shipline/internal/views"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/shipline/shipline/workflows"
)

func statusCommand(g *globals) *ucli.Command {
	var watch bool
	return &ucli.Command{
		Name:      "status",
		Usage:     "show a workflow's state and steps (e.g. release/demo/v1.0.0); --watch follows it live",
		ArgsUsage: "ID",
		Flags:     []ucli.Flag{&ucli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "print progress until it is done, parked or ended", Destination: &watch}},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return invalid("status takes one workflow ID, e.g. `shipline status release/demo/v1.0.0`")
			}
			if watch {
				return runWatch(c.Context, g, c.Args().First())
			}
			return runStatus(c.Context, g, c.Args().First())
		},
	}
}

// runWatch follows any Shipline workflow live until it ends, parks or waits
// for people, then (with --output json) prints its status.
func runWatch(ctx context.Context, g *globals, id string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	desc, err := c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return notFound(id, err)
	}
	if !g.json() {
		fmt.Fprintf(g.stdout, "%s  (%s)\n", id, desc.WorkflowType.Name)
	}
	_, ferr := followKind(ctx, g, c, id, "", desc.WorkflowType.Name, followOpts{})
	if g.json() {
		if err := runStatus(ctx, g, id); err != nil {
			return err
		}
	}
	return ferr
}

// statusResult is the JSON form of `shipline status`.
type statusResult struct {
	WorkflowID string          `json:"workflow_id"`
	RunID      string          `json:"run_id"`
	Type       string          `json:"type"`
	Execution  string          `json:"execution"` // Temporal's execution status: Running, Completed, Failed, ...
	Started    time.Time       `json:"started"`
	Closed     *time.Time      `json:"closed,omitempty"`
	Failure    string          `json:"failure,omitempty"`
	UIURL      string          `json:"ui_url"`
	State      json.RawMessage `json:"state,omitempty"`
	// Notifications are the events the workflow sent (its state's notices)
	// and how their delivery went, newest last.
	Notifications []views.NoticeStatus `json:"notifications,omitempty"`
}

func runStatus(ctx context.Context, g *globals, id string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	desc, err := c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return notFound(id, err)
	}
	res := statusResult{
		WorkflowID: id, RunID: desc.WorkflowExecution.RunID, Type: desc.WorkflowType.Name,
		Execution: views.ExecutionStatus(desc.Status), Started: desc.WorkflowStartTime, UIURL: g.workflowURL(id),
	}
	if desc.WorkflowCloseTime != nil && !desc.WorkflowCloseTime.IsZero() {
		res.Closed = desc.WorkflowCloseTime
		res.Failure = views.CloseFailure(ctx, c, id, res.RunID)
	}
	var raw json.RawMessage
	var qerr error
	// The state comes from the worker: say so within seconds when none serves it.
	werr := g.withWorker(ctx, c, id, func(ctx context.Context) error {
		_, qerr = views.QueryState(ctx, c, id, res.RunID, &raw)
		if qerr == nil {
			var s struct {
				Notices []workflows.Notice `json:"notices"`
			}
			if json.Unmarshal(raw, &s) == nil && len(s.Notices) > 0 {
				res.Notifications = views.Notices(ctx, c, s.Notices)
			}
		}
		return nil
	})
	if werr == nil && qerr == nil {
		res.State = raw
	}
	if g.json() {
		if err := printJSON(g, res); err != nil {
			return err
		}
	} else {
		printStatus(g, res)
	}
	return werr
}

func printStatus(g *globals, res statusResult) {
	fmt.Fprintf(g.stdout, "%s  (%s, %s)\n", res.WorkflowID, res.Type, strings.ToLower(res.Execution))
	var p workflows.Progress
	if len(res.State) > 0 && json.Unmarshal(res.State, &p) == nil {
		if p.Summary != "" {
			fmt.Fprintf(g.stdout, "  %s\n", p.Summary)
		}
		if len(p.Steps) > 0 {
			fmt.Fprintln(g.stdout, "  steps:")
			for _, s := range p.Steps {
				fmt.Fprintf(g.stdout, "    %s\n", stepLine(s))
			}
		}
	}
	printDetails(g, res.State)
	printNotifications(g, res.Notifications)
	if res.Failure != "" && (p.Summary == "" || !strings.Contains(p.Summary, res.Failure)) {
		fmt.Fprintf(g.stdout, "  failure: %s\n", res.Failure)
	}
	fmt.Fprintf(g.stdout, "  started: %s\n", g.local(res.Started).Format(time.DateTime))
	if res.Closed != nil {
		fmt.Fprintf(g.stdout, "  closed:  %s\n", g.local(*res.Closed).Format(time.DateTime))
	}
	fmt.Fprintf(g.stdout, "  UI:      %s\n", res.UIURL)
}

// printNotifications lists the events a workflow sent and how each target
// took them; deliveries that failed or retry are what to look at.
func printNotifications(g *globals, ns []views.NoticeStatus) {
	if len(ns) == 0 {
		return
	}
	fmt.Fprintln(g.stdout, "  notifications:")
	for _, n := range ns {
		event := n.Event
		if n.Stage != "" {
			event += " (" + n.Stage + ")"
		}
		parts := make([]string, len(n.Deliveries))
		for i, d := range n.Deliveries {
			parts[i] = d.Text()
		}
		fmt.Fprintf(g.stdout, "    %s  %-28s %s\n", g.local(n.At).Format(time.DateTime), event, strings.Join(parts, "; "))
	}
}

func stepLine(s workflows.Step) string {
	line := fmt.Sprintf("%-8s %-18s", s.Status, s.Name)
	if s.Detail != "" {
		line += " " + firstLine(s.Detail)
	}
	return strings.TrimRight(line, " ")
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

func notFound(id string, err error) error {
	if strings.Contains(err.Error(), "not found") {
		return failed(fmt.Errorf("no workflow %q in this namespace; list releases with `shipline releases --project P`", id))
	}
	return failed(fmt.Errorf("describe %s: %w", id, err))
}

func printJSON(g *globals, v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stepPrinter prints steps as they move, each change once.
type stepPrinter struct {
	g    *globals
	seen map[string]workflows.StepStatus
	// quiet prints only the outcome (following a cancellation).
	quiet bool
}

func (p *stepPrinter) print(steps []workflows.Step) {
	if p.g.json() || p.quiet {
		return
	}
	if p.seen == nil {
		p.seen = map[string]workflows.StepStatus{}
	}
	for _, s := range steps {
		if s.Status == workflows.StepPending || p.seen[s.Name] == s.Status {
			continue
		}
		p.seen[s.Name] = s.Status
		fmt.Fprintf(p.g.stdout, "  %s\n", stepLine(s))
	}
}

// seenFailed marks the failed steps of steps as printed: following a resumed
// workflow shows the step's new run, not the failure being resumed.
func (p *stepPrinter) seenFailed(steps []workflows.Step) {
	for _, s := range steps {
		if s.Status == workflows.StepFailed {
			if p.seen == nil {
				p.seen = map[string]workflows.StepStatus{}
			}
			p.seen[s.Name] = s.Status
		}
	}
}

func (p *stepPrinter) done(summary string) {
	if !p.g.json() {
		fmt.Fprintln(p.g.stdout, summary)
	}
}

// printDetails prints what a Deploy or Promote state adds to the steps:
// queue position, parked reason, builds, jobs, stages and the pending explanation.
func printDetails(g *globals, raw json.RawMessage) {
	var d struct {
		Pending string                             `json:"pending"`
		Stages  []workflows.StageState             `json:"stages"`
		Waiting *workflows.Waiting                 `json:"waiting"`
		Parked  *workflows.Parked                  `json:"parked"`
		Builds  map[string]workflows.PipelineBuild `json:"builds"`
		Jobs    []workflows.JobRecord              `json:"jobs"`
		Window  *workflows.WindowWait              `json:"window"`
		// Libraries a release published.
		Libraries map[string]workflows.PublishedLibrary `json:"libraries"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &d) != nil {
		return
	}
	var builds []string
	for _, name := range sortedKeys(d.Builds) {
		if b := d.Builds[name]; b.Status != workflows.StepPending {
			builds = append(builds, buildLine(b))
		}
	}
	if len(builds) > 0 { // none started yet (waiting in the queue or for a window): no heading
		fmt.Fprintln(g.stdout, "  builds:")
		for _, l := range builds {
			fmt.Fprintf(g.stdout, "    %s\n", l)
		}
	}
	printPublishedLibraries(g, d.Libraries)
	if len(d.Jobs) > 0 {
		fmt.Fprintln(g.stdout, "  jobs:")
		for _, j := range d.Jobs {
			fmt.Fprintf(g.stdout, "    %-12s %-18s %-9s %s\n", j.Fabric, j.Job, j.Action, j.ID)
		}
	}
	if len(d.Stages) > 0 {
		fmt.Fprintln(g.stdout, "  stages:")
		for _, st := range d.Stages {
			fmt.Fprintf(g.stdout, "    %s\n", stageLine(st))
			if w := stageWindowLine(st); w != "" {
				fmt.Fprintf(g.stdout, "               window: %s\n", w)
			}
		}
		printGatePlans(g, "  ", d.Stages)
	}
	if d.Waiting != nil {
		fmt.Fprintf(g.stdout, "  queued:  fabric %s is busy with %s\n", d.Waiting.Fabric, d.Waiting.Holder)
	}
	if d.Window != nil {
		fmt.Fprintf(g.stdout, "  window:  %s\n", d.Window.Text())
	}
	if d.Parked != nil {
		fmt.Fprintf(g.stdout, "  parked at %s since %s: %s\n", d.Parked.Step, g.local(d.Parked.Since).Format(time.DateTime), d.Parked.Reason)
	}
	if d.Pending != "" {
		fmt.Fprintf(g.stdout, "  pending: %s\n", d.Pending)
	}
}
