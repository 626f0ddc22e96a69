// Package apperr is Shipline's failure vocabulary: every stable type name of a
// failure with its class (types.go), the one error type the working packages
// return and its translation for Temporal (error.go), and the reading of
// application errors the way users should see them (the message without the
// SDK's wrapping, and the type name) for workflows, activities and the CLI.
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

// Type returns the type name of an application error or an *Error, or "" for
// other errors.
func Type(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Type
	}
	return ""
}
