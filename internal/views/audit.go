package views

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	updatepb "go.temporal.io/api/update/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/workflows"
)

// The audit (`shipline audit`, the dashboard's audit page) is an event log: one row per action at the moment it
// happened, read from the events of workflow histories (the audit trail), never
// from a workflow's final state — so a later action adds a row and never
// rewrites an earlier one. Which event becomes which row:
//
//   - WorkflowExecutionStarted of a Deploy or Promote (not a run continued as
//     new) → "deploy" / "promote", result "started", by the input's `actor`, on
//     its `version`; a deploy keeps its `trigger` (cli, release = auto_deploy,
//     promote) and its fabrics (the ShiplineFabric search attribute it upserts,
//     else its `fabric` override).
//   - WorkflowPropertiesModified whose memo `status` becomes released (Release),
//     parked (any) or reopened (a Promote's gate whose plan changed) → a row
//     with that result, the memo's reason (or the tag and commit of a release)
//     as detail.
//   - The run's close event → the result it ended with: completed → the
//     result's `status`; failed → workflows.Outcome of the failure type
//     (refused, cancelled, superseded, failed), the same classification the
//     workflows and `history` use; terminated, timed out, cancelled through
//     Temporal. A Release entity's completion is its delete, already a row.
//   - WorkflowExecutionUpdateAccepted (+ its UpdateCompleted) → action = the
//     update's name (approve, reject, resume, cancel, delete, link) at the
//     moment it was accepted, by the input's `actor`, with its `stage`;
//     `comment` or `reason` is the detail; result "ok", or "failed" with the
//     handler's error. An update refused by its handler (a failure of a refused
//     type) is left out here: the workflow recorded it in the project's Audit
//     entity. One refused by its validator (it never reached a handler) leaves
//     no event: the CLI records it there instead (recordRefusal).
//   - WorkflowExecutionSignaled RefusalSignal on the Audit entity → the refused
//     action, result "refused", the reason as detail, how it arrived (via), at
//     the signal's time; the entity's flood cap (workflows.KeepRefusal) is
//     applied over all its runs (CapAuditRefusals).
//
// Fabric entities are skipped: what they record duplicates the deployments.

// AuditRecord is one action on a project.
type AuditRecord struct {
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Project string    `json:"project"`
	Version string    `json:"version,omitempty"`
	Fabric  string    `json:"fabric,omitempty"` // comma-separated when several
	Stage   string    `json:"stage,omitempty"`
	Result  string    `json:"result"`
	Detail  string    `json:"detail,omitempty"`
	// Trigger is how a deploy was started: cli, release (auto_deploy), promote, or empty (Temporal UI).
	Trigger    string `json:"trigger,omitempty"`
	WorkflowID string `json:"workflow_id"`
	// Via, on a refused attempt, says how it arrived (workflows.Via*): signed
	// as the CLI sends it, unsigned, or with a signature that does not verify.
	Via string `json:"via,omitempty"`
	// Delegate names the registered delegate that signed the action on
	// Actor's behalf (the dashboard: "carol via web"); empty when Actor's own
	// key signed it, or nobody did.
	Delegate string `json:"delegate,omitempty"`
	// Dropped counts the refusals of Actor in one window that the audit's
	// flood cap did not keep (on the audit's summary record).
	Dropped int `json:"dropped,omitempty"`
	// refusal is the Audit entity's record this row shows (for the cap).
	refusal *workflows.Refusal
}

// refusalRecord is the row of a refusal the Audit entity recorded.
func refusalRecord(project string, ref workflows.Refusal) AuditRecord {
	r := AuditRecord{Time: ref.At, Actor: ref.Actor, Action: ref.Action, Project: project, Version: ref.Version,
		Stage: ref.Stage, Result: string(workflows.StatusRefused), Detail: ref.Reason, WorkflowID: ref.Target, Via: ref.Via, Dropped: ref.Dropped}
	if r.Dropped > 0 {
		r.Detail = fmt.Sprintf("%d refusals not kept: %s", r.Dropped, r.Detail)
	}
	return r
}

