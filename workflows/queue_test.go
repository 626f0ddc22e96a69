package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/signing"
)

// lab runs several real Deploy workflows against the real Fabric entity of
// (demo, dev), with mocked activities. A driver workflow starts the
// deployments at given times and collects how each ended.
type lab struct {
	*testsuite.TestWorkflowEnvironment
	t *testing.T

	mu       sync.Mutex
	upserts  map[string][]string // deployment ID → jobs upserted, in order
	attempts map[string]int      // deployment ID/job → upsert attempts
	// fail decides a job's upsert: a non-nil error is a permanent per-job failure.
	fail func(deploymentID, job string, call int) error
	// upsert is the UpsertJobs mock (hold the fabric longer with After).
	upsert *testsuite.MockCallWrapper
	audit  *projectAudit
}

func newLab(t *testing.T) *lab {
	var s testsuite.WorkflowTestSuite
	l := &lab{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment(), t: t, upserts: map[string][]string{}, attempts: map[string]int{}}
	l.SetDetachedChildWait(false) // the Fabric entity never ends
	l.RegisterWorkflowWithOptions(Deploy, workflow.RegisterOptions{Name: DeployWorkflow})
	l.RegisterWorkflowWithOptions(Fabric, workflow.RegisterOptions{Name: FabricWorkflow})
	l.RegisterWorkflowWithOptions(Promote, workflow.RegisterOptions{Name: PromoteWorkflow})
	l.RegisterWorkflow(labDriver)
	l.RegisterActivity(&activities.Messages{})
	l.audit = installProjectAudit(l.TestWorkflowEnvironment)
	l.RegisterActivity(&activities.Deploy{})
	l.RegisterActivity(&activities.Build{})
	l.RegisterActivity(&activities.Config{})
	useInternalAuth(l.TestWorkflowEnvironment)
	l.OnActivity(configActs.Signatures, mock.Anything).Return(signing.Policy{}, nil)
	l.OnActivity(configActs.Project, mock.Anything, mock.Anything).Return(activities.ProjectSettings{Name: "demo"}, nil)
	l.OnActivity(deployActs.Resolve, mock.Anything, mock.Anything).Return(resolved(), nil)
	// Every version deployed here was released through Shipline (the Release entity answers).
	released, _ := json.Marshal(ReleaseState{Progress: Progress{Status: StatusReleased}, Actor: "alice"})
	l.OnActivity(messageActs.Query, mock.Anything, mock.Anything).Return(activities.QueryOutput{Result: released}, nil)
	l.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BuildInput) (activities.BuildOutput, error) {
		return activities.BuildOutput{Pipeline: in.Pipeline.Name, File: in.Pipeline.Name + ".whl", SHA256: "ab", Size: 10}, nil
	})
	l.OnActivity(deployActs.CheckJobs, mock.Anything, mock.Anything).Return(activities.CheckJobsOutput{Checked: 2}, nil)
	l.OnActivity(deployActs.ActiveRuns, mock.Anything, mock.Anything).Return(activities.ActiveRunsOutput{Policy: "wait", Timeout: time.Hour}, nil)
	l.OnActivity(deployActs.PlanJobs, mock.Anything, mock.Anything).Return(activities.PlanJobsOutput{}, nil)
	l.OnActivity(deployActs.Upload, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UploadInput) (activities.UploadOutput, error) {
		out := activities.UploadOutput{Paths: map[string]string{}}
		for _, a := range in.Artifacts {
			out.Paths[a.Pipeline] = "/Volumes/a/demo/" + in.Version + "/" + a.File
		}
		return out, nil
	})
	l.upsert = l.OnActivity(deployActs.UpsertJobs, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.UpsertJobsInput) (activities.UpsertJobsOutput, error) {
		out := activities.UpsertJobsOutput{Results: map[string]activities.UpsertJobOutput{}, Failed: map[string]string{}}
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, j := range in.Jobs {
			l.attempts[in.DeploymentID+"/"+j.Name]++
			if l.fail != nil {
				if err := l.fail(in.DeploymentID, j.Name, l.attempts[in.DeploymentID+"/"+j.Name]); err != nil {
					out.Failed[j.Name] = err.Error()
					continue
				}
			}
			l.upserts[in.DeploymentID] = append(l.upserts[in.DeploymentID], j.Name)
			out.Results[j.Name] = activities.UpsertJobOutput{ID: "job-" + j.Name, Action: "updated"}
		}
		return out, nil
	})
	l.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", DeployedSignal, mock.Anything).Return(nil)
	return l
}

