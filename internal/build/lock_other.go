//go:build !unix

package build

import (
	"context"
	"os/exec"
)

// lockFile is a no-op where flock is unavailable: only the in-process lock
// serialises builds of one key; across processes the rename into the cache
// decides which of two identical builds is kept.
func lockFile(ctx context.Context, path string) (func(), error) { return func() {}, nil }

// setProcessGroup: without process groups, cancellation kills the command only.
func setProcessGroup(cmd *exec.Cmd) {}
