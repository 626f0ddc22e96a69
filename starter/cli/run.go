package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/workflows"
)

type runOptions struct {
	job, project, fabric string
	id                   string // the request ID (default: a new one)
	params               []string
	wait                 bool
}

func runCommand(g *globals) *ucli.Command {
	var o runOptions
	return &ucli.Command{
		Name:      "run",
		Usage:     "run a JOB Shipline deployed on a fabric, once, and follow it (`shipline cancel ID` cancels the remote run)",
		ArgsUsage: "JOB",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &o.project},
			&ucli.StringFlag{Name: "fabric", Aliases: []string{"f"}, Required: true, Usage: "fabric the job is deployed on", Destination: &o.fabric},
			&ucli.StringSliceFlag{Name: "param", Usage: "run parameter `KEY=VALUE` (repeatable)"},
			&ucli.StringFlag{Name: "id", Usage: "request `ID` of the run (default: a new one): the same ID again shows that run instead of starting another (for retried CI steps)", Destination: &o.id},
			&ucli.BoolFlag{Name: "wait", Usage: "show each task's state until the run ends; exit 1 when it fails", Destination: &o.wait},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return invalid("run takes exactly one JOB, e.g. `shipline run nightly --project demo --fabric dev`")
			}
			o.job, o.params = c.Args().First(), c.StringSlice("param")
			return runRun(c.Context, g, o)
		},
	}
}

