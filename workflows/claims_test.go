package workflows

import (
	"context"
	"encoding/json"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/activities"
)

// projectAudit plays a project's Audit entity for workflow tests: request
// claims are answered by the entity's own logic (audit.claim) at the test
// clock's time, and the refusals workflows record are kept.
type projectAudit struct {
	state audit
}

// installProjectAudit answers the claim and record activities of env (which
// registers activities.Messages).
func installProjectAudit(env *testsuite.TestWorkflowEnvironment) *projectAudit {
	p := &projectAudit{}
	env.OnActivity(messageActs.UpdateWithStart, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.UpdateWithStartInput) (activities.UpdateOutput, error) {
			var c RequestClaim
			if err := json.Unmarshal(in.Arg, &c); err != nil {
				return activities.UpdateOutput{}, err
			}
			raw, err := json.Marshal(p.state.claim(env.Now(), c))
			return activities.UpdateOutput{Result: raw}, err
		}).Maybe()
	env.OnActivity(messageActs.SignalWithStart, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignalWithStartInput) error {
			var r Refusal
			if err := json.Unmarshal(in.Arg, &r); err != nil {
				return err
			}
			p.state.record(env.Now(), r)
			return nil
		}).Maybe()
	return p
}

// refusals returns the refusals recorded, newest last.
func (p *projectAudit) refusals() []Refusal { return p.state.refusals }
