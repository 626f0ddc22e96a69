package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/metrics/metricstest"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/workflows"
)

// fakeDeployInput drives fakeDeploy.
type fakeDeployInput struct {
	Parks int              // times to park (and be resumed) before ending
	End   workflows.Status // the status it returns with
	Err   string           // "failed": return an error; "cancelled": a canceled error
}

// fakeDeploy stands for the Deploy workflow: it runs the activities whose
// results carry metrics, publishes its status in its memo as Deploy does, and
// ends as told.
func fakeDeploy(ctx workflow.Context, in fakeDeployInput) (workflows.DeployState, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	publish := func(s workflows.Status) error {
		return workflow.UpsertMemo(ctx, map[string]any{workflows.MemoStatus: string(s), workflows.MemoReason: ""})
	}
	if err := publish(workflows.StatusRunning); err != nil {
		return workflows.DeployState{}, err
	}
	for _, p := range []manifest.Pipeline{
		{Name: "a", Path: "a", Language: manifest.Python},
		{Name: "b", Path: "b", Language: manifest.Java},
	} {
		if err := workflow.ExecuteActivity(ctx, "Pipeline", activities.BuildInput{Project: "demo", Pipeline: p}).Get(ctx, nil); err != nil {
			return workflows.DeployState{}, err
		}
	}
	if err := workflow.ExecuteActivity(ctx, "Upload", activities.UploadInput{Project: "demo", Fabric: "dev"}).Get(ctx, nil); err != nil {
		return workflows.DeployState{}, err
	}
	if err := workflow.ExecuteActivity(ctx, "UpsertJobs", activities.UpsertJobsInput{Project: "demo", Fabric: "dev"}).Get(ctx, nil); err != nil {
		return workflows.DeployState{}, err
	}
	if err := workflow.ExecuteActivity(ctx, "UpsertJob", activities.UpsertJobInput{Job: activities.ResolvedJob{Name: "dag", Fabric: "airflow-dev"}}).Get(ctx, nil); err != nil {
		return workflows.DeployState{}, err
	}
	for range in.Parks {
		// Publishing "parked" twice in a row is one park.
		for range 2 {
			if err := publish(workflows.StatusParked); err != nil {
				return workflows.DeployState{}, err
			}
		}
		if err := publish(workflows.StatusRunning); err != nil {
			return workflows.DeployState{}, err
		}
	}
	var st workflows.DeployState
	st.Status = in.End
	switch in.Err {
	case "failed":
		return st, errors.New("boom")
	case "cancelled":
		return st, temporal.NewCanceledError()
	}
	return st, nil
}

