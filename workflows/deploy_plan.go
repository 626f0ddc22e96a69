package workflows

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/internal/apperr"
)

// The approved plan holds at the fabric lock (ChangePlanAtLock). A promotion
// confirms its stage's plan just before it starts the stage's deployment
// (confirmPlan), but the deployment then queues for the stage's fabrics
// behind other deployments; one of them may change what the plan would do
// (another release deployed directly to the fabric). So the promotion hands
// the approved plan's hash to its deployment (DeployInput.PlanHash), and the
// deployment, once it holds every fabric and before it builds, uploads or
// writes anything, computes the stage's plan again the same way
// (computeStagePlan). A different plan, or one that cannot be computed,
// releases the fabrics and ends the deployment with PlanChanged, carrying
// the new plan (PlanAtLock); the promotion reopens the gate with it, as
// confirmPlan does, and once the new plan is approved starts a new
// deployment with a new ID. A deployment that a fabric drops from its queue
// because a newer version landed there (superseded) computes the plan too:
// when it changed, it ends with PlanChanged as well, so the gate reopens
// and shows what deploying now would do, instead of the promotion ending.

// PlanAtLock is what a deployment found when it recomputed its stage's plan
// holding the fabrics: the plan now, or why it could not be computed.
type PlanAtLock struct {
	ApprovedHash string     `json:"approved_hash"`
	Plan         *StagePlan `json:"plan,omitempty"`
	Error        string     `json:"error,omitempty"`
}

// confirmPlanAtLock runs once the deployment holds its fabrics (first lock,
// or again after a resume, while nothing is written yet).
func (d *deployment) confirmPlanAtLock(ctx workflow.Context) error {
	if !d.checksPlan(ctx) {
		return nil
	}
	held := "holding " + strings.Join(d.state.Fabrics, ", ")
	setStep(d.state.Steps, StepLock, StepRunning, held+"; checking the approved plan "+short12(d.in.PlanHash), workflow.Now(ctx))
	pc, err := d.planNow(ctx)
	if err != nil {
		return err
	}
	if pc == nil {
		setStep(d.state.Steps, StepLock, StepDone, held+"; the approved plan "+short12(d.in.PlanHash)+" holds", workflow.Now(ctx))
		return nil
	}
	return d.planChanged(ctx, pc)
}

// supersededPlan runs when a fabric dropped the deployment from its queue
// because a newer version succeeded there or is queued behind it. When the
// newer version landed, the stage's plan is no longer the approved one: the
// deployment ends with PlanChanged (the gate reopens and shows it) rather
// than superseded. It returns nil when the plan still holds (the newer
// version is only queued) or the deployment checks no plan.
func (d *deployment) supersededPlan(ctx workflow.Context, s *Supersession) error {
	if !d.checksPlan(ctx) {
		return nil
	}
	pc, err := d.planNow(ctx)
	if err != nil || pc == nil {
		return err
	}
	d.state.Superseded = s
	return d.planChanged(ctx, pc)
}

// checksPlan: the deployment was handed an approved plan and has written
// nothing yet.
func (d *deployment) checksPlan(ctx workflow.Context) bool {
	return d.in.PlanHash != "" && d.in.Stage != "" && len(d.jobs) == 0 && changeVersion(ctx, ChangePlanAtLock) >= 1
}

// planNow computes the stage's plan again (computeStagePlan, as the
// promotion did): nil when it is the approved one, else what it is now. The
// error is only a cancellation.
func (d *deployment) planNow(ctx workflow.Context) (*PlanAtLock, error) {
	pin := PlanInput{Project: d.in.Project, Version: d.in.Version, Actor: d.in.Actor, Stage: d.in.Stage, Fabrics: d.in.Fabrics}
	plan, err := computeStagePlan(ctx, pin, d.in.Expect)
	switch {
	case temporal.IsCanceledError(err):
		return nil, err
	case err == nil && plan.Hash == d.in.PlanHash:
		return nil, nil
	case err != nil:
		return &PlanAtLock{ApprovedHash: d.in.PlanHash, Error: userMessage(err)}, nil
	}
	return &PlanAtLock{ApprovedHash: d.in.PlanHash, Plan: &plan}, nil
}

// planChanged ends the deployment with PlanChanged, releasing its fabrics.
func (d *deployment) planChanged(ctx workflow.Context, pc *PlanAtLock) error {
	msg, failure := planChangedFailure(d.in.Stage, pc)
	d.state.PlanChanged = pc
	setStep(d.state.Steps, StepLock, StepFailed, msg, workflow.Now(ctx))
	d.state.Summary = fmt.Sprintf("deploy of %s of %s %s: %s", d.in.Version, d.in.Project, Outcome(apperr.PlanChanged), msg)
	d.finish(ctx, Outcome(apperr.PlanChanged), msg)
	return &endError{failure}
}

// planChangedFailure is the failure a deployment ends with when the plan it
// found holding the fabrics is not the approved one: type PlanChanged, the
// PlanAtLock as its details (reopenAtLock reads them).
func planChangedFailure(stage string, pc *PlanAtLock) (string, error) {
	msg := fmt.Sprintf("the plan of stage %s is no longer the approved plan %s", stage, short12(pc.ApprovedHash))
	if pc.Plan == nil {
		msg += ": it could not be computed again (" + pc.Error + ")"
	} else {
		msg += fmt.Sprintf(": it is plan %s now (another deployment landed or a job changed while this one queued)", short12(pc.Plan.Hash))
	}
	msg += "; nothing was written, the stage's gate reopens with the new plan"
	return msg, temporal.NewNonRetryableApplicationError(msg, apperr.PlanChanged, nil, pc)
}

// approvedPlanHash is the plan hash a promotion hands to stage i's
// deployment: the plan its gate's approvals approved, for gated stages of
// promotions that bind approvals to plans.
func (p *promotion) approvedPlanHash(ctx workflow.Context, i int) string {
	s := p.state.Stages[i]
	if !p.plans || s.Team == "" || s.Plan == nil || changeVersion(ctx, ChangePlanAtLock) < 1 {
		return ""
	}
	return s.Plan.Hash
}

// reopenAtLock reopens stage i's gate after its deployment ended with
// PlanChanged, with the plan the deployment found.
func (p *promotion) reopenAtLock(ctx workflow.Context, i int, err error) error {
	s := &p.state.Stages[i]
	var pc PlanAtLock
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.HasDetails() || app.Details(&pc) != nil || (pc.Plan == nil && pc.Error == "") {
		pc = PlanAtLock{Error: userMessage(err)}
	}
	s.Parked = nil
	r := GateReopen{AtLock: true, DeploymentID: s.DeploymentID}
	if pc.Plan == nil {
		return p.reopen(ctx, s, StagePlan{}, errors.New(pc.Error), r)
	}
	return p.reopen(ctx, s, *pc.Plan, nil, r)
}

// redeploySuffix tells apart the deployments of a stage started after its
// deployment found the plan changed: each has its own ID.
func redeploySuffix(s StageState) string {
	n := 0
	for _, r := range s.Reopened {
		if r.AtLock {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("-%d", n+1)
}
