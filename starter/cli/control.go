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
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/workflows"
)

func resumeCommand(g *globals) *ucli.Command {
	var wait bool
	return &ucli.Command{
		Name: "resume", Usage: "retry a parked deployment or release from the step that failed", ArgsUsage: "ID",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "wait", Usage: "follow it until the resumed step and the rest are done, or it parks again", Destination: &wait}},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return invalid("resume takes one deployment or release ID, e.g. `shipline resume deploy/demo/v1.0.0/20261122-101500-ab12`")
			}
			return runResume(c.Context, g, c.Args().First(), wait)
		},
	}
}

func cancelCommand(g *globals) *ucli.Command {
	var reason string
	var wait bool
	return &ucli.Command{
		Name:      "cancel",
		Usage:     "end a deployment, a parked release, a promotion, a run (its remote run is cancelled) or any Shipline workflow (also one no worker picked up); recorded with who and why",
		ArgsUsage: "ID",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "reason", Usage: "why (recorded with the cancellation)", Destination: &reason},
			&ucli.BoolFlag{Name: "wait", Usage: "wait until the workflow has ended", Destination: &wait},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return invalid("cancel takes one workflow ID, e.g. `shipline cancel deploy/demo/v1.0.0/20261122-101500-ab12`")
			}
			return runCancel(c.Context, g, c.Args().First(), reason, wait)
		},
	}
}

// runningWorkflow describes id; a workflow that is not there or has ended
// refuses the request (recorded in the project's audit like other refusals).
func runningWorkflow(ctx context.Context, g *globals, c client.Client, id, update, actor string) (typ string, err error) {
	desc, err := c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		var nf *serviceerror.NotFound
		if !errors.As(err, &nf) {
			return "", failed(fmt.Errorf("describe %s: %w", id, err))
		}
		return "", controlRefused(ctx, g, c, id, update, actor, fmt.Errorf("%s is not running (finished, or never started)", id))
	}
	if desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return "", controlRefused(ctx, g, c, id, update, actor, fmt.Errorf("%s already ended (%s): nothing to %s", id, statusWord(desc.Status), update))
	}
	return desc.WorkflowType.Name, nil
}

func runResume(ctx context.Context, g *globals, id string, wait bool) error {
	actor, c, err := g.session()
	if err != nil {
		return err
	}
	defer c.Close()
	typ, err := runningWorkflow(ctx, g, c, id, workflows.ResumeUpdate, actor)
	if err != nil {
		return err
	}
	if typ != workflows.DeployWorkflow && typ != workflows.ReleaseWorkflow {
		return failed(fmt.Errorf("%s is a %s workflow: only a parked deployment or release can be resumed", id, typ))
	}
	// The park being resumed: following must not mistake it for a new one.
	var before struct {
		Parked *workflows.Parked `json:"parked"`
		Steps  []workflows.Step  `json:"steps"`
	}
	_, _ = views.QueryState(ctx, c, id, "", &before)

	req := workflows.ControlRequest{Actor: actor}
	if req.Auth, err = g.auth(id, workflows.ResumeUpdate, actor, req); err != nil {
		return err
	}
	var msg string
	err = g.withWorker(ctx, c, id, func(ctx context.Context) error { return sendUpdate(ctx, c, id, workflows.ResumeUpdate, req, &msg) })
	if err != nil {
		return controlRefused(ctx, g, c, id, workflows.ResumeUpdate, actor, err)
	}
	if g.json() && !wait {
		return printJSON(g, controlResult{WorkflowID: id, Result: msg, EndedBy: ""})
	}
	if !g.json() {
		fmt.Fprintln(g.stdout, msg)
	}
	if !wait {
		return nil
	}
	o := followOpts{resumed: before.Steps}
	if before.Parked != nil {
		o.resumedAfter = before.Parked.Since
	}
	_, err = followKind(ctx, g, c, id, "", typ, o)
	return err
}

// controlResult is the JSON form of resume and cancel.
type controlResult struct {
	WorkflowID string `json:"workflow_id"`
	Result     string `json:"result"`
	// EndedBy says how a cancel ends the workflow: "update" (the workflow's
	// own cancel, with its rules), "cancellation" (Temporal's cancel request) or
	// "termination" (no worker ever ran it).
	EndedBy string `json:"ended_by,omitempty"`
}

// How a cancel ends a workflow.
const (
	endedByUpdate       = "update"
	endedByCancellation = "cancellation"
	endedByTermination  = "termination"
)

