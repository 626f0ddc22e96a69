package views

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/workflows"
)

// DeploymentRow is one job on one fabric.
type DeploymentRow struct {
	workflows.JobRecord
	Drift string `json:"drift"` // in sync, drifted: …, missing, unknown: …
}

// FabricView is one fabric's state as `deployments` shows it.
type FabricView struct {
	Fabric string                 `json:"fabric"`
	Queue  []workflows.QueueEntry `json:"queue"`
	Jobs   []DeploymentRow        `json:"jobs"`
	// Parked deployments hold no lock; the jobs they changed before parking
	// are among Jobs, with their deployment ID.
	Parked []workflows.ParkedDeployment `json:"parked,omitempty"`
	// Busy is what the deployment holding the fabric waits for, when it
	// waits for a job's active run to end (its summary).
	Busy string `json:"busy,omitempty"`
}

// Inspector compares recorded jobs with the live fabrics (the project
// entity's InspectUpdate, through ReadProject).
type Inspector func(ctx context.Context, in workflows.InspectInput) (workflows.InspectOutput, error)

// Deployments reads what runs where now on the project's fabrics (or one):
// each Fabric entity's jobs, queue and parked deployments, with each job's
// drift against the live fabric as inspect reports it.
func Deployments(ctx context.Context, c client.Client, project, fabric string, inspect Inspector) ([]FabricView, error) {
	states, err := FabricStates(ctx, c, project, fabric)
	if err != nil {
		return nil, err
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
		out, err := inspect(ctx, workflows.InspectInput{Jobs: recorded})
		if err != nil {
			return nil, err
		}
		for _, d := range out.Jobs {
			drift[d.Fabric+"/"+d.Job] = d
		}
	}
	views := make([]FabricView, 0, len(states))
	for _, s := range states {
		// An empty queue or job list is [] in JSON, not null.
		v := FabricView{Fabric: s.Fabric, Queue: s.Queue, Jobs: []DeploymentRow{}, Parked: s.Parked}
		if v.Queue == nil {
			v.Queue = []workflows.QueueEntry{}
		}
		for _, name := range sortedKeys(s.Jobs) {
			j := s.Jobs[name]
			v.Jobs = append(v.Jobs, DeploymentRow{JobRecord: j, Drift: DriftText(drift[s.Fabric+"/"+name])})
		}
		if len(v.Queue) > 0 {
			// Best effort: a holder that does not answer is shown as deploying.
			var holder workflows.DeployState
			if _, err := QueryState(ctx, c, v.Queue[0].DeploymentID, "", &holder); err == nil && holder.Runs != nil {
				v.Busy = holder.Summary
			}
		}
		views = append(views, v)
	}
	return views, nil
}

// DriftText says how a job on its fabric compares with what was deployed.
func DriftText(d activities.JobDrift) string {
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

// FabricStates queries every Fabric entity of the project (or one).
func FabricStates(ctx context.Context, c client.Client, project, fabric string) ([]workflows.FabricState, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s' AND ExecutionStatus = 'Running'", workflows.FabricWorkflow, workflows.ProjectKey.GetName(), project)
	if fabric != "" {
		query += fmt.Sprintf(" AND %s = '%s'", workflows.FabricKey.GetName(), fabric)
	}
	ids, err := ListIDs(ctx, c, query)
	if err != nil {
		return nil, fmt.Errorf("list fabrics of %s: %w", project, err)
	}
	var states []workflows.FabricState
	for _, id := range ids {
		var s workflows.FabricState
		if _, err := QueryState(ctx, c, id, "", &s); err != nil {
			return nil, fmt.Errorf("query %s: %w", id, err)
		}
		states = append(states, s)
	}
	sort.Slice(states, func(i, j int) bool { return states[i].Fabric < states[j].Fabric })
	return states, nil
}

// StageLedgers reads each stage's record (the release it runs, the ones it
// verified, its hold), in stage-name order. Stages that never verified nor
// rolled back a release have no record.
func StageLedgers(ctx context.Context, c client.Client, project string) ([]workflows.StageLedger, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s' AND ExecutionStatus = 'Running'", workflows.StageWorkflow, workflows.ProjectKey.GetName(), project)
	ids, err := ListIDs(ctx, c, query)
	if err != nil {
		return nil, fmt.Errorf("list stages of %s: %w", project, err)
	}
	sort.Strings(ids)
	var out []workflows.StageLedger
	for _, id := range ids {
		var l workflows.StageLedger
		if _, err := QueryState(ctx, c, id, "", &l); err != nil {
			return nil, fmt.Errorf("query %s: %w", id, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// HistoryRow is one deployment.
type HistoryRow struct {
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

// History lists every deployment of the project (to one fabric, when given),
// failed and cancelled ones included, newest first; uiURL links a workflow in
// the Temporal UI.
func History(ctx context.Context, c client.Client, project, fabric string, onlyFailed bool, uiURL func(id string) string) ([]HistoryRow, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", workflows.DeployWorkflow, workflows.ProjectKey.GetName(), project)
	if fabric != "" {
		query += fmt.Sprintf(" AND %s = '%s'", workflows.FabricKey.GetName(), fabric)
	}
	var rows []HistoryRow
	var token []byte
	dc := converter.GetDefaultDataConverter()
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 500})
		if err != nil {
			return nil, fmt.Errorf("list deployments of %s: %w", project, err)
		}
		for _, ex := range resp.Executions {
			id := ex.GetExecution().GetWorkflowId()
			r := HistoryRow{ID: id, Started: ex.GetStartTime().AsTime(), Logs: "shipline logs " + id, UIURL: uiURL(id)}
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
			r.Status = HistoryStatus(r.Status, ex.GetCloseTime() != nil, ex.GetStatus())
			if onlyFailed && !IsFailure(r.Status) {
				continue
			}
			rows = append(rows, r)
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Started.After(rows[j].Started) })
	return rows, nil
}

// IsFailure tells a deployment status that did not succeed: failed, refused,
// parked, cancelled, terminated, timed out.
func IsFailure(status string) bool {
	switch workflows.Status(status) {
	case workflows.StatusFailed, workflows.StatusRefused, workflows.StatusParked, workflows.StatusCancelled:
		return true
	}
	return status == "terminated" || status == "timed out"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