// labStart starts one deployment of demo at a time after the driver started.
type labStart struct {
	ID      string        `json:"id"`
	Version string        `json:"version"`
	At      time.Duration `json:"at"`
}

// labResult is how one deployment ended.
type labResult struct {
	ID    string      `json:"id"`
	State DeployState `json:"state"`
	Err   string      `json:"err,omitempty"`
}

// labDriver starts the deployments, waits for them all, then stays a day
// (so the test can still query the Fabric entity) and returns their results.
func labDriver(ctx workflow.Context, starts []labStart) ([]labResult, error) {
	begin := workflow.Now(ctx)
	var futures []workflow.ChildWorkflowFuture
	for _, s := range starts {
		if wait := begin.Add(s.At).Sub(workflow.Now(ctx)); wait > 0 {
			if err := workflow.Sleep(ctx, wait); err != nil {
				return nil, err
			}
		}
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: s.ID, ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON})
		futures = append(futures, workflow.ExecuteChildWorkflow(cctx, DeployWorkflow, DeployInput{Project: "demo", Version: s.Version, Actor: "bob"}))
	}
	var out []labResult
	for i, f := range futures {
		r := labResult{ID: starts[i].ID}
		if err := f.Get(ctx, &r.State); err != nil {
			r.Err = err.Error()
		}
		out = append(out, r)
	}
	return out, workflow.Sleep(ctx, 24*time.Hour)
}

func (l *lab) run(starts ...labStart) map[string]labResult {
	l.ExecuteWorkflow(labDriver, starts)
	if !l.IsWorkflowCompleted() {
		l.t.Fatal("the deployments did not end")
	}
	var results []labResult
	if err := l.GetWorkflowResult(&results); err != nil {
		l.t.Fatalf("driver: %v", err)
	}
	byID := map[string]labResult{}
	for _, r := range results {
		byID[r.ID] = r
	}
	return byID
}

// fabricAt queries the Fabric entity at a time.
func (l *lab) fabricAt(at time.Duration, into *FabricState) {
	l.RegisterDelayedCallback(func() {
		v, err := l.QueryWorkflowByID(FabricID("demo", "dev"), StateQuery)
		if err != nil {
			l.t.Errorf("query fabric: %v", err)
			return
		}
		if err := v.Get(into); err != nil {
			l.t.Error(err)
		}
	}, at)
}

// control sends resume or cancel to a deployment at a time; the refusal (if any) lands in refused.
func (l *lab) control(at time.Duration, id, update string, refused *string) {
	l.RegisterDelayedCallback(func() {
		l.UpdateWorkflowByID(id, update, update+"-"+at.String(), &testsuite.TestUpdateCallback{
			OnReject: func(err error) { l.t.Errorf("%s rejected unrecorded: %v", update, err) },
			OnAccept: func() {},
			OnComplete: func(r any, err error) {
				l.t.Logf("%s answered %v %v", update, r, err)
				if err != nil {
					*refused = err.Error()
				}
			},
		}, ControlRequest{Actor: "bob", Reason: "test"})
	}, at)
}

// denied fails daily_orders of one deployment on its first try (a permanent error).
func deniedOnce(id string) func(string, string, int) error {
	return func(dep, job string, call int) error {
		if dep == id && job == "daily_orders" && call == 1 {
			return errors.New("fabric dev refused the token (403 PERMISSION_DENIED)")
		}
		return nil
	}
}

