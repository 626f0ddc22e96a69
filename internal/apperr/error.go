package apperr

import (
	"errors"

	"go.temporal.io/sdk/temporal"
)

// Error is a failure with a stable type that a user can act on. The packages
// that do the work (internal/gitrepo, internal/build, internal/fabric) return
// it; activities hand it to Temporal with ForTemporal. Any other error those
// packages return is transient (network, I/O) and worth retrying.
type Error struct {
	// Type is one of the type names of this package.
	Type string
	// Msg says what went wrong, where, and what to do.
	Msg string
	// Cause is the underlying error (may be nil), for errors.Is and errors.As in
	// the worker. It never leaves the process: ForTemporal sends Msg only, as
	// a cause's text may hold what Msg leaves out (a token, a signed URL).
	Cause error
	// Details travel with the application error (e.g. a build's log).
	Details []any
}

// Error returns Msg, or the cause's text when there is no message.
func (e *Error) Error() string {
	if e.Msg == "" && e.Cause != nil {
		return e.Cause.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is matches another *Error of the same type, so a package can offer
// sentinels: errors.Is(err, gitrepo.ErrUnknownRef).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Type == e.Type
}

// Permanent reports whether retrying cannot help (see Transient).
func (e *Error) Permanent() bool { return !Transient(e.Type) }

// Class returns the class of the error's type.
func (e *Error) Class() Class { return ClassOf(e.Type) }

// Sentinel returns a value to match errors of a type with errors.Is.
func Sentinel(typ string) *Error { return &Error{Type: typ, Msg: typ} }

// ForTemporal returns err the way an activity should return it: an *Error in
// its chain becomes an application error of its type (non-retryable unless
// the type is transient) with err's full text and the *Error's details, not
// its cause. Application errors and other errors pass unchanged (Temporal
// retries the latter).
func ForTemporal(err error) error {
	var app *temporal.ApplicationError
	if err == nil || errors.As(err, &app) {
		return err
	}
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	return temporal.NewApplicationErrorWithOptions(err.Error(), e.Type, temporal.ApplicationErrorOptions{
		NonRetryable: e.Permanent(),
		Details:      e.Details,
	})
}

// New returns a non-retryable application error of a type: what activities and
// workflows end with when they decide a failure themselves.
func New(typ, msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, typ, nil)
}

// IsType reports whether err is, or wraps, a failure of the type: a Temporal
// application error or an *Error.
func IsType(err error, typ string) bool { return err != nil && Type(err) == typ }
