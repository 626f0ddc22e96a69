package workflows

import "github.com/shipline/shipline/internal/apperr"

// Outcome is how a Release, Deploy or Promote ends on a failure of type
// errType, from the type's class (internal/apperr): refused, cancelled,
// superseded, else failed (a failure that parks a deployment fails a workflow
// that cannot park). It is the one classification of endings: the workflows
// take the status they end with from it, and `history` and `audit` read ended
// runs through it, so the three never disagree. (Parked is not an ending: a
// parked workflow waits for resume or cancel, and says so in its memo.)
func Outcome(errType string) Status {
	if errType == apperr.Superseded {
		return StatusSuperseded
	}
	switch apperr.ClassOf(errType) {
	case apperr.Refused:
		return StatusRefused
	case apperr.Stopped:
		return StatusCancelled
	}
	return StatusFailed
}

// Ended reports whether s is a status a workflow ends with, as opposed to
// one it passes through or waits in (running, queued, parked, waiting, released).
func Ended(s Status) bool {
	switch s {
	case StatusSucceeded, StatusRefused, StatusFailed, StatusCancelled, StatusSuperseded,
		StatusPromoted, StatusRolledBack, StatusRejected, StatusExpired, StatusDeleted:
		return true
	}
	return false
}
