// Package filelock serializes work on one path: inside the process with a
// channel per path, and across processes sharing a state directory with an
// flock on a lock file (released by the kernel if the process dies).
package filelock

import (
	"context"
	"sync"
	"time"
)

// inProcess maps a lock path to a channel of capacity 1.
var inProcess sync.Map

// poll is how often a held file lock is tried again.
const poll = 50 * time.Millisecond

// Lock takes the lock at path (the lock file itself), waiting until ctx ends.
// It returns the function that releases it.
func Lock(ctx context.Context, path string) (func(), error) {
	v, _ := inProcess.LoadOrStore(path, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release, err := lockFile(ctx, path)
	if err != nil {
		<-ch
		return nil, err
	}
	return func() {
		release()
		<-ch
	}, nil
}
