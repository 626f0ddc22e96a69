package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/workflows"
)

// status of a promotion lists the notifications it sent and how each target
// took them, read from their Notify workflows: delivered, retrying with the
// receiver's last answer, not delivered, and a Notify that is gone.
func TestGoldenStatusNotifications(t *testing.T) {
	pid := workflows.PromoteID("demo", "v1.0.0")
	id := func(n int) string { return workflows.NotifyID(pid, "run00001", n) }
	s := promoteState(workflows.StatusWaiting, "promoting v1.0.0 of demo for alice", reopenedQA())
	s.Pending = "qa: 0 of 1 approvals from developers; alice, bob may approve"
	s.Notices = []workflows.Notice{
		{ID: id(1), Event: platform.EventApprovalNeeded, Stage: "qa", Targets: []string{"team", "leads"}, At: t0},
		{ID: id(2), Event: platform.EventReminder, Stage: "qa", Targets: []string{"team"}, At: t0.Add(4 * time.Hour)},
		{ID: id(3), Event: platform.EventEscalation, Stage: "qa", Targets: []string{"leads"}, At: t0.Add(24 * time.Hour)},
		{ID: id(4), Event: platform.EventReminder, Stage: "qa", Targets: []string{"team"}, At: t0.Add(28 * time.Hour)},
		{ID: id(5), Event: platform.EventReminder, Stage: "qa", Targets: []string{"team"}, At: t0.Add(32 * time.Hour)},
	}
	for _, out := range []string{"text", "json"} {
		f := newFake()
		f.add(pid, &fakeWF{typ: workflows.PromoteWorkflow, states: []any{s}})
		f.add(id(1), &fakeWF{typ: workflows.NotifyWorkflow, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
			result: workflows.NotifyOutcome{Delivered: []string{"team"}, Failed: map[string]string{"leads": "notification target leads answered 404 Not Found"}}})
		f.add(id(2), &fakeWF{typ: workflows.NotifyWorkflow, status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
			states: []any{workflows.NotifyState{Progress: workflows.Progress{Status: workflows.StatusRunning}}},
			pending: []*workflowpb.PendingActivityInfo{{ActivityId: workflows.NotifyActivityID("team"), Attempt: 4,
				LastFailure:             &failurepb.Failure{Message: "notification target team answered 503 Service Unavailable"},
				NextAttemptScheduleTime: timestamppb.New(t0.Add(4*time.Hour + 30*time.Second))}}})
		f.add(id(3), &fakeWF{typ: workflows.NotifyWorkflow, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
			result: workflows.NotifyOutcome{Delivered: []string{"leads"}}})
		f.add(id(5), &fakeWF{typ: workflows.NotifyWorkflow, status: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED})
		code, stdout, _ := golden(t, "status_promote_notifications_"+out, f, "--output", out, "status", pid)
		if code != ExitOK {
			t.Fatalf("exit %d", code)
		}
		for _, want := range map[string][]string{
			"text": {
				"  notifications:\n",
				"approval_needed (qa)         team: delivered; leads: not delivered: notification target leads answered 404 Not Found",
				"reminder (qa)                team: retrying (attempt 4): notification target team answered 503 Service Unavailable",
				"escalation (qa)              leads: delivered",
				"team: unknown: its Notify workflow " + id(4) + " is not found",
				"team: unknown: its Notify workflow " + id(5) + " was terminated before it said",
			},
			"json": {`"notifications": [`, `"state": "retrying"`, `"attempt": 4`, `"state": "not delivered"`, `"state": "unknown"`},
		}[out] {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s status lacks %q:\n%s", out, want, stdout)
			}
		}
	}
}

// A deployment whose builds have not started (it waits in its fabric's queue
// or for a window) prints no empty builds heading; one whose builds run lists them.
func TestStatusBuildsHeadingOnlyWithBuilds(t *testing.T) {
	for _, c := range []struct {
		status workflows.StepStatus
		want   bool
	}{{workflows.StepPending, false}, {workflows.StepRunning, true}} {
		var out strings.Builder
		g := &globals{stdout: &out}
		raw, _ := json.Marshal(workflows.DeployState{Builds: map[string]workflows.PipelineBuild{"ingest": {Pipeline: "ingest", Status: c.status}}})
		printDetails(g, raw)
		if got := strings.Contains(out.String(), "builds:"); got != c.want {
			t.Errorf("builds %s: heading printed = %v, want %v:\n%s", c.status, got, c.want, out.String())
		}
	}
}
