package gitrepo

import (
	"context"

	"github.com/shipline/shipline/internal/filelock"
)

// lockPath takes the mirror's lock (in this process and across processes
// sharing the state directory), waiting until ctx ends.
func lockPath(ctx context.Context, path string) (func(), error) {
	return filelock.Lock(ctx, path+".lock")
}
