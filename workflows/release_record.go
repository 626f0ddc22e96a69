package workflows

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/access"
)

var messageActs *activities.Messages

// keepRecord keeps the entity open as the release's record: it learns where the
// release was deployed (DeployedSignal), marks it linked before a promotion
// deploys it past the first stage (LinkUpdate), notes the stages that verified
// it (VerifiedUpdate), and deletes it on request
// (DeleteUpdate) unless it is linked. Link and delete are decided here, one at
// a time, so they cannot race. It continues as new when Temporal suggests it.
func (r *release) keepRecord(ctx workflow.Context) error {
	deployed := workflow.GetSignalChannel(ctx, DeployedSignal)
	for {
		// One condition, no coroutine: a deployment to record, the release
		// deleted, or history long enough to continue as new.
		err := workflow.Await(ctx, func() bool {
			return deployed.Len() > 0 || r.state.Status == StatusDeleted || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
		})
		if err != nil {
			return err
		}
		for {
			var d Deployed
			if !deployed.ReceiveAsync(&d) {
				break
			}
			if refuseInternal(ctx, r.in.Project, DeployedSignal, d.Actor, &d, &r.state.Nonces) != nil {
				continue
			}
			r.recordDeployed(d)
			r.publishQuiet(ctx)
		}
		if r.state.Status == StatusDeleted || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			break
		}
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	if r.state.Status == StatusDeleted {
		return nil
	}
	carried := r.state
	next := r.in
	next.Carried, next.CarriedPolicy = &carried, r.guard.carry()
	return workflow.NewContinueAsNewError(ctx, Release, next)
}

func (r *release) registerRecordHandlers(ctx workflow.Context) error {
	err := workflow.SetUpdateHandlerWithOptions(ctx, LinkUpdate, func(ctx workflow.Context, req LinkRequest) (ReleaseState, error) {
		// Only Shipline's Promote links a release: the update's outcome records a forged one.
		if err := refuseInternal(ctx, r.in.Project, LinkUpdate, req.Actor, &req, &r.state.Nonces); err != nil {
			return r.state, err
		}
		if r.deleting || r.state.Status == StatusDeleted {
			return r.state, fmt.Errorf("%s of %s is being deleted or was deleted; it cannot be promoted", r.in.Version, r.in.Project)
		}
		if r.state.Status != StatusReleased {
			return r.state, fmt.Errorf("%s of %s is not released (it is %s)", r.in.Version, r.in.Project, r.state.Status)
		}
		r.state.Linked = true
		if !slices.Contains(r.state.Stages, req.Stage) {
			r.state.Stages = append(r.state.Stages, req.Stage)
		}
		r.state.Summary = fmt.Sprintf("released %s of %s; linked (promoted to %s by %s)", r.in.Version, r.in.Project, req.Stage, req.Actor)
		r.publishQuiet(ctx)
		return r.state, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req LinkRequest) error {
		if r.deleting || r.state.Status == StatusDeleted {
			return fmt.Errorf("%s of %s is being deleted or was deleted; it cannot be promoted", r.in.Version, r.in.Project)
		}
		return nil
	}})
	if err != nil {
		return err
	}
	err = workflow.SetUpdateHandler(ctx, VerifiedUpdate, func(ctx workflow.Context, req VerifiedRequest) (ReleaseState, error) {
		// Only Shipline's workflows record a verification: the update's outcome records a forged one.
		if err := refuseInternal(ctx, r.in.Project, VerifiedUpdate, req.Actor, &req, &r.state.Nonces); err != nil {
			return r.state, err
		}
		r.recordVerified(req)
		r.publishQuiet(ctx)
		return r.state, nil
	})
	if err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, DeleteUpdate, func(ctx workflow.Context, req DeleteRequest) (DeleteResult, error) {
		// A refusal is the update's recorded outcome, and is audited.
		if refusalsInHandlers(ctx) {
			if err := r.guard.admit(ctx, r.in.Project, ActionDelete, req.Actor, SignedArgs(req), req.Auth, func() error { return r.mayDelete(req) }); err != nil {
				return DeleteResult{}, refuseAttempt(ctx, r.in.Project, Refusal{Actor: req.Actor, Action: ActionDelete, Version: r.in.Version}, req.Auth, err)
			}
		}
		return r.delete(ctx, req)
	}, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, req DeleteRequest) error {
			return r.guard.starting()
		},
	})
}

// mayDelete applies the release's rules to a delete: who asks, then the
// release's state.
func (r *release) mayDelete(req DeleteRequest) error {
	if err := access.DeleteRelease(r.in.Project, r.state.Admins, req.Actor); err != nil {
		return err
	}
	switch {
	case r.deleting || r.state.Status == StatusDeleted:
		return fmt.Errorf("%s of %s is already being deleted", r.in.Version, r.in.Project)
	case r.state.Status != StatusReleased:
		return fmt.Errorf("%s of %s is not released (it is %s); there is nothing to delete yet", r.in.Version, r.in.Project, r.state.Status)
	case r.deploying:
		return fmt.Errorf("%s of %s is still being deployed (%s); wait for it, then delete", r.in.Version, r.in.Project, r.state.DeployID)
	case r.state.Linked:
		return fmt.Errorf("%s of %s is linked: it reached %s, and a release that reached a stage after the first can no longer be deleted; release a new version instead",
			r.in.Version, r.in.Project, strings.Join(r.state.Stages, ", "))
	}
	return nil
}

