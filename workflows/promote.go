package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/access"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/signing"
)

// Promote walks one release through promotion.stages, in order, up to the
// target stage. For each stage:
//
//  1. gate: with an approval, wait for `required` approvals from the stage's
//     team (approve/reject updates; validators refuse outsiders, self-approval
//     when it is off, double votes and votes on a stage that is not waiting).
//     One reject ends the promotion; the timeout expires it (a new `promote`
//     reopens the gate). The gate shows the stage's plan; approvals name its
//     hash, and a plan that changed before the deployment reopens the gate
//     (promote_plan.go);
//  2. soak: wait until `soak` after the previous stage was verified;
//  3. link: past the first stage, the Release entity marks the release linked
//     (refused if it was deleted), so it can no longer be deleted;
//  4. deploy the same artifacts (checksums pinned) to the stage's fabrics, on
//     behalf of an approver in the fabrics' owner team (the requester for a
//     stage without approval);
//  5. verify: run the stage's verify jobs on its fabrics (child Run
//     workflows, all at once); the stage counts as reached, and the next gate
//     opens, only when all succeed. A failure or timeout ends the promotion.
//     A stage without verify counts its deployment as verified.
//
// Past the target stage (--to, else the last), stages with auto: true follow
// on their own once the stage before them is verified.
//
// The `pending` query says why it waits. It continues as new when Temporal
// suggests it while waiting at a gate, carrying its state.
func Promote(ctx workflow.Context, in PromoteInput) (PromoteState, error) {
	p := &promotion{in: in}
	if err := p.setup(ctx); err != nil {
		return p.state, err
	}
	state, err := p.run(ctx)
	var ended *endError
	if errors.As(err, &ended) {
		err = ended.err
	}
	return state, err
}

type promotion struct {
	in       PromoteInput
	state    PromoteState
	settings activities.PromotionSettings
	current  int // index of the stage being worked on
	guard    requestGuard
	forged   error // why the input's carried state was refused
	// first is set when the release reached the first stage before this
	// promotion (auto_deploy) and was not verified there: who deployed it.
	first *FabricReach
	// plans: gates show plans and approvals bind to them (promote_plan.go).
	plans   bool
	notices notices // events sent to notification targets
}

