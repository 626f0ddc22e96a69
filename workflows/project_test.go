package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/manifest"
)

// projectEnv runs a Project entity of "demo" with every read's activities
// mocked; reads are sent as updates and their answers recorded.
type projectEnv struct {
	*testsuite.TestWorkflowEnvironment
	t        *testing.T
	answers  map[string]any   // update ID → decoded result
	failures map[string]error // update ID → error of the handler
	refused  map[string]error // update ID → validator refusal
	order    []string         // update IDs in the order they completed
}

var (
	tagsOnRemote = activities.ListTagsOutput{Tags: []activities.TagInfo{
		{Name: "v1.1.0", Commit: commit, Annotated: true, Message: "release\n\n" + TagTrailer + ReleaseID("demo", "v1.1.0"), Creator: "alice"},
		{Name: "v1.0.0", Commit: "c0", Creator: "mallory"},
	}}
	driftOfDaily = activities.InspectJobsOutput{Jobs: []activities.JobDrift{{Fabric: "dev", Job: "daily", Exists: true, Drift: true, Detail: "timeout changed"}}}
	buildLogs    = activities.ReadLogsOutput{Logs: []activities.LogFile{{Path: "state/logs/x/ingest.log", Content: "built"}}}
	dailyOnDev   = activities.DeployedJob{Project: "demo", Fabric: "dev", Job: "daily", Scheduler: "databricks", Version: "v1.0.0", Commit: commit}
)

// newProjectEnv mocks the activities; listing the remote takes 10 minutes,
// inspecting 2 minutes and the cache lookup of a plan 1 minute (test clock).
func newProjectEnv(t *testing.T) *projectEnv {
	var s testsuite.WorkflowTestSuite
	e := &projectEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment(), t: t,
		answers: map[string]any{}, failures: map[string]error{}, refused: map[string]error{}}
	e.RegisterWorkflow(Project)
	e.RegisterActivity(&activities.Config{})
	e.RegisterActivity(&activities.Git{})
	e.RegisterActivity(&activities.Deploy{})
	e.RegisterActivity(&activities.Build{})
	e.OnActivity(configActs.Project, mock.Anything, activities.ProjectInput{Project: "demo"}).Return(activities.ProjectSettings{}, nil)
	e.OnActivity(gitActs.ListTags, mock.Anything, activities.ListTagsInput{Project: "demo", Fetch: true}).Return(tagsOnRemote, nil).After(10 * time.Minute)
	e.OnActivity(deployActs.Resolve, mock.Anything, activities.ResolveDeployInput{Project: "demo", Version: "v1.1.0"}).Return(activities.ResolveDeployOutput{
		Commit: commit, Pipelines: []manifest.Pipeline{{Name: "ingest"}},
		Jobs: []activities.ResolvedJob{{Name: "daily", Scheduler: "databricks", Fabric: "dev", Pipelines: []string{"ingest"}}},
	}, nil)
	e.OnActivity(buildActs.CacheKey, mock.Anything, mock.Anything).Return(activities.CacheKeyOutput{Key: "k1", Cached: true, File: "ingest-1.0.0-py3-none-any.whl"}, nil).After(time.Minute)
	e.OnActivity(deployActs.PlanJobs, mock.Anything, mock.Anything).Return(activities.PlanJobsOutput{
		Jobs:    []activities.PlannedJob{{Fabric: "dev", Job: "daily", Action: "update", ID: "7"}},
		Uploads: []activities.PlannedUpload{{Fabric: "dev", Pipeline: "ingest", Path: "/Volumes/a/demo/v1.1.0/ingest/ingest-1.0.0-py3-none-any.whl"}},
	}, nil)
	e.OnActivity(deployActs.InspectJobs, mock.Anything, activities.InspectJobsInput{Jobs: []activities.DeployedJob{dailyOnDev}}).Return(driftOfDaily, nil).After(2 * time.Minute)
	e.OnActivity(deployActs.ReadLogs, mock.Anything, mock.Anything).Return(buildLogs, nil)
	return e
}

