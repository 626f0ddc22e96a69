package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/shipline/shipline/internal/views"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/workflows"
)

// Following the workflows that are not a release, a deployment or a
// promotion: fabric entities, and any other (audit, listings, plans).

// followFabric follows a fabric's entity while deployments hold or wait for
// it, printing each one that starts, waits or ends, then what runs there.
func followFabric(ctx context.Context, g *globals, c client.Client, id string) (*workflows.FabricState, error) {
	f := g.follower(c, id, "")
	known := -1 // deployments in the history when following began
	head, waiting := "", -1
	for {
		var s workflows.FabricState
		ok, closed, err := f.next(ctx, &s)
		if err != nil {
			return nil, err
		}
		if ok {
			if known < 0 {
				known = len(s.History)
			}
			if !g.json() {
				for _, d := range s.History[min(known, len(s.History)):] {
					fmt.Fprintf(g.stdout, "  %-10s %s (%s by %s)%s\n", d.Outcome, d.DeploymentID, d.Version, d.Actor, reasonSuffix(d.Reason))
				}
			}
			known = len(s.History)
			if len(s.Queue) == 0 {
				if !g.json() {
					fmt.Fprintln(g.stdout, fabricIdle(s))
				}
				return &s, nil
			}
			if !g.json() && (s.Queue[0].DeploymentID != head || len(s.Queue)-1 != waiting) {
				head, waiting = s.Queue[0].DeploymentID, len(s.Queue)-1
				fmt.Fprintf(g.stdout, "  deploying  %s (%s by %s); %d waiting\n", head, s.Queue[0].Version, s.Queue[0].Actor, waiting)
			}
		}
		if closed != nil {
			return nil, failed(closed)
		}
		if err := f.pause(ctx); err != nil {
			return nil, err
		}
	}
}

// fabricIdle says what runs on an idle fabric.
func fabricIdle(s workflows.FabricState) string {
	var jobs []string
	for _, name := range sortedKeys(s.Jobs) {
		jobs = append(jobs, name+" "+s.Jobs[name].Version)
	}
	if len(jobs) == 0 {
		return fmt.Sprintf("fabric %s of %s is idle; no jobs deployed", s.Fabric, s.Project)
	}
	return fmt.Sprintf("fabric %s of %s is idle; running %s", s.Fabric, s.Project, strings.Join(jobs, ", "))
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + firstLine(r)
}

// followOther follows any other workflow (audit, listings, plans) until it
// closes or sits idle waiting for a request, printing its summary as it changes.
func followOther(ctx context.Context, g *globals, c client.Client, id, runID string, o followOpts) (*workflows.Progress, error) {
	last := ""
	checked := time.Now()
	f := g.follower(c, id, runID)
	for {
		desc, err := c.DescribeWorkflowExecution(ctx, id, runID)
		if err != nil {
			return nil, notFound(id, err)
		}
		info := desc.GetWorkflowExecutionInfo()
		var p workflows.Progress
		ok, _, err := f.next(ctx, &p)
		if err != nil {
			return nil, err
		}
		if ok && p.Summary != "" && p.Summary != last && !g.json() {
			last = p.Summary
			fmt.Fprintf(g.stdout, "  %s\n", p.Summary)
		}
		if st := info.GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			status := strings.ToLower(views.ExecutionStatus(st))
			if !g.json() {
				fmt.Fprintf(g.stdout, "%s %s\n", id, status)
			}
			if st == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED || o.cancelling {
				return &p, nil
			}
			msg := views.CloseFailure(ctx, c, id, runID)
			if msg == "" {
				msg = "the workflow ended: " + status
			}
			return &p, failed(errors.New(msg))
		}
		if desc.GetPendingWorkflowTask() == nil && len(desc.GetPendingActivities()) == 0 && len(desc.GetPendingChildren()) == 0 {
			if !g.json() {
				fmt.Fprintf(g.stdout, "%s is running and idle: it waits for requests\n", id)
			}
			return &p, nil
		}
		if time.Since(checked) >= g.workerWait() {
			checked = time.Now()
			if err := g.checkWorker(ctx, c, id); err != nil {
				return nil, failed(err)
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(g.pollInterval()):
		}
	}
}