func (p *promotion) setup(ctx workflow.Context) error {
	if p.in.carries() {
		if p.forged = carriedStateAllowed(ctx); p.forged != nil {
			p.in.Carried, p.in.CarriedSettings, p.in.CarriedPolicy = nil, nil, nil // believe none of it
		}
	}
	if p.in.Carried != nil {
		p.state = *p.in.Carried
		p.guard.restore(p.in.CarriedPolicy, p.state.Requests)
		if p.in.CarriedSettings != nil {
			p.settings = *p.in.CarriedSettings
		}
	} else {
		p.state = PromoteState{Progress: Progress{Status: StatusRunning}, Project: p.in.Project, Version: p.in.Version, Actor: p.in.Actor, Target: p.in.To}
		p.state.Summary = fmt.Sprintf("promoting %s of %s for %s", p.in.Version, p.in.Project, p.in.Actor)
	}
	p.notices.sent = func(n Notice) { p.state.Notices = keepNotice(p.state.Notices, n) }
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (PromoteState, error) {
		s := p.state
		s.Pending = p.pending(workflow.Now(ctx))
		return s, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, PendingQuery, func() (string, error) { return p.pending(workflow.Now(ctx)), nil }); err != nil {
		return err
	}
	if err := registerAccept(ctx, p.acceptance); err != nil {
		return err
	}
	for _, name := range []string{ApproveUpdate, RejectUpdate} {
		reject := name == RejectUpdate
		action := map[bool]string{false: ActionApprove, true: ActionReject}[reject]
		err := workflow.SetUpdateHandlerWithOptions(ctx, name, func(ctx workflow.Context, v Vote) (StageState, error) {
			// Who is asking comes first (the signature and its request ID),
			// then what they may do. A refusal is the update's recorded
			// outcome, and is audited.
			if refusalsInHandlers(ctx) {
				if err := p.guard.admit(ctx, p.in.Project, action, v.Actor, SignedArgs(v), v.Auth, func() error { return p.checkVote(v, reject) }); err != nil {
					return StageState{}, refuseAttempt(ctx, p.in.Project, Refusal{Actor: v.Actor, Action: action, Version: p.in.Version, Stage: v.Stage}, v.Auth, err)
				}
			}
			p.guard.remember(v.Auth)
			p.state.Requests = p.guard.Seen
			v.Delegate = ""
			if v.Auth != nil && refusalsInHandlers(ctx) {
				v.Delegate = v.Auth.Delegate // verified by admit: the vote was signed by that delegate
			}
			v.Auth = nil
			return p.vote(ctx, v, reject), nil
		}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, v Vote) error {
			return p.guard.starting()
		}})
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *promotion) run(ctx workflow.Context) (PromoteState, error) {
	if p.forged != nil { // the refused run is the attempt's audit record
		return p.state, p.end(ctx, StatusRefused, apperr.CarriedStateRefused, p.forged.Error())
	}
	if err := p.guard.load(ctx); err != nil {
		return p.state, err
	}
	if p.in.Carried == nil {
		if err := p.begin(ctx); err != nil {
			return p.state, err
		}
	}
	if p.rollingBack() {
		return p.rollback(ctx)
	}
	if p.reverifying() {
		return p.reverify(ctx)
	}
	steps := []func(workflow.Context, int) error{p.gate, p.soak, p.window, p.confirmPlan, p.deploy}
	target := p.targetIndex()
	if p.verifyOn(ctx) {
		steps = []func(workflow.Context, int) error{p.gate, p.soak, p.awaitHold, p.window, p.confirmPlan, p.deploy, p.verify}
		target = p.autoTarget(target)
		if err := p.verifyFirst(ctx); err != nil {
			return p.state, err
		}
	}
	p.planGates(ctx)
	for i := p.firstOpen(); i <= target; i++ {
		p.current = i
		for k := 0; k < len(steps); k++ {
			err := steps[k](ctx, i)
			if errors.Is(err, errGateReopened) {
				k = -1 // the plan changed: the stage's steps again, from its gate
				continue
			}
			if err != nil {
				return p.state, err
			}
		}
	}
	p.state.Status = StatusPromoted
	p.state.Summary = fmt.Sprintf("promoted %s of %s to %s", p.in.Version, p.in.Project, p.state.Stages[target].Name)
	p.publish(ctx)
	p.notifyPromoted(ctx)
	return p.state, nil
}

// begin reads the stages and the release: which stages it reached already, who
// released it, and the checksums every stage must ship.
func (p *promotion) begin(ctx workflow.Context) error {
	if err := p.checkInput(); err != nil {
		return p.end(ctx, StatusRefused, apperr.InvalidInput, err.Error())
	}
	p.publish(ctx)
	action := ActionPromote
	switch {
	case p.rollingBack():
		action = ActionRollback
	case p.reverifying():
		action = ActionVerify
	}
	// An automatic rollback is Shipline's own: its parent promotion is checked in beginRollback.
	if !p.rollingBack() || !p.in.Rollback.Automatic {
		if err := p.guard.check(ctx, workflow.GetInfo(ctx).WorkflowExecution.ID, action, p.in.Actor, SignedArgs(p.in), p.in.Auth); err != nil {
			return p.end(ctx, StatusRefused, apperr.SignatureRefused, err.Error())
		}
		if err := p.guard.claim(ctx, p.in.Project, workflow.GetInfo(ctx).WorkflowExecution.ID, action, p.in.Actor, p.in.Auth); err != nil {
			if errors.Is(err, signing.ErrReplayed) {
				return p.end(ctx, StatusRefused, apperr.SignatureRefused, err.Error())
			}
			return err
		}
	}
	p.guard.remember(p.in.Auth)
	p.state.Requests = p.guard.Seen
	if err := workflow.ExecuteActivity(shortActivity(ctx), configActs.Promotion, activities.ProjectInput{Project: p.in.Project}).Get(ctx, &p.settings); err != nil {
		return p.end(ctx, StatusRefused, errorType(err), userMessage(err))
	}
	if p.rollingBack() {
		if err := p.beginRollback(ctx); err != nil {
			return err
		}
	}
	rel, err := p.release(ctx)
	if err != nil {
		return err
	}
	p.state.Releaser, p.state.Artifacts = rel.Actor, maps.Clone(rel.Artifacts)
	for _, st := range p.settings.Stages {
		s := StageState{Name: st.Name, Fabrics: st.Fabrics, Status: StagePending, Team: st.Team, Required: st.Required,
			SelfApproval: st.SelfApproval, Timeout: st.Timeout, Soak: st.Soak}
		if reached(rel, st) {
			s.Status, s.Detail = StageReached, "deployed before this promotion"
			s.DeployedAt = latestAt(rel, st.Fabrics)
			if len(p.state.Stages) == 0 && rel.Verified[st.Name].IsZero() {
				p.first = latestReach(rel, st.Fabrics)
			}
		}
		p.state.Stages = append(p.state.Stages, s)
	}
	if p.in.To != "" && !slices.ContainsFunc(p.settings.Stages, func(s activities.StageSettings) bool { return s.Name == p.in.To }) {
		return p.end(ctx, StatusRefused, apperr.InvalidInput, fmt.Sprintf("--to %q is not a stage; stages: %s", p.in.To, strings.Join(p.stageNames(), ", ")))
	}
	if p.state.Target == "" {
		p.state.Target = p.settings.Stages[len(p.settings.Stages)-1].Name
	}
	return p.checkOverride(ctx)
}

