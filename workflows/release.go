package workflows

import (
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/access"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/signing"
	"github.com/shipline/shipline/internal/version"
)

// Activity receivers: nil pointers whose methods name the activities (the worker
// registers real instances under the same method names).
var (
	gitActs    *activities.Git
	configActs *activities.Config
)

// Release releases one version of a project and then stays open as the record
// of that release:
//
//  1. authorize: the actor must be an admin of the project;
//  2. resolve ref: the ref is resolved to a commit on the project's remote;
//  3. validate manifest: shipline.yaml at that commit must be valid;
//  4. build and test: every pipeline is built and tested at the commit (into
//     the build cache the deploy reads); a failing test ends the release untagged;
//  5. tag and push: an annotated tag VERSION (tagger = actor) is pushed, idempotently;
//  6. deploy: due with auto_deploy, skipped with --no-deploy or auto_deploy: false.
//
// A refusal or permanent failure ends the workflow with a non-retryable error
// whose message is what the user reads; the `state` query still answers.
func Release(ctx workflow.Context, in ReleaseInput) (ReleaseState, error) {
	r := &release{in: in}
	if err := r.setup(ctx); err != nil {
		return r.state, err
	}
	return r.run(ctx)
}

// A release parks (StatusParked, Parked) when its remote stays unreachable for
// the project's git_retry window; `resume` runs the step again, `cancel` ends it.

type release struct {
	in        ReleaseInput
	state     ReleaseState
	settings  activities.ProjectSettings
	deleting  bool // a delete update is running
	deploying bool // the auto_deploy child runs
	guard     requestGuard
	ctl       control
	forged    error // why the input's carried state was refused
	// buildsFirst: the release builds and tests before it tags
	// (ChangeReleaseBuildsFirst); false when replaying an older release.
	buildsFirst bool
	// pipelines are the manifest's pipelines at the commit (step validate),
	// and its libraries as built at the release's version.
	pipelines []manifest.Pipeline
	// libraries are the manifest's libraries the release publishes
	// (ChangeReleaseLibraries; release_libraries.go).
	libraries []manifest.Library
}

// setup registers the state query first, so every later step is observable,
// and seeds the state (fresh, or carried over by continue-as-new).
func (r *release) setup(ctx workflow.Context) error {
	if r.in.carries() {
		if r.forged = carriedStateAllowed(ctx); r.forged != nil {
			r.in.Carried, r.in.CarriedPolicy = nil, nil // believe none of it
		}
	}
	if r.in.Carried != nil {
		r.state = *r.in.Carried
		r.guard.restore(r.in.CarriedPolicy, r.state.Requests)
	} else {
		steps := []string{StepAuthorize, StepResolve, StepValidate, StepTag, StepDeploy}
		// Releases started before builds ran first replay without the step.
		if r.buildsFirst = changeVersion(ctx, ChangeReleaseBuildsFirst) >= 1; r.buildsFirst {
			steps = []string{StepAuthorize, StepResolve, StepValidate, StepBuildTest, StepTag, StepDeploy}
		}
		r.state = ReleaseState{
			Progress: Progress{Status: StatusRunning, Steps: newSteps(steps...)},
			Project:  r.in.Project, Version: r.in.Version, Ref: r.in.Ref, Actor: r.in.Actor,
		}
		if r.state.Ref == "" {
			r.state.Ref = "main"
		}
		r.state.Summary = fmt.Sprintf("releasing %s of %s from %s for %s", r.in.Version, r.in.Project, r.state.Ref, r.in.Actor)
	}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (ReleaseState, error) { return r.state, nil }); err != nil {
		return err
	}
	if err := r.registerControlHandlers(ctx); err != nil {
		return err
	}
	if err := registerAccept(ctx, r.acceptance); err != nil {
		return err
	}
	return r.registerRecordHandlers(ctx)
}

