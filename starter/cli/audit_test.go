package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/shipline/shipline/internal/views"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	updatepb "go.temporal.io/api/update/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/signing"
	"github.com/shipline/shipline/workflows"
)

var auditT0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// auditHist builds a history whose events are one minute apart from start.
type auditHist struct {
	t      *testing.T
	start  time.Time
	events []*historypb.HistoryEvent
}

// wait moves the following events d later (a quiet time in the history).
func (h *auditHist) wait(d time.Duration) *auditHist {
	h.start = h.start.Add(d)
	return h
}

func newAuditHist(t *testing.T, start time.Time) *auditHist { return &auditHist{t: t, start: start} }

func (h *auditHist) payloads(vs ...any) *commonpb.Payloads {
	ps, err := converter.GetDefaultDataConverter().ToPayloads(vs...)
	if err != nil {
		h.t.Fatal(err)
	}
	return ps
}

func (h *auditHist) payload(v any) *commonpb.Payload { return h.payloads(v).Payloads[0] }

func (h *auditHist) add(typ enumspb.EventType, set func(ev *historypb.HistoryEvent)) *auditHist {
	ev := &historypb.HistoryEvent{
		EventId:   int64(len(h.events) + 1),
		EventType: typ,
		EventTime: timestamppb.New(h.start.Add(time.Duration(len(h.events)) * time.Minute)),
	}
	set(ev)
	h.events = append(h.events, ev)
	return h
}

func (h *auditHist) started(input any, continued bool) *auditHist {
	return h.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, func(ev *historypb.HistoryEvent) {
		a := &historypb.WorkflowExecutionStartedEventAttributes{Input: h.payloads(input)}
		if continued {
			a.ContinuedExecutionRunId = "previous-run"
			a.Initiator = enumspb.CONTINUE_AS_NEW_INITIATOR_WORKFLOW
		}
		ev.Attributes = &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: a}
	})
}

func (h *auditHist) memo(status, reason string) *auditHist {
	return h.memoFields(map[string]any{workflows.MemoStatus: status, workflows.MemoReason: reason})
}

func (h *auditHist) memoFields(m map[string]any) *auditHist {
	return h.add(enumspb.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED, func(ev *historypb.HistoryEvent) {
		fields := map[string]*commonpb.Payload{}
		for k, v := range m {
			fields[k] = h.payload(v)
		}
		ev.Attributes = &historypb.HistoryEvent_WorkflowPropertiesModifiedEventAttributes{
			WorkflowPropertiesModifiedEventAttributes: &historypb.WorkflowPropertiesModifiedEventAttributes{UpsertedMemo: &commonpb.Memo{Fields: fields}}}
	})
}

func (h *auditHist) fabrics(fs ...string) *auditHist {
	return h.add(enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, func(ev *historypb.HistoryEvent) {
		ev.Attributes = &historypb.HistoryEvent_UpsertWorkflowSearchAttributesEventAttributes{
			UpsertWorkflowSearchAttributesEventAttributes: &historypb.UpsertWorkflowSearchAttributesEventAttributes{
				SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{workflows.FabricKey.GetName(): h.payload(fs)}}}}
	})
}

func (h *auditHist) completed(result any) *auditHist {
	return h.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, func(ev *historypb.HistoryEvent) {
		ev.Attributes = &historypb.HistoryEvent_WorkflowExecutionCompletedEventAttributes{
			WorkflowExecutionCompletedEventAttributes: &historypb.WorkflowExecutionCompletedEventAttributes{Result: h.payloads(result)}}
	})
}

func (h *auditHist) failed(errType, msg string) *auditHist {
	return h.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, func(ev *historypb.HistoryEvent) {
		ev.Attributes = &historypb.HistoryEvent_WorkflowExecutionFailedEventAttributes{
			WorkflowExecutionFailedEventAttributes: &historypb.WorkflowExecutionFailedEventAttributes{Failure: &failurepb.Failure{
				Message: msg, FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: errType, NonRetryable: true}}}}}
	})
}

