package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/signing"
)

const deployID = "deploy/demo/v1.0.0/test"

type deployEnv struct {
	*testsuite.TestWorkflowEnvironment
	t        *testing.T
	done     []DeploymentDone // DoneSignals sent to fabric entities
	enqueued []QueueEntry     // EnqueueSignals sent to fabric entities
	told     []Deployed       // DeployedSignals sent to the release entity
	builds   atomic.Int32
	// grantOnEnqueue answers each enqueue at once with a grant (no contention).
	grantOnEnqueue bool
	// release is what the Release entity answers (nil: there is none).
	release *ReleaseState
	// settings are the project's settings (git_retry) the Config activity returns.
	settings activities.ProjectSettings
	// checks records the CheckJobs calls; checkErr is what they fail with.
	checks   []activities.CheckJobsInput
	checkErr error
	audit    *projectAudit
	// runs plays the fabric's runs (ActiveRuns, CancelRuns): none by default.
	runs *fakeRunner
}

func resolved() activities.ResolveDeployOutput {
	return activities.ResolveDeployOutput{
		Commit: commit,
		Jobs: []activities.ResolvedJob{
			{Name: "daily_orders", Scheduler: "databricks", Fabric: "dev", Pipelines: []string{"ingest", "score"}, Definition: "jobs/daily.json"},
			{Name: "orders_dag", Scheduler: "airflow", Fabric: "dev", Pipelines: []string{"ingest"}, Definition: "jobs/dag.py"},
		},
		Pipelines: []manifest.Pipeline{{Name: "ingest", Path: "pipelines/ingest", Language: manifest.Python}, {Name: "score", Path: "pipelines/score", Language: manifest.Python}},
		Fabrics:   []activities.FabricInfo{{Name: "dev", Kind: "databricks", Owner: "developers", Members: []string{"alice", "bob"}}},
	}
}

func newDeployEnv(t *testing.T) *deployEnv {
	var s testsuite.WorkflowTestSuite
	e := &deployEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment(), t: t, grantOnEnqueue: true,
		release: &ReleaseState{Progress: Progress{Status: StatusReleased}}}
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: deployID})
	e.RegisterWorkflowWithOptions(Deploy, workflow.RegisterOptions{Name: DeployWorkflow})
	e.RegisterWorkflowWithOptions(Notify, workflow.RegisterOptions{Name: NotifyWorkflow}) // notify_test.go
	// The fabric entity is played by a stub child that records DoneSignals
	// and EnqueueSignals, and with grantOnEnqueue grants its lock at once.
	e.RegisterWorkflowWithOptions(func(ctx workflow.Context, in FabricInput) error {
		ctx = withVersionBaseline(ctx) // as the Fabric entity's runs
		done := workflow.GetSignalChannel(ctx, DoneSignal)
		enqueue := workflow.GetSignalChannel(ctx, EnqueueSignal)
		for {
			ok, err := workflow.AwaitWithTimeout(ctx, 7*24*time.Hour, func() bool { return done.Len() > 0 || enqueue.Len() > 0 })
			if !ok || err != nil {
				return nil
			}
			var d DeploymentDone
			for done.ReceiveAsync(&d) {
				e.done = append(e.done, d)
			}
			var q QueueEntry
			for enqueue.ReceiveAsync(&q) {
				e.enqueued = append(e.enqueued, q)
				if e.grantOnEnqueue {
					g := Grant{Fabric: in.Fabric, Granted: true}
					_ = signalInternal(ctx, q.DeploymentID, GrantSignal, &g).Get(ctx, nil)
				}
			}
		}
	}, workflow.RegisterOptions{Name: FabricWorkflow})
	e.RegisterActivity(&activities.Deploy{})
	e.RegisterActivity(&activities.Build{})
	e.RegisterActivity(&activities.Config{})
	useInternalAuth(e.TestWorkflowEnvironment)
	e.OnActivity(configActs.Signatures, mock.Anything).Return(signing.Policy{}, nil)
	e.RegisterActivity(&activities.Messages{})
	e.audit = installProjectAudit(e.TestWorkflowEnvironment)
	e.OnActivity(messageActs.Query, mock.Anything, activities.QueryInput{WorkflowID: ReleaseID("demo", "v1.0.0"), Query: StateQuery}).Return(
		func(context.Context, activities.QueryInput) (activities.QueryOutput, error) {
			if e.release == nil {
				return activities.QueryOutput{Missing: true}, nil
			}
			b, err := json.Marshal(e.release)
			return activities.QueryOutput{Result: b}, err
		})
	e.settings = activities.ProjectSettings{Name: "demo", Admins: []string{"alice"}}
	e.OnActivity(configActs.Project, mock.Anything, mock.Anything).Return(func(context.Context, activities.ProjectInput) (activities.ProjectSettings, error) {
		return e.settings, nil
	})
	e.runs = &fakeRunner{policy: "wait", timeout: time.Hour}
	e.runs.install(e.TestWorkflowEnvironment)
	e.OnActivity(deployActs.CheckJobs, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CheckJobsInput) (activities.CheckJobsOutput, error) {
		e.checks = append(e.checks, in)
		if e.checkErr != nil {
			return activities.CheckJobsOutput{}, e.checkErr
		}
		return activities.CheckJobsOutput{Checked: len(in.Jobs)}, nil
	})
	e.OnSignalExternalWorkflow(mock.Anything, ReleaseID("demo", "v1.0.0"), "", DeployedSignal, mock.Anything).Return(
		func(_, _, _, _ string, arg any) error {
			e.told = append(e.told, arg.(Deployed))
			return nil
		})
	return e
}