// registerControlHandlers adds resume and cancel: the releaser or a project
// admin may resume a parked release, or cancel one that is parked or still
// working through its steps, signed where signatures are required.
func (r *release) registerControlHandlers(ctx workflow.Context) error {
	r.ctl.stopSteps = true
	return r.ctl.register(ctx, controlRules{
		guard:    &r.guard,
		project:  r.in.Project,
		version:  r.in.Version,
		remember: r.remember,
		state: func(cancel bool) error {
			if r.state.Status == StatusParked || (cancel && r.state.Status == StatusRunning) {
				return nil
			}
			if cancel {
				return fmt.Errorf("release %s of %s is %s: only a release that is still running or parked can be cancelled", r.in.Version, r.in.Project, r.state.Status)
			}
			return fmt.Errorf("release %s of %s is %s, not parked", r.in.Version, r.in.Project, r.state.Status)
		},
		may: func(actor, action string) error {
			return access.ControlRelease(action, r.in.Actor, r.state.Admins, actor)
		},
		answer: func(cancel bool) string {
			if cancel {
				return "cancelling release " + r.in.Version
			}
			return fmt.Sprintf("resuming release %s from %s", r.in.Version, r.state.Parked.Step)
		},
	})
}

// releaseHooks park a git step whose remote stayed unreachable for the whole
// git_retry window; `resume` runs it again, `cancel` ends the release.
func (r *release) releaseHooks() parkHooks {
	return parkHooks{
		classify: func(_ workflow.Context, err error) (string, bool, error) {
			var p *parkable
			if errors.As(err, &p) {
				return p.reason, true, nil
			}
			return "", false, err
		},
		parked: func(ctx workflow.Context, p Parked) {
			setStep(r.state.Steps, p.Step, StepFailed, p.Reason, p.Since)
			r.state.Status, r.state.Parked = StatusParked, &p
			hint := "when the remote is back"
			if p.Step == StepBuildTest {
				hint = "once the worker can build it"
			}
			r.state.Summary = parkedSummary(p, workflow.GetInfo(ctx).WorkflowExecution.ID, hint)
			r.publishQuiet(ctx)
		},
		resumed: func(ctx workflow.Context, step string) {
			r.state.Status, r.state.Parked = StatusRunning, nil
			r.state.Summary = fmt.Sprintf("resumed by %s at %s", r.ctl.by, step)
			r.publishQuiet(ctx)
		},
		cancelled: func(ctx workflow.Context, step string) error {
			r.state.Status, r.state.Parked = StatusCancelled, nil
			return r.end(ctx, step, apperr.Cancelled, r.ctl.cancelledBy())
		},
	}
}

// parkable marks a step failure that parks the release instead of ending it.
type parkable struct {
	step, reason string
}

func (p *parkable) Error() string { return p.reason }

// failOrPark ends the release on a permanent failure (bad credentials, a moved
// tag, an unknown ref); anything else — a remote that stayed unreachable for
// the whole retry window — parks it until `resume`.
func (r *release) failOrPark(ctx workflow.Context, step string, err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.NonRetryable() {
		return r.fail(ctx, step, err)
	}
	if temporal.IsCanceledError(err) {
		return err
	}
	return &parkable{step: step, reason: userMessage(err)}
}

func (r *release) run(ctx workflow.Context) (ReleaseState, error) {
	if r.forged != nil { // the refused run is the attempt's audit record
		return r.state, r.refuse(ctx, StepAuthorize, apperr.CarriedStateRefused, r.forged.Error())
	}
	if r.in.Carried == nil {
		if err := r.releaseOnce(ctx); err != nil {
			return r.state, err
		}
	} else if err := r.guard.load(ctx); err != nil {
		return r.state, err
	}
	return r.state, r.keepRecord(ctx)
}

