package workflows

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/fabric"
)

// recordEnv runs a released entity and plays deletes and links against it.
type recordEnv struct {
	*releaseEnv
	reverted []activities.UpsertJobInput
	removed  []activities.DeleteJobInput
	tagGone  bool
	// runs are the active runs on dev; deletedWith the DeleteArtifacts inputs.
	runs        []activities.JobRun
	deletedWith []activities.DeleteArtifactsInput
}

func newRecordEnv(t *testing.T, fabric FabricState, slowDelete ...time.Duration) *recordEnv {
	e := &recordEnv{releaseEnv: newReleaseEnv(t, admins())}
	e.okGit(true)
	e.RegisterActivity(&activities.Deploy{})
	useInternalAuth(e.TestWorkflowEnvironment)
	raw, _ := json.Marshal(fabric)
	e.OnActivity(messageActs.Query, mock.Anything, activities.QueryInput{WorkflowID: FabricID("demo", "dev"), Query: StateQuery}).
		Return(activities.QueryOutput{Result: raw}, nil)
	e.OnActivity(deployActs.UpsertJob, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		e.reverted = append(e.reverted, in)
		return activities.UpsertJobOutput{ID: "7", Action: "updated"}, nil
	})
	e.OnActivity(deployActs.DeleteJob, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DeleteJobInput) (activities.DeleteJobOutput, error) {
		e.removed = append(e.removed, in)
		return activities.DeleteJobOutput{Action: "deleted"}, nil
	})
	e.OnActivity(deployActs.ActiveRuns, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ActiveRunsInput) (activities.ActiveRunsOutput, error) {
		out := activities.ActiveRunsOutput{Policy: "wait", Timeout: time.Hour}
		for _, r := range e.runs {
			if slices.Contains(in.Jobs, r.Job) && (r.Run.Version == in.Version || r.Run.Version == "") {
				out.Runs = append(out.Runs, r)
			}
		}
		return out, nil
	}).Maybe()
	del := e.OnActivity(deployActs.DeleteArtifacts, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DeleteArtifactsInput) (activities.DeleteArtifactsOutput, error) {
		e.deletedWith = append(e.deletedWith, in)
		return activities.DeleteArtifactsOutput{Removed: 2}, nil
	})
	if len(slowDelete) > 0 {
		del.After(slowDelete[0])
	}
	e.OnActivity(gitActs.DeleteTag, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DeleteTagInput) (activities.DeleteTagOutput, error) {
		e.tagGone = in.Commit == commit
		return activities.DeleteTagOutput{Deleted: true}, nil
	})
	e.OnSignalExternalWorkflow(mock.Anything, FabricID("demo", "dev"), "", DoneSignal, mock.Anything).Return(nil)
	// The auto_deploy child reports where it deployed.
	e.RegisterDelayedCallback(func() {
		e.SignalWorkflow(DeployedSignal, sealed(testWorkflowID, DeployedSignal, Deployed{DeploymentID: "deploy/demo/v1.0.0/release", Fabrics: []string{"dev"}, Actor: "alice", Artifacts: map[string]string{"ingest": "s1"}}))
	}, time.Minute)
	return e
}

// update sends an update at a time and records its refusal ("" when accepted).
func (e *recordEnv) update(at time.Duration, name string, arg any, refusal *string) {
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(name, name+at.String(), &testsuite.TestUpdateCallback{
			OnReject: func(err error) { *refusal = err.Error() },
			OnAccept: func() {},
			OnComplete: func(_ any, err error) {
				if err != nil {
					*refusal = err.Error()
				}
			},
		}, arg)
	}, at)
}

func fabricWithHistory() FabricState {
	prev := JobRecord{Fabric: "dev", Job: "daily", Scheduler: "databricks", Version: "v0.9.0", Commit: "c0", DeploymentID: "deploy/demo/v0.9.0/x", Artifacts: map[string]string{"ingest": "/a/v0.9.0/ingest.whl"}}
	cur := JobRecord{Fabric: "dev", Job: "daily", Scheduler: "databricks", Version: "v1.0.0", Commit: commit, DeploymentID: "deploy/demo/v1.0.0/release"}
	dag := JobRecord{Fabric: "dev", Job: "dag", Scheduler: "airflow", Version: "v1.0.0", Commit: commit}
	return FabricState{Project: "demo", Fabric: "dev",
		Jobs: map[string]JobRecord{"daily": cur, "dag": dag},
		History: []DeploymentDone{
			{DeploymentID: "deploy/demo/v0.9.0/x", Outcome: StatusSucceeded, Jobs: []JobRecord{prev}},
			{DeploymentID: "deploy/demo/v1.0.0/release", Outcome: StatusSucceeded, Jobs: []JobRecord{cur, dag}},
		}}
}

