package workflows

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/access"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/signing"
)

var (
	deployActs *activities.Deploy
	buildActs  *activities.Build
)

// Deploy deploys one release to its fabrics:
//
//  1. resolve: the release's commit, its manifest, the selected jobs and their fabrics;
//  2. authorize: the actor must be in the owner team of every target fabric;
//  3. queue: take each fabric's lock in name order (deploys to one fabric never interleave);
//  4. build: each needed pipeline once, in parallel, from the build cache when unchanged;
//  5. check: render every job for every target fabric and check it offline (nothing written yet);
//  6. upload: the artifacts to each fabric at immutable paths, checksum-verified;
//  7. schedule: render and upsert every job (never a duplicate);
//  8. record: tell each fabric's entity what now runs there, and release the locks.
//
// A step that fails permanently parks the deployment with the reason; the
// `resume` update retries from that step (steps done are not redone) and
// `cancel` ends it. Refusals (access, invalid input) end it at once.
func Deploy(ctx workflow.Context, in DeployInput) (DeployState, error) {
	ctx = withVersionBaseline(ctx)
	d := &deployment{in: in, grants: map[string]Grant{}, jobs: map[string]JobRecord{}, uploads: map[string]map[string]string{}}
	if err := d.setup(ctx); err != nil {
		return d.state, err
	}
	state, err := d.run(ctx)
	var ended *endError
	if errors.As(err, &ended) {
		err = ended.err
	}
	return state, err
}

type deployment struct {
	in       DeployInput
	state    DeployState
	plan     activities.ResolveDeployOutput
	settings *activities.ProjectSettings  // the project's settings (git_retry), read once
	built    map[string]fabric.Artifact   // pipeline → artifact
	uploads  map[string]map[string]string // fabric → pipeline → path
	jobs     map[string]JobRecord         // job name → record (done)
	grants   map[string]Grant             // fabric → latest queue position
	granted  workflow.ReceiveChannel      // GrantSignal
	queued   []string                     // fabrics whose queue we joined (holding or waiting)
	parkedOn []string                     // fabrics released when we parked; resume joins them again
	queuedAt time.Time                    // when the deployment first joined a queue
	relock   bool                         // resumed after releasing its fabrics: queue again first
	ctl      control
	guard    requestGuard
	advice   string   // what to do about the current park, when resume cannot help
	nonces   []string // of the internal messages accepted
	notices  notices  // events sent to notification targets
	// v is ChangeParkReleasesFabric: DefaultVersion for deployments started
	// before parking released the fabrics.
	v workflow.Version
}

// setup seeds the state and registers the query and the two updates.
func (d *deployment) setup(ctx workflow.Context) error {
	info := workflow.GetInfo(ctx)
	d.state = DeployState{
		Progress: Progress{Status: StatusRunning, Steps: newSteps(StepResolveRelease, StepAccess, StepLock, StepBuild, StepCheck, StepUpload, StepSchedule, StepRecord),
			Summary: fmt.Sprintf("deploying %s of %s for %s", d.in.Version, d.in.Project, d.in.Actor)},
		DeploymentID: info.WorkflowExecution.ID, Project: d.in.Project, Version: d.in.Version, Actor: d.in.Actor,
		Builds: map[string]PipelineBuild{}, Started: workflow.Now(ctx),
	}
	d.granted = workflow.GetSignalChannel(ctx, GrantSignal)
	d.notices.sent = func(n Notice) { d.state.Notices = keepNotice(d.state.Notices, n) }
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (DeployState, error) { return d.state, nil }); err != nil {
		return err
	}
	if err := registerAccept(ctx, d.acceptance); err != nil {
		return err
	}
	return d.ctl.register(ctx, controlRules{
		guard:    &d.guard,
		project:  d.in.Project,
		version:  d.in.Version,
		remember: d.guard.remember,
		state: func(cancel bool) error {
			switch {
			case cancel && Ended(d.state.Status):
				return fmt.Errorf("%s already ended: %s", d.state.DeploymentID, d.state.Status)
			case cancel:
				return nil
			case d.state.Status != StatusParked:
				return fmt.Errorf("%s is %s, not parked: only a parked deployment can be resumed", d.state.DeploymentID, d.state.Status)
			case d.state.Superseded != nil:
				return fmt.Errorf("%s cannot be resumed: it is superseded — %s; resuming it would roll the fabric back. `shipline cancel %s` ends it; to deploy %s again on purpose, run `shipline deploy %s --project %s`",
					d.state.DeploymentID, d.state.Superseded.Reason, d.state.DeploymentID, d.in.Version, d.in.Version, d.in.Project)
			}
			return nil
		},
		may: d.mayControl,
		answer: func(cancel bool) string {
			if cancel {
				return fmt.Sprintf("cancelling %s", d.state.DeploymentID)
			}
			msg := fmt.Sprintf("resuming %s from step %s", d.state.DeploymentID, d.state.Parked.Step)
			if len(d.parkedOn) > 0 {
				msg += "; it queues again for " + strings.Join(d.parkedOn, ", ")
			}
			return msg
		},
	})
}

// mayControl: the deployer, or a member of the owner team of every target fabric.
func (d *deployment) mayControl(actor, action string) error {
	return access.ControlDeployment(d.state.DeploymentID, action, d.in.Actor, fabricOwners(d.plan.Fabrics), actor)
}

func (d *deployment) run(ctx workflow.Context) (DeployState, error) {
	d.v = changeVersion(ctx, ChangeParkReleasesFabric)
	d.ctl.stopSteps = d.v >= 1
	if err := d.checkInput(); err != nil {
		return d.state, d.refuse(ctx, StepResolveRelease, apperr.InvalidInput, err.Error())
	}
	d.publish(ctx)
	if err := d.checkSignature(ctx); err != nil {
		return d.state, err
	}
	steps := []struct {
		name string
		fn   func(workflow.Context) error
	}{
		{StepResolveRelease, d.resolve}, {StepAccess, d.authorize}, {StepLock, d.windowThenLock},
		{StepBuild, d.holding(d.build)}, {StepCheck, d.check}, {StepUpload, d.holding(d.upload)}, {StepSchedule, d.holding(d.schedule)},
	}
	hooks := d.parkHooks()
	for _, s := range steps {
		if err := d.ctl.attempt(ctx, s.name, s.fn, hooks); err != nil {
			// Cancelled through Temporal (not by the cancel update): still
			// release the fabrics and record it. Deployments of before did
			// not when they were parked.
			if temporal.IsCanceledError(err) && !Ended(d.state.Status) && (d.v >= 1 || d.state.Status != StatusParked) {
				d.finish(ctx, StatusCancelled, "cancelled through Temporal")
			}
			return d.state, err
		}
	}
	d.finish(ctx, StatusSucceeded, "")
	return d.state, nil
}

func (d *deployment) checkInput() error {
	switch {
	case d.in.Project == "":
		return errors.New(`the input has no "project"; start a Deploy with {"project":"demo","version":"v1.0.0","actor":"bob"}`)
	case d.in.Actor == "":
		return errors.New(`the input has no "actor": name the user on whose behalf the deploy is made`)
	}
	return versionCheck(d.in.Version)
}

// checkSignature verifies the request that started the deployment, unless the
// Release or Promote workflow of this release started it (they verified theirs).
func (d *deployment) checkSignature(ctx workflow.Context) error {
	if err := d.guard.load(ctx); err != nil {
		return err
	}
	if parent := workflow.GetInfo(ctx).ParentWorkflowExecution; parent != nil {
		if parent.ID == ReleaseID(d.in.Project, d.in.Version) || parent.ID == PromoteID(d.in.Project, d.in.Version) {
			return nil
		}
	}
	if err := d.guard.check(ctx, d.state.DeploymentID, ActionDeploy, d.in.Actor, SignedArgs(d.in), d.in.Auth); err != nil {
		return d.refuse(ctx, StepAccess, apperr.SignatureRefused, err.Error())
	}
	if err := d.guard.claim(ctx, d.in.Project, d.state.DeploymentID, ActionDeploy, d.in.Actor, d.in.Auth); err != nil {
		if errors.Is(err, signing.ErrReplayed) {
			return d.refuse(ctx, StepAccess, apperr.SignatureRefused, err.Error())
		}
		return err
	}
	d.guard.remember(d.in.Auth)
	return nil
}

// parkHooks: a step that fails permanently parks the deployment with the
// reason. Parking releases the fabric locks (nothing is in flight) and leaves
// on each fabric's record the jobs changed so far; resume queues again before
// the failed step runs again. Refusals and cancellation end the deployment.
func (d *deployment) parkHooks() parkHooks {
	return parkHooks{
		classify: func(ctx workflow.Context, err error) (string, bool, error) {
			var ended *endError
			if errors.As(err, &ended) {
				return "", false, err
			}
			if temporal.IsCanceledError(err) {
				return "", false, err
			}
			d.advice = parkAdvice(d.state.DeploymentID, err)
			return userMessage(err), true, nil
		},
		parked: func(ctx workflow.Context, p Parked) {
			setStep(d.state.Steps, p.Step, StepFailed, p.Reason, p.Since)
			hint := "fix the cause"
			if d.v >= 1 && len(d.queued) > 0 {
				// Release first, so a resume (allowed once the status says
				// parked) always finds the fabrics released.
				hint = fmt.Sprintf("%s released (jobs done so far stay); fix the cause", strings.Join(d.queued, ", "))
				d.releaseFabrics(ctx, p)
			}
			d.state.Status, d.state.Parked, d.state.Waiting = StatusParked, &p, nil
			d.state.Summary = parkedSummary(p, d.state.DeploymentID, hint)
			if d.advice != "" {
				d.state.Summary = fmt.Sprintf("parked at %s: %s — %s", p.Step, firstLineOf(p.Reason), d.advice)
			}
			d.publish(ctx)
			d.tellPromotion(ctx, &p)
			d.notifyParked(ctx, p)
		},
		resumed: func(ctx workflow.Context, step string) {
			d.state.Status, d.state.Parked = StatusRunning, nil
			d.state.Summary = fmt.Sprintf("resumed by %s at %s", d.ctl.by, step)
			d.publish(ctx)
			d.tellPromotion(ctx, nil)
		},
		cancelled: func(ctx workflow.Context, _ string) error { return d.cancelled(ctx) },
		inbox:     func() bool { return d.granted.Len() > 0 },
		read:      func(ctx workflow.Context) { d.readGrants(ctx) },
	}
}

// releaseFabrics tells each fabric the deployment parked: the fabric drops it
// from its queue (the next deployment goes on) and records the jobs it changed.
func (d *deployment) releaseFabrics(ctx workflow.Context, p Parked) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	for _, f := range d.queued {
		done := DeploymentDone{DeploymentID: d.state.DeploymentID, Version: d.in.Version, Actor: d.in.Actor, Outcome: StatusParked,
			Reason: p.Reason, Step: p.Step, Started: d.state.Started, Finished: p.Since, Jobs: d.jobsOn(f)}
		if err := signalInternal(ctx, FabricID(d.in.Project, f), DoneSignal, &done).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("could not release fabric", "fabric", f, "error", err)
		}
	}
	d.parkedOn = append(d.parkedOn, d.queued...)
	d.queued, d.grants, d.relock = nil, map[string]Grant{}, true
}

// holding runs a step that needs the fabric locks: after a resume that
// released them, the deployment queues again first.
func (d *deployment) holding(step func(workflow.Context) error) func(workflow.Context) error {
	return func(ctx workflow.Context) error {
		if d.relock {
			setStep(d.state.Steps, StepLock, StepRunning, "queueing again after resume", workflow.Now(ctx))
			if err := d.lock(ctx); err != nil {
				return err
			}
			d.relock = false
			if err := d.confirmPlanAtLock(ctx); err != nil {
				return err
			}
		}
		return step(ctx)
	}
}

// tellPromotion tells the Promote workflow that started this deployment that
// it parked (p) or goes on again (nil), so the promotion says so.
func (d *deployment) tellPromotion(ctx workflow.Context, p *Parked) {
	parent := workflow.GetInfo(ctx).ParentWorkflowExecution
	if d.v < 1 || parent == nil || d.in.Stage == "" || parent.ID != PromoteID(d.in.Project, d.in.Version) {
		return
	}
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	msg := StageDeployment{Stage: d.in.Stage, DeploymentID: d.state.DeploymentID, Parked: p}
	if err := signalInternal(ctx, parent.ID, StageParkedSignal, &msg).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("promotion not told of the parked deployment", "error", err)
	}
}

// resolve reads the release and selects jobs; request errors end the deployment.
func (d *deployment) resolve(ctx workflow.Context) error {
	window := time.Duration(0)
	if d.v >= 1 {
		if err := d.readSettings(ctx); err != nil {
			return err
		}
		window = d.settings.GitRetry
	}
	in := activities.ResolveDeployInput{Project: d.in.Project, Version: d.in.Version, Fabric: d.in.Fabric, Jobs: d.in.Jobs, Stage: d.in.Fabrics}
	err := workflow.ExecuteActivity(gitRetryActivity(ctx, window), deployActs.Resolve, in).Get(ctx, &d.plan)
	if err != nil {
		if isRefusal(ctx, err) {
			return d.refuse(ctx, StepResolveRelease, errorType(err), userMessage(err))
		}
		return err
	}
	if err := d.checkReleased(ctx); err != nil {
		return err
	}
	d.state.Commit = d.plan.Commit
	for _, f := range d.plan.Fabrics {
		d.state.Fabrics = append(d.state.Fabrics, f.Name)
	}
	for _, p := range d.plan.Pipelines {
		d.state.Builds[p.Name] = PipelineBuild{Pipeline: p.Name, Status: StepPending}
	}
	d.publish(ctx)
	setStep(d.state.Steps, StepResolveRelease, StepDone, fmt.Sprintf("%s is %s: %d jobs to %s, %d pipelines",
		d.in.Version, short(d.plan.Commit), len(d.plan.Jobs), strings.Join(d.state.Fabrics, ", "), len(d.plan.Pipelines)), workflow.Now(ctx))
	return nil
}

// readSettings reads the project's settings once: its git_retry bounds the
// git steps as it does a release's. An unregistered project is refused.
func (d *deployment) readSettings(ctx workflow.Context) error {
	if d.settings != nil {
		return nil
	}
	var ps activities.ProjectSettings
	if err := workflow.ExecuteActivity(shortActivity(ctx), configActs.Project, activities.ProjectInput{Project: d.in.Project}).Get(ctx, &ps); err != nil {
		if apperr.Classify(err) == apperr.Refused {
			return d.refuse(ctx, StepResolveRelease, errorType(err), userMessage(err))
		}
		return err
	}
	d.settings = &ps
	return nil
}

// authorize checks the actor against every target fabric's owner team.
func (d *deployment) authorize(ctx workflow.Context) error {
	if err := access.DeployAll(fabricOwners(d.plan.Fabrics), d.in.Actor); err != nil {
		return d.refuse(ctx, StepAccess, apperr.AccessDenied, err.Error())
	}
	if err := d.authorizeOverride(ctx); err != nil {
		return err
	}
	setStep(d.state.Steps, StepAccess, StepDone, d.in.Actor+" may deploy to "+strings.Join(d.state.Fabrics, ", "), workflow.Now(ctx))
	return nil
}

// lock joins each fabric's queue in name order and waits for its grant, so two
// deployments never deadlock and never interleave on a fabric. A fabric may
// answer that a newer version supersedes the deployment: it ends superseded.
func (d *deployment) lock(ctx workflow.Context) error {
	for _, f := range d.state.Fabrics {
		if err := d.join(ctx, f); err != nil {
			return err
		}
		for !d.grants[f].Granted {
			if s := d.supersession(); s != nil {
				return d.superseded(ctx, s)
			}
			d.state.Status = StatusQueued
			g := d.grants[f]
			if len(g.Ahead) > 0 {
				d.state.Waiting = &Waiting{Fabric: f, Holder: g.Ahead[0], Ahead: g.Ahead}
				d.state.Summary = fmt.Sprintf("queued for fabric %s behind %s", f, g.Ahead[0])
			}
			// One condition: a grant arrived, or a cancel request (which also
			// cancels ctx, for deployments that stop running steps).
			if err := workflow.Await(ctx, func() bool { return d.granted.Len() > 0 || d.ctl.cancel }); err != nil {
				return err
			}
			if d.ctl.cancel {
				return temporal.NewCanceledError("cancel requested")
			}
			d.readGrants(ctx)
		}
	}
	if s := d.supersession(); s != nil {
		return d.superseded(ctx, s)
	}
	d.state.Status, d.state.Waiting = StatusRunning, nil
	d.state.Summary = fmt.Sprintf("deploying %s of %s to %s", d.in.Version, d.in.Project, strings.Join(d.state.Fabrics, ", "))
	setStep(d.state.Steps, StepLock, StepDone, "holding "+strings.Join(d.state.Fabrics, ", "), workflow.Now(ctx))
	return nil
}

// readGrants reads the grants that arrived. While parked, a grant can only
// say that a newer version succeeded on a fabric: resume is then refused.
func (d *deployment) readGrants(ctx workflow.Context) {
	var g Grant
	for d.granted.ReceiveAsync(&g) {
		if refuseInternal(ctx, d.in.Project, GrantSignal, "", &g, &d.nonces) != nil {
			g = Grant{}
			continue
		}
		d.grants[g.Fabric] = g
		if g.Superseded != nil && d.state.Status == StatusParked && d.state.Superseded == nil {
			d.state.Superseded = g.Superseded
			d.state.Summary = fmt.Sprintf("parked at %s and superseded: %s — resume is refused; `shipline cancel %s` ends it",
				d.state.Parked.Step, g.Superseded.Reason, d.state.DeploymentID)
			d.publish(ctx)
		}
		g = Grant{}
	}
}

// supersession is the first fabric's answer that supersedes the deployment.
func (d *deployment) supersession() *Supersession {
	for _, f := range d.state.Fabrics {
		if s := d.grants[f].Superseded; s != nil {
			return s
		}
	}
	return nil
}

// superseded ends the deployment because a newer version supersedes it. The
// fabric that said so already dropped it from its queue and recorded it.
func (d *deployment) superseded(ctx workflow.Context, s *Supersession) error {
	for _, f := range sortedNames(d.grants) {
		if d.grants[f].Superseded != nil {
			d.queued = slices.DeleteFunc(d.queued, func(q string) bool { return q == f })
		}
	}
	if err := d.supersededPlan(ctx, s); err != nil {
		return err
	}
	d.state.Superseded = s
	setStep(d.state.Steps, StepLock, StepSkipped, "superseded: "+s.Reason, workflow.Now(ctx))
	d.state.Summary = fmt.Sprintf("superseded: %s; %s of %s was not deployed (a named outcome, not a failure)", s.Reason, d.in.Version, d.in.Project)
	d.finish(ctx, StatusSuperseded, s.Reason)
	return &endError{nil}
}

// join starts the fabric's entity if needed and asks for its lock. The
// messages go out on a disconnected context: a cancel of the deployment must
// never reach the fabric's entity.
func (d *deployment) join(ctx workflow.Context, fab string) error {
	if slices.Contains(d.queued, fab) {
		return nil
	}
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            FabricID(d.in.Project, fab),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(ProjectKey.ValueSet(d.in.Project), FabricKey.ValueSet([]string{fab})),
		StaticSummary:         fmt.Sprintf("Fabric %s of project %s: deploy queue and state", fab, d.in.Project),
	})
	if err := d.startFabric(cctx, fab); err != nil {
		return err
	}
	now := workflow.Now(ctx)
	if d.queuedAt.IsZero() {
		d.queuedAt = now
	}
	entry := QueueEntry{DeploymentID: d.state.DeploymentID, Version: d.in.Version, Actor: d.in.Actor, Since: now}
	if d.v >= 1 {
		entry.Queued = d.queuedAt
		for _, j := range d.plan.Jobs {
			if j.Fabric == fab {
				entry.Jobs = append(entry.Jobs, j.Name)
			}
		}
	}
	if err := signalInternal(ctx, FabricID(d.in.Project, fab), EnqueueSignal, &entry).Get(ctx, nil); err != nil {
		return err
	}
	d.queued = append(d.queued, fab)
	d.parkedOn = slices.DeleteFunc(d.parkedOn, func(p string) bool { return p == fab })
	return nil
}

// startFabric starts the fabric's entity unless it runs already (it does when
// the deployment joins again after a park: the entity recorded it parked).
func (d *deployment) startFabric(ctx workflow.Context, fab string) error {
	if slices.Contains(d.parkedOn, fab) {
		return nil
	}
	child := workflow.ExecuteChildWorkflow(ctx, FabricWorkflow, FabricInput{Project: d.in.Project, Fabric: fab})
	var started workflow.Execution
	if err := child.GetChildWorkflowExecution().Get(ctx, &started); err != nil {
		// The server says ChildWorkflowExecutionAlreadyStarted; the SDK's
		// test environment says WorkflowExecutionAlreadyStarted.
		var already *temporal.ChildWorkflowExecutionAlreadyStartedError
		var alreadyTest *serviceerror.WorkflowExecutionAlreadyStarted
		if !errors.As(err, &already) && !errors.As(err, &alreadyTest) {
			return err
		}
	}
	return nil
}

// build builds every needed pipeline in parallel; pipelines already built are
// kept across a resume. Failures are reported together.
func (d *deployment) build(ctx workflow.Context) error {
	if d.built == nil {
		d.built = map[string]fabric.Artifact{}
	}
	type pending struct {
		name string
		f    workflow.Future
	}
	var running []pending
	for _, p := range d.plan.Pipelines {
		if _, ok := d.built[p.Name]; ok {
			continue
		}
		d.setBuild(p.Name, func(b *PipelineBuild) { b.Status, b.Error, b.Failure = StepRunning, "", "" })
		f := workflow.ExecuteActivity(buildActivity(ctx), buildActs.Pipeline, activities.BuildInput{Project: d.in.Project, Commit: d.plan.Commit, Pipeline: p})
		running = append(running, pending{p.Name, f})
	}
	var failed, types []string
	cached := 0
	for _, r := range running {
		var out activities.BuildOutput
		if err := r.f.Get(ctx, &out); err != nil {
			if temporal.IsCanceledError(err) {
				return err
			}
			msg, typ := userMessage(err), errorType(err)
			logPath, logTail := failedBuildLog(err)
			d.setBuild(r.name, func(b *PipelineBuild) {
				b.Status, b.Error, b.Failure, b.LogPath, b.LogTail = StepFailed, msg, typ, logPath, logTail
			})
			failed, types = append(failed, fmt.Sprintf("%s: %s", r.name, msg)), append(types, typ)
			continue
		}
		if out.Cached {
			cached++
		}
		if want, ok := d.in.Expect[r.name]; ok && want != out.SHA256 {
			msg := fmt.Sprintf("pipeline %s built to %s (sha256 %s), but this release shipped sha256 %s before; a promotion deploys the same bytes, so it stops here — look for a non-reproducible build or a changed build cache",
				r.name, out.File, short12(out.SHA256), short12(want))
			return d.refuse(ctx, StepBuild, apperr.ArtifactMismatch, msg)
		}
		d.built[r.name] = fabric.Artifact{Pipeline: r.name, File: out.File, Object: out.Object, LocalPath: out.LocalPath, SHA256: out.SHA256, Size: out.Size}
		d.setBuild(r.name, func(b *PipelineBuild) {
			*b = PipelineBuild{Pipeline: r.name, Status: StepDone, Cached: out.Cached, File: out.File, SHA256: out.SHA256, Size: out.Size,
				Seconds: out.Seconds, LogPath: out.LogPath, LogTail: out.LogTail}
		})
	}
	if len(failed) > 0 {
		return buildFailure(failed, types)
	}
	setStep(d.state.Steps, StepBuild, StepDone, fmt.Sprintf("%d pipelines (%d from cache)", len(d.plan.Pipelines), cached+len(d.plan.Pipelines)-len(running)), workflow.Now(ctx))
	return nil
}

// upload sends the artifacts to every target fabric in parallel; an artifact
// gone from the build cache is rebuilt once and sent again (sendArtifacts).
func (d *deployment) upload(ctx workflow.Context) error {
	// The fabrics this pass uploads to: the others were done before a resume.
	var todo []string
	for _, f := range d.state.Fabrics {
		if _, ok := d.uploads[f]; !ok {
			todo = append(todo, f)
		}
	}
	sent, failed, err := d.sendArtifacts(ctx)
	if err != nil {
		return err
	}
	total := 0
	for _, f := range todo {
		total += len(d.uploads[f])
	}
	if len(failed) > 0 {
		return errors.New("upload failed: " + strings.Join(failed, "; "))
	}
	setStep(d.state.Steps, StepUpload, StepDone, uploadDetail(sent, total), workflow.Now(ctx))
	return nil
}

// schedule renders and upserts the jobs, one activity per fabric (in
// parallel); jobs done are kept across a resume.
func (d *deployment) schedule(ctx workflow.Context) error {
	// Deployments started before jobs were batched per fabric replay the
	// one-activity-per-job path.
	if changeVersion(ctx, ChangeBatchedJobs) == workflow.DefaultVersion {
		return d.schedulePerJob(ctx)
	}
	// Deployments started before active runs were known replace jobs under
	// them.
	if changeVersion(ctx, ChangeActiveRuns) >= 1 {
		if err := d.settleRuns(ctx); err != nil {
			return err
		}
	}
	futures := map[string]workflow.Future{}
	byKey := map[string]activities.ResolvedJob{}
	for _, f := range d.state.Fabrics {
		var todo []activities.ResolvedJob
		for _, j := range d.plan.Jobs {
			key := j.Fabric + "/" + j.Name
			if _, ok := d.jobs[key]; ok || j.Fabric != f {
				continue
			}
			byKey[key] = j
			todo = append(todo, j)
		}
		if len(todo) == 0 {
			continue
		}
		futures[f] = workflow.ExecuteActivity(fabricActivity(ctx), deployActs.UpsertJobs, activities.UpsertJobsInput{
			Project: d.in.Project, Version: d.in.Version, Commit: d.plan.Commit, DeploymentID: d.state.DeploymentID,
			Fabric: f, Jobs: todo, Artifacts: d.uploads[f],
		})
	}
	var failed []string
	for _, f := range sortedNames(futures) {
		var out activities.UpsertJobsOutput
		if err := futures[f].Get(ctx, &out); err != nil {
			if temporal.IsCanceledError(err) {
				return err
			}
			failed = append(failed, fmt.Sprintf("fabric %s: %s", f, userMessage(err)))
			continue
		}
		for _, name := range sortedNames(out.Failed) {
			failed = append(failed, fmt.Sprintf("%s on %s: %s", name, f, out.Failed[name]))
		}
		for _, name := range sortedNames(out.Results) {
			res, j := out.Results[name], byKey[f+"/"+name]
			d.jobs[f+"/"+name] = JobRecord{Fabric: f, Job: name, Scheduler: j.Scheduler, ID: res.ID, Action: res.Action,
				Version: d.in.Version, Commit: d.plan.Commit, DeploymentID: d.state.DeploymentID, Actor: d.in.Actor,
				At: workflow.Now(ctx), Artifacts: d.artifactPaths(j)}
		}
	}
	d.state.Jobs = d.jobList()
	if len(failed) > 0 {
		return errors.New("schedule failed: " + strings.Join(failed, "; "))
	}
	var actions []string
	for _, j := range d.state.Jobs {
		what := j.Job + " " + j.Action
		if len(d.state.Fabrics) > 1 {
			what = j.Fabric + "/" + what
		}
		actions = append(actions, what)
	}
	setStep(d.state.Steps, StepSchedule, StepDone, strings.Join(actions, ", "), workflow.Now(ctx))
	return nil
}

// schedulePerJob is the first version of schedule: one UpsertJob activity per job.
func (d *deployment) schedulePerJob(ctx workflow.Context) error {
	futures := map[string]workflow.Future{}
	byKey := map[string]activities.ResolvedJob{}
	for _, j := range d.plan.Jobs {
		key := j.Fabric + "/" + j.Name
		if _, ok := d.jobs[key]; ok {
			continue
		}
		byKey[key] = j
		futures[key] = workflow.ExecuteActivity(fabricActivity(ctx), deployActs.UpsertJob, activities.UpsertJobInput{
			Project: d.in.Project, Version: d.in.Version, Commit: d.plan.Commit, DeploymentID: d.state.DeploymentID,
			Job: j, Artifacts: d.artifactPaths(j),
		})
	}
	var failed []string
	for _, key := range sortedNames(futures) {
		var out activities.UpsertJobOutput
		if err := futures[key].Get(ctx, &out); err != nil {
			if temporal.IsCanceledError(err) {
				return err
			}
			failed = append(failed, fmt.Sprintf("%s: %s", key, userMessage(err)))
			continue
		}
		j := byKey[key]
		d.jobs[key] = JobRecord{Fabric: j.Fabric, Job: j.Name, Scheduler: j.Scheduler, ID: out.ID, Action: out.Action,
			Version: d.in.Version, Commit: d.plan.Commit, DeploymentID: d.state.DeploymentID, Actor: d.in.Actor,
			At: workflow.Now(ctx), Artifacts: d.artifactPaths(j)}
	}
	d.state.Jobs = d.jobList()
	if len(failed) > 0 {
		return errors.New("schedule failed: " + strings.Join(failed, "; "))
	}
	setStep(d.state.Steps, StepSchedule, StepDone, fmt.Sprintf("%d jobs", len(d.state.Jobs)), workflow.Now(ctx))
	return nil
}

// finish records the outcome on every fabric entity (releasing the locks) and
// on the deployment itself.
func (d *deployment) finish(ctx workflow.Context, outcome Status, reason string) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	now := workflow.Now(ctx)
	d.state.Reason, d.state.Finished, d.state.Waiting = reason, now, nil
	d.state.Jobs = d.jobList()
	if outcome == StatusSucceeded {
		setStep(d.state.Steps, StepRecord, StepDone, "recorded on "+strings.Join(d.queued, ", "), now)
		d.state.Summary = fmt.Sprintf("deployed %s of %s to %s (%d jobs)", d.in.Version, d.in.Project, strings.Join(d.state.Fabrics, ", "), len(d.state.Jobs))
		// The cancelled runs go in the outcome, and so in the audit.
		if c := cancelledRunsText(d.state.CancelledRuns); c != "" {
			d.state.Summary += "; " + c
		}
	}
	for _, f := range d.fabricsToTell() {
		done := DeploymentDone{DeploymentID: d.state.DeploymentID, Version: d.in.Version, Actor: d.in.Actor, Outcome: outcome,
			Reason: reason, Started: d.state.Started, Finished: now, Jobs: d.jobsOn(f)}
		if err := signalInternal(ctx, FabricID(d.in.Project, f), DoneSignal, &done).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("could not release fabric", "fabric", f, "error", err)
		}
	}
	if outcome == StatusSucceeded {
		d.tellRelease(ctx, now)
	}
	// The status moves last, so a query never sees an ended deployment whose
	// fabrics are not yet released.
	d.state.Status = outcome
	d.publish(ctx)
}

// fabricsToTell are the fabrics whose entity knows the deployment: the queues
// it joined and the fabrics it left parked, in name order.
func (d *deployment) fabricsToTell() []string {
	var out []string
	for _, f := range d.state.Fabrics {
		if slices.Contains(d.queued, f) || slices.Contains(d.parkedOn, f) {
			out = append(out, f)
		}
	}
	return out
}

// jobsOn lists the jobs the deployment changed on one fabric.
func (d *deployment) jobsOn(fab string) []JobRecord {
	var out []JobRecord
	for _, j := range d.jobList() {
		if j.Fabric == fab {
			out = append(out, j)
		}
	}
	return out
}

