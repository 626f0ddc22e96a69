package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/access"
	"github.com/shipline/shipline/internal/apperr"
)

// Stage is the entity of one promotion stage of a project, ID StageID. It
// keeps, durably, what the stage verified and runs, and its hold:
//
//   - StageRecordUpdate (from Shipline's workflows only, sealed): a promotion
//     verified a release on the stage, or a rollback redeployed one and put
//     the stage on hold;
//   - ReleaseHoldUpdate (signed, audited): a member of the owner team of the
//     stage's fabrics clears the hold.
//
// Promotions read it (StateQuery) before deploying into the stage: while it
// holds, promotions of other releases wait, saying why; rollbacks read which
// releases the stage verified. It never completes; it continues as new when
// Temporal suggests it.
func Stage(ctx workflow.Context, in StageInput) error {
	s := &stageEntity{in: in}
	if in.carries() {
		if err := carriedStateAllowed(ctx); err != nil {
			return apperr.New(apperr.CarriedStateRefused, err.Error())
		}
	}
	if err := s.setup(ctx); err != nil {
		return err
	}
	if err := s.guard.load(ctx); err != nil {
		return err
	}
	if err := workflow.Await(ctx, func() bool { return workflow.GetInfo(ctx).GetContinueAsNewSuggested() }); err != nil {
		return err
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	carried := s.state
	return workflow.NewContinueAsNewError(ctx, Stage, StageInput{Project: in.Project, Stage: in.Stage, Carried: &carried, CarriedPolicy: s.guard.carry()})
}

type stageEntity struct {
	in    StageInput
	state StageLedger
	guard requestGuard
}

func (in StageInput) carries() bool { return in.Carried != nil || in.CarriedPolicy != nil }

func (s *stageEntity) setup(ctx workflow.Context) error {
	if s.in.Project == "" || s.in.Stage == "" {
		return apperr.New(apperr.InvalidInput, `a Stage entity needs its project and stage: start it with {"project":"demo","stage":"qa"}`)
	}
	if s.in.Carried != nil {
		s.state = *s.in.Carried
		s.guard.restore(s.in.CarriedPolicy, s.state.Requests)
	} else {
		s.state = StageLedger{Progress: Progress{Status: StatusRunning}, Project: s.in.Project, Stage: s.in.Stage}
	}
	s.summarize()
	if err := workflow.UpsertTypedSearchAttributes(ctx, ProjectKey.ValueSet(s.in.Project)); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (StageLedger, error) { return s.state, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandler(ctx, StageRecordUpdate, func(ctx workflow.Context, r StageRecord) (StageLedger, error) {
		if err := refuseInternal(ctx, s.in.Project, StageRecordUpdate, r.Actor, &r, &s.state.Nonces); err != nil {
			return s.state, err
		}
		s.record(r)
		return s.state, nil
	}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, ReleaseHoldUpdate, func(ctx workflow.Context, req ReleaseHoldRequest) (StageLedger, error) {
		rule := func() error { return s.mayClear(ctx, req) }
		if err := s.guard.admit(ctx, s.in.Project, ActionClearHold, req.Actor, SignedArgs(req), req.Auth, rule); err != nil {
			return s.state, refuseAttempt(ctx, s.in.Project, Refusal{Actor: req.Actor, Action: ActionClearHold, Stage: s.in.Stage}, req.Auth, err)
		}
		s.guard.remember(req.Auth)
		s.state.Requests = s.guard.Seen
		// The accepted update in this entity's history is the audit's record.
		s.state.Hold = nil
		s.summarize()
		return s.state, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req ReleaseHoldRequest) error {
		if !req.Clear {
			return errors.New("pass --clear to clear the stage's hold (a hold is set by a rollback)")
		}
		return s.guard.starting()
	}})
}

// mayClear: the stage holds, and the actor is in the owner team of every
// fabric of the stage (read from platform.yaml).
func (s *stageEntity) mayClear(ctx workflow.Context, req ReleaseHoldRequest) error {
	if s.state.Hold == nil {
		return fmt.Errorf("stage %s of %s does not hold; nothing to clear", s.in.Stage, s.in.Project)
	}
	st, err := stageSettings(ctx, s.in.Project, s.in.Stage)
	if err != nil {
		return err
	}
	return access.ClearHold(s.in.Stage, stageOwners(st), req.Actor)
}

// record applies a verification or a rollback.
func (s *stageEntity) record(r StageRecord) {
	rel := StageRelease{Version: r.Version, At: r.At, By: r.Actor, Via: r.Via}
	switch r.Kind {
	case StageRecordVerified:
		s.state.Verified = slices.DeleteFunc(s.state.Verified, func(v StageRelease) bool { return v.Version == r.Version })
		s.state.Verified = append(s.state.Verified, rel)
		s.state.Current = &rel
	case StageRecordRolledBack:
		// The release rolled back from is no longer one to go back to; the
		// one rolled back to is the latest the stage trusts.
		var from string
		if r.Hold != nil {
			from = r.Hold.From
		}
		i := slices.IndexFunc(s.state.Verified, func(v StageRelease) bool { return v.Version == r.Version })
		s.state.Verified = slices.DeleteFunc(s.state.Verified, func(v StageRelease) bool { return v.Version == from || v.Version == r.Version })
		if i >= 0 {
			s.state.Verified = append(s.state.Verified, rel)
		}
		s.state.Current = &rel
		s.state.Hold = r.Hold
	}
	s.summarize()
}

func (s *stageEntity) summarize() {
	msg := fmt.Sprintf("stage %s of %s", s.in.Stage, s.in.Project)
	if c := s.state.Current; c != nil {
		msg += " runs " + c.Version
	}
	if h := s.state.Hold; h != nil {
		msg += "; " + h.Held(s.in.Project, s.in.Stage)
	}
	s.state.Summary = msg
}

// stageSettings reads one stage of promotion.stages.
func stageSettings(ctx workflow.Context, project, stage string) (activities.StageSettings, error) {
	var settings activities.PromotionSettings
	if err := workflow.ExecuteActivity(shortActivity(ctx), configActs.Promotion, activities.ProjectInput{Project: project}).Get(ctx, &settings); err != nil {
		return activities.StageSettings{}, errors.New(userMessage(err))
	}
	for _, st := range settings.Stages {
		if st.Name == stage {
			return st, nil
		}
	}
	var names []string
	for _, st := range settings.Stages {
		names = append(names, st.Name)
	}
	return activities.StageSettings{}, fmt.Errorf("%q is not a stage; stages: %s", stage, strings.Join(names, ", "))
}

// readStage reads a stage's entity; a stage never verified nor rolled back has none yet.
func readStage(ctx workflow.Context, project, stage string) (StageLedger, error) {
	var q activities.QueryOutput
	in := activities.QueryInput{WorkflowID: StageID(project, stage), Query: StateQuery}
	if err := workflow.ExecuteActivity(shortActivity(ctx), messageActs.Query, in).Get(ctx, &q); err != nil {
		return StageLedger{}, err
	}
	var l StageLedger
	if q.Missing {
		return StageLedger{Project: project, Stage: stage}, nil
	}
	return l, json.Unmarshal(q.Result, &l)
}

// sendStageRecord records a verification or a rollback on the stage's entity,
// starting it when needed.
func sendStageRecord(ctx workflow.Context, project, stage string, r StageRecord) error {
	arg, err := json.Marshal(r)
	if err != nil {
		return err
	}
	input, err := json.Marshal(StageInput{Project: project, Stage: stage})
	if err != nil {
		return err
	}
	in := activities.UpdateWithStartInput{UpdateInput: activities.UpdateInput{WorkflowID: StageID(project, stage), Update: StageRecordUpdate, Arg: arg},
		WorkflowType: StageWorkflow, Input: input, TaskQueue: workflow.GetInfo(ctx).TaskQueueName}
	return workflow.ExecuteActivity(shortActivity(ctx), messageActs.UpdateWithStart, in).Get(ctx, nil)
}

// Held is the sentence a promotion waiting on a held stage says.
func (h StageHold) Held(project, stage string) string {
	how := "rollback"
	switch {
	case h.Automatic:
		how = "automatic rollback"
	case h.Emergency:
		how = "emergency rollback"
	}
	msg := fmt.Sprintf("%s held since %s after %s to %s by %s", stage, h.Since.UTC().Format("2006-01-02 15:04 MST"), how, h.Version, h.By)
	if h.Reason != "" {
		msg += ": " + h.Reason
	}
	return msg + fmt.Sprintf("; clear with `shipline release-hold --project %s --stage %s --clear`", project, stage)
}