// CapAuditRefusals applies the audit's flood cap (workflows.KeepRefusal) to the
// refusals of every run of the Audit entity, in time order (rs is sorted): past
// the cap, an actor's refusals in a window are shown as one counted row.
func CapAuditRefusals(project string, rs []AuditRecord) []AuditRecord {
	var kept []workflows.Refusal
	out := make([]AuditRecord, 0, len(rs))
	for _, r := range rs {
		if r.refusal == nil {
			out = append(out, r)
			continue
		}
		kept = workflows.KeepRefusal(kept, r.Time, *r.refusal)
	}
	for _, ref := range kept {
		out = append(out, refusalRecord(project, ref))
	}
	SortAuditRecords(out)
	return out
}

// AuditRun is one run of a workflow of the project, as visibility lists it.
type AuditRun struct {
	WorkflowID, RunID, Type string
	// Fabrics is the run's ShiplineFabric search attribute (a fallback when its
	// history holds no upsert of it).
	Fabrics []string
}

// auditedTypes are the workflow types whose histories hold actions.
var auditedTypes = map[string]bool{
	workflows.ReleaseWorkflow: true, workflows.DeployWorkflow: true, workflows.PromoteWorkflow: true, workflows.AuditWorkflow: true,
	workflows.RunWorkflow:      true,
	workflows.RollbackWorkflow: true, workflows.VerifyWorkflow: true, workflows.StageWorkflow: true,
}

// Audit lists every run of the project's workflows (all types, all
// statuses) and extracts their actions, in time order.
func Audit(ctx context.Context, c client.Client, project string) ([]AuditRecord, error) {
	runs, err := listAuditRuns(ctx, c, fmt.Sprintf("%s = '%s'", workflows.ProjectKey.GetName(), strings.ReplaceAll(project, "'", "")))
	if err != nil {
		return nil, fmt.Errorf("list workflows of %s: %w", project, err)
	}
	results := make([][]AuditRecord, len(runs))
	errs := make([]error, len(runs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, run := range runs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			events, err := fetchHistory(ctx, c, run.WorkflowID, run.RunID)
			if err != nil {
				errs[i] = fmt.Errorf("history of %s (run %s): %w", run.WorkflowID, run.RunID, err)
				return
			}
			results[i] = ExtractActions(project, run, events)
		}()
	}
	wg.Wait()
	var all []AuditRecord
	for i := range runs {
		if errs[i] != nil {
			return nil, errs[i]
		}
		all = append(all, results[i]...)
	}
	SortAuditRecords(all)
	return CapAuditRefusals(project, all), nil
}

// SortAuditRecords orders records by time; ties keep a stable, meaningful order.
func SortAuditRecords(rs []AuditRecord) {
	sort.SliceStable(rs, func(i, j int) bool {
		if !rs[i].Time.Equal(rs[j].Time) {
			return rs[i].Time.Before(rs[j].Time)
		}
		return rs[i].WorkflowID < rs[j].WorkflowID
	})
}

// listAuditRuns lists every run (continued-as-new runs included) matching query.
func listAuditRuns(ctx context.Context, c client.Client, query string) ([]AuditRun, error) {
	dc := converter.GetDefaultDataConverter()
	seen := map[string]bool{}
	var runs []AuditRun
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 500})
		if err != nil {
			return nil, err
		}
		for _, ex := range resp.Executions {
			r := AuditRun{WorkflowID: ex.GetExecution().GetWorkflowId(), RunID: ex.GetExecution().GetRunId(), Type: ex.GetType().GetName()}
			if !auditedTypes[r.Type] || seen[r.WorkflowID+"\x00"+r.RunID] {
				continue
			}
			seen[r.WorkflowID+"\x00"+r.RunID] = true
			if p := ex.GetSearchAttributes().GetIndexedFields()[workflows.FabricKey.GetName()]; p != nil {
				_ = dc.FromPayload(p, &r.Fabrics)
			}
			runs = append(runs, r)
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return runs, nil
		}
	}
}

