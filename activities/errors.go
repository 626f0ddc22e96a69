// Package activities holds every side effect of Shipline's workflows, as methods
// on structs that own their clients (git, builds, fabrics, configuration).
package activities

// Stable type names of permanent (non-retryable) failures. Workflows and the CLI
// match on these; keep them stable.
const (
	ErrUnknownProject = "UnknownProject"
	ErrUnknownRef     = "UnknownRef"
	ErrTagConflict    = "TagConflict"
	ErrGitAuth        = "GitAuthFailed"
	ErrInvalidInput   = "InvalidInput"
)
