package workflows

import (
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistories replays histories recorded by an earlier version
// of the workflow code: a release with its auto_deploy deployment, recorded
// before job upserts were batched per fabric. Open workflows of that shape must
// keep replaying: the change is guarded by workflow.GetVersion (ChangeBatchedJobs).
func TestReplayRecordedHistories(t *testing.T) {
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(Release, workflow.RegisterOptions{Name: ReleaseWorkflow})
	replayer.RegisterWorkflowWithOptions(Deploy, workflow.RegisterOptions{Name: DeployWorkflow})
	replayer.RegisterWorkflowWithOptions(Fabric, workflow.RegisterOptions{Name: FabricWorkflow})
	replayer.RegisterWorkflowWithOptions(Run, workflow.RegisterOptions{Name: RunWorkflow})
	replayer.RegisterWorkflowWithOptions(Promote, workflow.RegisterOptions{Name: PromoteWorkflow})
	// promote.json: a promotion through two gates, recorded before gates
	// showed plans (ChangeGatePlan) by test/promote_e2e_test.go with
	// SHIPLINE_RECORD_PROMOTE_HISTORY=1; promote_plan.json: a promotion whose
	// gate showed its plan and reopened when the job was edited by hand,
	// recorded by test/plan_gate_e2e_test.go the same way.
	for _, name := range []string{"release", "deploy", "fabric", "run", "promote", "promote_plan"} {
		t.Run(name, func(t *testing.T) {
			h, err := client.HistoryFromJSON(mustOpen(t, filepath.Join("testdata", "histories", name+".json")), client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := replayer.ReplayWorkflowHistory(nil, h); err != nil {
				t.Fatalf("%s history no longer replays: %v", name, err)
			}
		})
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
