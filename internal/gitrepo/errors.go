package gitrepo

import (
	"context"
	"errors"
	"strings"
)

// Kinds of permanent failure. Every *Error matches exactly one of them with
// errors.Is; any other error returned by this package is transient (network,
// remote down, local I/O) and worth retrying.
var (
	// ErrUnknownRef: the ref or commit does not exist on the remote.
	ErrUnknownRef = errors.New("unknown ref")
	// ErrAuth: the remote refused the credentials, or none are configured.
	ErrAuth = errors.New("git authentication failed")
	// ErrTagConflict: the release tag already exists on another commit.
	ErrTagConflict = errors.New("tag conflict")
	// ErrInvalid: the request itself is wrong (bad version, bad hash, no tagger).
	ErrInvalid = errors.New("invalid input")
)

// Error is a permanent failure with a message a user can act on. Its cause is
// already scrubbed of credentials and carries no wrapped original error.
type Error struct {
	Kind error
	// Msg says what went wrong, where, and what to do.
	Msg string
	// Cause is the underlying error, scrubbed of secrets (may be nil).
	Cause error
}

func (e *Error) Error() string { return e.Msg }

// Is matches the error's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the scrubbed cause.
func (e *Error) Unwrap() error { return e.Cause }

func newError(kind error, cause error, msg string) *Error {
	return &Error{Kind: kind, Msg: msg, Cause: cause}
}

// scrubbed is an opaque error whose text had secrets removed. It deliberately
// does not unwrap to the original, whose text may hold them, except for the
// context errors, which callers need to recognise.
type scrubbed struct {
	msg string
	ctx error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.ctx }

// scrub returns err with every non-empty secret replaced by "[redacted]".
func scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	out := &scrubbed{msg: msg}
	switch {
	case errors.Is(err, context.Canceled):
		out.ctx = context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		out.ctx = context.DeadlineExceeded
	}
	return out
}
