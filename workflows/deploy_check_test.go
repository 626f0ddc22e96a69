package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
)

// Every job is checked for its fabric, with the built artifacts' file names,
// before anything is uploaded or upserted.
func TestDeployChecksEveryJobBeforeWriting(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.okBuilds()
	var order []string
	e.OnActivity(deployActs.Upload, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UploadInput) (activities.UploadOutput, error) {
		order = append(order, "upload", "checked before upload: "+strings.Repeat("y", len(e.checks)))
		return activities.UploadOutput{Paths: map[string]string{"ingest": "/a/ingest.whl", "score": "/a/score.whl"}}, nil
	})
	e.onJobs(func(in activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		return activities.UpsertJobOutput{ID: "1", Action: "created"}, nil
	})
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	s := e.result()

	if len(e.checks) != 1 || len(e.checks[0].Jobs) != 2 || e.checks[0].Commit != commit ||
		e.checks[0].Files["ingest"] != "ingest-1.0-py3-none-any.whl" || e.checks[0].Files["score"] != "score-1.0-py3-none-any.whl" {
		t.Fatalf("checks = %+v", e.checks)
	}
	if len(order) != 2 || order[1] != "checked before upload: y" {
		t.Fatalf("order = %v", order)
	}
	if st := stepOf(s.Steps, StepCheck); st.Status != StepDone || !strings.Contains(st.Detail, "2 job definitions") {
		t.Fatalf("check step = %+v", st)
	}
}

// An invalid definition ends the deployment as failed, listing every problem,
// with nothing uploaded or upserted and the fabric released.
func TestDeployInvalidDefinitionWritesNothing(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.okBuilds()
	e.checkErr = temporal.NewNonRetryableApplicationError(
		"1 of 2 job definitions are invalid; nothing was written to any fabric:\n  job orders_dag on fabric dev: jobs/dag.py:3: error: the DAG does not compile",
		apperr.InvalidDefinition, nil)
	var writes []string
	e.OnActivity(deployActs.Upload, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UploadInput) (activities.UploadOutput, error) {
		writes = append(writes, "upload to "+in.Fabric)
		return activities.UploadOutput{}, nil
	})
	e.onJobs(func(in activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		writes = append(writes, "upsert "+in.Job.Name)
		return activities.UpsertJobOutput{ID: "1", Action: "created"}, nil
	})
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})

	if !e.IsWorkflowCompleted() {
		t.Fatal("deployment did not end (parked?)")
	}
	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.InvalidDefinition || !strings.Contains(app.Message(), "jobs/dag.py:3") {
		t.Fatalf("error = %v", err)
	}
	if len(writes) != 0 {
		t.Fatalf("written despite an invalid definition: %v", writes)
	}
	if len(e.done) != 1 || e.done[0].Outcome != StatusFailed || len(e.done[0].Jobs) != 0 || !strings.Contains(e.done[0].Reason, "jobs/dag.py:3") {
		t.Fatalf("fabric told %+v", e.done)
	}
}

// No Python on the worker is not the release's fault: the deployment parks at
// check and, once resumed, goes on.
func TestDeployCheckParksWithoutPython(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	e.okBuilds()
	e.okUpload()
	e.onJobs(func(in activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		return activities.UpsertJobOutput{ID: "1", Action: "created"}, nil
	})
	e.checkErr = temporal.NewNonRetryableApplicationError("check DAG jobs/dag.py: no Python interpreter", apperr.PythonUnavailable, nil)
	var parked DeployState
	e.RegisterDelayedCallback(func() {
		parked = e.query()
		e.checkErr = nil
		e.UpdateWorkflow(ResumeUpdate, "1", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Fatalf("resume rejected: %v", err) },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "alice"})
	}, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	s := e.result()
	if parked.Parked == nil || parked.Parked.Step != StepCheck || len(parked.Jobs) != 0 {
		t.Fatalf("parked = %+v", parked)
	}
	if s.Status != StatusSucceeded || len(e.checks) != 2 {
		t.Fatalf("status %s after %d checks", s.Status, len(e.checks))
	}
}

func stepOf(steps []Step, name string) Step {
	for _, s := range steps {
		if s.Name == name {
			return s
		}
	}
	return Step{}
}