// read sends a read at a time of the test clock, decoding its answer into a new O.
func read[O any](e *projectEnv, at time.Duration, update, id string, in any) {
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(update, id, &testsuite.TestUpdateCallback{
			OnReject: func(err error) { e.refused[id] = err },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				e.order = append(e.order, id)
				if err != nil {
					e.failures[id] = err
					return
				}
				// The test environment hands over the handler's value as is.
				out, ok := v.(O)
				if !ok {
					e.t.Errorf("%s answered a %T, want %T", id, v, out)
				}
				e.answers[id] = out
			},
		}, in)
	}, at)
}

// answer returns the answer of a read (the zero value, reported, when it had none).
func answer[O any](e *projectEnv, id string) O {
	out, ok := e.answers[id].(O)
	if !ok {
		e.t.Errorf("read %s has no answer", id)
	}
	return out
}

func (e *projectEnv) state() ProjectState {
	v, err := e.QueryWorkflow(StateQuery)
	if err != nil {
		e.t.Fatalf("query state: %v", err)
	}
	var s ProjectState
	if err := v.Get(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// The entity answers every read concurrently (a quick plan is not held up by a
// slow listing), each with the same output as the read's own workflow; when
// Temporal suggests continue-as-new it lets every read in progress — also one
// that arrives while it waits — finish before it continues as new.
func TestProjectEntityAnswersConcurrentReadsAndDrainsBeforeContinueAsNew(t *testing.T) {
	e := newProjectEnv(t)
	read[ListReleasesOutput](e, time.Second, ListReleasesUpdate, "list", ListReleasesInput{Project: "demo"})
	read[PlanOutput](e, time.Second, PlanUpdate, "plan", PlanInput{Project: "demo", Version: "v1.1.0", Actor: "bob"})
	read[InspectOutput](e, time.Second, InspectUpdate, "inspect", InspectInput{Jobs: []activities.DeployedJob{dailyOnDev}})
	read[PlanOutput](e, time.Second, PlanUpdate, "other-project", PlanInput{Project: "sales", Version: "v1.1.0"})
	var during ProjectState
	e.RegisterDelayedCallback(func() { during = e.state() }, 5*time.Minute)
	// Suggested while the listing still runs; a read arrives after that.
	e.RegisterDelayedCallback(func() { e.SetContinueAsNewSuggested(true) }, 6*time.Minute)
	read[ReadLogsOutput](e, 7*time.Minute, ReadLogsUpdate, "logs", ReadLogsInput{Paths: []string{"state/logs/x/ingest.log"}})

	e.ExecuteWorkflow(Project, ProjectInput{Project: "demo", Answered: 40})

	if !e.IsWorkflowCompleted() {
		t.Fatal("the entity did not continue as new once it was suggested")
	}
	var can *workflow.ContinueAsNewError
	if err := e.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("entity ended with %v, want continue-as-new", err)
	}
	var next ProjectInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next != (ProjectInput{Project: "demo", Answered: 44}) {
		t.Errorf("continued as new with %+v, want project demo and 44 reads answered (40 carried + 4)", next)
	}
	for id, err := range e.failures {
		t.Errorf("read %s failed: %v", id, err)
	}
	// Every accepted read was answered before the run closed, in the order its work finished.
	if want := []string{"plan", "inspect", "logs", "list"}; !slices.Equal(e.order, want) {
		t.Errorf("reads completed in order %v, want %v (concurrent, and all before continue-as-new)", e.order, want)
	}
	if err := e.refused["other-project"]; err == nil || !strings.Contains(err.Error(), "serves reads of project demo, not sales") {
		t.Errorf("a read of another project: refusal %v", err)
	}
	if during.Answered != 42 || during.InFlight != 1 || !strings.Contains(during.Summary, "1 in progress") {
		t.Errorf("state while listing: %+v, want 42 answered, 1 in flight", during)
	}

	list := answer[ListReleasesOutput](e, "list")
	if want := []RemoteTag{{Version: "v1.1.0", Commit: commit, Creator: "alice", Shipline: true}, {Version: "v1.0.0", Commit: "c0", Creator: "mallory"}}; !slices.Equal(list.Tags, want) {
		t.Errorf("listing = %+v, want %+v", list.Tags, want)
	}
	plan := answer[PlanOutput](e, "plan")
	if got := fmt.Sprintf("%s %s %+v %+v %+v", plan.Project, plan.Commit, plan.Builds, plan.Uploads, plan.Jobs); got !=
		"demo "+commit+" [{Pipeline:ingest Action:cached Key:k1 File:ingest-1.0.0-py3-none-any.whl}] [{Fabric:dev Pipeline:ingest Path:/Volumes/a/demo/v1.1.0/ingest/ingest-1.0.0-py3-none-any.whl}] [{Fabric:dev Job:daily Action:update ID:7 Detail: LiveVersion:}]" {
		t.Errorf("plan = %s", got)
	}
	if got := answer[InspectOutput](e, "inspect"); !slices.Equal(got.Jobs, driftOfDaily.Jobs) {
		t.Errorf("inspect = %+v", got)
	}
	if got := answer[ReadLogsOutput](e, "logs"); !slices.Equal(got.Logs, buildLogs.Logs) {
		t.Errorf("logs = %+v", got)
	}
}

// Idle, the entity stays open (no timer, nothing written) and completes a read
// sent without a project with its own.
func TestProjectEntityStaysOpenAndDefaultsTheProject(t *testing.T) {
	e := newProjectEnv(t)
	read[ListReleasesOutput](e, time.Second, ListReleasesUpdate, "list", ListReleasesInput{})
	var after ProjectState
	e.RegisterDelayedCallback(func() { after = e.state(); e.CancelWorkflow() }, 30*24*time.Hour)
	e.ExecuteWorkflow(Project, ProjectInput{Project: "demo"})

	if err := e.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("entity ended with %v before it was cancelled a month later", err)
	}
	if after.Answered != 1 || after.Project != "demo" || after.Status != StatusRunning {
		t.Errorf("state a month later = %+v", after)
	}
	if got := answer[ListReleasesOutput](e, "list"); len(got.Tags) != 2 {
		t.Errorf("listing without a project = %+v, refusal %v", got, e.refused["list"])
	}
}