// releaseOnce runs the steps of a new release.
func (r *release) releaseOnce(ctx workflow.Context) error {
	if err := r.checkInput(); err != nil {
		return r.refuse(ctx, StepAuthorize, apperr.InvalidInput, err.Error())
	}
	r.state.CreatedAt = workflow.Now(ctx)
	if err := r.publish(ctx); err != nil {
		return err
	}
	if err := r.guard.load(ctx); err != nil {
		return r.fail(ctx, StepAuthorize, err)
	}
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	if err := r.guard.check(ctx, id, ActionRelease, r.in.Actor, SignedArgs(r.in), r.in.Auth); err != nil {
		return r.refuse(ctx, StepAuthorize, apperr.SignatureRefused, err.Error())
	}
	if err := r.guard.claim(ctx, r.in.Project, id, ActionRelease, r.in.Actor, r.in.Auth); err != nil {
		if errors.Is(err, signing.ErrReplayed) {
			return r.refuse(ctx, StepAuthorize, apperr.SignatureRefused, err.Error())
		}
		return r.fail(ctx, StepAuthorize, err)
	}
	r.remember(r.in.Auth)
	if err := r.authorize(ctx); err != nil {
		return err
	}
	hooks := r.releaseHooks()
	type step struct {
		name string
		fn   func(workflow.Context) error
	}
	steps := []step{{StepResolve, r.resolve}, {StepValidate, r.validate}}
	if r.buildsFirst {
		steps = append(steps, step{StepBuildTest, r.buildAndTest}, step{StepPublishLibraries, r.publishLibraries})
	}
	for _, step := range append(steps, step{StepTag, r.tag}) {
		if err := r.ctl.attempt(ctx, step.name, step.fn, hooks); err != nil {
			return err
		}
	}
	r.planDeploy(ctx)
	r.state.Status = StatusReleased
	r.state.Summary = fmt.Sprintf("released %s of %s at %s by %s", r.state.Version, r.state.Project, short(r.state.Commit), r.state.Actor)
	if err := r.publish(ctx); err != nil {
		return err
	}
	if r.state.Deploy == DeployDue {
		r.deploy(ctx)
	}
	return nil
}

// deploy runs the release's deployment as a child workflow and records its
// outcome on the deploy step. A failed deploy does not undo the release: the tag
// stays, and `shipline deploy` (or resume of a parked deploy) deploys it.
func (r *release) deploy(ctx workflow.Context) {
	r.state.DeployID = DeployID(r.in.Project, r.in.Version, "release")
	r.begin(ctx, StepDeploy)
	setStep(r.state.Steps, StepDeploy, StepRunning, "deployment "+r.state.DeployID, workflow.Now(ctx))
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        r.state.DeployID,
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		StaticSummary:     fmt.Sprintf("Deploy %s of %s by %s (auto_deploy)", r.in.Version, r.in.Project, r.in.Actor),
	})
	var out DeployState
	r.deploying = true
	defer func() { r.deploying = false }()
	err := workflow.ExecuteChildWorkflow(cctx, DeployWorkflow, DeployInput{Project: r.in.Project, Version: r.in.Version, Actor: r.in.Actor, Trigger: "release"}).Get(ctx, &out)
	if err != nil {
		setStep(r.state.Steps, StepDeploy, StepFailed, fmt.Sprintf("deployment %s: %s", r.state.DeployID, userMessage(err)), workflow.Now(ctx))
		return
	}
	if out.Status == StatusSuperseded {
		setStep(r.state.Steps, StepDeploy, StepSkipped, fmt.Sprintf("deployment %s: %s", r.state.DeployID, out.Summary), workflow.Now(ctx))
		return
	}
	r.done(ctx, StepDeploy, fmt.Sprintf("deployment %s: %s", r.state.DeployID, out.Summary))
}

// checkInput refuses input the CLI would never send but the Temporal UI can.
func (r *release) checkInput() error {
	switch {
	case r.in.Project == "":
		return errors.New(`the input has no "project"; start a Release with {"project":"demo","version":"v1.0.0","actor":"alice"}`)
	case r.in.Actor == "":
		return errors.New(`the input has no "actor": name the user on whose behalf the release is made`)
	}
	if err := CheckTagMessage(r.in.Message); err != nil {
		return err
	}
	return versionCheck(r.in.Version)
}

