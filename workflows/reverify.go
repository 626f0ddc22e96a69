package workflows

import (
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/internal/access"
	"github.com/shipline/shipline/internal/apperr"
)

// Verify reruns one stage's verification of a release on demand (`shipline
// verify`): the actor must be in the owner team of the stage's fabrics (as
// for deploying there); the stage's verify jobs run as in a promotion, for
// the version the request names (a run is refused on a fabric where another
// version runs), and success records the stage verified on the release and
// the stage's entity. A failure ends it with the failing run's message and
// URL; it does not roll back.
func Verify(ctx workflow.Context, in PromoteInput) (PromoteState, error) {
	return Promote(ctx, in)
}

// reverifying tells whether this promotion only reruns a stage's verification.
func (p *promotion) reverifying() bool { return p.in.Reverify != "" && p.in.Rollback == nil }

// reverify checks who asks and runs the stage's verification.
func (p *promotion) reverify(ctx workflow.Context) (PromoteState, error) {
	i := slices.IndexFunc(p.state.Stages, func(s StageState) bool { return s.Name == p.in.Reverify })
	if i < 0 {
		return p.state, p.end(ctx, StatusRefused, apperr.InvalidInput, fmt.Sprintf("--stage %q is not a stage; stages: %s", p.in.Reverify, strings.Join(p.stageNames(), ", ")))
	}
	p.current = i
	st, s := p.settings.Stages[i], &p.state.Stages[i]
	if st.Verify == nil || len(st.Verify.Jobs) == 0 {
		return p.state, p.end(ctx, StatusRefused, apperr.InvalidInput, fmt.Sprintf("stage %s declares no verify jobs; add verify: {jobs: [<job>]} to it under promotion.stages in platform.yaml", st.Name))
	}
	if err := access.DeployAll(stageOwners(st), p.in.Actor); err != nil {
		s.Status, s.Detail = StageRefused, err.Error()
		return p.state, p.end(ctx, StatusRefused, apperr.AccessDenied, err.Error())
	}
	s.DeployedBy, s.DeployedAt = p.in.Actor, workflow.Now(ctx)
	if err := p.verify(ctx, i); err != nil {
		return p.state, err
	}
	p.state.Status = StatusSucceeded
	p.state.Summary = fmt.Sprintf("%s of %s verified on %s (%s)", p.in.Version, p.in.Project, s.Name, s.Detail)
	p.publish(ctx)
	return p.state, nil
}