func (e *deployEnv) okResolve() {
	e.OnActivity(deployActs.Resolve, mock.Anything, mock.Anything).Return(resolved(), nil)
}

func (e *deployEnv) okBuilds() {
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BuildInput) (activities.BuildOutput, error) {
		e.builds.Add(1)
		return activities.BuildOutput{Pipeline: in.Pipeline.Name, File: in.Pipeline.Name + "-1.0-py3-none-any.whl", SHA256: "ab", Size: 10, Cached: in.Pipeline.Name == "score"}, nil
	})
}

func (e *deployEnv) okUpload() {
	e.OnActivity(deployActs.Upload, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UploadInput) (activities.UploadOutput, error) {
		out := activities.UploadOutput{Paths: map[string]string{}}
		for _, a := range in.Artifacts {
			out.Paths[a.Pipeline] = "/Volumes/main/shipline/artifacts/demo/v1.0.0/" + a.Pipeline + "/" + a.File
		}
		return out, nil
	})
}

// onJobs mocks UpsertJobs with a per-job function, the way the activity calls
// each job; an error from fn is reported as a permanent per-job failure.
func (e *deployEnv) onJobs(fn func(in activities.UpsertJobInput) (activities.UpsertJobOutput, error)) {
	e.OnActivity(deployActs.UpsertJobs, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UpsertJobsInput) (activities.UpsertJobsOutput, error) {
		out := activities.UpsertJobsOutput{Results: map[string]activities.UpsertJobOutput{}, Failed: map[string]string{}}
		for _, j := range in.Jobs {
			paths := map[string]string{}
			for _, p := range j.Pipelines {
				paths[p] = in.Artifacts[p]
			}
			res, err := fn(activities.UpsertJobInput{Project: in.Project, Version: in.Version, Commit: in.Commit, DeploymentID: in.DeploymentID, Job: j, Artifacts: paths})
			if err != nil {
				out.Failed[j.Name] = err.Error()
				continue
			}
			out.Results[j.Name] = res
		}
		return out, nil
	})
}

