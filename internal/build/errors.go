package build

import (
	"errors"

	"github.com/shipline/shipline/internal/apperr"
)

// Sentinels of permanent build failure. Every permanent error of this package
// is an *apperr.Error matching exactly one of them with errors.Is (and, for a
// failed command, carrying FailureDetails). Any other error it returns (I/O, a
// cancelled context, a transient failure exporting the sources) is worth
// retrying.
var (
	// ErrTestsFailed: the pipeline's tests (pytest, the manifest's test command,
	// or the Java *Test classes) failed.
	ErrTestsFailed = apperr.Sentinel(apperr.TestsFailed)
	// ErrBuildFailed: the build tool or the manifest's build command failed.
	ErrBuildFailed = apperr.Sentinel(apperr.BuildFailed)
	// ErrArtifactNotFound: the build succeeded but produced no artifact where
	// expected (no wheel, or nothing matching the manifest's artifact glob).
	ErrArtifactNotFound = apperr.Sentinel(apperr.ArtifactNotFound)
	// ErrArtifactAmbiguous: more than one file could be the artifact.
	ErrArtifactAmbiguous = apperr.Sentinel(apperr.ArtifactAmbiguous)
	// ErrToolMissing: a tool the build needs is not installed on the worker.
	ErrToolMissing = apperr.Sentinel(apperr.BuildToolMissing)
	// ErrInvalid: the request cannot be built as given (unknown language, a scala
	// pipeline without a build command, a bad pipeline name).
	ErrInvalid = apperr.Sentinel(apperr.InvalidInput)
)

// FailureDetails travel with a failed build (the details of its application
// error): the pipeline and its log.
type FailureDetails struct {
	Pipeline string `json:"pipeline"`
	// LogPath is the full build log; LogTail its last lines (the failing
	// command's output when a command failed).
	LogPath string `json:"log_path,omitempty"`
	LogTail string `json:"log_tail,omitempty"`
}

// Details returns the FailureDetails an error carries, if any.
func Details(err error) (FailureDetails, bool) {
	var e *apperr.Error
	if !errors.As(err, &e) {
		return FailureDetails{}, false
	}
	for _, d := range e.Details {
		if fd, ok := d.(FailureDetails); ok {
			return fd, true
		}
	}
	return FailureDetails{}, false
}
