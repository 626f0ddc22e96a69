//go:build !unix

package filelock

import "context"

// lockFile is a no-op where flock is unavailable: only the in-process lock
// protects the mirror, so do not share a state directory between workers there.
func lockFile(ctx context.Context, path string) (func(), error) { return func() {}, nil }