// update adds an accepted update and, unless outcome is nil, its completion
// (an error for a failed handler, anything else is the handler's result).
func (h *auditHist) update(id, name string, input any, outcome any) *auditHist {
	h.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, func(ev *historypb.HistoryEvent) {
		ev.Attributes = &historypb.HistoryEvent_WorkflowExecutionUpdateAcceptedEventAttributes{
			WorkflowExecutionUpdateAcceptedEventAttributes: &historypb.WorkflowExecutionUpdateAcceptedEventAttributes{
				ProtocolInstanceId: id,
				AcceptedRequest: &updatepb.Request{Meta: &updatepb.Meta{UpdateId: id, Identity: "cli"},
					Input: &updatepb.Input{Name: name, Args: h.payloads(input)}}}}
	})
	if outcome == nil {
		return h
	}
	return h.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED, func(ev *historypb.HistoryEvent) {
		o := &updatepb.Outcome{}
		if err, ok := outcome.(error); ok {
			o.Value = &updatepb.Outcome_Failure{Failure: &failurepb.Failure{Message: err.Error()}}
		} else {
			o.Value = &updatepb.Outcome_Success{Success: h.payloads(outcome)}
		}
		ev.Attributes = &historypb.HistoryEvent_WorkflowExecutionUpdateCompletedEventAttributes{
			WorkflowExecutionUpdateCompletedEventAttributes: &historypb.WorkflowExecutionUpdateCompletedEventAttributes{
				Meta: &updatepb.Meta{UpdateId: id}, Outcome: o}}
	})
}

func (h *auditHist) signal(name string, input any) *auditHist {
	return h.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, func(ev *historypb.HistoryEvent) {
		ev.Attributes = &historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes{
			WorkflowExecutionSignaledEventAttributes: &historypb.WorkflowExecutionSignaledEventAttributes{SignalName: name, Input: h.payloads(input)}}
	})
}

// auditLineOf is the comparable core of a record.
func auditLineOf(r auditRecord) string {
	return fmt.Sprintf("%s %s %s %s fabric=%s stage=%s → %s [%s] id=%s",
		r.Time.Format("15:04"), r.Actor, r.Action, r.Version, r.Fabric, r.Stage, r.Result, r.Detail, r.WorkflowID)
}

