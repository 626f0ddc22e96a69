package gitrepo

import (
	"context"
	"sync"
	"time"
)

// inProcess serialises users of one mirror inside this process; the lock file
// (lockFile) does the same across processes.
var inProcess sync.Map // path -> chan struct{} (capacity 1)

// lockPath takes the mirror's lock, waiting until ctx ends.
func lockPath(ctx context.Context, path string) (func(), error) {
	v, _ := inProcess.LoadOrStore(path, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release, err := lockFile(ctx, path+".lock")
	if err != nil {
		<-ch
		return nil, err
	}
	return func() {
		release()
		<-ch
	}, nil
}

const lockPoll = 50 * time.Millisecond
