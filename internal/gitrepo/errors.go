package gitrepo

import (
	"context"
	"errors"
	"strings"

	"github.com/shipline/shipline/internal/apperr"
)

// Sentinels of permanent failure. Every permanent error of this package is an
// *apperr.Error matching exactly one of them with errors.Is; any other error
// it returns is transient (network, remote down, local I/O) and worth retrying.
var (
	// ErrUnknownRef: the ref or commit does not exist on the remote.
	ErrUnknownRef = apperr.Sentinel(apperr.UnknownRef)
	// ErrAuth: the remote refused the credentials, or none are configured.
	ErrAuth = apperr.Sentinel(apperr.GitAuthFailed)
	// ErrTagConflict: the release tag already exists on another commit.
	ErrTagConflict = apperr.Sentinel(apperr.TagConflict)
	// ErrInvalid: the request itself is wrong (bad version, bad hash, no tagger).
	ErrInvalid = apperr.Sentinel(apperr.InvalidInput)
)

// newError returns a permanent failure of kind's type with a message a user
// can act on; cause is already scrubbed of credentials (may be nil).
func newError(kind *apperr.Error, cause error, msg string) *apperr.Error {
	return &apperr.Error{Type: kind.Type, Msg: msg, Cause: cause}
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