func (p *promotion) checkInput() error {
	switch {
	case p.in.Project == "":
		return errors.New(`the input has no "project"; start a Promote with {"project":"demo","version":"v1.2.0","actor":"alice"}`)
	case p.in.Actor == "":
		return errors.New(`the input has no "actor": name the user who requests the promotion`)
	case p.rollingBack() && p.in.Rollback.Stage == "":
		return errors.New(`the rollback names no stage: start a Rollback with {"project":"demo","actor":"alice","rollback":{"stage":"qa"}}`)
	case p.rollingBack() && p.in.Version == "":
		return nil // the stage's previous verified release
	}
	return versionCheck(p.in.Version)
}

// release reads the Release entity's state; a release that is not there (or was deleted) cannot be promoted.
func (p *promotion) release(ctx workflow.Context) (ReleaseState, error) {
	rel, missing, err := releaseRecord(ctx, p.in.Project, p.in.Version)
	if err != nil {
		return rel, err
	}
	if !missing && rel.Status == StatusReleased {
		return rel, nil
	}
	// A tag on the remote that no Release recorded was pushed by hand.
	if missing && changeVersion(ctx, ChangeReleaseRecordCheck) != workflow.DefaultVersion {
		var tag activities.ResolveRefOutput
		in := activities.ResolveRefInput{Project: p.in.Project, Ref: "refs/tags/" + p.in.Version}
		if workflow.ExecuteActivity(gitActivity(ctx), gitActs.ResolveRef, in).Get(ctx, &tag) == nil {
			return rel, p.end(ctx, StatusRefused, apperr.NotAdopted, notAdoptedMessage(p.in.Project, p.in.Version))
		}
	}
	why := "it was never released"
	if rel.Status != "" {
		why = "its release is " + string(rel.Status)
	}
	return rel, p.end(ctx, StatusRefused, apperr.NotReleased, fmt.Sprintf("%s of %s cannot be promoted: %s; release it first with `shipline release %s --project %s`",
		p.in.Version, p.in.Project, why, p.in.Version, p.in.Project))
}

// gate waits for the stage's approvals (if any), or ends the promotion on a
// rejection or when the approval times out.
func (p *promotion) gate(ctx workflow.Context, i int) error {
	s := &p.state.Stages[i]
	if s.Team == "" {
		return nil
	}
	p.openPlan(ctx, i) // before the gate opens: votes bind to the plan it shows
	now := workflow.Now(ctx)
	opened := s.OpenedAt.IsZero()
	if opened {
		s.Status, s.OpenedAt, s.Approvals, s.Rejection = StageApproval, now, nil, nil
		if s.Timeout > 0 {
			s.ExpiresAt = now.Add(s.Timeout)
		}
	}
	p.state.Status = StatusWaiting
	p.publish(ctx)
	defer p.gateNotices(ctx, i, opened)() // approval needed, reminders, escalation
	decided := func() bool { return len(s.Approvals) >= s.Required || s.Rejection != nil }
	for !decided() {
		cond := func() bool { return decided() || workflow.GetInfo(ctx).GetContinueAsNewSuggested() }
		if s.ExpiresAt.IsZero() {
			if err := workflow.Await(ctx, cond); err != nil {
				return err
			}
		} else if left := s.ExpiresAt.Sub(workflow.Now(ctx)); left <= 0 {
			break
		} else if ok, err := workflow.AwaitWithTimeout(ctx, left, cond); err != nil {
			return err
		} else if !ok {
			break
		}
		if !decided() && workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return p.continueAsNew(ctx)
		}
	}
	switch {
	case s.Rejection != nil:
		s.Status = StageRejected
		s.Detail = fmt.Sprintf("rejected by %s: %s", s.Rejection.Actor, s.Rejection.Comment)
		return p.end(ctx, StatusRejected, "", fmt.Sprintf("%s of %s was rejected at %s by %s: %s", p.in.Version, p.in.Project, s.Name, s.Rejection.Actor, s.Rejection.Comment))
	case len(s.Approvals) < s.Required:
		s.Status = StageExpired
		s.Detail = fmt.Sprintf("%d of %d approvals when it expired at %s", len(s.Approvals), s.Required, fmtTime(s.ExpiresAt))
		return p.end(ctx, StatusExpired, "", fmt.Sprintf("the %s gate of %s expired with %d of %d approvals; run `shipline promote %s --project %s` to reopen it",
			s.Name, p.in.Version, len(s.Approvals), s.Required, p.in.Version, p.in.Project))
	}
	s.Detail = "approved by " + voters(s.Approvals)
	return nil
}

