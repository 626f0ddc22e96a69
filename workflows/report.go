package workflows

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
)

// failedBuildLog reads where a failed build's log is (and its tail) from the
// build activity's failure details, so `shipline logs` can show the log of the
// build that failed, not only of the ones that succeeded.
func failedBuildLog(err error) (path, tail string) {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.HasDetails() {
		return "", ""
	}
	var d activities.BuildFailureDetails
	if app.Details(&d) != nil {
		return "", ""
	}
	return d.LogPath, d.LogTail
}

// uploadDetail counts what an upload step did: sent is the artifacts sent,
// total the artifacts the fabrics needed (the others were there already).
func uploadDetail(sent, total int) string {
	switch {
	case sent >= total:
		return fmt.Sprintf("%d %s sent", sent, plural(sent, "artifact", "artifacts"))
	case sent == 0:
		return fmt.Sprintf("%d %s already there", total, plural(total, "artifact", "artifacts"))
	default:
		return fmt.Sprintf("%d %s sent, %d already there", sent, plural(sent, "artifact", "artifacts"), total-sent)
	}
}

// joinReasons joins the parts of a recorded reason that are not empty.
func joinReasons(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// needsNewRelease marks a step failure that `resume` cannot help.
type needsNewRelease struct{ error }

func (n *needsNewRelease) Unwrap() error { return n.error }

// buildFailure is the error of a build step whose pipelines failed; types are
// the failures' types, one per failed pipeline. When every one is of class
// Fails (tests, a build error, no artifact), only a new commit can help.
func buildFailure(failed, types []string) error {
	err := errors.New("build failed: " + strings.Join(failed, "; "))
	for _, t := range types {
		if apperr.ClassOf(t) != apperr.Fails {
			return err
		}
	}
	return &needsNewRelease{err}
}

// parkAdvice says what to do about a deployment parked by err when resume
// cannot help; "" when the usual advice (fix the cause, then resume) holds.
func parkAdvice(id string, err error) string {
	var n *needsNewRelease
	if errors.As(err, &n) {
		return fmt.Sprintf("`shipline resume` cannot help: it would build the same commit again; release a new version with the fix (`shipline cancel %s` ends this deployment)", id)
	}
	return ""
}