// A parked deployment releases the fabric: a second deployment proceeds, the
// fabric's record shows what the parked one left behind, and resume queues it
// again and finishes only what failed.
func TestParkedDeployReleasesFabricAndResumeQueuesAgain(t *testing.T) {
	l := newLab(t)
	const parked, second = "deploy/demo/v1.1.0/a", "deploy/demo/v1.0.0/b"
	l.fail = deniedOnce(parked)
	var whileParked, end FabricState
	l.fabricAt(5*time.Minute, &whileParked)
	var refused string
	l.control(2*time.Hour, parked, ResumeUpdate, &refused)
	l.fabricAt(20*time.Hour, &end)
	res := l.run(labStart{ID: parked, Version: "v1.1.0"}, labStart{ID: second, Version: "v1.0.0", At: 10 * time.Minute})

	if len(whileParked.Queue) != 0 || len(whileParked.Parked) != 1 || whileParked.Parked[0].DeploymentID != parked ||
		whileParked.Parked[0].Step != StepSchedule || !slices.Equal(whileParked.Parked[0].LeftBehind, []string{"orders_dag"}) {
		t.Fatalf("fabric while parked: queue %+v parked %+v", whileParked.Queue, whileParked.Parked)
	}
	if j := whileParked.Jobs["orders_dag"]; j.Version != "v1.1.0" || j.DeploymentID != parked {
		t.Fatalf("the fabric's record does not show the job the parked deployment left: %+v", whileParked.Jobs)
	}
	if s := res[second].State; s.Status != StatusSucceeded || s.Finished.After(s.Started.Add(time.Hour)) {
		t.Fatalf("the second deployment did not proceed while the first was parked: %+v (%s)", s.Status, res[second].Err)
	}
	if refused != "" {
		t.Fatalf("resume refused: %s", refused)
	}
	s := res[parked].State
	if s.Status != StatusSucceeded || !slices.Equal(l.upserts[parked], []string{"orders_dag", "daily_orders"}) {
		t.Fatalf("resumed deployment: %s (%s), upserts %v", s.Status, res[parked].Err, l.upserts[parked])
	}
	if len(end.Parked) != 0 || len(end.Queue) != 0 || end.Jobs["daily_orders"].DeploymentID != parked {
		t.Fatalf("fabric at the end: queue %+v parked %+v jobs %+v", end.Queue, end.Parked, end.Jobs)
	}
	if n := len(end.History); n != 2 || end.History[0].DeploymentID != second || end.History[1].DeploymentID != parked {
		t.Fatalf("history = %+v", end.History)
	}
}

// Once a newer version succeeded on the fabric, resuming an older parked
// deployment is refused as superseded (it would roll the fabric back);
// cancel still ends it.
func TestResumeRefusedAsSupersededCancelStillWorks(t *testing.T) {
	l := newLab(t)
	const old, newer = "deploy/demo/v1.0.0/a", "deploy/demo/v1.1.0/b"
	l.fail = deniedOnce(old)
	var refused, cancelRefused string
	var superseded DeployState
	l.control(2*time.Hour, old, ResumeUpdate, &refused)
	l.RegisterDelayedCallback(func() {
		v, err := l.QueryWorkflowByID(old, StateQuery)
		if err == nil {
			_ = v.Get(&superseded)
		}
	}, 2*time.Hour+time.Minute)
	l.control(3*time.Hour, old, CancelUpdate, &cancelRefused)
	var end FabricState
	l.fabricAt(20*time.Hour, &end)
	res := l.run(labStart{ID: old, Version: "v1.0.0"}, labStart{ID: newer, Version: "v1.1.0", At: 10 * time.Minute})

	if !strings.Contains(refused, "superseded") || !strings.Contains(refused, newer) || !strings.Contains(refused, "shipline cancel "+old) {
		t.Fatalf("resume refusal = %q, want superseded by %s with the cancel command", refused, newer)
	}
	if superseded.Status != StatusParked || superseded.Superseded == nil || superseded.Superseded.By != newer {
		t.Fatalf("parked state = %s %+v", superseded.Status, superseded.Superseded)
	}
	if cancelRefused != "" || !strings.Contains(res[old].Err, "cancelled by bob") || res[newer].State.Status != StatusSucceeded {
		t.Fatalf("cancel refused %q; old ended %q; newer %s", cancelRefused, res[old].Err, res[newer].State.Status)
	}
	if slices.Contains(l.upserts[old], "daily_orders") {
		t.Fatalf("the superseded deployment rolled daily_orders back: %v", l.upserts[old])
	}
	if len(end.Parked) != 0 || end.Jobs["daily_orders"].Version != "v1.1.0" || end.Jobs["orders_dag"].Version != "v1.1.0" {
		t.Fatalf("fabric at the end: parked %+v jobs %+v", end.Parked, end.Jobs)
	}
	if last := end.History[len(end.History)-1]; last.DeploymentID != old || last.Outcome != StatusCancelled {
		t.Fatalf("history = %+v", end.History)
	}
}

