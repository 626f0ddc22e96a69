// Package apperr reads Temporal application errors the way users should see
// them: the message without the SDK's wrapping, and the stable type name.
package apperr

import (
	"errors"

	"go.temporal.io/sdk/temporal"
)

// Message returns the message a user should read from an activity, workflow or
// update failure ("activity error (type: ...)" wrapping removed).
func Message(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "timed out: " + timeout.Error()
	}
	return err.Error()
}

// Type returns the application error's type name, or "" for other errors.
func Type(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	return ""
}