func fetchHistory(ctx context.Context, c client.Client, id, runID string) ([]*historypb.HistoryEvent, error) {
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	return events, nil
}

// actionOf maps a workflow type to the action its rows are.
var actionOf = map[string]string{
	workflows.ReleaseWorkflow:  "release",
	workflows.DeployWorkflow:   "deploy",
	workflows.PromoteWorkflow:  "promote",
	workflows.RunWorkflow:      workflows.ActionRun,
	workflows.RollbackWorkflow: "rollback",
	workflows.VerifyWorkflow:   "verify",
}

// Results of rows that are not an ending.
const (
	auditStarted    = "started"
	auditInProgress = "in progress"
	auditOK         = "ok"
)

// ExtractActions turns one run's history into its rows, one per event that
// is an action, at that event's time.
func ExtractActions(project string, run AuditRun, events []*historypb.HistoryEvent) []AuditRecord {
	action := actionOf[run.Type]
	var out []AuditRecord
	own := []int{}                             // indexes in out of the run's own rows (they share its version, fabrics, trigger)
	var in map[string]any                      // the run's input
	continued := false                         // the run continues an earlier one (continue-as-new)
	memoStatus := ""                           // last status written into the memo
	commit := ""                               // the release's commit, from the memo
	var fabrics []string                       // last ShiplineFabric upserted
	updates := map[string]int{}                // update ID → index in out
	admitted := map[string]*updatepb.Request{} // update ID → request, for updates admitted before acceptance
	row := func(at time.Time, result, detail string) {
		out = append(out, AuditRecord{Time: at, Actor: asString(in["actor"]), Action: action, Project: project, Version: asString(in["version"]),
			Result: result, Detail: detail, WorkflowID: run.WorkflowID})
		own = append(own, len(out)-1)
	}
	var authentic map[int64]bool // RefusalSignal events sent by Shipline (nil: all, in runs from before sealing)
	if run.Type == workflows.AuditWorkflow {
		authentic = AuthenticRefusals(events)
	}
	for _, ev := range events {
		at := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			a := ev.GetWorkflowExecutionStartedEventAttributes()
			in = decodeFirstArg(a.GetInput())
			continued = a.GetContinuedExecutionRunId() != "" || a.GetInitiator() == enumspb.CONTINUE_AS_NEW_INITIATOR_WORKFLOW
			if action == "" || continued {
				continue // the Audit entity, or a run continued as new: no new action
			}
			if run.Type != workflows.ReleaseWorkflow { // a release's row is its outcome: released, parked, refused, …
				row(at, auditStarted, "")
			}
		case enumspb.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
			fields := ev.GetWorkflowPropertiesModifiedEventAttributes().GetUpsertedMemo().GetFields()
			if r, ok := WindowOverrideRecord(project, run.WorkflowID, at, fields); ok {
				out = append(out, r)
			}
			if c := PayloadAsString(fields[workflows.MemoCommit]); c != "" {
				commit = c
			}
			s := PayloadAsString(fields[workflows.MemoStatus])
			if s == "" || s == memoStatus || continued {
				continue // a continued run republishes the status its first run reached
			}
			memoStatus = s
			switch {
			case s == string(workflows.StatusParked), s == string(workflows.StatusReopened):
				row(at, s, firstLine(PayloadAsString(fields[workflows.MemoReason])))
			case s == string(workflows.StatusReleased) && run.Type == workflows.ReleaseWorkflow:
				detail := ""
				if commit != "" {
					detail = "tag " + versionOfWorkflowID(run.WorkflowID) + " at " + shortHash(commit)
				}
				row(at, s, detail)
			}
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			p := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()[workflows.FabricKey.GetName()]
			if p != nil {
				var fs []string
				if converter.GetDefaultDataConverter().FromPayload(p, &fs) == nil && len(fs) > 0 {
					fabrics = fs
				}
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED:
			req := ev.GetWorkflowExecutionUpdateAdmittedEventAttributes().GetRequest()
			admitted[req.GetMeta().GetUpdateId()] = req
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			a := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes()
			req := a.GetAcceptedRequest()
			if req == nil {
				req = admitted[a.GetProtocolInstanceId()]
			}
			switch req.GetInput().GetName() {
			case workflows.AcceptUpdate, workflows.ClaimRequestUpdate, workflows.StageRecordUpdate:
				// The start's own acceptance, and Shipline's claim of a request ID
				// (a forged claim is recorded by the audit entity as an attempt):
				// bookkeeping, not actions.
				continue
			}
			uin := decodeFirstArg(req.GetInput().GetArgs())
			r := AuditRecord{Time: at, Actor: asString(uin["actor"]), Action: req.GetInput().GetName(), Project: project,
				Stage: asString(uin["stage"]), Result: auditInProgress, WorkflowID: run.WorkflowID}
			if r.Stage == "" && run.Type == workflows.StageWorkflow { // release-hold: the entity's stage
				r.Stage = asString(in["stage"])
			}
			if auth, ok := uin["auth"].(map[string]any); ok {
				r.Delegate = asString(auth["delegate"])
			}
			r.Detail = asString(uin["comment"])
			if r.Detail == "" {
				r.Detail = asString(uin["reason"])
			}
			r.Detail = joinAuditDetail(r.Detail, OverrideDetail(uin))
			out = append(out, r)
			id := req.GetMeta().GetUpdateId()
			if id == "" {
				id = a.GetProtocolInstanceId()
			}
			updates[id] = len(out) - 1
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
			a := ev.GetWorkflowExecutionUpdateCompletedEventAttributes()
			i, ok := updates[a.GetMeta().GetUpdateId()]
			if !ok {
				continue
			}
			if f := a.GetOutcome().GetFailure(); f != nil {
				if apperr.ClassOf(f.GetApplicationFailureInfo().GetType()) == apperr.Refused {
					// A refusal: the workflow recorded it in the project's
					// Audit entity, which says how it arrived; shown once, from there.
					out[i].Action = ""
					continue
				}
				out[i].Result = string(workflows.StatusFailed)
				out[i].Detail = joinAuditDetail(out[i].Detail, f.GetMessage())
			} else {
				out[i].Result = auditOK
				if s := PayloadAsString(FirstPayload(a.GetOutcome().GetSuccess())); s != "" {
					out[i].Detail = joinAuditDetail(out[i].Detail, s)
				}
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			a := ev.GetWorkflowExecutionSignaledEventAttributes()
			if run.Type != workflows.AuditWorkflow || a.GetSignalName() != workflows.RefusalSignal {
				continue
			}
			var ref workflows.Refusal
			if p := FirstPayload(a.GetInput()); p == nil || converter.GetDefaultDataConverter().FromPayload(p, &ref) != nil {
				continue
			}
			if authentic != nil && !authentic[ev.GetEventId()] {
				out = append(out, forgedAuditRecord(project, run.WorkflowID, ev, ref))
				continue
			}
			// The time is the signal's (not what the sender claimed).
			ref.At = at
			if ref.Target == "" {
				ref.Target = run.WorkflowID
			}
			out = append(out, refusalRecord(project, ref))
			out[len(out)-1].refusal = &ref
		default:
			if action == "" {
				continue
			}
			if result, detail, ok := auditClose(run.Type, ev); ok {
				row(at, result, detail)
			}
		}
	}
	// Every row of the run is on its version (every audited ID names it); its
	// own rows carry its fabrics, stage and trigger.
	version := versionOfWorkflowID(run.WorkflowID)
	for i := range out {
		if out[i].Version == "" && run.Type != workflows.AuditWorkflow {
			out[i].Version = version
		}
	}
	if len(fabrics) == 0 {
		fabrics = run.Fabrics
	}
	where := asString(in["fabric"])
	if len(fabrics) > 0 {
		fs := append([]string(nil), fabrics...)
		sort.Strings(fs)
		where = strings.Join(fs, ",")
	}
	for _, i := range own {
		r := &out[i]
		if p := asString(in["project"]); p != "" {
			r.Project = p
		}
		switch run.Type {
		case workflows.DeployWorkflow:
			r.Fabric, r.Trigger = where, asString(in["trigger"])
		case workflows.PromoteWorkflow:
			r.Stage = asString(in["to"])
		case workflows.RunWorkflow:
			r.Fabric, r.Trigger = asString(in["fabric"]), asString(in["trigger"])
			r.Detail = joinAuditDetail("job "+asString(in["job"]), r.Detail)
		case workflows.VerifyWorkflow:
			r.Stage = asString(in["reverify"])
		case workflows.RollbackWorkflow:
			if rb, ok := in["rollback"].(map[string]any); ok {
				r.Stage = asString(rb["stage"])
				if rb["emergency"] == true {
					r.Detail = joinAuditDetail("emergency", r.Detail)
				}
				if rb["automatic"] == true {
					r.Detail = joinAuditDetail("automatic", r.Detail)
				}
			}
		}
	}
	// Refused updates are shown from the Audit entity's record.
	return slices.DeleteFunc(out, func(r AuditRecord) bool { return r.Action == "" })
}

// auditClose is the row of a run's close event: how it ended. ok is false for
// other events, for continue-as-new (the run goes on) and for a Release
// entity that completes (its ending is the delete, a row of its own).
func auditClose(workflowType string, ev *historypb.HistoryEvent) (result, detail string, ok bool) {
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
		if workflowType == workflows.ReleaseWorkflow {
			return "", "", false
		}
		res := decodeFirstArg(ev.GetWorkflowExecutionCompletedEventAttributes().GetResult())
		result = "completed"
		if s := asString(res["status"]); s != "" {
			result = s
		}
		detail = asString(res["reason"])
		if detail == "" {
			detail = asString(res["summary"])
		}
		return result, detail, true
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
		f := ev.GetWorkflowExecutionFailedEventAttributes().GetFailure()
		return FailureResult(f), f.GetMessage(), true
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
		a := ev.GetWorkflowExecutionTerminatedEventAttributes()
		return CloseResult(enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED), strings.TrimSpace(a.GetReason() + " " + byIdentity(a.GetIdentity())), true
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
		return CloseResult(enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT), "", true
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
		return CloseResult(enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED), "cancelled through Temporal", true
	}
	return "", "", false
}

