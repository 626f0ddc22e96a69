package build

import "errors"

// Kinds of permanent build failure. Every *Error matches exactly one of them
// with errors.Is. Any other error returned by this package (I/O, a cancelled
// context, a transient failure exporting the sources) is worth retrying.
var (
	// ErrTestsFailed: the pipeline's tests (pytest, the manifest's test command,
	// or the Java *Test classes) failed.
	ErrTestsFailed = errors.New("tests failed")
	// ErrBuildFailed: the build tool or the manifest's build command failed.
	ErrBuildFailed = errors.New("build failed")
	// ErrArtifactNotFound: the build succeeded but produced no artifact where
	// expected (no wheel, or nothing matching the manifest's artifact glob).
	ErrArtifactNotFound = errors.New("artifact not found")
	// ErrArtifactAmbiguous: more than one file could be the artifact.
	ErrArtifactAmbiguous = errors.New("artifact ambiguous")
	// ErrToolMissing: a tool the build needs is not installed on the worker.
	ErrToolMissing = errors.New("build tool missing")
	// ErrInvalid: the request cannot be built as given (unknown language, a scala
	// pipeline without a build command, a bad pipeline name).
	ErrInvalid = errors.New("invalid build request")
)

// Error is a permanent build failure with a message a user can act on.
type Error struct {
	Kind error
	// Msg says what failed, for which pipeline, what to do, and where the log is.
	Msg string
	// LogPath is the full build log; LogTail its last lines (the failing
	// command's output when a command failed).
	LogPath string
	LogTail string
}

func (e *Error) Error() string { return e.Msg }

// Is matches the error's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }
