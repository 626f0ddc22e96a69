package workflows

import (
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/activities"
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