// CloseResult names how a run closed when it wrote no ending of its own
// (terminated, timed out, cancelled through Temporal), in the words of
// workflows.Status; `audit` and `history` both use it.
func CloseResult(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return string(workflows.StatusRunning)
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return string(workflows.StatusFailed)
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return string(workflows.StatusCancelled)
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "timed out"
	}
	return strings.ToLower(ExecutionStatus(s)) // completed, terminated, continuedasnew
}

// HistoryStatus is a deployment's status in `history`: the one its workflow
// wrote in its memo (an ending comes from workflows.Outcome), unless the run
// closed without writing its ending — terminated, timed out, or cancelled
// through Temporal, also while parked or queued — then how it closed.
func HistoryStatus(memo string, closed bool, status enumspb.WorkflowExecutionStatus) string {
	if memo == "" || (closed && !workflows.Ended(workflows.Status(memo))) {
		return CloseResult(status)
	}
	return memo
}

// FailureResult classifies a failed run the way the workflows do.
func FailureResult(f *failurepb.Failure) string {
	return string(workflows.Outcome(f.GetApplicationFailureInfo().GetType()))
}

func byIdentity(id string) string {
	if id == "" {
		return ""
	}
	return "(by " + id + ")"
}

func joinAuditDetail(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// versionOfWorkflowID reads the version from release/P/V, deploy/P/V/R and promote/P/V.
func versionOfWorkflowID(id string) string {
	parts := strings.Split(id, "/")
	if len(parts) >= 3 {
		switch parts[0] {
		case "release", "deploy", "promote":
			return parts[2]
		}
	}
	return ""
}

func FirstPayload(ps *commonpb.Payloads) *commonpb.Payload {
	if len(ps.GetPayloads()) == 0 {
		return nil
	}
	return ps.GetPayloads()[0]
}

// decodeFirstArg decodes the first payload as a JSON object; nil when it is not one.
func decodeFirstArg(ps *commonpb.Payloads) map[string]any {
	p := FirstPayload(ps)
	if p == nil {
		return nil
	}
	var m map[string]any
	if err := converter.GetDefaultDataConverter().FromPayload(p, &m); err != nil {
		return nil
	}
	return m
}

// PayloadAsString decodes a payload holding a string; "" otherwise.
func PayloadAsString(p *commonpb.Payload) string {
	if p == nil {
		return ""
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		return ""
	}
	return s
}

// Who names who acted: "carol", or "carol via web" when a delegate signed.
func (r AuditRecord) Who() string {
	if r.Delegate != "" {
		return r.Actor + " via " + r.Delegate
	}
	return r.Actor
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// VersionMarker is the name of the marker workflow.GetVersion records, with
// the change ID under VersionChangeID.
const (
	VersionMarker   = "Version"
	VersionChangeID = "change-id"
)

// AuthenticRefusals tells which RefusalSignal events of an Audit run the
// entity accepted as sent by Shipline: those whose seal the run verified (a
// VerifyMessage activity answered OK for the seal's nonce), the first event
// with each nonce only. Anyone who can reach the namespace can signal the
// Audit entity, so the others are shown as forged attempts. nil means the run
// began before internal messages were sealed: its records are shown as they are.
func AuthenticRefusals(events []*historypb.HistoryEvent) map[int64]bool {
	sealedRun := false
	verifies := map[int64]bool{} // scheduled event IDs of VerifyMessage
	verified := map[string]bool{}
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			a := ev.GetMarkerRecordedEventAttributes()
			if a.GetMarkerName() == VersionMarker && PayloadAsString(FirstPayload(a.GetDetails()[VersionChangeID])) == workflows.ChangeInternalAuth {
				sealedRun = true
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == activities.VerifyMessageActivity {
				verifies[ev.GetEventId()] = true
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			a := ev.GetActivityTaskCompletedEventAttributes()
			var out activities.VerifyOutput
			if verifies[a.GetScheduledEventId()] && converter.GetDefaultDataConverter().FromPayload(FirstPayload(a.GetResult()), &out) == nil && out.OK {
				verified[out.Nonce] = true
			}
		}
	}
	if !sealedRun {
		return nil
	}
	ok := map[int64]bool{}
	used := map[string]bool{}
	for _, ev := range events {
		a := ev.GetWorkflowExecutionSignaledEventAttributes()
		if ev.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED || a.GetSignalName() != workflows.RefusalSignal {
			continue
		}
		var r workflows.Refusal
		if p := FirstPayload(a.GetInput()); p == nil || converter.GetDefaultDataConverter().FromPayload(p, &r) != nil || r.Seal == nil {
			continue
		}
		if verified[r.Seal.Nonce] && !used[r.Seal.Nonce] {
			ok[ev.GetEventId()], used[r.Seal.Nonce] = true, true
		}
	}
	return ok
}

// forgedAuditRecord shows an audit signal that Shipline did not send: an
// attempt by someone unknown; what it claimed is quoted, not believed.
func forgedAuditRecord(project, auditID string, ev *historypb.HistoryEvent, claimed workflows.Refusal) AuditRecord {
	claim := fmt.Sprintf("%s %s on %s: %s", claimed.Actor, claimed.Action, claimed.Target, claimed.Reason)
	if len(claim) > 200 {
		claim = claim[:200] + "…"
	}
	return AuditRecord{Time: ev.GetEventTime().AsTime(), Actor: "unknown (unauthenticated)", Action: "forge audit record", Project: project,
		Result: "refused", Detail: fmt.Sprintf("an audit record not sent by Shipline; not believed. It claimed: %q", claim), WorkflowID: auditID}
}
