package workflows

import "time"

// newSteps lists steps in order, all pending.
func newSteps(names ...string) []Step {
	steps := make([]Step, len(names))
	for i, n := range names {
		steps[i] = Step{Name: n, Status: StepPending}
	}
	return steps
}

// setStep moves a step to a status, stamping start and finish times.
func setStep(steps []Step, name string, status StepStatus, detail string, now time.Time) {
	for i := range steps {
		if steps[i].Name != name {
			continue
		}
		s := &steps[i]
		if status == StepRunning || s.Started.IsZero() {
			s.Started = now
		}
		if status != StepRunning && status != StepPending {
			s.Finished = now
		}
		s.Status, s.Detail = status, detail
		return
	}
}

// short abbreviates a commit hash for messages.
func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}