// recordDeployed notes a successful deployment of this release.
func (r *release) recordDeployed(d Deployed) {
	if r.state.Fabrics == nil {
		r.state.Fabrics = map[string]FabricReach{}
	}
	for _, f := range d.Fabrics {
		r.state.Fabrics[f] = FabricReach{DeploymentID: d.DeploymentID, Actor: d.Actor, At: d.At}
	}
	if r.state.Artifacts == nil && len(d.Artifacts) > 0 {
		r.state.Artifacts = maps.Clone(d.Artifacts)
	}
	if d.Stage != "" && !slices.Contains(r.state.Stages, d.Stage) {
		r.state.Stages = append(r.state.Stages, d.Stage)
	}
}

// recordVerified notes that a stage verified this release (the latest time wins).
func (r *release) recordVerified(req VerifiedRequest) {
	if req.Stage == "" {
		return
	}
	if r.state.Verified == nil {
		r.state.Verified = map[string]time.Time{}
	}
	if req.At.After(r.state.Verified[req.Stage]) {
		r.state.Verified[req.Stage] = req.At
	}
}

// delete removes the release: on every fabric it reached, each job it runs is
// reverted to the previous release's definition (or removed when there is none)
// and its artifacts are removed; then the remote tag is deleted.
func (r *release) delete(ctx workflow.Context, req DeleteRequest) (DeleteResult, error) {
	r.remember(req.Auth)
	r.deleting = true
	defer func() { r.deleting = false }()
	var res DeleteResult
	r.state.Summary = fmt.Sprintf("deleting %s of %s for %s", r.in.Version, r.in.Project, req.Actor)
	// Releases deleted before active runs were known removed artifacts under them.
	var jobsOn map[string][]string
	if changeVersion(ctx, ChangeActiveRuns) >= 1 {
		var refusal, err error
		if jobsOn, refusal, err = r.runsUsingRelease(ctx); err != nil {
			return res, err
		}
		if refusal != nil {
			// Recorded in the project's audit like the delete's other refusals.
			return res, refuseAttempt(ctx, r.in.Project, Refusal{Actor: req.Actor, Action: ActionDelete, Version: r.in.Version}, req.Auth, refusal)
		}
	}
	for _, f := range sortedNames(r.state.Fabrics) {
		if err := r.revertJobs(ctx, f, &res); err != nil {
			return res, err
		}
		var out activities.DeleteArtifactsOutput
		// With the jobs named, the activity checks their runs once more
		// right before it removes anything.
		in := activities.DeleteArtifactsInput{Project: r.in.Project, Version: r.in.Version, Fabric: f, Jobs: jobsOn[f]}
		if err := workflow.ExecuteActivity(fabricActivity(ctx), deployActs.DeleteArtifacts, in).Get(ctx, &out); err != nil {
			return res, fmt.Errorf("remove artifacts of %s from fabric %s: %s", r.in.Version, f, userMessage(err))
		}
		res.Artifacts += out.Removed
	}
	var tag activities.DeleteTagOutput
	if err := workflow.ExecuteActivity(gitRetryActivity(ctx, r.settings.GitRetry), gitActs.DeleteTag, activities.DeleteTagInput{Project: r.in.Project, Version: r.in.Version, Commit: r.state.Commit}).Get(ctx, &tag); err != nil {
		return res, fmt.Errorf("delete tag %s: %s", r.in.Version, userMessage(err))
	}
	res.TagDeleted = tag.Deleted
	r.state.Deleted = &res
	r.state.Status = StatusDeleted
	r.state.Summary = fmt.Sprintf("deleted %s of %s (by %s): %d jobs reverted, %d removed, %d artifacts removed, tag deleted: %v",
		r.in.Version, r.in.Project, req.Actor, len(res.Reverted), len(res.Removed), res.Artifacts, res.TagDeleted)
	r.publishQuiet(ctx)
	return res, nil
}