// soak holds the stage until its soak time after the previous stage was
// verified (deployed, for promotions that began before verification).
func (p *promotion) soak(ctx workflow.Context, i int) error {
	s := &p.state.Stages[i]
	if s.Soak <= 0 || i == 0 || p.state.Stages[i-1].DeployedAt.IsZero() {
		return nil
	}
	from := p.state.Stages[i-1].DeployedAt
	if at := p.state.Stages[i-1].VerifiedAt; !at.IsZero() { // soak counts from verification
		from = at
	}
	s.SoakUntil = from.Add(s.Soak)
	if left := s.SoakUntil.Sub(workflow.Now(ctx)); left > 0 {
		s.Status, p.state.Status = StageSoaking, StatusWaiting
		p.publish(ctx)
		if err := workflow.Sleep(ctx, left); err != nil {
			return err
		}
	}
	return nil
}

// deploy links the release (past the first stage) and deploys the pinned
// artifacts to the stage's fabrics on behalf of an allowed approver.
func (p *promotion) deploy(ctx workflow.Context, i int) error {
	s := &p.state.Stages[i]
	deployer, err := p.deployer(i)
	if err != nil {
		s.Status, s.Detail = StageRefused, err.Error()
		return p.end(ctx, StatusRefused, apperr.NoDeployer, err.Error())
	}
	if i > 0 {
		arg, _ := json.Marshal(LinkRequest{Stage: s.Name, PromotionID: workflow.GetInfo(ctx).WorkflowExecution.ID, Actor: deployer})
		in := activities.UpdateInput{WorkflowID: ReleaseID(p.in.Project, p.in.Version), Update: LinkUpdate, Arg: arg}
		if err := workflow.ExecuteActivity(shortActivity(ctx), messageActs.Update, in).Get(ctx, nil); err != nil {
			s.Status, s.Detail = StageRefused, userMessage(err)
			return p.end(ctx, StatusRefused, apperr.NotReleased, "cannot promote: "+userMessage(err))
		}
	}
	s.Status, p.state.Status, s.DeployedBy = StageDeploying, StatusRunning, deployer
	trigger := "promote"
	if p.rollingBack() {
		trigger = "rollback"
	}
	s.DeploymentID = DeployID(p.in.Project, p.in.Version, trigger+"-"+s.Name+"-"+workflow.GetInfo(ctx).WorkflowExecution.RunID[:8]+redeploySuffix(*s))
	p.publish(ctx)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: s.DeploymentID, ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		StaticSummary: fmt.Sprintf("Deploy %s of %s to stage %s by %s (promotion)", p.in.Version, p.in.Project, s.Name, deployer),
	})
	var out DeployState
	in := DeployInput{Project: p.in.Project, Version: p.in.Version, Actor: deployer, Trigger: trigger, Stage: s.Name, Fabrics: s.Fabrics, Expect: p.state.Artifacts,
		PlanHash: p.approvedPlanHash(ctx, i)}
	child := workflow.ExecuteChildWorkflow(cctx, DeployWorkflow, in)
	p.followDeployment(ctx, s, child)
	if err := child.Get(ctx, &out); err != nil {
		if in.PlanHash != "" && errorType(err) == apperr.PlanChanged {
			return p.reopenAtLock(ctx, i, err)
		}
		s.Status, s.Detail, s.Parked = StageFailed, userMessage(err), nil
		return p.end(ctx, StatusFailed, errorType(err), fmt.Sprintf("deploying %s to %s failed: %s", p.in.Version, s.Name, userMessage(err)))
	}
	if out.Status == StatusSuperseded {
		s.Status, s.Detail, s.Parked = StageFailed, out.Summary, nil
		return p.end(ctx, StatusFailed, apperr.Superseded, fmt.Sprintf("deploying %s to %s did not happen: %s", p.in.Version, s.Name, out.Reason))
	}
	s.Status, s.DeployedAt, s.Detail = StageDeployed, workflow.Now(ctx), out.Summary
	if p.state.Artifacts == nil {
		p.state.Artifacts = map[string]string{}
		for _, name := range sortedNames(out.Builds) {
			p.state.Artifacts[name] = out.Builds[name].SHA256
		}
	}
	return nil
}

