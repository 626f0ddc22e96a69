package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
)

// Approving the exact plan (ChangeGatePlan). A gated stage's plan is computed
// when its gate opens: for each of the stage's fabrics, the jobs the
// deployment creates, updates or leaves, the version each runs now and
// after, and the artifacts with their pinned checksums. It is computed the
// way `shipline plan` computes a deploy's (planBuilds, then PlanJobs inside
// the PlanStage activity), read-only, against the fabric entities' records
// and the live fabrics (drift). The `state` query shows it in the stage
// (StageState.Plan).
//
// An approval names the plan's hash (Vote.PlanHash, signed with the vote);
// an approval of another plan is refused. When the gate passes, the plan is
// computed again just before the deployment starts; if it differs (a job
// changed by hand, another deployment landed, a job appeared), the gate
// reopens: the votes given no longer count, the stage records why
// (StageState.Reopened: the differences, the votes dropped), the audit shows
// it, and approvers vote again on the new plan.

// StagePlan is a stage's plan and its hash (activities/stage_plan.go).
type StagePlan = activities.StagePlan

// GateReopen records a gate that reopened because its plan changed between
// the approvals and the deployment.
type GateReopen struct {
	At time.Time `json:"at"`
	// ApprovedHash is the hash of the plan the dropped votes approved ("" when
	// no plan could be computed then); Hash the new plan's ("" when it could
	// not be computed now).
	ApprovedHash string `json:"approved_hash"`
	Hash         string `json:"hash"`
	// Changes lists how the new plan differs from the approved one, one line each.
	Changes []string `json:"changes"`
	// Reason is the sentence the stage and the audit show.
	Reason string `json:"reason"`
	// Dropped are the votes that no longer count.
	Dropped []Vote `json:"dropped,omitempty"`
	// AtLock: the stage's deployment (DeploymentID) found the plan changed
	// once it held the stage's fabrics, and ended without writing
	// (deploy_plan.go); the next deployment has a new ID.
	AtLock       bool   `json:"at_lock,omitempty"`
	DeploymentID string `json:"deployment_id,omitempty"`
}

// StatusReopened is the memo status a promotion publishes when a gate
// reopens (`shipline audit` shows it as a row).
const StatusReopened Status = "reopened"

// errGateReopened makes Promote run the stage's steps again from its gate.
var errGateReopened = errors.New("the gate reopened")

// planGates asks, once per run before the stages are worked on, whether this
// run binds approvals to plans. Runs that began before it never do.
func (p *promotion) planGates(ctx workflow.Context) {
	if p.rollingBack() || p.reverifying() {
		return
	}
	p.plans = changeVersion(ctx, ChangeGatePlan) >= 1
}

// openPlan computes the plan of stage i before its gate opens (or when a
// gate carried open from an earlier run has none yet). Until the plan is
// there the gate is not open: votes are refused as for a pending stage.
func (p *promotion) openPlan(ctx workflow.Context, i int) {
	s := &p.state.Stages[i]
	if !p.plans || s.Plan != nil || s.PlanError != "" {
		return
	}
	s.Detail = "computing the plan of its gate"
	p.publish(ctx)
	plan, err := p.stagePlan(ctx, i)
	if temporal.IsCanceledError(err) {
		return // the gate's wait ends the promotion as cancelled
	}
	p.setPlan(ctx, s, plan, err)
	s.Detail = ""
}

// confirmPlan computes the plan of stage i again after its gate passed, just
// before the deployment. The same plan goes on; another one reopens the gate
// (errGateReopened). A plan that could not be computed at the gate nor now
// goes on: the deployment says what is wrong.
func (p *promotion) confirmPlan(ctx workflow.Context, i int) error {
	s := &p.state.Stages[i]
	if !p.plans || s.Team == "" {
		return nil
	}
	plan, err := p.stagePlan(ctx, i)
	switch {
	case temporal.IsCanceledError(err):
		return err
	case err == nil && s.Plan != nil && plan.Hash == s.Plan.Hash:
		return nil
	case err != nil && s.Plan == nil:
		return nil
	}
	return p.reopen(ctx, s, plan, err, GateReopen{})
}

