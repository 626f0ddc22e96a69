package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/access"
	"github.com/shipline/shipline/internal/apperr"
)

// SystemActor is who acts for Shipline itself (an automatic rollback).
const SystemActor = "shipline"

// holdPoll is how often a promotion waiting on a held stage reads it again
// (a cleared hold lets it go on within this time).
const holdPoll = 15 * time.Second

// Rollback redeploys one stage's previous verified release — or in.Version,
// which the stage must have verified before — with that release's pinned
// artifacts, through the promotion's own steps for that one stage:
//
//  1. pick: read the stage's entity (the releases it verified, what it runs);
//     refuse a version it never verified, naming those it did;
//  2. gate: the stage's approval rules; with Emergency, a member of the owner
//     team of the stage's fabrics skips the gate (recorded as such); an
//     automatic rollback (on_failure: rollback) is started by the promotion
//     whose verification failed, and deploys as that stage's deployer;
//  3. deploy the release's recorded artifacts to the stage's fabrics;
//  4. hold: the stage's entity records the rollback and holds the stage until
//     its owner team clears it (`shipline release-hold --clear`).
func Rollback(ctx workflow.Context, in PromoteInput) (PromoteState, error) {
	if in.Rollback == nil {
		in.Rollback = &RollbackRequest{}
	}
	return Promote(ctx, in)
}

// rollingBack tells whether this promotion is a rollback.
func (p *promotion) rollingBack() bool { return p.in.Rollback != nil }

// beginRollback checks who asks and picks the release to roll back to; it
// sets p.in.Version (and the state's) to it. It runs before the release is read.
func (p *promotion) beginRollback(ctx workflow.Context) error {
	rb := p.in.Rollback
	si := slices.IndexFunc(p.settings.Stages, func(s activities.StageSettings) bool { return s.Name == rb.Stage })
	if si < 0 {
		return p.end(ctx, StatusRefused, apperr.InvalidInput, fmt.Sprintf("--stage %q is not a stage; stages: %s", rb.Stage, strings.Join(p.stageNames(), ", ")))
	}
	st := p.settings.Stages[si]
	switch {
	case rb.Automatic:
		parent := workflow.GetInfo(ctx).ParentWorkflowExecution
		if parent == nil || !strings.HasPrefix(parent.ID, PromoteID(p.in.Project, "")) || p.in.Actor != SystemActor || rb.DeployAs == "" {
			return p.end(ctx, StatusRefused, apperr.AccessDenied, "an automatic rollback is started only by a promotion whose verification failed; ask for a rollback with `shipline rollback`")
		}
		if err := access.DeployAll(stageOwners(st), rb.DeployAs); err != nil {
			return p.end(ctx, StatusRefused, apperr.AccessDenied, err.Error())
		}
	case rb.Emergency:
		if err := access.EmergencyRollback(st.Name, stageOwners(st), p.in.Actor); err != nil {
			return p.end(ctx, StatusRefused, apperr.AccessDenied, err.Error())
		}
	}
	ledger, err := readStage(ctx, p.in.Project, st.Name)
	if err != nil {
		return p.end(ctx, StatusFailed, errorType(err), fmt.Sprintf("read stage %s: %s", st.Name, userMessage(err)))
	}
	if rb.From == "" && ledger.Current != nil {
		rb.From = ledger.Current.Version
	}
	var verified []string
	for _, v := range ledger.Verified {
		verified = append(verified, v.Version)
	}
	list := "none"
	if len(verified) > 0 {
		list = strings.Join(verified, ", ")
	}
	to := p.in.Version
	if to == "" {
		for i := len(ledger.Verified) - 1; i >= 0; i-- {
			if v := ledger.Verified[i].Version; v != rb.From {
				to = v
				break
			}
		}
		if to == "" {
			return p.end(ctx, StatusRefused, apperr.InvalidInput, fmt.Sprintf("stage %s of %s has no verified release to roll back to (it runs %s; verified: %s)",
				st.Name, p.in.Project, orNothingVerified(rb.From), list))
		}
	} else if !slices.Contains(verified, to) {
		return p.end(ctx, StatusRefused, apperr.InvalidInput, fmt.Sprintf("%s was never verified on stage %s of %s, so it cannot be rolled back to; verified there: %s",
			to, st.Name, p.in.Project, list))
	}
	p.in.Version, p.state.Version = to, to
	p.state.Target = st.Name
	p.state.Summary = fmt.Sprintf("rolling back %s of %s to %s (from %s) for %s", st.Name, p.in.Project, to, orNothingVerified(rb.From), p.in.Actor)
	return nil
}

