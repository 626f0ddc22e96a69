package workflows

import (
	"time"

	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
)

func TestBuildsOutcome(t *testing.T) {
	done := PipelineBuild{Status: StepDone}
	for _, tc := range []struct {
		builds map[string]PipelineBuild
		n      int
		want   string
	}{
		{map[string]PipelineBuild{"a": {Status: StepPending}, "b": done}, 2, ""},
		{map[string]PipelineBuild{"a": done, "b": done}, 2, BuildsPassed},
		{map[string]PipelineBuild{"a": {Status: StepFailed, Failure: apperr.BuildFailed}, "b": done}, 2, BuildsFailed},
		{map[string]PipelineBuild{"a": {Status: StepFailed, Failure: apperr.BuildFailed}, "b": {Status: StepFailed, Failure: apperr.TestsFailed}}, 2, TestsFailed},
	} {
		if got := buildsOutcome(tc.builds, tc.n); got != tc.want {
			t.Errorf("buildsOutcome(%+v) = %q, want %q", tc.builds, got, tc.want)
		}
	}
}

// A pipeline whose tests fail is recorded with its failure type, which is what
// the deployment's memo (MemoBuilds) sums up for `shipline releases`.
func TestDeployRecordsFailedTests(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(activities.BuildOutput{},
		temporal.NewNonRetryableApplicationError("tests failed: assert 1 == 2", apperr.TestsFailed, nil))
	var parked DeployState
	e.RegisterDelayedCallback(func() { parked = e.query(); e.CancelWorkflow() }, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	if parked.Status != StatusParked || parked.Builds["ingest"].Failure != apperr.TestsFailed || buildsOutcome(parked.Builds, 2) != TestsFailed {
		t.Fatalf("parked state %+v", parked)
	}
}