func (e *deployEnv) query() DeployState {
	v, err := e.QueryWorkflow(StateQuery)
	if err != nil {
		e.t.Fatalf("query: %v", err)
	}
	var s DeployState
	if err := v.Get(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *deployEnv) result() DeployState {
	if !e.IsWorkflowCompleted() {
		e.t.Fatal("deployment did not complete")
	}
	var s DeployState
	if err := e.GetWorkflowResult(&s); err != nil {
		e.t.Fatalf("deployment failed: %v", err)
	}
	return s
}

func TestDeploySucceeds(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.okBuilds()
	e.okUpload()
	var upserts []activities.UpsertJobInput
	e.onJobs(func(in activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		upserts = append(upserts, in)
		return activities.UpsertJobOutput{ID: "1000000000000001", Action: "created"}, nil
	})
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	s := e.result()

	if s.Status != StatusSucceeded || len(s.Jobs) != 2 {
		t.Fatalf("state = %+v", s)
	}
	if !s.Builds["score"].Cached || s.Builds["ingest"].Cached || s.Builds["ingest"].Status != StepDone {
		t.Fatalf("builds = %+v", s.Builds)
	}
	if e.builds.Load() != 2 {
		t.Fatalf("%d build activities, want one per pipeline (2)", e.builds.Load())
	}
	for _, in := range upserts {
		if in.Job.Name == "orders_dag" && (len(in.Artifacts) != 1 || !strings.HasSuffix(in.Artifacts["ingest"], "/ingest/ingest-1.0-py3-none-any.whl")) {
			t.Fatalf("orders_dag artifacts = %v", in.Artifacts)
		}
	}
	if len(e.done) != 1 || e.done[0].Outcome != StatusSucceeded || len(e.done[0].Jobs) != 2 || e.done[0].Jobs[0].Actor != "bob" {
		t.Fatalf("done signals = %+v", e.done)
	}
	if len(e.told) != 1 || e.told[0].Artifacts["ingest"] != "ab" || e.told[0].Fabrics[0] != "dev" {
		t.Fatalf("release entity told %+v", e.told)
	}
}

func TestDeployRefusesActorOutsideOwnerTeam(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "mallory"})
	err := e.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != apperr.AccessDenied || !strings.Contains(app.Message(), "fabric dev is owned by team developers") {
		t.Fatalf("error = %v", err)
	}
	if e.builds.Load() != 0 {
		t.Fatal("built despite the refusal")
	}
}

func TestDeployRefusesSelectiveJobs(t *testing.T) {
	e := newDeployEnv(t)
	e.OnActivity(deployActs.Resolve, mock.Anything, mock.Anything).Return(activities.ResolveDeployOutput{},
		temporal.NewNonRetryableApplicationError("project demo deploys all its jobs together", apperr.SelectiveJobsDisabled, nil))
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob", Jobs: []string{"orders_dag"}})
	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.SelectiveJobsDisabled {
		t.Fatalf("error = %v", err)
	}
}

// A permanent failure parks the deployment; resume retries only what failed.
func TestDeployParksAndResumes(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.okBuilds()
	e.okUpload()
	calls := map[string]int{}
	e.onJobs(func(in activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		calls[in.Job.Name]++
		if in.Job.Name == "daily_orders" && calls[in.Job.Name] == 1 {
			return activities.UpsertJobOutput{}, errors.New("fabric dev refused the token (403 PERMISSION_DENIED)")
		}
		return activities.UpsertJobOutput{ID: "42", Action: "created"}, nil
	})
	var parked DeployState
	e.RegisterDelayedCallback(func() {
		parked = e.query()
		e.UpdateWorkflow(ResumeUpdate, "1", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Fatalf("resume rejected: %v", err) },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "alice"})
	}, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	s := e.result()

	if parked.Status != StatusParked || parked.Parked == nil || parked.Parked.Step != StepSchedule || !strings.Contains(parked.Parked.Reason, "403") {
		t.Fatalf("parked state = %+v", parked)
	}
	if s.Status != StatusSucceeded || calls["daily_orders"] != 2 || calls["orders_dag"] != 1 || e.builds.Load() != 2 {
		t.Fatalf("status %s, upserts %v, builds %d", s.Status, calls, e.builds.Load())
	}
}