func TestExtractActions(t *testing.T) {
	releaseID := workflows.ReleaseID("demo", "v1.0.0")
	autoID := workflows.DeployID("demo", "v1.0.0", "release")
	refusedID := workflows.DeployID("demo", "v1.0.0", "20261122-101000-aaaa")
	parkedID := workflows.DeployID("demo", "v1.0.0", "20261122-103000-bbbb")
	promoteID := workflows.PromoteID("demo", "v1.0.0")

	type run struct {
		run    views.AuditRun
		events []*historypb.HistoryEvent
	}
	runs := []run{
		// A release that stays open as the record: its result is the memo's status.
		{views.AuditRun{WorkflowID: releaseID, RunID: "r1", Type: workflows.ReleaseWorkflow},
			newAuditHist(t, auditT0).
				started(workflows.ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice", Ref: "main"}, false).
				memo("running", "").
				memoFields(map[string]any{workflows.MemoStatus: "released", workflows.MemoCommit: "0123456789abcdef", workflows.MemoCreatedBy: "alice"}).events},
		// Its continued run: no new release action, but a refused-by-handler delete.
		{views.AuditRun{WorkflowID: releaseID, RunID: "r2", Type: workflows.ReleaseWorkflow},
			newAuditHist(t, auditT0.Add(2*time.Hour)).
				started(workflows.ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice", Carried: &workflows.ReleaseState{}}, true).
				memoFields(map[string]any{workflows.MemoStatus: "released", workflows.MemoCommit: "0123456789abcdef"}). // republished: no new row
				update("u-del", workflows.DeleteUpdate, workflows.DeleteRequest{Actor: "alice"}, fmt.Errorf("v1.0.0 is linked: it reached qa")).events},
		// auto_deploy: the fabrics come from the upserted search attribute.
		{views.AuditRun{WorkflowID: autoID, RunID: "d1", Type: workflows.DeployWorkflow, Fabrics: []string{"ignored"}},
			newAuditHist(t, auditT0.Add(3*time.Minute)).
				started(workflows.DeployInput{Project: "demo", Version: "v1.0.0", Actor: "alice", Trigger: "release"}, false).
				fabrics("dev", "airflow-dev").
				completed(workflows.DeployState{Progress: workflows.Progress{Status: workflows.StatusSucceeded, Summary: "deployed v1.0.0 of demo to airflow-dev, dev (2 jobs)"}}).events},
		// mallory is refused: the failure type says so.
		{views.AuditRun{WorkflowID: refusedID, RunID: "d2", Type: workflows.DeployWorkflow, Fabrics: []string{"dev"}},
			newAuditHist(t, auditT0.Add(10*time.Minute)).
				started(workflows.DeployInput{Project: "demo", Version: "v1.0.0", Actor: "mallory", Trigger: "cli"}, false).
				memo("refused", "mallory may not deploy to fabric dev").
				failed(apperr.AccessDenied, "mallory may not deploy to fabric dev: it is owned by team developers").events},
		// A deployment parks, bob resumes it, it succeeds.
		{views.AuditRun{WorkflowID: parkedID, RunID: "d3", Type: workflows.DeployWorkflow},
			newAuditHist(t, auditT0.Add(30*time.Minute)).
				started(workflows.DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob", Fabric: "dev", Trigger: "cli"}, false).
				memo("running", "").
				memo("parked", "parked at upload: 403 invalid token (SHIPLINE_TOKEN)").
				update("u-res", workflows.ResumeUpdate, workflows.ControlRequest{Actor: "bob"}, "resuming "+parkedID+" from step upload").
				memo("running", "").
				completed(workflows.DeployState{Progress: workflows.Progress{Status: workflows.StatusSucceeded, Summary: "deployed v1.0.0 of demo to dev (1 jobs)"}}).events},
		// A promotion waiting at prod: carol approved qa; erin's approval is still running.
		{views.AuditRun{WorkflowID: promoteID, RunID: "p1", Type: workflows.PromoteWorkflow},
			newAuditHist(t, auditT0.Add(time.Hour)).
				started(workflows.PromoteInput{Project: "demo", Version: "v1.0.0", Actor: "alice", To: "prod"}, false).
				memo("waiting", "").
				update("u-app", workflows.ApproveUpdate, workflows.Vote{Stage: "qa", Actor: "carol", Comment: "lgtm"}, workflows.StageState{Name: "qa"}).
				update("u-app2", workflows.ApproveUpdate, workflows.Vote{Stage: "prod", Actor: "erin"}, nil).events},
		// The Audit entity: an approval refused by the validator.
		{views.AuditRun{WorkflowID: workflows.AuditID("demo"), RunID: "a1", Type: workflows.AuditWorkflow},
			newAuditHist(t, auditT0.Add(90*time.Minute)).
				started(workflows.AuditInput{Project: "demo"}, false).
				signal(workflows.RefusalSignal, workflows.Refusal{Actor: "mallory", Action: workflows.ApproveUpdate, Target: promoteID,
					Version: "v1.0.0", Stage: "prod", Reason: "mallory is not in team prod_support", At: auditT0.Add(91 * time.Minute)}).events},
	}
	mismatchID := workflows.DeployID("demo", "v1.0.0", "promote-prod-aaaa")
	deletedID := workflows.ReleaseID("demo", "v0.9.0")
	runs = append(runs,
		// A deployment stopped by an artifact mismatch: refused, as the workflow says (workflows.Outcome).
		run{views.AuditRun{WorkflowID: mismatchID, RunID: "d4", Type: workflows.DeployWorkflow, Fabrics: []string{"prod"}},
			newAuditHist(t, auditT0.Add(40*time.Minute)).
				started(workflows.DeployInput{Project: "demo", Version: "v1.0.0", Actor: "carol", Trigger: "promote"}, false).
				memo("failed", "pipeline ingest built to other bytes").
				failed(apperr.ArtifactMismatch, "pipeline ingest built to other bytes").events},
		// A release deleted hours later: the delete adds a row; the release's row
		// keeps its result and its time.
		run{views.AuditRun{WorkflowID: deletedID, RunID: "r9", Type: workflows.ReleaseWorkflow},
			newAuditHist(t, auditT0.Add(-time.Hour)).
				started(workflows.ReleaseInput{Project: "demo", Version: "v0.9.0", Actor: "alice"}, false).
				memoFields(map[string]any{workflows.MemoStatus: "released", workflows.MemoCommit: "9999999999", workflows.MemoCreatedBy: "alice"}).
				wait(4*time.Hour).
				update("u-del9", workflows.DeleteUpdate, workflows.DeleteRequest{Actor: "alice"}, "deleted v0.9.0: tag removed").
				memo("deleted", "").
				completed(workflows.ReleaseState{Progress: workflows.Progress{Status: workflows.StatusDeleted}}).events},
	)
	var all []auditRecord
	for _, r := range runs {
		all = append(all, views.ExtractActions("demo", r.run, r.events)...)
	}
	views.SortAuditRecords(all)
	var got []string
	for _, r := range all {
		got = append(got, auditLineOf(r))
	}
	want := []string{
		"09:01 alice release v0.9.0 fabric= stage= → released [tag v0.9.0 at 9999999] id=" + deletedID,
		"10:02 alice release v1.0.0 fabric= stage= → released [tag v1.0.0 at 0123456] id=" + releaseID,
		"10:03 alice deploy v1.0.0 fabric=airflow-dev,dev stage= → started [] id=" + autoID,
		"10:05 alice deploy v1.0.0 fabric=airflow-dev,dev stage= → succeeded [deployed v1.0.0 of demo to airflow-dev, dev (2 jobs)] id=" + autoID,
		"10:10 mallory deploy v1.0.0 fabric=dev stage= → started [] id=" + refusedID,
		"10:12 mallory deploy v1.0.0 fabric=dev stage= → refused [mallory may not deploy to fabric dev: it is owned by team developers] id=" + refusedID,
		"10:30 bob deploy v1.0.0 fabric=dev stage= → started [] id=" + parkedID,
		"10:32 bob deploy v1.0.0 fabric=dev stage= → parked [parked at upload: 403 invalid token (SHIPLINE_TOKEN)] id=" + parkedID,
		"10:33 bob resume v1.0.0 fabric= stage= → ok [resuming " + parkedID + " from step upload] id=" + parkedID,
		"10:36 bob deploy v1.0.0 fabric=dev stage= → succeeded [deployed v1.0.0 of demo to dev (1 jobs)] id=" + parkedID,
		"10:40 carol deploy v1.0.0 fabric=prod stage= → started [] id=" + mismatchID,
		"10:42 carol deploy v1.0.0 fabric=prod stage= → refused [pipeline ingest built to other bytes] id=" + mismatchID,
		"11:00 alice promote v1.0.0 fabric= stage=prod → started [] id=" + promoteID,
		"11:02 carol approve v1.0.0 fabric= stage=qa → ok [lgtm] id=" + promoteID,
		"11:04 erin approve v1.0.0 fabric= stage=prod → in progress [] id=" + promoteID,
		"11:31 mallory approve v1.0.0 fabric= stage=prod → refused [mallory is not in team prod_support] id=" + promoteID,
		"12:02 alice delete v1.0.0 fabric= stage= → failed [v1.0.0 is linked: it reached qa] id=" + releaseID,
		"13:02 alice delete v0.9.0 fabric= stage= → ok [deleted v0.9.0: tag removed] id=" + deletedID,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Triggers are kept for deploys.
	for _, r := range all {
		if r.WorkflowID == autoID && r.Action == "deploy" && r.Trigger != "release" {
			t.Errorf("auto_deploy trigger = %q", r.Trigger)
		}
	}

	// The text table and the JSON lines.
	var out bytes.Buffer
	g := &globals{stdout: &out}
	if err := printAudit(g, all); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"TIME", "FABRIC/STAGE", "airflow-dev,dev", "stage prod", "by release; deployed", "refused"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "\n"); n != len(all)+1 {
		t.Errorf("table has %d lines for %d records", n, len(all))
	}
}

func TestParseSince(t *testing.T) {
	now := auditT0
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"24h", now.Add(-24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"2026-11-20T08:00:00Z", time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)},
		{"2026-11-20T08:00:00+02:00", time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC)},
	} {
		got, err := parseAuditSince(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseAuditSince(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if _, err := parseAuditSince("yesterday", now); err == nil || !strings.Contains(err.Error(), "neither a time") {
		t.Errorf("parseAuditSince(yesterday) error = %v", err)
	}
}

func TestAuditJSONLine(t *testing.T) {
	r := auditRecord{Time: auditT0, Actor: "alice", Action: "release", Project: "demo", Version: "v1.0.0", Result: "released", WorkflowID: "release/demo/v1.0.0"}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2026-11-22T10:00:00Z","actor":"alice","action":"release","project":"demo","version":"v1.0.0","result":"released","workflow_id":"release/demo/v1.0.0"}`
	if string(b) != want {
		t.Errorf("JSON line\n got %s\nwant %s", b, want)
	}
}

// The audit reads a failed run's result from the class of its failure type,
// the same class the workflows act on: a deployment refused for an artifact
// mismatch is "refused" in the audit too.
func TestAuditFailureResultFollowsClass(t *testing.T) {
	for _, typ := range append(apperr.Types(), "", "PanicError") {
		want := workflows.StatusFailed
		switch apperr.ClassOf(typ) {
		case apperr.Refused:
			want = workflows.StatusRefused
		case apperr.Stopped:
			want = workflows.StatusCancelled
		}
		if typ == apperr.Superseded {
			want = workflows.StatusSuperseded
		}
		f := &failurepb.Failure{FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: typ}}}
		if got := views.FailureResult(f); got != string(want) {
			t.Errorf("a run failed with %q: audit result %q, want %q", typ, got, want)
		}
	}
	f := &failurepb.Failure{FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: apperr.ArtifactMismatch}}}
	if got := views.FailureResult(f); got != string(workflows.StatusRefused) {
		t.Errorf("artifact mismatch: %q", got)
	}
}