// reopen reopens the gate of stage s because its plan is no longer the one
// approved: plan is the plan now (or err why it could not be computed).
// r carries what the caller knows of the cause (AtLock).
func (p *promotion) reopen(ctx workflow.Context, s *StageState, plan StagePlan, err error, r GateReopen) error {
	r.At, r.Dropped = workflow.Now(ctx), s.Approvals
	switch {
	case s.Plan == nil && s.PlanError != "":
		r.Hash = plan.Hash
		r.Changes = []string{"no plan could be computed when the gate opened (" + s.PlanError + ")"}
	case s.Plan == nil: // a gate that opened before gates showed plans
		r.Hash = plan.Hash
		r.Changes = []string{"the gate showed no plan when it was approved"}
	case err != nil:
		r.ApprovedHash = s.Plan.Hash
		r.Changes = []string{"the plan could not be computed again: " + userMessage(err)}
	default:
		r.ApprovedHash, r.Hash = s.Plan.Hash, plan.Hash
		r.Changes = activities.DiffStagePlans(*s.Plan, plan)
		if len(r.Changes) == 0 { // the same changes in another form: say so rather than nothing
			r.Changes = []string{"plan " + short12(s.Plan.Hash) + " became " + short12(plan.Hash)}
		}
	}
	if flap := flapping(s.Reopened, r, p.in.Project); flap != "" {
		r.Changes = append(r.Changes, flap)
	}
	when := "since it was approved"
	if r.AtLock {
		when = "while its deployment " + r.DeploymentID + " queued for the stage's fabrics, after it was approved"
	}
	r.Reason = fmt.Sprintf("the plan of %s changed %s by %s: %s; approve the new plan (review it with `shipline status %s`)",
		s.Name, when, orNobody(voters(s.Approvals)), strings.Join(r.Changes, "; "), workflow.GetInfo(ctx).WorkflowExecution.ID)
	s.Reopened = append(s.Reopened, r)
	p.setPlan(ctx, s, plan, err)
	// gate() opens it again: no votes, a new timeout.
	s.Approvals, s.OpenedAt, s.ExpiresAt = nil, time.Time{}, time.Time{}
	s.Detail = "reopened: the plan changed after it was approved; approve the new plan"
	if err := workflow.UpsertMemo(ctx, map[string]any{MemoStatus: StatusReopened, MemoReason: s.Name + ": " + r.Reason}); err != nil {
		workflow.GetLogger(ctx).Error("memo", "error", err)
	}
	return errGateReopened
}

// flapping says, when a gate reopens again, how many times it reopened and
// whether the new plan is one the gate showed before: a plan going back and
// forth reopens the gate after every approval until whoever changes the
// fabric stops; the gate says so rather than reopening silently each time.
func flapping(before []GateReopen, r GateReopen, project string) string {
	if len(before) == 0 {
		return ""
	}
	n := len(before) + 1
	if r.Hash != "" {
		for _, b := range before {
			if b.ApprovedHash == r.Hash || b.Hash == r.Hash {
				return fmt.Sprintf("the plan went back to plan %s, which this gate showed before (reopen %d of this gate): something changes the fabric back and forth; "+
					"find and stop it (`shipline deployments --project %s` shows drift), or the gate reopens after every approval", short12(r.Hash), n, project)
			}
		}
	}
	return fmt.Sprintf("reopen %d of this gate: the plan changed after each approval; find what changes the fabric (`shipline deployments --project %s` shows drift)", n, project)
}

// setPlan records a computed plan, or why it could not be computed.
func (p *promotion) setPlan(ctx workflow.Context, s *StageState, plan StagePlan, err error) {
	s.PlannedAt = workflow.Now(ctx)
	if err != nil {
		s.Plan, s.PlanError = nil, userMessage(err)
		return
	}
	s.Plan, s.PlanError = &plan, ""
}

// stagePlan computes the plan of stage i: the release's jobs resolved onto
// the stage's fabrics and the build cache asked (planBuilds, as `shipline
// plan`), what the fabric entities record, then the PlanStage activity.
func (p *promotion) stagePlan(ctx workflow.Context, i int) (StagePlan, error) {
	s := p.state.Stages[i]
	return computeStagePlan(ctx, PlanInput{Project: p.in.Project, Version: p.in.Version, Actor: p.in.Actor, Stage: s.Name, Fabrics: s.Fabrics}, p.state.Artifacts)
}

