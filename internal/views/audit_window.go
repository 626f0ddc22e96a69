package views

import (
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/shipline/shipline/workflows"
)

// AuditOverrideWindow is the audit action of a closed stage entered by
// --override-window: who, which stage, why it was closed, and their reason.
const AuditOverrideWindow = "override-window"

// WindowOverrideRecord is the audit row of a memo update that recorded a
// window override (workflows.MemoWindowOverride); ok is false for other memos.
func WindowOverrideRecord(project, workflowID string, at time.Time, fields map[string]*commonpb.Payload) (AuditRecord, bool) {
	p := fields[workflows.MemoWindowOverride]
	var w workflows.WindowWait
	if p == nil || converter.GetDefaultDataConverter().FromPayload(p, &w) != nil || w.Override == nil {
		return AuditRecord{}, false
	}
	return AuditRecord{Time: at, Actor: w.Override.Actor, Action: AuditOverrideWindow, Project: project, Stage: w.Stage, Result: auditOK,
		Detail: w.Override.Reason + " (stage " + w.Stage + " was " + w.Message + ")", WorkflowID: workflowID}, true
}

// OverrideDetail is what an approve with --override-window adds to its row.
func OverrideDetail(args map[string]any) string {
	o, ok := args["override_window"].(map[string]any)
	if !ok {
		return ""
	}
	return "--override-window: " + asString(o["reason"])
}