// The check read runs the CheckTree activity with the files `shipline
// check` sent and answers its report; a check of another project is refused
// before anything runs.
func TestProjectEntityAnswersCheck(t *testing.T) {
	e := newProjectEnv(t)
	in := CheckInput{Project: "demo", Version: "0.0.0-check+0123456789ab", Commit: commit,
		Files: map[string]string{"shipline.yaml": "name: demo\n"}, Artifacts: map[string]string{"ingest": "ingest-1.0.0-py3-none-any.whl"}}
	report := CheckOutput{Jobs: []activities.CheckedJob{{Job: "daily", Fabric: "dev", Render: "ok", Plan: "create", Definition: "jobs/daily.json"}}}
	e.OnActivity(deployActs.CheckTree, mock.Anything, in).Return(report, nil).Once()
	read[CheckOutput](e, time.Second, CheckUpdate, "check", in)
	other := in
	other.Project = "sales"
	read[CheckOutput](e, time.Second, CheckUpdate, "other", other)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, time.Hour)
	e.ExecuteWorkflow(Project, ProjectInput{Project: "demo"})

	if got := answer[CheckOutput](e, "check"); fmt.Sprintf("%+v", got.Jobs) != fmt.Sprintf("%+v", report.Jobs) {
		t.Errorf("check = %+v, refusal %v, failure %v", got, e.refused["check"], e.failures["check"])
	}
	if err := e.refused["other"]; err == nil || !strings.Contains(err.Error(), "not sales") {
		t.Errorf("a check of another project: refusal %v", err)
	}
}
