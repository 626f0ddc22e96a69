// Package activities holds every side effect of Shipline's workflows, as methods
// on structs that own their clients (git, builds, fabrics, configuration).
//
// Permanent failures are non-retryable application errors whose types are the
// names in internal/apperr. The packages doing the work (internal/gitrepo,
// internal/build, internal/fabric) return *apperr.Error values, which
// apperr.ForTemporal hands to Temporal; any other error is retried.
package activities
