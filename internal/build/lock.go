package build

import (
	"context"
	"sync"
	"time"
)

// inProcess serialises builds of one cache key inside this process; the lock
// file does the same across processes sharing the state directory.
var inProcess sync.Map // lock path -> chan struct{} (capacity 1)

// lockKey takes the lock at path, waiting until ctx ends.
func lockKey(ctx context.Context, path string) (func(), error) {
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

const lockPoll = 100 * time.Millisecond
