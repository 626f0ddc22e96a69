package workflows

import (
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

// gitActivity is for fetches and pushes: a remote that is down is retried with
// backoff for up to ten minutes before the step fails.
func gitActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    5 * time.Minute,
		ScheduleToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:       heartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}

// userMessage extracts the message a user should read from an activity or
// application error, without the SDK's wrapping ("activity error (type: ...)").
func userMessage(err error) string { return apperr.Message(err) }

// errorType returns the application error type, or "" for other errors.
func errorType(err error) string { return apperr.Type(err) }

// heartbeatTimeout: long activities heartbeat every few seconds, so a worker
// that dies is noticed (and its activity retried elsewhere) within this.
const heartbeatTimeout = 20 * time.Second