// followDeployment waits for the stage's deployment to end. The deployment
// tells the promotion when it parks and when it goes on after a resume; the
// stage and the promotion then say "parked", naming the deployment, the
// reason and the resume command.
func (p *promotion) followDeployment(ctx workflow.Context, s *StageState, child workflow.ChildWorkflowFuture) {
	news := workflow.GetSignalChannel(ctx, StageParkedSignal)
	for !child.IsReady() {
		if err := workflow.Await(ctx, func() bool { return child.IsReady() || news.Len() > 0 }); err != nil {
			return // cancelled: the child's result says how it ended
		}
		var msg StageDeployment
		for news.ReceiveAsync(&msg) {
			if refuseInternal(ctx, p.in.Project, StageParkedSignal, "", &msg, &p.state.Nonces) != nil {
				msg = StageDeployment{}
				continue
			}
			if msg.DeploymentID != s.DeploymentID {
				continue
			}
			if msg.Parked != nil {
				s.Status, s.Parked, p.state.Status = StageParked, msg.Parked, StatusParked
				s.Detail = fmt.Sprintf("deployment %s parked at %s: %s", s.DeploymentID, msg.Parked.Step, firstLineOf(msg.Parked.Reason))
				p.state.Summary = fmt.Sprintf("%s: deployment %s parked at %s: %s — fix the cause, then `shipline resume %s` (or `shipline cancel %s`)",
					s.Name, s.DeploymentID, msg.Parked.Step, firstLineOf(msg.Parked.Reason), s.DeploymentID, s.DeploymentID)
			} else {
				s.Status, s.Parked, s.Detail, p.state.Status = StageDeploying, nil, "resumed", StatusRunning
				p.state.Summary = fmt.Sprintf("promoting %s of %s: %s deploying again (%s)", p.in.Version, p.in.Project, s.Name, s.DeploymentID)
			}
			p.publish(ctx)
			msg = StageDeployment{}
		}
	}
}

// deployer is the first approver (or, without a gate, the requester) who is in
// the owner team of every fabric of the stage.
func (p *promotion) deployer(i int) (string, error) {
	s, st := p.state.Stages[i], p.settings.Stages[i]
	candidates := []string{p.in.Actor}
	if rb := p.in.Rollback; rb != nil && rb.Automatic {
		candidates = []string{rb.DeployAs}
	}
	if s.Team != "" {
		candidates = nil
		for _, v := range s.Approvals {
			candidates = append(candidates, v.Actor)
		}
	}
	for _, who := range candidates {
		if access.DeployAll(stageOwners(st), who) == nil {
			return who, nil
		}
	}
	var owners []string
	for _, f := range s.Fabrics {
		owners = append(owners, fmt.Sprintf("%s (fabric %s)", st.Owners[f].Owner, f))
	}
	return "", fmt.Errorf("nobody among %s may deploy to %s: the stage's fabrics are owned by %s; a member of that team must approve or request it",
		strings.Join(candidates, ", "), s.Name, strings.Join(owners, ", "))
}

