package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// Acceptance makes refusals synchronous: the CLI starts a Release, Deploy or
// Promote together with the AcceptUpdate (Temporal's update-with-start), and the
// update answers once the workflow has passed its authorize step — or refused
// there. A request that is refused (not an admin or owner, unknown project,
// unreleased version, unsigned where signatures are required) is thus reported
// to the caller at once, without --wait, and the workflow's own history keeps
// the refusal.

// registerAccept sets the AcceptUpdate handler. decide reads the workflow's
// state and says whether the start request has been decided; the handler waits
// for that, so it never writes anything itself.
func registerAccept(ctx workflow.Context, decide func() (Acceptance, bool)) error {
	return workflow.SetUpdateHandler(ctx, AcceptUpdate, func(ctx workflow.Context) (Acceptance, error) {
		var a Acceptance
		err := workflow.Await(ctx, func() bool {
			var ok bool
			a, ok = decide()
			return ok
		})
		return a, err
	})
}

// acceptance of a release: decided once the actor is known to be an admin (the
// authorize step is done), or when the release ended before that.
func (r *release) acceptance() (Acceptance, bool) {
	switch r.state.Status {
	case StatusRefused, StatusFailed:
		return Acceptance{Status: r.state.Status, Step: failedStep(r.state.Steps), Reason: r.state.Refusal}, true
	case StatusReleased, StatusDeleted:
		return Acceptance{Accepted: true, Status: r.state.Status}, true
	}
	if stepDone(r.state.Steps, StepAuthorize) {
		return Acceptance{Accepted: true, Status: r.state.Status}, true
	}
	return Acceptance{}, false
}

// acceptance of a deployment: decided once the actor may deploy to every target
// fabric (the authorize step is done), or when the deployment ended or parked
// before that (an unreleased version, an unknown project or job is refused).
func (d *deployment) acceptance() (Acceptance, bool) {
	if stepDone(d.state.Steps, StepAccess) {
		return Acceptance{Accepted: true, Status: d.state.Status}, true
	}
	switch d.state.Status {
	case StatusRefused, StatusFailed, StatusCancelled:
		return Acceptance{Status: d.state.Status, Step: failedStep(d.state.Steps), Reason: d.state.Reason}, true
	case StatusParked:
		a := Acceptance{Status: StatusParked, Reason: d.state.Summary}
		if d.state.Parked != nil {
			a.Step, a.Reason = d.state.Parked.Step, d.state.Parked.Reason
		}
		return a, true
	}
	return Acceptance{}, false
}

// acceptance of a promotion: decided once it has read the release and the
// stages (the promotion is under way), or when it was refused before that.
func (p *promotion) acceptance() (Acceptance, bool) {
	switch p.state.Status {
	case StatusRefused, StatusFailed:
		return Acceptance{Status: p.state.Status, Reason: p.state.Summary}, true
	}
	if len(p.state.Stages) > 0 {
		return Acceptance{Accepted: true, Status: p.state.Status}, true
	}
	return Acceptance{}, false
}

func stepDone(steps []Step, name string) bool {
	for _, s := range steps {
		if s.Name == name {
			return s.Status == StepDone || s.Status == StepSkipped
		}
	}
	return false
}

// failedStep names the first failed step, if any.
func failedStep(steps []Step) string {
	for _, s := range steps {
		if s.Status == StepFailed {
			return s.Name
		}
	}
	return ""
}

// String is the sentence the CLI prints for an acceptance.
func (a Acceptance) String() string {
	switch {
	case a.Accepted:
		return "accepted"
	case a.Step != "":
		return fmt.Sprintf("%s at %s: %s", a.Status, a.Step, a.Reason)
	default:
		return fmt.Sprintf("%s: %s", a.Status, a.Reason)
	}
}
