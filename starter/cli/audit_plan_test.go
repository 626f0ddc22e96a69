package cli

import (
	"github.com/shipline/shipline/internal/views"
	"strings"
	"testing"

	"github.com/shipline/shipline/workflows"
)

// A gate that reopened because its plan changed is a row of the audit, with
// why; the approvals before and after it are rows of their own.
func TestAuditShowsReopenedGate(t *testing.T) {
	pid := workflows.PromoteID("demo", "v1.0.0")
	reason := "qa: the plan of qa changed since it was approved by bob: qa/daily_orders: drift: max_concurrent_runs: deployed 1, live 4 (was: none); approve the new plan (review it with `shipline status " + pid + "`)"
	events := newAuditHist(t, auditT0).
		started(workflows.PromoteInput{Project: "demo", Version: "v1.0.0", Actor: "alice"}, false).
		memo("waiting", "").
		update("u-1", workflows.ApproveUpdate, workflows.Vote{Stage: "qa", Actor: "bob", PlanHash: "aaaa"}, workflows.StageState{Name: "qa"}).
		memo(string(workflows.StatusReopened), reason).
		memo("waiting", "").
		update("u-2", workflows.ApproveUpdate, workflows.Vote{Stage: "qa", Actor: "bob", PlanHash: "bbbb"}, workflows.StageState{Name: "qa"}).
		memo("promoted", "").events
	var got []string
	for _, r := range views.ExtractActions("demo", views.AuditRun{WorkflowID: pid, RunID: "r1", Type: workflows.PromoteWorkflow}, events) {
		got = append(got, auditLineOf(r))
	}
	want := []string{
		"10:00 alice promote v1.0.0 fabric= stage= → started [] id=" + pid,
		"10:02 bob approve v1.0.0 fabric= stage=qa → ok [] id=" + pid,
		"10:04 alice promote v1.0.0 fabric= stage= → reopened [" + reason + "] id=" + pid,
		"10:06 bob approve v1.0.0 fabric= stage=qa → ok [] id=" + pid,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