func TestDeployCancelWhileParked(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(activities.BuildOutput{},
		temporal.NewNonRetryableApplicationError("tests failed: assert 1 == 2", apperr.TestsFailed, nil))
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(ResumeUpdate, "r", &testsuite.TestUpdateCallback{
			OnReject:   func(error) {},
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "mallory"}) // not allowed: refused by the validator
		e.UpdateWorkflow(CancelUpdate, "c", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Fatalf("cancel rejected: %v", err) },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "bob", Reason: "fixing the test first"})
	}, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.Cancelled || !strings.Contains(app.Message(), "fixing the test first") {
		t.Fatalf("error = %v", err)
	}
	// The fabric was released when the build parked, and told of the cancel.
	if len(e.done) != 2 || e.done[0].Outcome != StatusParked || e.done[0].Step != StepBuild || e.done[1].Outcome != StatusCancelled {
		t.Fatalf("fabric not released on park and cancel: %+v", e.done)
	}
}

// A second deployment waits behind the holder and says so.
func TestDeployWaitsInQueue(t *testing.T) {
	e := newDeployEnv(t)
	e.grantOnEnqueue = false
	e.okResolve()
	e.okBuilds()
	e.okUpload()
	e.onJobs(func(activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		return activities.UpsertJobOutput{ID: "1", Action: "updated"}, nil
	})
	var queued DeployState
	var buildsWhileQueued int32 = -1
	e.RegisterDelayedCallback(func() {
		e.SignalWorkflow(GrantSignal, sealed(deployID, GrantSignal, Grant{Fabric: "dev", Ahead: []string{"deploy/demo/v0.9.0/x"}}))
	}, time.Minute)
	e.RegisterDelayedCallback(func() {
		queued = e.query()
		buildsWhileQueued = e.builds.Load()
		e.SignalWorkflow(GrantSignal, sealed(deployID, GrantSignal, Grant{Fabric: "dev", Granted: true}))
	}, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	s := e.result()
	if queued.Status != StatusQueued || queued.Waiting == nil || queued.Waiting.Holder != "deploy/demo/v0.9.0/x" || buildsWhileQueued != 0 {
		t.Fatalf("queued state = %+v", queued)
	}
	if !strings.Contains(queued.Summary, "behind deploy/demo/v0.9.0/x") || s.Status != StatusSucceeded {
		t.Fatalf("summary %q, final %s", queued.Summary, s.Status)
	}
}

// Every failure type ends a deployment the way its class says: a refused
// request ends it at once, anything else parks it until resume or cancel.
func TestDeployResolveFailureFollowsItsClass(t *testing.T) {
	for _, typ := range apperr.Types() {
		t.Run(typ, func(t *testing.T) {
			e := newDeployEnv(t)
			e.OnActivity(deployActs.Resolve, mock.Anything, mock.Anything).Return(activities.ResolveDeployOutput{},
				temporal.NewNonRetryableApplicationError("resolve failed: "+typ, typ, nil))
			var before DeployState
			e.RegisterDelayedCallback(func() {
				before = e.query()
				e.UpdateWorkflow(CancelUpdate, "c", &testsuite.TestUpdateCallback{
					OnReject: func(error) {}, OnAccept: func() {}, OnComplete: func(any, error) {},
				}, ControlRequest{Actor: "bob"})
			}, time.Hour)
			e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
			var app *temporal.ApplicationError
			if !errors.As(e.GetWorkflowError(), &app) {
				t.Fatalf("error = %v", e.GetWorkflowError())
			}
			if apperr.ClassOf(typ) == apperr.Refused {
				if end := e.query(); app.Type() != typ || end.Status != StatusRefused || before.Status != "" {
					t.Fatalf("a %s failure: error type %s, status %s (%s an hour in); want it refused at once", typ, app.Type(), end.Status, before.Status)
				}
				return
			}
			if before.Status != StatusParked || before.Parked == nil || before.Parked.Step != StepResolveRelease || app.Type() != apperr.Cancelled {
				t.Fatalf("a %s failure: status %s (%+v), then %s; want it parked until cancelled", typ, before.Status, before.Parked, app.Type())
			}
		})
	}
}

// A deployment that reached a resolve failure before ChangeRefusalClasses
// replays the old rule: only the six listed types refused, InvalidInput parked.
func TestDeployRefusalClassesAreVersioned(t *testing.T) {
	e := newDeployEnv(t)
	e.OnGetVersion(ChangeVersionBaseline, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	e.OnGetVersion(ChangeRefusalClasses, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	e.OnActivity(deployActs.Resolve, mock.Anything, mock.Anything).Return(activities.ResolveDeployOutput{},
		temporal.NewNonRetryableApplicationError("project demo has no repo in platform.yaml", apperr.InvalidInput, nil))
	var parked DeployState
	e.RegisterDelayedCallback(func() {
		parked = e.query()
		e.UpdateWorkflow(CancelUpdate, "c", &testsuite.TestUpdateCallback{
			OnReject: func(error) {}, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "bob"})
	}, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	if parked.Status != StatusParked {
		t.Fatalf("status %s under the old rule; want parked", parked.Status)
	}
}

// A deploy honours the project's git_retry as a release does: a remote that
// stays down for that window parks the deployment (not after a fixed 10 minutes).
func TestDeployParksAfterGitRetry(t *testing.T) {
	e := newDeployEnv(t)
	e.settings.GitRetry = 2 * time.Minute
	e.OnActivity(deployActs.Resolve, mock.Anything, mock.Anything).Return(activities.ResolveDeployOutput{}, errors.New("dial tcp: connection refused"))
	var parked DeployState
	e.RegisterDelayedCallback(func() {
		parked = e.query()
		e.UpdateWorkflow(CancelUpdate, "c", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("cancel refused: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "bob"})
	}, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})

	if parked.Status != StatusParked || parked.Parked == nil || parked.Parked.Step != StepResolveRelease || !strings.Contains(parked.Parked.Reason, "connection refused") {
		t.Fatalf("state at 1h = %s %+v", parked.Status, parked.Parked)
	}
	if waited := parked.Parked.Since.Sub(parked.Started); waited > 2*time.Minute {
		t.Fatalf("parked %s after it started, want within git_retry (2m)", waited)
	}
	if parked.Parked.Resume != "shipline resume "+deployID {
		t.Fatalf("resume command = %q", parked.Parked.Resume)
	}
}

// Cancel takes effect while an activity is still retrying: the step's context
// is cancelled, the deployment ends cancelled and releases its fabric at once
// (not when the activity's 15-minute retry window runs out).
func TestDeployCancelStopsRetryingActivity(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.okBuilds()
	var attempts atomic.Int32
	e.OnActivity(deployActs.Upload, mock.Anything, mock.Anything).Return(func(context.Context, activities.UploadInput) (activities.UploadOutput, error) {
		attempts.Add(1)
		return activities.UploadOutput{}, errors.New("503 Service Unavailable")
	})
	var cancelledAt time.Time
	e.RegisterDelayedCallback(func() {
		cancelledAt = e.Now()
		e.UpdateWorkflow(CancelUpdate, "c", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("cancel refused: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "bob", Reason: "wrong version"})
	}, 2*time.Minute)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})

	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.Cancelled || !strings.Contains(app.Message(), "wrong version") {
		t.Fatalf("error = %v", err)
	}
	if len(e.done) != 1 || e.done[0].Outcome != StatusCancelled {
		t.Fatalf("fabric told %+v", e.done)
	}
	if took := e.done[0].Finished.Sub(cancelledAt); took < 0 || took > 5*time.Second {
		t.Fatalf("the deployment ended %s after the cancel (workflow time), want at once", took)
	}
	s := e.query()
	if s.Status != StatusCancelled || s.Parked != nil || attempts.Load() == 0 {
		t.Fatalf("state = %s %+v after %d upload attempts", s.Status, s.Parked, attempts.Load())
	}
}

// A parked deployment cancelled through Temporal (the UI's Cancel) is still
// recorded on its fabric, so the fabric does not keep it as parked forever.
func TestDeployCancelledThroughTemporalWhileParked(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(activities.BuildOutput{},
		temporal.NewNonRetryableApplicationError("tests failed: assert 1 == 2", apperr.TestsFailed, nil))
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	var canceled *temporal.CanceledError
	if err := e.GetWorkflowError(); !errors.As(err, &canceled) {
		t.Fatalf("error = %v", err)
	}
	if len(e.done) != 2 || e.done[0].Outcome != StatusParked || e.done[1].Outcome != StatusCancelled || e.done[1].Reason != "cancelled through Temporal" {
		t.Fatalf("fabric told %+v", e.done)
	}
}