// A burst of deploys of one project to one fabric ends with the newest
// version live; the older ones that were still queued end superseded, having
// changed nothing.
func TestBurstOfDeploysEndsWithNewestVersion(t *testing.T) {
	l := newLab(t)
	l.upsert.After(time.Minute)                                            // each deployment holds the fabric a minute: the others queue
	versions := []string{"v1.0.2", "v1.0.0", "v1.0.4", "v1.0.1", "v1.0.3"} // the order they are started in
	var starts []labStart
	for i, v := range versions {
		starts = append(starts, labStart{ID: "deploy/demo/" + v + "/burst", Version: v, At: time.Duration(i) * 5 * time.Second})
	}
	var end FabricState
	l.fabricAt(20*time.Hour, &end)
	res := l.run(starts...)

	newest := "deploy/demo/v1.0.4/burst"
	for _, job := range []string{"daily_orders", "orders_dag"} {
		if j := end.Jobs[job]; j.Version != "v1.0.4" || j.DeploymentID != newest {
			t.Errorf("%s runs %s from %s, want v1.0.4 from %s", job, j.Version, j.DeploymentID, newest)
		}
	}
	superseded := 0
	for _, s := range starts {
		r := res[s.ID]
		switch r.State.Status {
		case StatusSucceeded:
		case StatusSuperseded:
			superseded++
			if r.Err != "" || r.State.Superseded == nil || len(l.upserts[s.ID]) != 0 {
				t.Errorf("%s superseded: err %q, by %+v, upserts %v", s.ID, r.Err, r.State.Superseded, l.upserts[s.ID])
			}
		default:
			t.Errorf("%s ended %s (%s)", s.ID, r.State.Status, r.Err)
		}
	}
	if superseded == 0 || res[newest].State.Status != StatusSucceeded {
		t.Fatalf("%d superseded; newest %s", superseded, res[newest].State.Status)
	}
	outcomes := map[Status]int{}
	for _, h := range end.History {
		outcomes[h.Outcome]++
	}
	if outcomes[StatusSuperseded] != superseded || len(end.Queue) != 0 {
		t.Fatalf("history outcomes %v, queue %+v", outcomes, end.Queue)
	}
}

// When a stage's deployment parks, the promotion's state and its `pending`
// query say "parked", naming the deployment, the reason and the resume
// command; after `resume` the promotion goes on and ends promoted.
func TestPromoteSaysParkedWhileStageDeploymentParks(t *testing.T) {
	l := newLab(t)
	dev := activities.PromotionSettings{Stages: []activities.StageSettings{
		{Name: "dev", Fabrics: []string{"dev"}, Owners: map[string]activities.FabricInfo{"dev": owners("developers", "alice", "bob")}},
	}}
	l.OnActivity(configActs.Promotion, mock.Anything, mock.Anything).Return(dev, nil)
	l.fail = func(dep, job string, call int) error {
		if job == "daily_orders" && call == 1 {
			return errors.New("fabric dev refused the token (403 PERMISSION_DENIED)")
		}
		return nil
	}
	l.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: PromoteID("demo", "v1.0.0")})
	var parked PromoteState
	var pending, refused string
	l.RegisterDelayedCallback(func() {
		v, err := l.QueryWorkflow(StateQuery)
		if err != nil {
			t.Fatal(err)
		}
		_ = v.Get(&parked)
		if v, err = l.QueryWorkflow(PendingQuery); err == nil {
			_ = v.Get(&pending)
		}
		l.control(0, parked.Stages[0].DeploymentID, ResumeUpdate, &refused)
	}, 10*time.Minute)
	l.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})

	st := parked.Stages[0]
	if parked.Status != StatusParked || st.Status != StageParked || st.Parked == nil || st.Parked.Step != StepSchedule || !strings.Contains(st.Parked.Reason, "403") {
		t.Fatalf("promotion while its deployment is parked: %s, stage %s %+v", parked.Status, st.Status, st.Parked)
	}
	for _, want := range []string{"parked", st.DeploymentID, "403 PERMISSION_DENIED", "shipline resume " + st.DeploymentID} {
		if !strings.Contains(pending, want) || !strings.Contains(parked.Pending, want) {
			t.Errorf("pending %q does not say %q", pending, want)
		}
	}
	var end PromoteState
	if err := l.GetWorkflowResult(&end); err != nil || refused != "" {
		t.Fatalf("promotion: %v (resume refused: %q)", err, refused)
	}
	if end.Status != StatusPromoted || end.Stages[0].Status != StageVerified || end.Stages[0].Parked != nil {
		t.Fatalf("promotion after resume: %s, stage %s", end.Status, end.Stages[0].Status)
	}
}