// versionCheck is version.Check, for input that did not come through the CLI.
func versionCheck(v string) error { return version.Check(v) }

// authorize reads the project's settings and checks the actor is an admin.
func (r *release) authorize(ctx workflow.Context) error {
	r.begin(ctx, StepAuthorize)
	err := workflow.ExecuteActivity(shortActivity(ctx), configActs.Project, activities.ProjectInput{Project: r.in.Project}).Get(ctx, &r.settings)
	if err != nil {
		return r.fail(ctx, StepAuthorize, err)
	}
	if err := access.Release(r.in.Project, r.settings.Admins, r.in.Actor); err != nil {
		return r.refuse(ctx, StepAuthorize, apperr.AccessDenied, err.Error())
	}
	r.state.Admins = r.settings.Admins
	r.done(ctx, StepAuthorize, r.in.Actor+" is an admin of "+r.in.Project)
	return nil
}

// resolve turns the ref into a commit on the remote. Without an explicit ref,
// a tag VERSION already on the remote (pushed by hand) is the ref: releasing
// it adopts that tag, after the same checks as any release.
func (r *release) resolve(ctx workflow.Context) error {
	r.begin(ctx, StepResolve)
	in := activities.ResolveRefInput{Project: r.in.Project, Ref: r.state.Ref}
	if r.in.Ref == "" {
		in.Tag = r.in.Version
	}
	var out activities.ResolveRefOutput
	err := workflow.ExecuteActivity(gitRetryActivity(ctx, r.settings.GitRetry), gitActs.ResolveRef, in).Get(ctx, &out)
	if err != nil {
		return r.failOrPark(ctx, StepResolve, err)
	}
	r.state.Commit = out.Commit
	if out.FromTag {
		r.state.Ref, r.state.Adopted = r.in.Version, true
		r.done(ctx, StepResolve, fmt.Sprintf("tag %s is already on the remote at %s: adopting it", r.in.Version, short(out.Commit)))
		return nil
	}
	r.done(ctx, StepResolve, fmt.Sprintf("%s is %s", r.state.Ref, short(out.Commit)))
	return nil
}

// validate checks shipline.yaml and the files it names at the commit.
func (r *release) validate(ctx workflow.Context) error {
	r.begin(ctx, StepValidate)
	var out activities.ValidateManifestOutput
	err := workflow.ExecuteActivity(gitRetryActivity(ctx, r.settings.GitRetry), gitActs.ValidateManifest, activities.ValidateManifestInput{Project: r.in.Project, Commit: r.state.Commit}).Get(ctx, &out)
	if err != nil {
		return r.failOrPark(ctx, StepValidate, err)
	}
	if out.Diagnostics.HasErrors() {
		msg := fmt.Sprintf("shipline.yaml at %s (%s) is invalid; fix it, commit, and release again:\n%s", short(r.state.Commit), r.state.Ref, out.Diagnostics.Error())
		return r.refuse(ctx, StepValidate, apperr.InvalidManifest, msg)
	}
	r.pipelines = out.Pipelines
	if err := r.addLibraries(ctx, out.Libraries); err != nil {
		return err
	}
	r.done(ctx, StepValidate, "shipline.yaml is valid")
	return nil
}

// tag creates and pushes the annotated tag; the tag time is the workflow's, so
// a retried activity builds the identical tag object.
func (r *release) tag(ctx workflow.Context) error {
	r.begin(ctx, StepTag)
	msg := r.in.Message
	if msg == "" {
		msg = DefaultTagMessage(r.in.Project, r.in.Version)
	}
	r.state.Message = msg
	in := activities.CreateTagInput{
		Project: r.in.Project, Version: r.in.Version, Commit: r.state.Commit, Tagger: r.in.Actor, When: r.state.CreatedAt,
		Message: TagMessage(msg, r.in.Project, r.in.Version),
	}
	var out activities.CreateTagOutput
	if err := workflow.ExecuteActivity(gitRetryActivity(ctx, r.settings.GitRetry), gitActs.CreateTag, in).Get(ctx, &out); err != nil {
		return r.failOrPark(ctx, StepTag, err)
	}
	r.state.TagCreated = out.Created
	detail := fmt.Sprintf("pushed tag %s to %s", r.in.Version, r.settings.Remote)
	if !out.Created {
		detail = fmt.Sprintf("tag %s was already on %s at %s", r.in.Version, r.settings.Remote, short(r.state.Commit))
	}
	r.done(ctx, StepTag, detail)
	return nil
}