// tellRelease records the deployment on the release's entity (fabrics reached,
// artifact checksums). A release entity that is gone is not an error.
func (d *deployment) tellRelease(ctx workflow.Context, now time.Time) {
	dep := Deployed{DeploymentID: d.state.DeploymentID, Stage: d.in.Stage, Fabrics: d.state.Fabrics, Actor: d.in.Actor, At: now,
		Artifacts: map[string]string{}, Jobs: d.state.Jobs}
	for _, p := range sortedNames(d.built) {
		dep.Artifacts[p] = d.built[p].SHA256
	}
	err := signalInternal(ctx, ReleaseID(d.in.Project, d.in.Version), DeployedSignal, &dep).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("release entity not told of the deployment", "error", err)
	}
}

func short12(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// endError marks a deployment that ended (refused or cancelled): not parked.
type endError struct{ err error }

func (e *endError) Error() string { return e.err.Error() }
func (e *endError) Unwrap() error { return e.err }

// refuse ends the deployment without parking it: because of the request
// itself (refused), or because going on would be wrong (an artifact
// mismatch fails). Outcome(errType) is the status it ends with.
func (d *deployment) refuse(ctx workflow.Context, step, errType, msg string) error {
	setStep(d.state.Steps, step, StepFailed, msg, workflow.Now(ctx))
	outcome := Outcome(errType)
	d.state.Summary = fmt.Sprintf("deploy of %s of %s %s: %s", d.in.Version, d.in.Project, outcome, msg)
	d.finish(ctx, outcome, msg)
	return &endError{temporal.NewNonRetryableApplicationError(msg, errType, nil)}
}

// cancelled ends the deployment on a user's cancel request. The workflow
// completes (not fails): cancelling is a decision, recorded with who and why.
func (d *deployment) cancelled(ctx workflow.Context) error {
	reason := d.ctl.cancelledBy()
	d.state.Summary = reason
	d.finish(ctx, StatusCancelled, reason)
	return &endError{temporal.NewNonRetryableApplicationError(reason, apperr.Cancelled, nil)}
}

func (d *deployment) publish(ctx workflow.Context) {
	attrs := []temporal.SearchAttributeUpdate{ProjectKey.ValueSet(d.in.Project), VersionKey.ValueSet(d.in.Version), ActorKey.ValueSet(d.in.Actor)}
	if len(d.state.Fabrics) > 0 {
		attrs = append(attrs, FabricKey.ValueSet(d.state.Fabrics))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, attrs...); err != nil {
		workflow.GetLogger(ctx).Error("search attributes", "error", err)
	}
	memo := map[string]any{MemoStatus: string(d.state.Status), MemoReason: joinReasons(d.state.Reason, parkedReason(d.state.Parked))}
	if b := buildsOutcome(d.state.Builds, len(d.plan.Pipelines)); b != "" {
		memo[MemoBuilds] = b
	}
	if err := workflow.UpsertMemo(ctx, memo); err != nil {
		workflow.GetLogger(ctx).Error("memo", "error", err)
	}
	workflow.SetCurrentDetails(ctx, d.state.Summary)
}

func parkedReason(p *Parked) string {
	if p == nil {
		return ""
	}
	return "parked at " + p.Step + ": " + p.Reason
}

func (d *deployment) setBuild(p string, f func(*PipelineBuild)) {
	b := d.state.Builds[p]
	f(&b)
	d.state.Builds[p] = b
}

// pipelinesOn lists the pipelines whose artifacts a fabric needs.
func (d *deployment) pipelinesOn(fab string) []string {
	set := map[string]bool{}
	for _, j := range d.plan.Jobs {
		if j.Fabric == fab {
			for _, p := range j.Pipelines {
				set[p] = true
			}
		}
	}
	return sortedNames(set)
}

func (d *deployment) artifactPaths(j activities.ResolvedJob) map[string]string {
	paths := map[string]string{}
	for _, p := range j.Pipelines {
		paths[p] = d.uploads[j.Fabric][p]
	}
	return paths
}

func (d *deployment) jobList() []JobRecord {
	out := make([]JobRecord, 0, len(d.jobs))
	for _, name := range sortedNames(d.jobs) {
		out = append(out, d.jobs[name])
	}
	return out
}

func sortedNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func firstLineOf(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// buildActivity: builds heartbeat; a build may take long, and a test failure is permanent.
func buildActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5},
	})
}

// fabricActivity: fabric APIs are retried with backoff (429/503/resets) for up to 15 minutes.
// A cancelled deployment waits for a running fabric call to stop (it learns of
// the cancel at its next heartbeat, within seconds) before it releases the
// fabric, so the next deployment never overlaps it.
func fabricActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    10 * time.Minute,
		ScheduleToCloseTimeout: 15 * time.Minute,
		HeartbeatTimeout:       heartbeatTimeout,
		WaitForCancellation:    true,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
	})
}