// history reads the same words as the audit: what the workflow wrote, or how
// a run closed that never wrote its ending (a parked deployment terminated).
func TestHistoryStatus(t *testing.T) {
	for _, tc := range []struct {
		memo   string
		closed bool
		status enumspb.WorkflowExecutionStatus
		want   string
	}{
		{"parked", false, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "parked"},
		{"parked", true, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, "terminated"},
		{"queued", true, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, "cancelled"},
		{"running", true, enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, "timed out"},
		{"", true, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, "failed"},
		{string(workflows.Outcome(apperr.ArtifactMismatch)), true, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, "refused"},
		{"refused", true, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, "refused"},
		{"succeeded", true, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "succeeded"},
	} {
		if got := views.HistoryStatus(tc.memo, tc.closed, tc.status); got != tc.want {
			t.Errorf("views.HistoryStatus(%q, %v, %s) = %q, want %q", tc.memo, tc.closed, tc.status, got, tc.want)
		}
	}
}

// An update its workflow refused is shown once: from the project's Audit
// entity (which says how it arrived), not also from the target's history; and
// a flood of refusals by one actor is capped, the rest counted.
func TestAuditRefusalsShownOnceAndCapped(t *testing.T) {
	promoteID := workflows.PromoteID("demo", "v1.0.0")
	vote := workflows.Vote{Stage: "prod", Actor: "mallory"}
	target := newAuditHist(t, auditT0).
		started(workflows.PromoteInput{Project: "demo", Version: "v1.0.0", Actor: "alice", To: "prod"}, false).
		update("u-forged", workflows.ApproveUpdate, vote, nil).
		add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED, func(ev *historypb.HistoryEvent) {
			ev.Attributes = &historypb.HistoryEvent_WorkflowExecutionUpdateCompletedEventAttributes{
				WorkflowExecutionUpdateCompletedEventAttributes: &historypb.WorkflowExecutionUpdateCompletedEventAttributes{
					Meta: &updatepb.Meta{UpdateId: "u-forged"}, Outcome: &updatepb.Outcome{Value: &updatepb.Outcome_Failure{Failure: &failurepb.Failure{
						Message:     "unsigned: this platform requires signed requests",
						FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: apperr.SignatureRefused}}}}}}}
		}).
		update("u-failed", workflows.DeleteUpdate, workflows.DeleteRequest{Actor: "alice"}, fmt.Errorf("remove artifacts: disk full"))
	entity := newAuditHist(t, auditT0).started(workflows.AuditInput{Project: "demo"}, false).
		signal(workflows.RefusalSignal, workflows.Refusal{Actor: "mallory", Action: workflows.ActionApprove, Target: promoteID, Version: "v1.0.0",
			Stage: "prod", Reason: "unsigned: this platform requires signed requests", Via: workflows.ViaUnsigned})
	for i := 0; i < workflows.MaxRefusalsPerActor+4; i++ {
		entity.signal(workflows.RefusalSignal, workflows.Refusal{Actor: "mallory", Action: workflows.ActionResume, Target: promoteID, Reason: "not parked", Via: workflows.ViaUnsigned})
	}
	var all []auditRecord
	all = append(all, views.ExtractActions("demo", views.AuditRun{WorkflowID: promoteID, RunID: "p1", Type: workflows.PromoteWorkflow}, target.events)...)
	// The flood spans two runs of the Audit entity (it continued as new).
	half := len(entity.events) / 2
	all = append(all, views.ExtractActions("demo", views.AuditRun{WorkflowID: workflows.AuditID("demo"), RunID: "a1", Type: workflows.AuditWorkflow}, entity.events[:half])...)
	all = append(all, views.ExtractActions("demo", views.AuditRun{WorkflowID: workflows.AuditID("demo"), RunID: "a2", Type: workflows.AuditWorkflow}, entity.events[half:])...)
	views.SortAuditRecords(all)
	all = views.CapAuditRefusals("demo", all)
	approvals, kept, dropped, failed := 0, 0, 0, 0
	for _, r := range all {
		switch {
		case r.Action == workflows.ActionApprove:
			approvals++
			if r.Result != "refused" || r.Via != workflows.ViaUnsigned || r.Stage != "prod" {
				t.Errorf("refused approval %+v", r)
			}
		case r.Dropped > 0:
			dropped += r.Dropped
		case r.Action == workflows.ActionResume:
			kept++
		case r.Action == workflows.DeleteUpdate && r.Result == "failed":
			failed++
		}
	}
	if approvals != 1 || failed != 1 || kept != workflows.MaxRefusalsPerActor-1 || dropped != 5 {
		t.Fatalf("approvals %d (want 1), failed deletes %d (want 1), kept resumes %d, dropped %d:\n%+v", approvals, failed, kept, dropped, all)
	}
	var out bytes.Buffer
	if err := printAudit(&globals{stdout: &out}, all); err != nil {
		t.Fatal(err)
	}
	if text := out.String(); !strings.Contains(text, "via "+workflows.ViaUnsigned) || !strings.Contains(text, "5 refusals not kept") {
		t.Errorf("table:\n%s", text)
	}
}

