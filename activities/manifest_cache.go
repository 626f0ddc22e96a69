package activities

import (
	"io/fs"
	"sync"

	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest"
)

// manifestCache keeps the manifests loaded from commits' trees. Loading one
// checks every job definition and pipeline directory of the project, and a
// deployment renders each job three times (check, plan, upsert): without the
// cache a deploy of M jobs loaded the manifest 3·M times, O(M²) reads of the
// tree (most of a cold deploy of 40 jobs once builds are fast). A commit's
// tree never changes, so an entry never goes stale; the cache holds the
// manifests of the last manifestCacheSize commits. Entries are shared: their
// users only read them.
type manifestCache struct {
	mu      sync.Mutex
	entries map[string]manifestEntry
	order   []string // keys, oldest first
}

type manifestEntry struct {
	man   *manifest.Manifest
	diags diag.List
}

const manifestCacheSize = 16

// load returns manifest.Load(fsys) for the tree of project's commit, loading
// it on the commit's first use.
func (c *manifestCache) load(project, commit string, fsys fs.FS) (*manifest.Manifest, diag.List) {
	key := project + "\x00" + commit
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok {
		return e.man, e.diags
	}
	man, diags := manifest.Load(fsys)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]manifestEntry{}
	}
	if _, ok := c.entries[key]; !ok {
		c.entries[key] = manifestEntry{man, diags}
		c.order = append(c.order, key)
		if len(c.order) > manifestCacheSize {
			delete(c.entries, c.order[0])
			c.order = c.order[1:]
		}
	}
	return man, diags
}