func TestInterceptorRecordsActivitiesAndDeployOutcomes(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &platform.Config{Fabrics: map[string]platform.Fabric{
		"dev":         {Kind: fabric.KindDatabricks},
		"airflow-dev": {Kind: fabric.KindAirflow},
	}}
	var suite testsuite.WorkflowTestSuite
	run := func(in fakeDeployInput, workflowType string) {
		t.Helper()
		env := suite.NewTestWorkflowEnvironment()
		env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{NewInterceptor(m.Shipline, cfg)}})
		env.RegisterWorkflowWithOptions(fakeDeploy, workflow.RegisterOptions{Name: workflowType})
		env.RegisterActivityWithOptions(func(ctx context.Context, in activities.BuildInput) (activities.BuildOutput, error) {
			return activities.BuildOutput{Pipeline: in.Pipeline.Name, Cached: in.Pipeline.Language == manifest.Java, Seconds: 2.5}, nil
		}, activity.RegisterOptions{Name: "Pipeline"})
		env.RegisterActivityWithOptions(func(ctx context.Context, in activities.UploadInput) (activities.UploadOutput, error) {
			return activities.UploadOutput{}, nil
		}, activity.RegisterOptions{Name: "Upload"})
		env.RegisterActivityWithOptions(func(ctx context.Context, in activities.UpsertJobsInput) (activities.UpsertJobsOutput, error) {
			return activities.UpsertJobsOutput{
				Results: map[string]activities.UpsertJobOutput{"j1": {Action: "created"}, "j2": {Action: "unchanged"}},
				Failed:  map[string]string{"j3": "bad request"},
			}, nil
		}, activity.RegisterOptions{Name: "UpsertJobs"})
		env.RegisterActivityWithOptions(func(ctx context.Context, in activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
			return activities.UpsertJobOutput{Action: "updated"}, nil
		}, activity.RegisterOptions{Name: "UpsertJob"})
		env.ExecuteWorkflow(workflowType, in)
		if !env.IsWorkflowCompleted() {
			t.Fatalf("%s %+v did not complete", workflowType, in)
		}
	}

	run(fakeDeployInput{End: workflows.StatusSucceeded}, workflows.DeployWorkflow)
	run(fakeDeployInput{Parks: 2, End: workflows.StatusSucceeded}, workflows.DeployWorkflow)
	run(fakeDeployInput{Parks: 1, End: workflows.StatusCancelled}, workflows.DeployWorkflow)
	run(fakeDeployInput{End: workflows.StatusRefused}, workflows.DeployWorkflow)
	run(fakeDeployInput{End: workflows.StatusRunning, Err: "failed"}, workflows.DeployWorkflow)
	run(fakeDeployInput{End: workflows.StatusRunning, Err: "cancelled"}, workflows.DeployWorkflow)
	// Another workflow type running the same activities: activities count,
	// but no deploy outcome.
	run(fakeDeployInput{Parks: 1, End: workflows.StatusSucceeded}, "NotDeploy")

	fams := metricstest.Gather(t, m.Registry)
	for outcome, want := range map[string]float64{"succeeded": 2, "parked": 3, "cancelled": 2, "refused": 1, "failed": 1} {
		if got := fams.Value("shipline_deploys_total", "outcome="+outcome); got != want {
			t.Errorf("shipline_deploys_total{outcome=%q} = %v, want %v", outcome, got, want)
		}
	}
	const runs = 7
	if got := fams.Value("shipline_build_cache_total", "result=hit"); got != runs {
		t.Errorf("build cache hits = %v, want %d", got, runs)
	}
	if got := fams.Value("shipline_build_cache_total", "result=miss"); got != runs {
		t.Errorf("build cache misses = %v, want %d", got, runs)
	}
	if got := fams.Value("shipline_build_duration_seconds", "language=python"); got != runs {
		t.Errorf("python build durations observed = %v, want %d", got, runs)
	}
	if got := fams.Value("shipline_build_duration_seconds", "language=java"); got != 0 {
		t.Errorf("java build durations observed = %v, want 0 (cache hits build nothing)", got)
	}
	if got := fams.Value("shipline_upload_duration_seconds", "fabric_kind=databricks"); got != runs {
		t.Errorf("databricks upload durations observed = %v, want %d", got, runs)
	}
	for _, c := range []struct {
		kind, action string
		want         float64
	}{
		{"databricks", "created", runs}, {"databricks", "unchanged", runs}, {"databricks", "failed", runs},
		{"airflow", "updated", runs}, {"databricks", "updated", 0},
	} {
		if got := fams.Value("shipline_job_upserts_total", "fabric_kind="+c.kind, "action="+c.action); got != c.want {
			t.Errorf("shipline_job_upserts_total{%s,%s} = %v, want %v", c.kind, c.action, got, c.want)
		}
	}
}

func TestDeployOutcome(t *testing.T) {
	state := func(s workflows.Status) workflows.DeployState {
		var st workflows.DeployState
		st.Status = s
		return st
	}
	appErr := temporal.NewNonRetryableApplicationError("no", apperr.AccessDenied, nil)
	for _, c := range []struct {
		res  any
		err  error
		want string
	}{
		{state(workflows.StatusSucceeded), nil, "succeeded"},
		{state(workflows.StatusRefused), appErr, "refused"},
		{state(workflows.StatusCancelled), appErr, "cancelled"},
		{ptr(state(workflows.StatusFailed)), errors.New("x"), "failed"},
		{state(workflows.StatusRunning), errors.New("x"), "failed"},
		{state(workflows.StatusQueued), temporal.NewCanceledError(), "cancelled"},
		{nil, errors.New("x"), "failed"},
		{state(workflows.StatusRunning), &workflow.ContinueAsNewError{}, ""},
	} {
		if got := deployOutcome(c.res, c.err); got != c.want {
			t.Errorf("deployOutcome(%v, %v) = %q, want %q", c.res, c.err, got, c.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