// rollback runs the stage's gate (unless emergency or automatic), deploys the
// release and holds the stage.
func (p *promotion) rollback(ctx workflow.Context) (PromoteState, error) {
	rb := p.in.Rollback
	i := slices.IndexFunc(p.state.Stages, func(s StageState) bool { return s.Name == rb.Stage })
	p.current = i
	s := &p.state.Stages[i]
	s.Status, s.Detail = StagePending, ""
	if rb.Emergency || rb.Automatic {
		s.Team, s.Required = "", 0 // no gate: the owner check was made at the start
	} else if err := p.gate(ctx, i); err != nil {
		return p.state, err
	}
	p.notifyRollback(ctx, "started")
	if err := p.deploy(ctx, i); err != nil {
		return p.state, err
	}
	hold := &StageHold{Since: workflow.Now(ctx), Version: p.in.Version, From: rb.From, By: p.in.Actor, Reason: rb.Reason,
		Emergency: rb.Emergency, Automatic: rb.Automatic, RollbackID: workflow.GetInfo(ctx).WorkflowExecution.ID}
	rec := StageRecord{Kind: StageRecordRolledBack, Version: p.in.Version, Actor: p.in.Actor, At: hold.Since, Via: hold.RollbackID, Hold: hold}
	if err := sendStageRecord(ctx, p.in.Project, s.Name, rec); err != nil {
		return p.state, p.end(ctx, StatusFailed, errorType(err), fmt.Sprintf("rolled back %s to %s but could not hold the stage: %s", s.Name, p.in.Version, userMessage(err)))
	}
	s.Status = StageRolledBack
	how := "rolled back"
	switch {
	case rb.Automatic:
		how = "rolled back automatically"
	case rb.Emergency:
		how = "rolled back (emergency, no approval)"
	}
	s.Detail = fmt.Sprintf("%s to %s; the stage holds", how, p.in.Version)
	p.state.Status = StatusRolledBack
	p.state.Summary = fmt.Sprintf("%s %s of %s to %s (from %s) as %s, requested by %s", how, s.Name, p.in.Project, p.in.Version, orNothingVerified(rb.From), s.DeployedBy, p.in.Actor)
	if rb.Reason != "" {
		p.state.Summary += ": " + rb.Reason
	}
	p.state.Summary += "; " + hold.Held(p.in.Project, s.Name)
	p.publish(ctx)
	p.notifyRollback(ctx, "finished")
	return p.state, nil
}

// awaitHold waits while stage i holds for another release than this one,
// saying why; a rollback itself never waits.
func (p *promotion) awaitHold(ctx workflow.Context, i int) error {
	s := &p.state.Stages[i]
	for {
		ledger, err := readStage(ctx, p.in.Project, s.Name)
		if err != nil {
			return p.end(ctx, StatusFailed, errorType(err), fmt.Sprintf("read stage %s: %s", s.Name, userMessage(err)))
		}
		h := ledger.Hold
		if h == nil || h.Version == p.in.Version {
			if s.Status == StageHeld {
				s.Status, s.Detail, p.state.Status = StagePending, "hold cleared", StatusRunning
				p.publish(ctx)
			}
			return nil
		}
		if s.Status != StageHeld {
			s.Status, p.state.Status = StageHeld, StatusWaiting
		}
		s.Detail = h.Held(p.in.Project, s.Name)
		p.publish(ctx)
		if err := workflow.Sleep(ctx, holdPoll); err != nil {
			return err
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return p.continueAsNew(ctx)
		}
	}
}

// rollBackAfter starts the automatic rollback of stage i whose verification
// failed (msg) and waits for it; it returns what to add to the failure.
func (p *promotion) rollBackAfter(ctx workflow.Context, i int, msg string) string {
	s := &p.state.Stages[i]
	id := RollbackID(p.in.Project, s.Name, "auto-"+p.in.Version+"-"+workflow.GetInfo(ctx).WorkflowExecution.RunID[:8])
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: id, ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		StaticSummary: fmt.Sprintf("Roll back stage %s of %s after the failed verification of %s", s.Name, p.in.Project, p.in.Version),
	})
	in := PromoteInput{Project: p.in.Project, Actor: SystemActor, Rollback: &RollbackRequest{Stage: s.Name, Reason: msg, Automatic: true, DeployAs: s.DeployedBy, From: p.in.Version}}
	s.Detail = "verification failed; rolling back (" + id + ")"
	p.publish(ctx)
	var out PromoteState
	if err := workflow.ExecuteChildWorkflow(cctx, RollbackWorkflow, in).Get(ctx, &out); err != nil {
		s.Detail = "verification failed; the automatic rollback failed: " + userMessage(err)
		return "; the automatic rollback failed: " + userMessage(err)
	}
	s.Status, s.Detail = StageRolledBack, fmt.Sprintf("verification failed; rolled back to %s, the stage holds", out.Version)
	return fmt.Sprintf("; rolled back %s to %s automatically (%s), the stage holds", s.Name, out.Version, id)
}

func orNothingVerified(s string) string {
	if s == "" {
		return "nothing verified"
	}
	return s
}