// planDeploy records whether a deploy follows the release.
func (r *release) planDeploy(ctx workflow.Context) {
	switch {
	case r.in.NoDeploy:
		r.state.Deploy = DeploySkipped
	case !r.settings.AutoDeploy:
		r.state.Deploy = DeployNotAutomatic
	default:
		r.state.Deploy = DeployDue
		return
	}
	r.skip(StepDeploy, string(r.state.Deploy))
}

// publish mirrors the state into search attributes, memo and the UI's details.
func (r *release) publish(ctx workflow.Context) error {
	err := workflow.UpsertTypedSearchAttributes(ctx,
		ProjectKey.ValueSet(r.in.Project), VersionKey.ValueSet(r.in.Version), ActorKey.ValueSet(r.in.Actor))
	if err != nil {
		return err
	}
	memo := map[string]any{MemoStatus: string(r.state.Status), MemoCreatedBy: r.in.Actor, MemoCreatedAt: r.state.CreatedAt,
		MemoLinked: r.state.Linked, MemoStages: r.state.Stages, MemoFabrics: sortedNames(r.state.Fabrics), MemoAdopted: r.state.Adopted}
	if r.state.Commit != "" {
		memo[MemoCommit] = r.state.Commit
	}
	if b := buildsOutcome(r.state.Builds, len(r.state.Builds)); b != "" {
		memo[MemoBuilds] = b
	}
	if libs := r.librariesMemo(); len(libs) > 0 {
		memo[MemoLibraries] = libs
	}
	if err := workflow.UpsertMemo(ctx, memo); err != nil {
		return err
	}
	workflow.SetCurrentDetails(ctx, r.state.Summary)
	return nil
}

// refuse ends the release because of the request itself (access, input, manifest).
func (r *release) refuse(ctx workflow.Context, step, errType, msg string) error {
	return r.end(ctx, step, errType, msg)
}

// fail ends the release because a step failed permanently (refused when the
// failure's class says the request itself is wrong).
func (r *release) fail(ctx workflow.Context, step string, err error) error {
	return r.end(ctx, step, errorType(err), userMessage(err))
}

// end ends the release with the status Outcome gives errType.
func (r *release) end(ctx workflow.Context, step, errType, msg string) error {
	r.state.Status = Outcome(errType)
	setStep(r.state.Steps, step, StepFailed, msg, workflow.Now(ctx))
	r.state.Refusal = msg
	r.state.Summary = fmt.Sprintf("release %s of %s %s: %s", r.in.Version, r.in.Project, r.state.Status, msg)
	workflow.GetLogger(ctx).Warn("release ended", "status", r.state.Status, "reason", msg)
	if err := r.publish(ctx); err != nil {
		workflow.GetLogger(ctx).Error("publish state", "error", err)
	}
	return temporal.NewNonRetryableApplicationError(msg, errType, nil)
}

func (r *release) begin(ctx workflow.Context, step string) {
	setStep(r.state.Steps, step, StepRunning, "", workflow.Now(ctx))
}

func (r *release) done(ctx workflow.Context, step, detail string) {
	setStep(r.state.Steps, step, StepDone, detail, workflow.Now(ctx))
}

func (r *release) skip(step, detail string) {
	setStep(r.state.Steps, step, StepSkipped, detail, r.state.CreatedAt)
}

// remember records an accepted signed request on the release's record.
func (r *release) remember(a *signing.Auth) {
	r.guard.remember(a)
	r.state.Requests = r.guard.Seen
}
