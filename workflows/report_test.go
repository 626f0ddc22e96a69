package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
)

// A failed build keeps the path of its log on the deployment's state, so
// `shipline logs` can show it first.
func TestFailedBuildKeepsItsLog(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BuildInput) (activities.BuildOutput, error) {
		if in.Pipeline.Name == "score" {
			return activities.BuildOutput{}, temporal.NewNonRetryableApplicationError("tests failed", apperr.TestsFailed, nil,
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
	// Failing tests need a new commit: the advice says so, and not to resume.
	if !strings.Contains(parked.Summary, "release a new version") || strings.Contains(parked.Summary, "then `shipline resume") {
		t.Fatalf("advice of a deployment parked by failing tests: %q", parked.Summary)
	}
}

// A failure resume can fix (a missing tool, a fabric's answer) keeps the usual
// advice (fix the cause, then resume): parkAdvice has nothing to add.
func TestParkAdviceByFailure(t *testing.T) {
	if a := parkAdvice(deployID, buildFailure([]string{"x: no python3"}, []string{apperr.BuildToolMissing})); a != "" {
		t.Errorf("missing tool: %q", a)
	}
	if a := parkAdvice(deployID, buildFailure([]string{"x: tests", "y: compile"}, []string{apperr.TestsFailed, apperr.BuildFailed})); !strings.Contains(a, "release a new version") {
		t.Errorf("tests and compile errors: %q", a)
	}
	if a := parkAdvice(deployID, errors.New("403")); a != "" {
		t.Errorf("fabric error: %q", a)
	}
}

// The upload step counts what it did: "2 artifacts sent", never "the rest
// already there" when nothing was.
func TestUploadStepCounts(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.okBuilds()
	e.OnActivity(deployActs.Upload, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UploadInput) (activities.UploadOutput, error) {
		out := activities.UploadOutput{Paths: map[string]string{}}
		for _, a := range in.Artifacts {
			out.Paths[a.Pipeline] = "/Volumes/x/" + a.File
			out.Uploaded = append(out.Uploaded, a.Pipeline)
		}
		return out, nil
	})
	e.onJobs(func(activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		return activities.UpsertJobOutput{ID: "1", Action: "created"}, nil
	})
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	s := e.result()
	for _, st := range s.Steps {
		if st.Name == StepUpload && st.Detail != "2 artifacts sent" {
			t.Fatalf("upload step detail = %q, want %q", st.Detail, "2 artifacts sent")
		}
	}
	for _, tc := range []struct {
		sent, total int
		want        string
	}{{2, 2, "2 artifacts sent"}, {0, 3, "3 artifacts already there"}, {1, 3, "1 artifact sent, 2 already there"}, {1, 1, "1 artifact sent"}} {
		if got := uploadDetail(tc.sent, tc.total); got != tc.want {
			t.Errorf("uploadDetail(%d, %d) = %q, want %q", tc.sent, tc.total, got, tc.want)
		}
	}
}

// A recorded reason keeps its parts apart (history shows "cancelled by bob;
// parked at build: …", not "cancelled by bobparked at build: …").
func TestRecordedReasonsAreSeparated(t *testing.T) {
	got := joinReasons("cancelled by bob", parkedReason(&Parked{Step: StepBuild, Reason: "tests failed"}))
	if got != "cancelled by bob; parked at build: tests failed" {
		t.Fatalf("reason = %q", got)
	}
	if got := joinReasons("", parkedReason(&Parked{Step: StepBuild, Reason: "x"})); got != "parked at build: x" {
		t.Fatalf("reason = %q", got)
	}
}
