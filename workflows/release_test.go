package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/signing"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

type releaseEnv struct {
	*testsuite.TestWorkflowEnvironment
	t       *testing.T
	tagCall *CreateTagCall
	deploys []DeployInput // auto_deploy children started
	// events are the build and tag activities in the order they ran:
	// "build <pipeline>" and "tag <version>". The builds run in parallel,
	// so events is appended under mu.
	mu     sync.Mutex
	events []string
	pol    signing.Policy
	audit  *projectAudit
}

// CreateTagCall captures the tag the workflow asked for.
type CreateTagCall struct{ in activities.CreateTagInput }

func newReleaseEnv(t *testing.T, settings activities.ProjectSettings) *releaseEnv {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	e := &releaseEnv{TestWorkflowEnvironment: env, t: t, tagCall: &CreateTagCall{}}
	env.RegisterWorkflow(Release)
	env.RegisterWorkflowWithOptions(Deploy, workflow.RegisterOptions{Name: DeployWorkflow})
	env.OnWorkflow(DeployWorkflow, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in DeployInput) (DeployState, error) {
			e.deploys = append(e.deploys, in)
			return DeployState{Progress: Progress{Status: StatusSucceeded, Summary: "deployed " + in.Version}}, nil
		})
	env.RegisterActivity(&activities.Git{})
	env.RegisterActivity(&activities.Config{})
	env.RegisterActivity(&activities.Messages{})
	env.RegisterActivity(&activities.Build{})
	env.RegisterActivity(&activities.Libraries{})
	e.audit = installProjectAudit(env)
	env.OnActivity(configActs.Project, mock.Anything, activities.ProjectInput{Project: "demo"}).Return(settings, nil)
	env.OnActivity(configActs.Signatures, mock.Anything).Return(func(context.Context) (signing.Policy, error) { return e.pol, nil })
	return e
}

func (e *releaseEnv) okGit(created bool) {
	// No ref given: main, unless the version's tag is already on the remote (not here).
	e.OnActivity(gitActs.ResolveRef, mock.Anything, mock.MatchedBy(func(in activities.ResolveRefInput) bool { return in.Project == "demo" && in.Ref == "main" })).
		Return(activities.ResolveRefOutput{Commit: commit}, nil)
	e.OnActivity(gitActs.ValidateManifest, mock.Anything, activities.ValidateManifestInput{Project: "demo", Commit: commit}).
		Return(activities.ValidateManifestOutput{Name: "demo", Pipelines: demoPipelines}, nil)
	e.OnActivity(gitActs.CreateTag, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CreateTagInput) (activities.CreateTagOutput, error) {
			e.tagCall.in = in
			e.mu.Lock()
			e.events = append(e.events, "tag "+in.Version)
			e.mu.Unlock()
			return activities.CreateTagOutput{Created: created, Tagger: in.Tagger, When: in.When}, nil
		})
	e.okBuilds()
}

// demoPipelines are the pipelines of the manifest okGit validates.
var demoPipelines = []manifest.Pipeline{
	{Name: "ingest", Path: "pipelines/ingest", Language: manifest.Python},
	{Name: "score", Path: "pipelines/score", Language: manifest.Scala, Build: "sbt package", Artifact: "target/*.jar"},
}

// okBuilds builds every pipeline (from the cache when its build input says so).
func (e *releaseEnv) okBuilds() {
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BuildInput) (activities.BuildOutput, error) {
			e.mu.Lock()
			e.events = append(e.events, "build "+in.Pipeline.Name)
			e.mu.Unlock()
			return activities.BuildOutput{Pipeline: in.Pipeline.Name, File: in.Pipeline.Name + ".whl", SHA256: "sha-" + in.Pipeline.Name,
				LogPath: "/state/logs/builds/" + in.Pipeline.Name + ".log"}, nil
		})
}

// runOpen runs a release that is expected to stay open as the record: it
// queries the state an hour later and then cancels the entity.
func (e *releaseEnv) runOpen(in ReleaseInput) ReleaseState {
	var state ReleaseState
	e.RegisterDelayedCallback(func() {
		v, err := e.QueryWorkflow(StateQuery)
		if err != nil {
			e.t.Fatalf("query state: %v", err)
		}
		if err := v.Get(&state); err != nil {
			e.t.Fatal(err)
		}
		e.CancelWorkflow()
	}, time.Hour)
	e.ExecuteWorkflow(Release, in)
	if !e.IsWorkflowCompleted() {
		e.t.Fatal("workflow did not complete after cancel")
	}
	var canceled *temporal.CanceledError
	if err := e.GetWorkflowError(); !errors.As(err, &canceled) {
		e.t.Fatalf("the release entity ended before it was cancelled: %v", err)
	}
	return state
}

