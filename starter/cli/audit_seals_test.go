package cli

import (
	"github.com/shipline/shipline/internal/views"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/msgauth"
	"github.com/shipline/shipline/workflows"
)

func (h *auditHist) refusal(r workflows.Refusal) *auditHist {
	return h.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, func(ev *historypb.HistoryEvent) {
		ev.Attributes = &historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes{WorkflowExecutionSignaledEventAttributes: &historypb.WorkflowExecutionSignaledEventAttributes{
			SignalName: workflows.RefusalSignal, Input: h.payloads(r)}}
	})
}

func (h *auditHist) versionMarker(changeID string) *auditHist {
	return h.add(enumspb.EVENT_TYPE_MARKER_RECORDED, func(ev *historypb.HistoryEvent) {
		ev.Attributes = &historypb.HistoryEvent_MarkerRecordedEventAttributes{MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{
			MarkerName: views.VersionMarker, Details: map[string]*commonpb.Payloads{views.VersionChangeID: h.payloads(changeID)}}}
	})
}

// verdict adds a VerifyMessage activity and its result.
func (h *auditHist) verdict(out activities.VerifyOutput) *auditHist {
	h.add(enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, func(ev *historypb.HistoryEvent) {
		ev.Attributes = &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
			ActivityType: &commonpb.ActivityType{Name: activities.VerifyMessageActivity}, TaskQueue: &taskqueuepb.TaskQueue{Name: "shipline"}}}
	})
	scheduled := int64(len(h.events))
	return h.add(enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, func(ev *historypb.HistoryEvent) {
		ev.Attributes = &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{
			ScheduledEventId: scheduled, Result: h.payloads(out)}}
	})
}

// In a sealed Audit run, only refusals whose seal the entity verified are
// believed (once per nonce); the rest show as forged attempts quoting their
// claim. A run from before sealing shows its records as they are.
func TestAuditShowsUnsealedRefusalsAsForged(t *testing.T) {
	run := views.AuditRun{WorkflowID: workflows.AuditID("demo"), RunID: "a1", Type: workflows.AuditWorkflow}
	genuine := workflows.Refusal{Actor: "bob", Action: workflows.DeleteUpdate, Reason: "only admins", Sealed: workflows.Sealed{Seal: &msgauth.Seal{Nonce: "n1", MAC: "m"}}}
	badMAC := workflows.Refusal{Actor: "erin", Action: workflows.DeleteUpdate, Reason: "x", Sealed: workflows.Sealed{Seal: &msgauth.Seal{Nonce: "n2", MAC: "m"}}}
	h := newAuditHist(t, auditT0).started(workflows.AuditInput{Project: "demo"}, false).versionMarker(workflows.ChangeInternalAuth).
		refusal(genuine).verdict(activities.VerifyOutput{OK: true, Nonce: "n1"}).
		refusal(workflows.Refusal{Actor: "dave", Action: workflows.DeleteUpdate, Reason: "dave deleted v1.0.0"}).
		refusal(badMAC).verdict(activities.VerifyOutput{OK: false, Nonce: "n2", Reason: "does not match"}).
		refusal(genuine) // a copy
	got := views.ExtractActions("demo", run, h.events)
	var lines []string
	for _, r := range got {
		lines = append(lines, r.Actor+" "+r.Action+" "+r.Result)
	}
	want := "bob delete refused|unknown (unauthenticated) forge audit record refused|unknown (unauthenticated) forge audit record refused|unknown (unauthenticated) forge audit record refused"
	if strings.Join(lines, "|") != want {
		t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.ReplaceAll(want, "|", "\n"))
	}
	if !strings.Contains(got[1].Detail, `"dave delete on : dave deleted v1.0.0"`) {
		t.Errorf("the forged record's claim is not quoted: %q", got[1].Detail)
	}

	legacy := newAuditHist(t, auditT0).started(workflows.AuditInput{Project: "demo"}, false).
		refusal(workflows.Refusal{Actor: "dave", Action: workflows.DeleteUpdate, Reason: "before sealing"})
	if got := views.ExtractActions("demo", run, legacy.events); len(got) != 1 || got[0].Actor != "dave" {
		t.Fatalf("a run from before sealing: %+v", got)
	}
}
