package build

import (
	"context"

	"github.com/shipline/shipline/internal/filelock"
)

// lockKey serializes builds of one cache key (in this process and across
// processes sharing the state directory), waiting until ctx ends.
func lockKey(ctx context.Context, path string) (func(), error) {
	return filelock.Lock(ctx, path)
}