// The start's own `accepted` update and Shipline's `claim-request` of a request
// ID are bookkeeping: they never show as actions in the audit.
func TestAuditSkipsBookkeepingUpdates(t *testing.T) {
	releaseID := workflows.ReleaseID("demo", "v1.0.0")
	events := newAuditHist(t, auditT0).
		started(workflows.ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"}, false).
		update("u-acc", workflows.AcceptUpdate, map[string]any{}, map[string]any{"accepted": true}).
		update("u-claim", workflows.ClaimRequestUpdate, map[string]any{"actor": "alice", "request_id": "r-1"}, map[string]any{"ok": true}).
		memoFields(map[string]any{workflows.MemoStatus: "released", workflows.MemoCommit: "0123456789abcdef", workflows.MemoCreatedBy: "alice"}).events
	got := views.ExtractActions("demo", views.AuditRun{WorkflowID: releaseID, RunID: "r1", Type: workflows.ReleaseWorkflow}, events)
	for _, r := range got {
		if r.Action == workflows.AcceptUpdate || r.Action == workflows.ClaimRequestUpdate {
			t.Errorf("bookkeeping update shown as an action: %+v", r)
		}
	}
	if len(got) != 1 || got[0].Action != "release" {
		t.Errorf("actions = %+v, want the release alone", got)
	}
}

// A vote the dashboard signed as a delegate shows who voted and through what:
// "carol via web", in the table and as `delegate` in the JSON line.
func TestAuditShowsDelegatedVotes(t *testing.T) {
	promoteID := workflows.PromoteID("demo", "v1.0.0")
	vote := workflows.Vote{Stage: "prod", Actor: "carol", Comment: "looks good",
		Auth: &signing.Auth{RequestID: "r1", Time: auditT0, Signature: "c2ln", Delegate: "web"}}
	events := newAuditHist(t, auditT0).
		started(workflows.PromoteInput{Project: "demo", Version: "v1.0.0", Actor: "alice"}, false).
		update("u1", workflows.ActionApprove, vote, workflows.StageState{Name: "prod"}).events
	rs := views.ExtractActions("demo", views.AuditRun{WorkflowID: promoteID, RunID: "p1", Type: workflows.PromoteWorkflow}, events)
	var approve *auditRecord
	for i := range rs {
		if rs[i].Action == workflows.ActionApprove {
			approve = &rs[i]
		}
	}
	if approve == nil || approve.Actor != "carol" || approve.Delegate != "web" || approve.Who() != "carol via web" {
		t.Fatalf("approval record %+v", approve)
	}
	var out bytes.Buffer
	if err := printAudit(&globals{stdout: &out}, rs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "carol via web") {
		t.Errorf("table lacks carol via web:\n%s", out.String())
	}
	b, _ := json.Marshal(approve)
	if !strings.Contains(string(b), `"actor":"carol"`) || !strings.Contains(string(b), `"delegate":"web"`) {
		t.Errorf("JSON line %s", b)
	}
}
