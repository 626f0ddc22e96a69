package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/activities"
)

// A failed build keeps the path of its log on the deployment's state, so
// `shipline logs` can show it first.
func TestFailedBuildKeepsItsLog(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BuildInput) (activities.BuildOutput, error) {
		if in.Pipeline.Name == "score" {
			return activities.BuildOutput{}, temporal.NewNonRetryableApplicationError("tests failed", activities.ErrTestsFailed, nil,
				activities.BuildFailureDetails{Pipeline: "score", LogPath: "/state/logs/score.log", LogTail: "FAILED test_score"})
		}
		return activities.BuildOutput{Pipeline: in.Pipeline.Name, File: "ingest.whl", SHA256: "ab", LogPath: "/state/logs/ingest.log"}, nil
	})
	var parked DeployState
	e.RegisterDelayedCallback(func() { parked = e.query(); e.CancelWorkflow() }, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	b := parked.Builds["score"]
	if b.Status != StepFailed || b.LogPath != "/state/logs/score.log" || b.LogTail != "FAILED test_score" {
		t.Fatalf("failed build = %+v", b)
	}
}