// nameRE is the shape of job and fabric names in a run's workflow ID.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// parseParams reads --param KEY=VALUE flags.
func parseParams(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, p := range flags {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, invalid("--param %q is not KEY=VALUE, e.g. --param mode=smoke", p)
		}
		if _, dup := out[k]; dup {
			return nil, invalid("--param %s is given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// runResult is the JSON form of `shipline run`.
type runResult struct {
	startResult
	Run *workflows.RunOutcome `json:"run,omitempty"`
}

func runRun(ctx context.Context, g *globals, o runOptions) error {
	if err := checkProject(o.project); err != nil {
		return err
	}
	for _, n := range []struct{ flag, v string }{{"JOB", o.job}, {"--fabric", o.fabric}} {
		if !nameRE.MatchString(n.v) {
			return invalid("%s %.40q is not a job or fabric name: letters, digits, '_', '.' and '-'", n.flag, n.v)
		}
	}
	if o.id != "" && !nameRE.MatchString(o.id) {
		return invalid("--id %.40q is not a request ID: letters, digits, '_', '.' and '-', at most 100", o.id)
	}
	params, err := parseParams(o.params)
	if err != nil {
		return err
	}
	actor, c, err := g.session()
	if err != nil {
		return err
	}
	defer c.Close()
	request, reuse := o.id, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	if request == "" {
		request, reuse = g.newRequestID(), enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
	}
	id := workflows.RunID(o.project, o.fabric, o.job, request)
	in := workflows.RunInput{Project: o.project, Fabric: o.fabric, Job: o.job, Actor: actor, Params: params, Trigger: "cli"}
	if in.Auth, err = g.auth(id, workflows.ActionRun, actor, in); err != nil {
		return err
	}
	st, err := g.startAccepted(ctx, c, client.StartWorkflowOptions{
		ID: id, TaskQueue: g.taskQueue,
		// A run of the same --id, open or ended, is shown instead of a second run.
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, WorkflowIDReusePolicy: reuse,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ProjectKey.ValueSet(o.project), workflows.ActorKey.ValueSet(actor), workflows.FabricKey.ValueSet([]string{o.fabric})),
		StaticSummary: fmt.Sprintf("Run %s of %s on %s by %s", o.job, o.project, o.fabric, actor),
	}, workflows.RunWorkflow, in)
	if err != nil {
		return err
	}
	res := runResult{startResult: startResult{WorkflowID: id, RunID: st.RunID, UIURL: g.workflowURL(id), Acceptance: &st.Acceptance}}
	switch {
	case st.Existing:
		res.Existing, res.Acceptance = true, nil
		if !g.json() {
			fmt.Fprintf(g.stdout, "%s was started before (same --id): showing that run, not starting another\n", id)
		}
	case st.Undecided:
		res.Acceptance = nil
		undecided(g, id)
	case !st.Acceptance.Accepted:
		return printRefused(g, res.startResult, refusal(id, st.Acceptance))
	}
	if !o.wait {
		// The run's page is known once the fabric started it: wait for that briefly.
		s, err := waitRunStarted(ctx, g, c, id)
		if err != nil {
			return err
		}
		res.Run = s
		if g.json() {
			return printJSON(g, res)
		}
		fmt.Fprintf(g.stdout, "run of %s of %s on %s started for %s\n  workflow: %s\n", o.job, o.project, o.fabric, actor, id)
		if s != nil && s.RunID != "" {
			fmt.Fprintf(g.stdout, "  run:      %s %s\n", s.RunID, s.URL)
		}
		fmt.Fprintf(g.stdout, "  follow:   shipline status %s --watch\n  cancel:   shipline cancel %s\n  UI:       %s\n", id, id, res.UIURL)
		return nil
	}
	if !g.json() {
		fmt.Fprintf(g.stdout, "running %s of %s on %s (%s)\n", o.job, o.project, o.fabric, id)
	}
	s, err := followRun(ctx, g, c, id, followOpts{})
	res.Run = s
	if g.json() {
		if perr := printJSON(g, res); perr != nil {
			return perr
		}
	}
	return err
}

// waitRunStarted waits (at most the accept wait) until the run has its ID on
// the fabric, or the workflow ended.
func waitRunStarted(ctx context.Context, g *globals, c client.Client, id string) (*workflows.RunOutcome, error) {
	f := g.follower(c, id, "")
	deadline := time.Now().Add(g.acceptWait())
	for {
		var s workflows.RunOutcome
		ok, closed, err := f.next(ctx, &s)
		if err != nil {
			return nil, err
		}
		if ok && (s.RunID != "" || workflows.Ended(s.Status)) {
			return &s, nil
		}
		if closed != nil || time.Now().After(deadline) {
			return nil, nil
		}
		if err := f.pause(ctx); err != nil {
			return nil, err
		}
	}
}

// followRun prints the run's page once and each task's state as it changes
// (pending → running → success/failed) until the run ends: nil on success,
// exit 1 with the failing task's message otherwise.
func followRun(ctx context.Context, g *globals, c client.Client, id string, o followOpts) (*workflows.RunOutcome, error) {
	p := &stepPrinter{g: g, quiet: o.cancelling}
	f := g.follower(c, id, "")
	tasks := map[string]string{}
	announced := false
	for {
		var s workflows.RunOutcome
		ok, closed, err := f.next(ctx, &s)
		if err != nil {
			return nil, err
		}
		if ok {
			if !g.json() && !o.cancelling {
				if s.RunID != "" && !announced {
					announced = true
					fmt.Fprintf(g.stdout, "  run %s (%s %s): %s\n", s.RunID, s.Job, s.Version, s.URL)
				}
				for _, t := range s.Tasks {
					if line := taskLine(t); tasks[t.Key] != line {
						tasks[t.Key] = line
						fmt.Fprintln(g.stdout, line)
					}
				}
			} else {
				p.print(s.Steps)
			}
			switch s.Status {
			case workflows.StatusSucceeded:
				p.done(s.Summary)
				if o.cancelling {
					return &s, failed(fmt.Errorf("%s finished before the cancellation took effect", id))
				}
				return &s, nil
			case workflows.StatusRefused, workflows.StatusFailed, workflows.StatusCancelled:
				if o.cancelling {
					p.done(s.Summary)
					return &s, nil
				}
				if s.Status == workflows.StatusFailed && s.RunID != "" {
					return &s, failed(errors.New(s.Summary))
				}
				return &s, failed(errors.New(s.Message))
			}
		}
		if closed != nil {
			return nil, endedWith(g, closed, o)
		}
		if err := f.pause(ctx); err != nil {
			return nil, err
		}
	}
}

// taskLine is one task's state: "    ingest   running", "    score    failed: ValueError…".
func taskLine(t workflows.TaskState) string {
	word := string(t.State)
	if t.Result != "" {
		word = string(t.Result)
	}
	line := fmt.Sprintf("    %-20s %s", t.Key, word)
	if t.Message != "" && t.Result != fabric.RunSucceeded {
		line += ": " + firstLine(t.Message)
	}
	return line
}
