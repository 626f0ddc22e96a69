package workflows

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
)

// missingArtifact is the Upload activity's error for a vanished cache entry.
func missingArtifact(pipeline string) error {
	return temporal.NewNonRetryableApplicationError("the build cache no longer holds the artifact of "+pipeline,
		apperr.ArtifactMissing, nil, activities.ArtifactMissingDetails{Pipelines: []string{pipeline}, Paths: []string{"/state/cache/k/" + pipeline + ".whl"}})
}

// uploadsMissing mocks Upload: the first `times` calls fail because pipeline's
// artifact is gone from the cache; it records each call's artifacts.
func (e *deployEnv) uploadsMissing(pipeline string, times int, calls *[]activities.UploadInput) {
	var mu sync.Mutex // fabrics upload in parallel
	e.OnActivity(deployActs.Upload, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UploadInput) (activities.UploadOutput, error) {
		mu.Lock()
		*calls = append(*calls, in)
		n := len(*calls)
		mu.Unlock()
		if n <= times {
			return activities.UploadOutput{}, missingArtifact(pipeline)
		}
		out := activities.UploadOutput{Paths: map[string]string{}}
		for _, a := range in.Artifacts {
			out.Paths[a.Pipeline] = "/Volumes/main/shipline/artifacts/demo/v1.0.0/" + a.Pipeline + "/" + a.File
			out.Uploaded = append(out.Uploaded, a.Pipeline)
		}
		return out, nil
	})
}

// builtPipelines mocks the build activity, counting builds per pipeline.
func (e *deployEnv) builtPipelines(counts map[string]int) {
	var mu sync.Mutex // pipelines build in parallel
	e.OnActivity(buildActs.Pipeline, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BuildInput) (activities.BuildOutput, error) {
		mu.Lock()
		counts[in.Pipeline.Name]++
		first := counts[in.Pipeline.Name] == 1
		mu.Unlock()
		e.builds.Add(1)
		return activities.BuildOutput{Pipeline: in.Pipeline.Name, File: in.Pipeline.Name + "-1.0+sl.ab-py3-none-any.whl",
			LocalPath: "/state/cache/k/" + in.Pipeline.Name + ".whl", SHA256: "ab", Size: 10, Cached: first}, nil
	})
}

// An artifact gone from the build cache: the upload's ArtifactMissing rebuilds
// that pipeline (only it) and uploads again; the deployment succeeds without parking.
func TestDeployRebuildsArtifactMissingFromCache(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	counts := map[string]int{}
	e.builtPipelines(counts)
	var uploads []activities.UploadInput
	e.uploadsMissing("ingest", 1, &uploads)
	e.onJobs(func(in activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		return activities.UpsertJobOutput{ID: "7", Action: "created"}, nil
	})
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob", Expect: map[string]string{"ingest": "ab", "score": "ab"}})
	s := e.result()

	if s.Status != StatusSucceeded {
		t.Fatalf("status %s: %+v", s.Status, s.Steps)
	}
	if counts["ingest"] != 2 || counts["score"] != 1 {
		t.Errorf("builds per pipeline %v, want ingest rebuilt once and score built once", counts)
	}
	if len(uploads) != 2 || len(uploads[1].Artifacts) != 2 {
		t.Fatalf("uploads %+v, want the fabric's upload retried once after the rebuild", uploads)
	}
	if b := s.Builds["ingest"]; b.Status != StepDone || b.Cached {
		t.Errorf("ingest build state %+v, want done by a fresh build", b)
	}
	for _, st := range s.Steps {
		if st.Name == StepUpload && (st.Status != StepDone || !strings.HasPrefix(st.Detail, "2 artifacts sent")) {
			t.Errorf("upload step %+v", st)
		}
	}
}

// Still missing after the rebuild: the deployment parks with the reason (no
// endless retries); resume rebuilds and uploads again.
func TestDeployParksWhenArtifactStaysMissing(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	counts := map[string]int{}
	e.builtPipelines(counts)
	var uploads []activities.UploadInput
	e.uploadsMissing("ingest", 2, &uploads)
	e.onJobs(func(in activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		return activities.UpsertJobOutput{ID: "7", Action: "created"}, nil
	})
	var parked DeployState
	e.RegisterDelayedCallback(func() {
		parked = e.query()
		e.UpdateWorkflow(ResumeUpdate, "1", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Fatalf("resume rejected: %v", err) },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "bob"})
	}, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	s := e.result()

	if parked.Status != StatusParked || parked.Parked == nil || parked.Parked.Step != StepUpload ||
		!strings.Contains(parked.Parked.Reason, "still missing from the build cache after a rebuild") || !strings.Contains(parked.Parked.Reason, "ingest") {
		t.Fatalf("parked = %+v", parked.Parked)
	}
	if len(uploads) != 3 || counts["ingest"] != 2 || s.Status != StatusSucceeded {
		t.Fatalf("uploads %d, builds %v, status %s", len(uploads), counts, s.Status)
	}
}
