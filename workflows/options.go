package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/internal/apperr"
)

// shortActivity is for quick reads (configuration lookups).
func shortActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
		},
	})
}

// userMessage extracts the message a user should read from an activity or
// application error, without the SDK's wrapping ("activity error (type: ...)").
func userMessage(err error) string { return apperr.Message(err) }

// errorType returns the application error type, or "" for other errors.
func errorType(err error) string { return apperr.Type(err) }

// refusedBefore are the resolve failures a deployment refused before refusals
// were read from the failure's class; deployments that parked on another type
// then replay with this list (ChangeRefusalClasses).
var refusedBefore = []string{
	apperr.UnknownProject, apperr.UnknownRelease, apperr.InvalidManifest,
	apperr.SelectiveJobsDisabled, apperr.UnknownJob, apperr.FabricMismatch,
}

// isRefusal reports whether a failure is the request's own fault (class
// refused): resuming cannot fix it, so the workflow ends instead of parking.
func isRefusal(ctx workflow.Context, err error) bool {
	if changeVersion(ctx, ChangeRefusalClasses) == workflow.DefaultVersion {
		return slices.Contains(refusedBefore, errorType(err))
	}
	return apperr.Classify(err) == apperr.Refused
}

// heartbeatTimeout: long activities heartbeat every few seconds, so a worker
// that dies is noticed (and its activity retried elsewhere) within this.
const heartbeatTimeout = 20 * time.Second