// checkVote is the validator of approve and reject: it refuses at once, writing nothing.
func (p *promotion) checkVote(v Vote, reject bool) error {
	switch p.state.Status {
	case StatusPromoted, StatusRejected, StatusExpired, StatusRefused, StatusFailed:
		return fmt.Errorf("the promotion of %s of %s is over (%s)", p.in.Version, p.in.Project, p.state.Status)
	}
	if reject && strings.TrimSpace(v.Comment) == "" {
		return errors.New("a rejection needs a reason: pass --comment")
	}
	i := slices.IndexFunc(p.state.Stages, func(s StageState) bool { return s.Name == v.Stage })
	if i < 0 {
		return fmt.Errorf("%q is not a stage; stages: %s", v.Stage, strings.Join(p.stageNames(), ", "))
	}
	s := p.state.Stages[i]
	if s.Status == StageClosed && v.OverrideWindow != nil && !reject { // the gate was passed: only the window
		return p.checkWindowVote(i, v, reject)
	}
	if s.Status != StageApproval {
		return fmt.Errorf("stage %s is not waiting for approval (it is %s)", s.Name, s.Status)
	}
	if err := access.Vote(p.approval(i), p.in.Actor, p.state.Releaser, v.Actor); err != nil {
		return err
	}
	if slices.ContainsFunc(s.Approvals, func(a Vote) bool { return a.Actor == v.Actor }) {
		return fmt.Errorf("%s already approved %s", v.Actor, s.Name)
	}
	if err := p.checkWindowVote(i, v, reject); err != nil {
		return err
	}
	return p.checkPlanVote(s, v, reject)
}

// vote records an accepted vote and returns the gate's new state.
func (p *promotion) vote(ctx workflow.Context, v Vote, reject bool) StageState {
	v.At = workflow.Now(ctx)
	i := slices.IndexFunc(p.state.Stages, func(s StageState) bool { return s.Name == v.Stage })
	s := &p.state.Stages[i]
	if p.voteOverride(ctx, s, v) {
		p.publish(ctx)
		return *s
	}
	if reject {
		s.Rejection = &v
	} else {
		s.Approvals = append(s.Approvals, v)
	}
	p.publish(ctx)
	return *s
}

// pending explains why the promotion waits, e.g.
// "prod: 1 of 2 approvals from prod_support (carol approved 10:02); dave, erin may approve; expires 2026-11-25 10:00 UTC".
func (p *promotion) pending(now time.Time) string {
	if p.current >= len(p.state.Stages) {
		return ""
	}
	s := p.state.Stages[p.current]
	switch s.Status {
	case StageApproval:
		var done []string
		for _, a := range s.Approvals {
			done = append(done, fmt.Sprintf("%s approved %s", a.Actor, fmtClock(a.At, now)))
		}
		msg := fmt.Sprintf("%s: %d of %d approvals from %s", s.Name, len(s.Approvals), s.Required, s.Team)
		if len(done) > 0 {
			msg += " (" + strings.Join(done, ", ") + ")"
		}
		if may := p.mayApprove(p.current); len(may) > 0 {
			msg += "; " + strings.Join(may, ", ") + " may approve"
		} else {
			msg += "; nobody left who may approve"
		}
		if !s.ExpiresAt.IsZero() {
			msg += "; expires " + fmtTime(s.ExpiresAt)
		}
		return msg + reopenedPending(s, now)
	case StageSoaking:
		return fmt.Sprintf("%s: soak ends %s", s.Name, fmtClock(s.SoakUntil, now))
	case StageClosed:
		return windowPending(s)
	case StageDeploying:
		return fmt.Sprintf("%s: deploying as %s (%s)", s.Name, s.DeployedBy, s.DeploymentID)
	case StageVerifying:
		return verifyingPending(s, now)
	case StageHeld:
		return s.Detail
	case StageParked:
		reason := ""
		if s.Parked != nil {
			reason = fmt.Sprintf(" at %s: %s", s.Parked.Step, firstLineOf(s.Parked.Reason))
		}
		return fmt.Sprintf("%s: parked — deployment %s parked%s; fix the cause, then `shipline resume %s` (or `shipline cancel %s`)",
			s.Name, s.DeploymentID, reason, s.DeploymentID, s.DeploymentID)
	}
	return ""
}

// mayApprove lists the team members who may still approve a stage.
func (p *promotion) mayApprove(i int) []string {
	s := p.state.Stages[i]
	var out []string
	for _, m := range access.Voters(p.approval(i), p.in.Actor, p.state.Releaser) {
		if !slices.ContainsFunc(s.Approvals, func(a Vote) bool { return a.Actor == m }) {
			out = append(out, m)
		}
	}
	return out
}