// computeStagePlan is the one way a stage's plan is computed: by a promotion
// at its gate and before its deployment, and by that deployment once it
// holds its fabrics (deploy_plan.go). pins are the artifacts' checksums the
// release shipped before.
func computeStagePlan(ctx workflow.Context, pin PlanInput, pins map[string]string) (StagePlan, error) {
	res, _, files, err := planBuilds(ctx, pin)
	if err != nil {
		return StagePlan{}, err
	}
	in := activities.PlanStageInput{Project: pin.Project, Version: pin.Version, Stage: pin.Stage, Commit: res.Commit, Jobs: res.Jobs, Files: files, Pins: pins}
	for _, f := range pin.Fabrics {
		fs, err := fabricEntityState(ctx, pin.Project, f)
		if err != nil {
			return StagePlan{}, err
		}
		for _, name := range sortedNames(fs.Jobs) {
			j := fs.Jobs[name]
			in.Recorded = append(in.Recorded, activities.DeployedJob{Project: pin.Project, Fabric: f, Job: j.Job, Scheduler: j.Scheduler,
				Version: j.Version, Commit: j.Commit, DeploymentID: j.DeploymentID, Artifacts: j.Artifacts})
		}
	}
	var plan StagePlan
	err = workflow.ExecuteActivity(fabricActivity(ctx), deployActs.PlanStage, in).Get(ctx, &plan)
	return plan, err
}

// fabricEntityState reads a Fabric entity's state (what it records as
// deployed); a fabric never deployed to has none yet: an empty state.
func fabricEntityState(ctx workflow.Context, project, fab string) (FabricState, error) {
	var q activities.QueryOutput
	qin := activities.QueryInput{WorkflowID: FabricID(project, fab), Query: StateQuery}
	if err := workflow.ExecuteActivity(shortActivity(ctx), messageActs.Query, qin).Get(ctx, &q); err != nil {
		return FabricState{}, fmt.Errorf("read fabric %s: %s", fab, userMessage(err))
	}
	var fs FabricState
	if q.Missing {
		return fs, nil
	}
	return fs, json.Unmarshal(q.Result, &fs)
}

// checkPlanVote binds an approval to the gate's plan: it must name the plan
// the gate shows now. A rejection needs no plan.
func (p *promotion) checkPlanVote(s StageState, v Vote, reject bool) error {
	id := PromoteID(p.in.Project, p.in.Version)
	switch {
	case reject:
		return nil
	case s.Plan == nil && s.PlanError == "" && p.plans:
		return fmt.Errorf("the plan of %s is being computed; review it in a moment with `shipline status %s`, then approve", s.Name, id)
	case s.Plan == nil:
		return nil // no plan could be computed: the approval binds to none (the deployment recomputes it)
	case v.PlanHash == "":
		return fmt.Errorf("the approval names no plan: the %s gate approves plan %s; review it with `shipline status %s` and approve with a shipline CLI that sends the plan's hash",
			s.Name, short12(s.Plan.Hash), id)
	case v.PlanHash != s.Plan.Hash && !gateShowed(s, v.PlanHash):
		return fmt.Errorf("the %s gate never showed plan %s: it shows plan %s; check the hash you copied (`shipline status %s` prints it) and approve again",
			s.Name, short12(v.PlanHash), short12(s.Plan.Hash), id)
	case v.PlanHash != s.Plan.Hash:
		msg := fmt.Sprintf("the plan changed since you looked: you approved plan %s, the %s gate now shows plan %s", short12(v.PlanHash), s.Name, short12(s.Plan.Hash))
		for _, r := range s.Reopened {
			if r.ApprovedHash == v.PlanHash {
				msg += " (" + strings.Join(r.Changes, "; ") + ")"
			}
		}
		return fmt.Errorf("%s; review with `shipline status %s` and approve again", msg, id)
	}
	return nil
}

// gateShowed says whether hash is a plan the gate showed before it reopened.
func gateShowed(s StageState, hash string) bool {
	for _, r := range s.Reopened {
		if r.ApprovedHash == hash || r.Hash == hash {
			return true
		}
	}
	return false
}

// reopenedPending adds to a gate's pending sentence that it reopened.
func reopenedPending(s StageState, now time.Time) string {
	if len(s.Reopened) == 0 || len(s.Approvals) >= s.Required {
		return ""
	}
	r := s.Reopened[len(s.Reopened)-1]
	return fmt.Sprintf("; reopened %s: the plan changed (%s)", fmtClock(r.At, now), strings.Join(r.Changes, "; "))
}

func orNobody(s string) string {
	if s == "" {
		return "nobody"
	}
	return s
}