// runFailing runs a release expected to end with a non-retryable error of errType.
func (e *releaseEnv) runFailing(in ReleaseInput, errType string) (ReleaseState, string) {
	e.ExecuteWorkflow(Release, in)
	if !e.IsWorkflowCompleted() {
		e.t.Fatal("workflow still running; want it to fail")
	}
	err := e.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		e.t.Fatalf("error = %v, want an application error of type %s", err, errType)
	}
	if app.Type() != errType || !app.NonRetryable() {
		e.t.Fatalf("error type %q (non-retryable %v), want %q non-retryable", app.Type(), app.NonRetryable(), errType)
	}
	v, qerr := e.QueryWorkflow(StateQuery)
	if qerr != nil {
		e.t.Fatalf("query after failure: %v", qerr)
	}
	var state ReleaseState
	if err := v.Get(&state); err != nil {
		e.t.Fatal(err)
	}
	return state, app.Message()
}

func admins() activities.ProjectSettings {
	return activities.ProjectSettings{Name: "demo", Remote: "file:///remotes/demo.git", Admins: []string{"alice"}, AutoDeploy: true}
}

func TestReleaseTagsAndStaysOpen(t *testing.T) {
	e := newReleaseEnv(t, admins())
	e.okGit(true)
	state := e.runOpen(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"})

	if state.Status != StatusReleased || state.Commit != commit || !state.TagCreated {
		t.Fatalf("state = %+v", state)
	}
	if state.Deploy != DeployDue || len(e.deploys) != 1 || e.deploys[0].Actor != "alice" || state.DeployID != "deploy/demo/v1.0.0/release" {
		t.Fatalf("deploy = %q (%s), children %+v; want one auto_deploy child", state.Deploy, state.DeployID, e.deploys)
	}
	for _, s := range state.Steps {
		if s.Status != StepDone {
			t.Errorf("step %q is %s, want done", s.Name, s.Status)
		}
	}
	in := e.tagCall.in
	if in.Tagger != "alice" || in.Version != "v1.0.0" || in.Commit != commit {
		t.Fatalf("tag input = %+v", in)
	}
	if !strings.Contains(in.Message, TagTrailer+"release/demo/v1.0.0") {
		t.Fatalf("tag message %q lacks the Shipline trailer", in.Message)
	}
	if in.When.IsZero() || !in.When.Equal(state.CreatedAt) {
		t.Fatalf("tag time %v must be the workflow's release time %v", in.When, state.CreatedAt)
	}
}

func TestReleaseIdempotentWhenTagExists(t *testing.T) {
	e := newReleaseEnv(t, admins())
	e.okGit(false)
	state := e.runOpen(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"})
	if state.Status != StatusReleased || state.TagCreated {
		t.Fatalf("state = %+v, want released with TagCreated=false", state)
	}
	if d := stepOf(state.Steps, StepTag).Detail; !strings.Contains(d, "already on") {
		t.Fatalf("tag step detail = %q", d)
	}
}

func TestReleaseRefusesNonAdmin(t *testing.T) {
	e := newReleaseEnv(t, admins())
	state, msg := e.runFailing(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "bob"}, apperr.AccessDenied)
	if !strings.Contains(msg, "bob may not release project demo") {
		t.Fatalf("message = %q", msg)
	}
	if state.Status != StatusRefused || state.Refusal != msg || state.Steps[0].Status != StepFailed {
		t.Fatalf("state = %+v", state)
	}
	if state.Steps[1].Status != StepPending {
		t.Fatalf("resolve ran after a refusal: %+v", state.Steps[1])
	}
}

func TestReleaseRefusesInvalidManifest(t *testing.T) {
	e := newReleaseEnv(t, admins())
	e.OnActivity(gitActs.ResolveRef, mock.Anything, mock.Anything).Return(activities.ResolveRefOutput{Commit: commit}, nil)
	bad := diag.List{diag.Errorf("shipline.yaml", 7, 12, "define pipelines.ingest", "job %q names unknown pipeline %q", "daily", "ingest")}
	e.OnActivity(gitActs.ValidateManifest, mock.Anything, mock.Anything).Return(activities.ValidateManifestOutput{Diagnostics: bad}, nil)
	state, msg := e.runFailing(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"}, apperr.InvalidManifest)
	if !strings.Contains(msg, "shipline.yaml:7:12: error: job \"daily\" names unknown pipeline \"ingest\"") || !strings.Contains(msg, "fix: define pipelines.ingest") {
		t.Fatalf("message = %q", msg)
	}
	if st := stepOf(state.Steps, StepTag); st.Status != StepPending {
		t.Fatalf("tagged despite an invalid manifest: %+v", st)
	}
}

func TestReleaseTagMovedIsPermanent(t *testing.T) {
	e := newReleaseEnv(t, admins())
	e.OnActivity(gitActs.ResolveRef, mock.Anything, mock.Anything).Return(activities.ResolveRefOutput{Commit: commit}, nil)
	e.OnActivity(gitActs.ValidateManifest, mock.Anything, mock.Anything).Return(activities.ValidateManifestOutput{}, nil)
	moved := temporal.NewNonRetryableApplicationError("tag v1.0.0 already exists on the remote at commit abcdef1", apperr.TagConflict, nil)
	e.OnActivity(gitActs.CreateTag, mock.Anything, mock.Anything).Return(activities.CreateTagOutput{}, moved).Once()
	state, msg := e.runFailing(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"}, apperr.TagConflict)
	if msg != "tag v1.0.0 already exists on the remote at commit abcdef1" || state.Status != StatusFailed {
		t.Fatalf("msg = %q state = %+v", msg, state)
	}
}

// A release ends refused or failed by the class of its failure type, as the
// deployment and the audit read it: an unknown project or a ref that cannot
// name anything is the request's fault; a tag on another commit is not.
func TestReleaseEndsByFailureClass(t *testing.T) {
	unknown := temporal.NewNonRetryableApplicationError(`project "ghost" is not registered in platform.yaml`, apperr.UnknownProject, nil)
	e := newReleaseEnv(t, admins())
	e.OnActivity(configActs.Project, mock.Anything, activities.ProjectInput{Project: "ghost"}).Return(activities.ProjectSettings{}, unknown)
	state, _ := e.runFailing(ReleaseInput{Project: "ghost", Version: "v1.0.0", Actor: "alice"}, apperr.UnknownProject)
	if state.Status != StatusRefused {
		t.Errorf("unknown project: status %s, want %s", state.Status, StatusRefused)
	}

	bad := temporal.NewNonRetryableApplicationError(`project demo: "main~" is not a valid ref name`, apperr.InvalidInput, nil)
	e = newReleaseEnv(t, admins())
	e.OnActivity(gitActs.ResolveRef, mock.Anything, mock.Anything).Return(activities.ResolveRefOutput{}, bad)
	state, _ = e.runFailing(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"}, apperr.InvalidInput)
	if state.Status != StatusRefused {
		t.Errorf("invalid ref: status %s, want %s", state.Status, StatusRefused)
	}
}

func TestReleaseRetriesTransientGitFailure(t *testing.T) {
	e := newReleaseEnv(t, admins())
	e.OnActivity(gitActs.ResolveRef, mock.Anything, mock.Anything).Return(activities.ResolveRefOutput{}, errors.New("connection refused")).Times(2)
	e.okGit(true)
	state := e.runOpen(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"})
	if state.Status != StatusReleased {
		t.Fatalf("state = %+v", state)
	}
}

func TestReleaseDeployPlan(t *testing.T) {
	e := newReleaseEnv(t, admins())
	e.okGit(true)
	if s := e.runOpen(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice", NoDeploy: true}); s.Deploy != DeploySkipped || stepOf(s.Steps, StepDeploy).Status != StepSkipped || len(e.deploys) != 0 {
		t.Fatalf("--no-deploy: %+v", s)
	}
	manual := admins()
	manual.AutoDeploy = false
	e = newReleaseEnv(t, manual)
	e.okGit(true)
	if s := e.runOpen(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"}); s.Deploy != DeployNotAutomatic {
		t.Fatalf("auto_deploy false: %+v", s)
	}
}

func TestReleaseRefusesBadInputFromUI(t *testing.T) {
	for _, in := range []ReleaseInput{
		{Project: "demo", Version: "1.0", Actor: "alice"},
		{Project: "demo", Version: "v1.0.0"},
		{Version: "v1.0.0", Actor: "alice"},
	} {
		e := newReleaseEnv(t, admins())
		_, msg := e.runFailing(in, apperr.InvalidInput)
		if msg == "" {
			t.Fatalf("%+v: empty message", in)
		}
	}
}

// A remote that stays unreachable for the retry window parks the release;
// resume runs the step again once it is back.
func TestReleaseParksWhenRemoteIsDown(t *testing.T) {
	e := newReleaseEnv(t, admins())
	down := true
	e.OnActivity(gitActs.ResolveRef, mock.Anything, mock.Anything).Return(func(context.Context, activities.ResolveRefInput) (activities.ResolveRefOutput, error) {
		if down {
			return activities.ResolveRefOutput{}, errors.New("dial tcp: connection refused")
		}
		return activities.ResolveRefOutput{Commit: commit}, nil
	})
	e.OnActivity(gitActs.ValidateManifest, mock.Anything, mock.Anything).Return(activities.ValidateManifestOutput{}, nil)
	e.OnActivity(gitActs.CreateTag, mock.Anything, mock.Anything).Return(activities.CreateTagOutput{Created: true}, nil)
	var parked ReleaseState
	var bobRefused string
	e.RegisterDelayedCallback(func() {
		v, _ := e.QueryWorkflow(StateQuery)
		_ = v.Get(&parked)
		down = false
		e.UpdateWorkflow(ResumeUpdate, "bob", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("bob's resume rejected unrecorded: %v", err) }, OnAccept: func() {},
			OnComplete: func(_ any, err error) {
				if err != nil {
					bobRefused = err.Error()
				}
			},
		}, ControlRequest{Actor: "bob"})
		e.UpdateWorkflow(ResumeUpdate, "alice", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("alice's resume refused: %v", err) }, OnAccept: func() {},
			OnComplete: func(_ any, err error) {
				if err != nil {
					t.Errorf("alice's resume refused: %v", err)
				}
			},
		}, ControlRequest{Actor: "alice"})
	}, 30*time.Minute) // after the 10-minute retry window, before runOpen's check at 1h
	s := e.runOpen(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice", NoDeploy: true})
	if parked.Status != StatusParked || parked.Parked == nil || parked.Parked.Step != StepResolve || !strings.Contains(parked.Parked.Reason, "connection refused") {
		t.Fatalf("parked state %+v", parked)
	}
	if !strings.Contains(bobRefused, "only the releaser (alice) or a project admin") || s.Status != StatusReleased {
		t.Fatalf("bob refusal %q, final %s", bobRefused, s.Status)
	}
	// The outsider's resume is in the project's audit, once, as sent unsigned.
	audited := e.audit.refusals()
	if len(audited) != 1 || audited[0].Actor != "bob" || audited[0].Action != ActionResume || audited[0].Via != ViaUnsigned ||
		!strings.Contains(bobRefused, audited[0].Reason) || audited[0].Version != "v1.0.0" {
		t.Fatalf("audited %+v", audited)
	}
}

// Cancel reaches a release while its remote is still being retried: the git
// step stops at once and the release ends cancelled (before, cancel was
// refused until the retry window ran out and the release parked).
func TestReleaseCancelWhileRemoteRetries(t *testing.T) {
	e := newReleaseEnv(t, admins())
	e.OnActivity(gitActs.ResolveRef, mock.Anything, mock.Anything).Return(activities.ResolveRefOutput{}, errors.New("dial tcp: connection refused"))
	var cancelledAt time.Time
	e.RegisterDelayedCallback(func() {
		cancelledAt = e.Now()
		e.UpdateWorkflow(CancelUpdate, "c", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("cancel refused: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "alice"})
	}, time.Minute)
	s, msg := e.runFailing(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"}, apperr.Cancelled)
	if s.Status != StatusCancelled || !strings.Contains(msg, "cancelled by alice") {
		t.Fatalf("state %s, message %q", s.Status, msg)
	}
	if st := s.Steps[1]; st.Name != StepResolve || st.Status != StepFailed || st.Finished.Sub(cancelledAt) > 5*time.Second {
		t.Fatalf("resolve step %+v, cancelled at %s", st, cancelledAt)
	}
}