func runCancel(ctx context.Context, g *globals, id, reason string, wait bool) error {
	actor, c, err := g.session()
	if err != nil {
		return err
	}
	defer c.Close()
	typ, err := runningWorkflow(ctx, g, c, id, workflows.CancelUpdate, actor)
	if err != nil {
		return err
	}
	res, err := cancelWorkflow(ctx, g, c, id, typ, actor, reason)
	if err != nil {
		return err
	}
	if !g.json() {
		fmt.Fprintln(g.stdout, res.Result)
	}
	if wait && res.EndedBy != endedByTermination {
		if _, err := followKind(ctx, g, c, id, "", typ, followOpts{cancelling: true}); err != nil {
			return err
		}
	}
	if g.json() {
		return printJSON(g, res)
	}
	return nil
}

// cancelWorkflow ends id the way its type allows: deployments and parked
// releases through their cancel update (who may cancel is checked there);
// promotions and short workflows through Temporal's cancellation; a workflow
// that no worker ever ran, and no worker serves now, is terminated with who
// and why as the reason. Fabric and audit entities hold records: never cancelled.
func cancelWorkflow(ctx context.Context, g *globals, c client.Client, id, typ, actor, reason string) (controlResult, error) {
	res := controlResult{WorkflowID: id}
	if !ranOnWorker(ctx, c, id) {
		if werr := g.checkWorker(ctx, c, id); werr != nil {
			return terminate(ctx, c, id, actor, reason, werr)
		}
	}
	switch typ {
	case workflows.DeployWorkflow, workflows.ReleaseWorkflow:
		req := workflows.ControlRequest{Actor: actor, Reason: reason}
		var err error
		if req.Auth, err = g.auth(id, workflows.CancelUpdate, actor, req); err != nil {
			return res, err
		}
		err = g.withWorker(ctx, c, id, func(ctx context.Context) error {
			return sendUpdate(ctx, c, id, workflows.CancelUpdate, req, &res.Result)
		})
		if errors.Is(err, errNoWorker) && !ranOnWorker(ctx, c, id) {
			return terminate(ctx, c, id, actor, reason, err)
		}
		if err != nil {
			return res, controlRefused(ctx, g, c, id, workflows.CancelUpdate, actor, err)
		}
		res.EndedBy = endedByUpdate
		return res, nil
	case workflows.FabricWorkflow, workflows.AuditWorkflow:
		return res, failed(fmt.Errorf("%s is a %s entity: it keeps records and queues, so it is not cancelled; cancel the deployment you mean instead (`shipline deployments` and `shipline history` list them)", id, typ))
	default:
		if err := c.CancelWorkflow(ctx, id, ""); err != nil {
			return res, failed(fmt.Errorf("cancel %s: %w", id, err))
		}
		res.Result = fmt.Sprintf("cancellation of %s requested by %s", id, actor)
		if reason != "" {
			res.Result += ": " + reason
		}
		res.EndedBy = endedByCancellation
		return res, nil
	}
}

// terminate ends a workflow no worker ever ran; the reason names who and why.
func terminate(ctx context.Context, c client.Client, id, actor, reason string, cause error) (controlResult, error) {
	why := "cancelled by " + actor
	if reason != "" {
		why += ": " + reason
	}
	why += " (terminated: no worker ever ran it)"
	if err := c.TerminateWorkflow(ctx, id, "", why); err != nil {
		return controlResult{}, failed(fmt.Errorf("terminate %s: %w (%v)", id, err, cause))
	}
	return controlResult{WorkflowID: id, Result: fmt.Sprintf("terminated %s: %s", id, why), EndedBy: endedByTermination}, nil
}

// ranOnWorker says whether a worker ever completed a task of the workflow.
// When it cannot tell, it answers true (the safe side: no termination).
func ranOnWorker(ctx context.Context, c client.Client, id string) bool {
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	it := c.GetWorkflowHistory(hctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for i := 0; it.HasNext() && i < 50; i++ {
		ev, err := it.Next()
		if err != nil {
			return true
		}
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			return true
		}
	}
	return false
}

// controlRefused reports a refused resume or cancel (recorded in the audit);
// a missing worker is reported as it is, not as a refusal.
func controlRefused(ctx context.Context, g *globals, c client.Client, id, update, actor string, err error) error {
	if errors.Is(err, errNoWorker) {
		return err
	}
	if project, version, ok := parseWorkflowID(id); ok {
		auditRefusal(ctx, g, c, project, workflows.Refusal{Actor: actor, Action: update, Target: id, Version: version, Reason: err.Error(), At: time.Now().UTC()}, err)
	} else if project, _, _, _, ok := workflows.ParseRunID(id); ok {
		auditRefusal(ctx, g, c, project, workflows.Refusal{Actor: actor, Action: update, Target: id, Reason: err.Error(), At: time.Now().UTC()}, err)
	}
	return failed(fmt.Errorf("%s %s refused: %w", update, id, err))
}

func statusWord(s enumspb.WorkflowExecutionStatus) string {
	return strings.ToLower(views.ExecutionStatus(s))
}
