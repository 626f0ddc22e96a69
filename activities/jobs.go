package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
)

// jobWorkers bounds the concurrent job upserts of one UpsertJobs call.
const jobWorkers = 4

// UpsertJobsInput creates or updates a deployment's jobs on one fabric.
type UpsertJobsInput struct {
	Project      string        `json:"project"`
	Version      string        `json:"version"`
	Commit       string        `json:"commit"`
	DeploymentID string        `json:"deployment_id"`
	Fabric       string        `json:"fabric"`
	Jobs         []ResolvedJob `json:"jobs"`
	// Artifacts maps pipelines to their paths on this fabric.
	Artifacts map[string]string `json:"artifacts"`
}

// UpsertJobsOutput reports each job: done (Results) or refused for good (Failed).
type UpsertJobsOutput struct {
	Results map[string]UpsertJobOutput `json:"results"`
	// Failed holds permanent failures (job → message); the workflow parks on them.
	Failed map[string]string `json:"failed,omitempty"`
}

// UpsertJobs renders and upserts every job of a deployment on one fabric, a
// few at a time, in one activity (one client, few history events). A permanent
// failure of one job is reported in Failed and does not stop the others; a
// transient one fails the activity so Temporal retries it (jobs already done
// come back "unchanged").
func (d *Deploy) UpsertJobs(ctx context.Context, in UpsertJobsInput) (UpsertJobsOutput, error) {
	fab, err := fabric.Open(d.Platform, in.Fabric, d.env())
	if err != nil {
		return UpsertJobsOutput{}, apperr.ForTemporal(err)
	}
	out := UpsertJobsOutput{Results: map[string]UpsertJobOutput{}, Failed: map[string]string{}}
	var (
		mu        sync.Mutex
		transient error
		wg        sync.WaitGroup
		next      = make(chan ResolvedJob)
	)
	for range min(jobWorkers, len(in.Jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				res, err := d.upsertOne(ctx, fab, in, j)
				mu.Lock()
				switch {
				case err == nil:
					out.Results[j.Name] = res
				case isPermanent(err):
					out.Failed[j.Name] = userMessageOf(err)
				default:
					transient = errors.Join(transient, fmt.Errorf("job %s: %w", j.Name, err))
				}
				done := len(out.Results) + len(out.Failed)
				mu.Unlock()
				if activity.IsActivity(ctx) {
					activity.RecordHeartbeat(ctx, fmt.Sprintf("%d of %d jobs on %s", done, len(in.Jobs), in.Fabric))
				}
			}
		}()
	}
	// Heartbeat on a clock too, not only after each job: one job's calls can
	// outlast the heartbeat timeout while the SDK retries 429s, and a
	// heartbeat timeout would start a second attempt beside this one.
	_ = withHeartbeat(ctx, func() error {
		for _, j := range in.Jobs {
			select {
			case next <- j:
			case <-ctx.Done():
			}
		}
		close(next)
		wg.Wait()
		return nil
	})
	if err := ctx.Err(); err != nil {
		return out, err
	}
	if transient != nil {
		return out, transient
	}
	return out, nil
}

func (d *Deploy) upsertOne(ctx context.Context, fab fabric.Fabric, in UpsertJobsInput, j ResolvedJob) (UpsertJobOutput, error) {
	spec, err := d.render(ctx, UpsertJobInput{Project: in.Project, Version: in.Version, Commit: in.Commit, DeploymentID: in.DeploymentID, Job: j, Artifacts: pathsFor(j, in.Artifacts)})
	if err != nil {
		return UpsertJobOutput{}, err
	}
	res, err := fab.UpsertJob(ctx, spec)
	if err != nil {
		return UpsertJobOutput{}, apperr.ForTemporal(fmt.Errorf("job %s on fabric %s: %w", j.Name, in.Fabric, err))
	}
	sum := sha256.Sum256(spec.Definition)
	return UpsertJobOutput{ID: res.ID, Action: string(res.Action), DefinitionSHA256: hex.EncodeToString(sum[:])}, nil
}

// pathsFor keeps the artifact paths of a job's own pipelines.
func pathsFor(j ResolvedJob, all map[string]string) map[string]string {
	paths := make(map[string]string, len(j.Pipelines))
	for _, p := range j.Pipelines {
		paths[p] = all[p]
	}
	return paths
}

// isPermanent reports whether an activity error is non-retryable.
func isPermanent(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.NonRetryable()
}