func TestDeleteUnlinkedRelease(t *testing.T) {
	e := newRecordEnv(t, fabricWithHistory())
	var bob, alice string
	e.update(time.Hour, DeleteUpdate, DeleteRequest{Actor: "bob"}, &bob)
	e.update(2*time.Hour, DeleteUpdate, DeleteRequest{Actor: "alice"}, &alice)
	e.ExecuteWorkflow(Release, ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"})
	if err := e.GetWorkflowError(); err != nil {
		t.Fatalf("a deleted release should end cleanly: %v", err)
	}
	if !strings.Contains(bob, "bob may not delete releases of project demo") || alice != "" {
		t.Fatalf("refusals: bob %q, alice %q", bob, alice)
	}
	// The non-admin's delete is in the project's audit, once; alice's is not.
	if a := e.audit.refusals(); len(a) != 1 || a[0].Actor != "bob" || a[0].Action != ActionDelete || a[0].Via != ViaUnsigned || !strings.Contains(bob, a[0].Reason) {
		t.Fatalf("audited %+v", a)
	}
	if len(e.reverted) != 1 || e.reverted[0].Version != "v0.9.0" || e.reverted[0].Artifacts["ingest"] != "/a/v0.9.0/ingest.whl" {
		t.Fatalf("daily should revert to v0.9.0: %+v", e.reverted)
	}
	if len(e.removed) != 1 || e.removed[0].Job != "dag" || !e.tagGone {
		t.Fatalf("dag should be removed (no earlier release) and the tag deleted: %+v %v", e.removed, e.tagGone)
	}
	var s ReleaseState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusDeleted || s.Deleted == nil || s.Deleted.Artifacts != 2 {
		t.Fatalf("state %+v", s)
	}
}

// Artifacts a running job uses are never removed: a delete while a run of
// the release is active is refused before anything changes; once it ended,
// the delete goes through, and the artifacts' removal names the jobs to
// check again.
func TestDeleteRefusedWhileRunUsesArtifacts(t *testing.T) {
	e := newRecordEnv(t, fabricWithHistory())
	e.runs = []activities.JobRun{
		{Job: "daily", Run: fabric.Run{ID: "123", URL: "https://dbx.example.com/jobs/7/runs/123", State: fabric.RunRunning, Version: "v1.0.0"}},
		{Job: "dag", Run: fabric.Run{ID: "old", State: fabric.RunRunning, Version: "v0.9.0"}}, // another release's run
	}
	var first, second string
	e.update(time.Hour, DeleteUpdate, DeleteRequest{Actor: "alice"}, &first)
	e.RegisterDelayedCallback(func() { e.runs = nil }, 2*time.Hour)
	e.update(3*time.Hour, DeleteUpdate, DeleteRequest{Actor: "alice"}, &second)
	var during ReleaseState
	e.RegisterDelayedCallback(func() {
		v, err := e.QueryWorkflow(StateQuery)
		if err != nil {
			t.Fatal(err)
		}
		_ = v.Get(&during)
	}, 90*time.Minute)
	e.ExecuteWorkflow(Release, ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"})

	want := "v1.0.0 of demo is not deleted: its artifacts are in use — on fabric dev, job daily has an active run 123 (https://dbx.example.com/jobs/7/runs/123); wait for the runs to end (or cancel them), then delete again"
	if !strings.HasPrefix(first, want) {
		t.Fatalf("first delete:\n got %q\nwant %q", first, want)
	}
	if during.Status != StatusReleased || during.Deleted != nil {
		t.Fatalf("after the refused delete: %+v", during)
	}
	// The refusal is in the project's audit, as the delete's other refusals.
	if a := e.audit.refusals(); len(a) != 1 || a[0].Actor != "alice" || a[0].Action != ActionDelete || a[0].Reason != want {
		t.Fatalf("audited %+v", a)
	}
	if second != "" {
		t.Fatalf("second delete refused: %s", second)
	}
	if len(e.deletedWith) != 1 || !slices.Equal(e.deletedWith[0].Jobs, []string{"dag", "daily"}) || len(e.reverted) != 1 || !e.tagGone {
		t.Fatalf("artifacts deleted with %+v, reverted %d, tag gone %v", e.deletedWith, len(e.reverted), e.tagGone)
	}
}

// Link and delete are decided inside the entity: once linked, delete is refused;
// once deleted, a promotion cannot link.
func TestLinkedReleaseCannotBeDeleted(t *testing.T) {
	e := newRecordEnv(t, fabricWithHistory())
	var link, del string
	e.update(time.Hour, LinkUpdate, sealed(testWorkflowID, LinkUpdate, LinkRequest{Stage: "qa", Actor: "bob"}), &link)
	e.update(2*time.Hour, DeleteUpdate, DeleteRequest{Actor: "alice"}, &del)
	var state ReleaseState
	e.RegisterDelayedCallback(func() {
		v, _ := e.QueryWorkflow(StateQuery)
		_ = v.Get(&state)
		e.CancelWorkflow()
	}, 3*time.Hour)
	e.ExecuteWorkflow(Release, ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"})
	if link != "" || !strings.Contains(del, "is linked: it reached qa") {
		t.Fatalf("link refusal %q, delete refusal %q", link, del)
	}
	if !state.Linked || state.Fabrics["dev"].DeploymentID != "deploy/demo/v1.0.0/release" || state.Artifacts["ingest"] != "s1" || len(e.reverted) != 0 {
		t.Fatalf("state %+v", state)
	}
}

// A promotion that tries to link while the delete runs is refused.
func TestDeletingReleaseCannotBeLinked(t *testing.T) {
	e := newRecordEnv(t, fabricWithHistory(), 10*time.Minute)
	var del, link string
	e.update(time.Hour, DeleteUpdate, DeleteRequest{Actor: "alice"}, &del)
	e.update(time.Hour+time.Minute, LinkUpdate, sealed(testWorkflowID, LinkUpdate, LinkRequest{Stage: "qa", Actor: "bob"}), &link)
	e.ExecuteWorkflow(Release, ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"})
	if del != "" || !strings.Contains(link, "is being deleted") || e.tagGone != true {
		t.Fatalf("delete refusal %q, link refusal %q", del, link)
	}
}
