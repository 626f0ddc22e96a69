package cli

import (
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/workflows"
)

// versionMarker is the name of the marker workflow.GetVersion records, with
// the change ID under versionChangeID.
const (
	versionMarker   = "Version"
	versionChangeID = "change-id"
)

// authenticRefusals tells which RefusalSignal events of an Audit run the
// entity accepted as sent by Shipline: those whose seal the run verified (a
// VerifyMessage activity answered OK for the seal's nonce), the first event
// with each nonce only. Anyone who can reach the namespace can signal the
// Audit entity, so the others are shown as forged attempts. nil means the run
// began before internal messages were sealed: its records are shown as they are.
func authenticRefusals(events []*historypb.HistoryEvent) map[int64]bool {
	sealedRun := false
	verifies := map[int64]bool{} // scheduled event IDs of VerifyMessage
	verified := map[string]bool{}
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			a := ev.GetMarkerRecordedEventAttributes()
			if a.GetMarkerName() == versionMarker && payloadAsString(firstPayloadOf(a.GetDetails()[versionChangeID])) == workflows.ChangeInternalAuth {
				sealedRun = true
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == activities.VerifyMessageActivity {
				verifies[ev.GetEventId()] = true
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			a := ev.GetActivityTaskCompletedEventAttributes()
			var out activities.VerifyOutput
			if verifies[a.GetScheduledEventId()] && converter.GetDefaultDataConverter().FromPayload(firstPayloadOf(a.GetResult()), &out) == nil && out.OK {
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
		if p := firstPayloadOf(a.GetInput()); p == nil || converter.GetDefaultDataConverter().FromPayload(p, &r) != nil || r.Seal == nil {
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
func forgedAuditRecord(project, auditID string, ev *historypb.HistoryEvent, claimed workflows.Refusal) auditRecord {
	claim := fmt.Sprintf("%s %s on %s: %s", claimed.Actor, claimed.Action, claimed.Target, claimed.Reason)
	if len(claim) > 200 {
		claim = claim[:200] + "…"
	}
	return auditRecord{Time: ev.GetEventTime().AsTime(), Actor: "unknown (unauthenticated)", Action: "forge audit record", Project: project,
		Result: "refused", Detail: fmt.Sprintf("an audit record not sent by Shipline; not believed. It claimed: %q", claim), WorkflowID: auditID}
}