// end finishes the promotion without reaching the target.
func (p *promotion) end(ctx workflow.Context, status Status, errType, msg string) error {
	if errType != "" {
		status = Outcome(errType) // one classification for the workflows, `history` and `audit`
	}
	p.state.Status, p.state.Summary = status, msg
	p.publish(ctx)
	p.notifyRollback(ctx, string(status))
	if errType == "" { // rejected or expired: a decision, not an error
		return &endError{nil}
	}
	return &endError{temporal.NewNonRetryableApplicationError(msg, errType, nil)}
}

// continueAsNew carries the state into a new run once the handlers are done.
func (p *promotion) continueAsNew(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	carried, settings := p.state, p.settings
	next := p.in
	next.Carried, next.CarriedSettings, next.CarriedPolicy = &carried, &settings, p.guard.carry()
	if p.rollingBack() {
		return workflow.NewContinueAsNewError(ctx, Rollback, next)
	}
	if p.reverifying() {
		return workflow.NewContinueAsNewError(ctx, Verify, next)
	}
	return workflow.NewContinueAsNewError(ctx, Promote, next)
}

func (p *promotion) publish(ctx workflow.Context) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, ProjectKey.ValueSet(p.in.Project), VersionKey.ValueSet(p.in.Version), ActorKey.ValueSet(p.in.Actor)); err != nil {
		workflow.GetLogger(ctx).Error("search attributes", "error", err)
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{MemoStatus: string(p.state.Status)}); err != nil {
		workflow.GetLogger(ctx).Error("memo", "error", err)
	}
	summary := p.state.Summary
	if pend := p.pending(workflow.Now(ctx)); pend != "" {
		summary = "waiting — " + pend
	}
	workflow.SetCurrentDetails(ctx, summary)
}

// targetIndex is the index of the --to stage (the last by default).
func (p *promotion) targetIndex() int {
	for i, s := range p.state.Stages {
		if s.Name == p.state.Target {
			return i
		}
	}
	return len(p.state.Stages) - 1
}

// firstOpen is the first stage not deployed yet.
func (p *promotion) firstOpen() int {
	for i, s := range p.state.Stages {
		if s.Status != StageReached && s.Status != StageDeployed && s.Status != StageVerified {
			return i
		}
	}
	return len(p.state.Stages)
}

// autoTarget extends the target through the stages after it that continue on
// their own (auto: true) once the stage before them is verified.
func (p *promotion) autoTarget(target int) int {
	for target+1 < len(p.settings.Stages) && p.settings.Stages[target+1].Auto && p.settings.Stages[target+1].Team == "" {
		target++
	}
	if target < len(p.state.Stages) {
		p.state.Target = p.state.Stages[target].Name
	}
	return target
}

func (p *promotion) stageNames() []string {
	var names []string
	for _, s := range p.settings.Stages {
		names = append(names, s.Name)
	}
	return names
}

// reached: the release was deployed to every fabric of the stage, or linked through it.
func reached(rel ReleaseState, st activities.StageSettings) bool {
	if slices.Contains(rel.Stages, st.Name) {
		return true
	}
	for _, f := range st.Fabrics {
		if _, ok := rel.Fabrics[f]; !ok {
			return false
		}
	}
	return len(st.Fabrics) > 0
}

// latestReach is the latest deployment of the release to one of the fabrics
// (who deployed it, when); a stage reached by a link has none.
func latestReach(rel ReleaseState, fabrics []string) *FabricReach {
	var last *FabricReach
	for _, f := range fabrics {
		if r, ok := rel.Fabrics[f]; ok && (last == nil || r.At.After(last.At)) {
			last = &r
		}
	}
	if last == nil {
		return &FabricReach{Actor: rel.Actor}
	}
	return last
}

func latestAt(rel ReleaseState, fabrics []string) time.Time {
	var at time.Time
	for _, f := range fabrics {
		if r, ok := rel.Fabrics[f]; ok && r.At.After(at) {
			at = r.At
		}
	}
	return at
}

func voters(vs []Vote) string {
	var names []string
	for _, v := range vs {
		names = append(names, v.Actor)
	}
	return strings.Join(names, ", ")
}

// fmtTime renders an absolute time for messages (UTC, minute precision).
func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") }

// fmtClock renders a time as HH:MM when it is on the same day as now, else with its date.
func fmtClock(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.Format(time.DateOnly) == now.Format(time.DateOnly) {
		return t.Format("15:04")
	}
	return fmtTime(t)
}