// runsUsingRelease returns the refusal of the delete, before anything is
// changed, while a job on one of the release's fabrics has an active run that
// may use its artifacts (whatever the fabric's active_runs: a delete never
// waits for or cancels runs), and the project's jobs on each fabric.
func (r *release) runsUsingRelease(ctx workflow.Context) (map[string][]string, error, error) {
	jobsOn := map[string][]string{}
	var using []string
	for _, f := range sortedNames(r.state.Fabrics) {
		fs, ok, err := r.fabricState(ctx, f)
		if err != nil || !ok {
			if err != nil {
				return nil, nil, err
			}
			continue
		}
		jobsOn[f] = sortedNames(fs.Jobs)
		if len(jobsOn[f]) == 0 {
			continue
		}
		var out activities.ActiveRunsOutput
		in := activities.ActiveRunsInput{Project: r.in.Project, Fabric: f, Jobs: jobsOn[f], Version: r.in.Version}
		if err := workflow.ExecuteActivity(fabricActivity(ctx), deployActs.ActiveRuns, in).Get(ctx, &out); err != nil {
			return nil, nil, fmt.Errorf("read the active runs on fabric %s: %s", f, userMessage(err))
		}
		if len(out.Runs) > 0 {
			using = append(using, fmt.Sprintf("on fabric %s, %s", f, activities.RunsUsing(out.Runs)))
		}
	}
	if len(using) > 0 {
		return nil, fmt.Errorf("%s of %s is not deleted: its artifacts are in use — %s; wait for the runs to end (or cancel them), then delete again",
			r.in.Version, r.in.Project, strings.Join(using, "; ")), nil
	}
	return jobsOn, nil, nil
}

// fabricState reads a fabric entity's state; false when it has none.
func (r *release) fabricState(ctx workflow.Context, fab string) (FabricState, bool, error) {
	var q activities.QueryOutput
	qin := activities.QueryInput{WorkflowID: FabricID(r.in.Project, fab), Query: StateQuery}
	if err := workflow.ExecuteActivity(shortActivity(ctx), messageActs.Query, qin).Get(ctx, &q); err != nil {
		return FabricState{}, false, fmt.Errorf("read fabric %s: %s", fab, userMessage(err))
	}
	if q.Missing {
		return FabricState{}, false, nil
	}
	var fs FabricState
	if err := json.Unmarshal(q.Result, &fs); err != nil {
		return FabricState{}, false, err
	}
	return fs, true, nil
}

// revertJobs puts back, on one fabric, the previous release of every job that
// runs this release, or removes the job when no earlier release ran it.
func (r *release) revertJobs(ctx workflow.Context, fab string, res *DeleteResult) error {
	fs, ok, err := r.fabricState(ctx, fab)
	if err != nil || !ok {
		return err
	}
	done := DeploymentDone{DeploymentID: "delete/" + r.in.Project + "/" + r.in.Version, Version: r.in.Version, Outcome: StatusDeleted,
		Started: workflow.Now(ctx)}
	for _, name := range sortedNames(fs.Jobs) {
		cur := fs.Jobs[name]
		if cur.Version != r.in.Version {
			continue
		}
		if prev, ok := previousRecord(fs.History, name, r.in.Version); ok {
			in := activities.UpsertJobInput{Project: r.in.Project, Version: prev.Version, Commit: prev.Commit, DeploymentID: prev.DeploymentID,
				Job: activities.ResolvedJob{Name: name, Scheduler: prev.Scheduler, Fabric: fab}, Artifacts: prev.Artifacts}
			var out activities.UpsertJobOutput
			if err := workflow.ExecuteActivity(fabricActivity(ctx), deployActs.UpsertJob, in).Get(ctx, &out); err != nil {
				return fmt.Errorf("revert job %s on fabric %s to %s: %s", name, fab, prev.Version, userMessage(err))
			}
			prev.ID, prev.Action, prev.At = out.ID, "reverted", workflow.Now(ctx)
			done.Jobs = append(done.Jobs, prev)
			res.Reverted = append(res.Reverted, fmt.Sprintf("%s/%s → %s", fab, name, prev.Version))
			continue
		}
		var out activities.DeleteJobOutput
		if err := workflow.ExecuteActivity(fabricActivity(ctx), deployActs.DeleteJob, activities.DeleteJobInput{Project: r.in.Project, Fabric: fab, Job: name}).Get(ctx, &out); err != nil {
			return fmt.Errorf("remove job %s from fabric %s: %s", name, fab, userMessage(err))
		}
		done.Removed = append(done.Removed, name)
		res.Removed = append(res.Removed, fab+"/"+name)
	}
	done.Finished = workflow.Now(ctx)
	return signalInternal(ctx, FabricID(r.in.Project, fab), DoneSignal, &done).Get(ctx, nil)
}

// previousRecord finds the latest record of job from another version in a
// fabric's history of successful deployments.
func previousRecord(history []DeploymentDone, job, version string) (JobRecord, bool) {
	for i := len(history) - 1; i >= 0; i-- {
		h := history[i]
		if h.Outcome != StatusSucceeded {
			continue
		}
		for _, j := range h.Jobs {
			if j.Job == job && j.Version != version {
				return j, true
			}
		}
	}
	return JobRecord{}, false
}

// publishQuiet publishes and logs a failure instead of returning it.
func (r *release) publishQuiet(ctx workflow.Context) {
	if err := r.publish(ctx); err != nil {
		workflow.GetLogger(ctx).Error("publish state", "error", err)
	}
}
