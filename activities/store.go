package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/build"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/storage"
)

// sharedStore is the store workers share (platform.yaml's storage, else
// state_dir): the one given, or opened from the platform config on first use.
type sharedStore struct {
	once sync.Once
	st   *storage.Store
	err  error
}

func (s *sharedStore) get(ctx context.Context, given *storage.Store, cfg *platform.Config) (*storage.Store, error) {
	if given != nil {
		return given, nil
	}
	s.once.Do(func() { s.st, s.err = storage.Open(context.WithoutCancel(ctx), cfg.StorageURL()) })
	return s.st, s.err
}

// artifactObject is the store key of an artifact: its Object, or, for a
// deployment recorded before the shared store, its cache file's path relative
// to state_dir (the default store is state_dir itself). "" when there is none.
func artifactObject(cfg *platform.Config, a fabric.Artifact) string {
	if a.Object != "" || a.LocalPath == "" {
		return a.Object
	}
	rel, err := filepath.Rel(cfg.StateDir, a.LocalPath)
	if err != nil || !strings.HasPrefix(filepath.ToSlash(rel), "cache/") {
		return ""
	}
	return filepath.ToSlash(rel)
}

// artifactSources checks that every artifact is in the store with the size
// it was built with (else the permanent apperr.ArtifactMissing, before
// anything is sent) and returns them set to stream from the store, checking
// their checksum as they are read. damaged collects the artifacts whose bytes
// were found not to match.
func artifactSources(ctx context.Context, st *storage.Store, cfg *platform.Config, in UploadInput, damaged *damagedSet) ([]fabric.Artifact, error) {
	var gone ArtifactMissingDetails
	var what []string
	out := make([]fabric.Artifact, 0, len(in.Artifacts))
	for _, a := range in.Artifacts {
		object := artifactObject(cfg, a)
		size, err := int64(0), error(nil)
		if object == "" {
			err = storage.ErrNotFound
		} else {
			size, err = st.Size(ctx, object)
		}
		where := object
		if where == "" {
			where = a.LocalPath
		}
		switch {
		case errors.Is(err, storage.ErrNotFound):
			what = append(what, fmt.Sprintf("%s (%s is gone)", a.Pipeline, where))
		case err != nil:
			return nil, fmt.Errorf("artifact of pipeline %s: %w", a.Pipeline, err)
		case a.Size > 0 && size != a.Size:
			what = append(what, fmt.Sprintf("%s (%s has %d bytes, built with %d)", a.Pipeline, where, size, a.Size))
		default:
			a.Object = object
			a.Open = func(ctx context.Context) (io.ReadCloser, error) {
				if a.SHA256 == "" { // recorded without a checksum: the fabric computes one
					return st.Get(ctx, object)
				}
				r, err := st.OpenChecked(ctx, object, a.SHA256, a.Size)
				if err != nil {
					return nil, err
				}
				return damaged.watch(a, r), nil
			}
			out = append(out, a)
			continue
		}
		gone.Pipelines = append(gone.Pipelines, a.Pipeline)
		gone.Paths = append(gone.Paths, where)
	}
	if len(what) == 0 {
		return out, nil
	}
	return nil, artifactMissing(in.Fabric, what, gone)
}

func artifactMissing(fab string, what []string, gone ArtifactMissingDetails) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
		"the build cache no longer holds the artifact of %s for fabric %s: rebuild (a deployment does so once by itself)",
		strings.Join(what, ", "), fab), apperr.ArtifactMissing, nil, gone)
}

// damagedSet records artifacts whose stored bytes failed their checksum.
type damagedSet struct {
	mu   sync.Mutex
	errs map[string]*storage.CorruptError // by pipeline
	arts map[string]fabric.Artifact
}

// watch returns r, recording a into the set if reading it finds it damaged.
func (d *damagedSet) watch(a fabric.Artifact, r io.ReadCloser) io.ReadCloser {
	return &watched{ReadCloser: r, note: func(ce *storage.CorruptError) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.errs == nil {
			d.errs, d.arts = map[string]*storage.CorruptError{}, map[string]fabric.Artifact{}
		}
		d.errs[a.Pipeline], d.arts[a.Pipeline] = ce, a
	}}
}

type watched struct {
	io.ReadCloser
	note func(*storage.CorruptError)
}

func (w *watched) Read(p []byte) (int, error) {
	n, err := w.ReadCloser.Read(p)
	var ce *storage.CorruptError
	if errors.As(err, &ce) {
		w.note(ce)
	}
	return n, err
}

// missing turns the damaged artifacts into ArtifactMissing, after removing
// their cache entries' markers so that the rebuild the deployment then runs
// builds them again instead of finding them cached. nil when none was damaged.
func (d *damagedSet) missing(ctx context.Context, b *build.Builder, fab string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.errs) == 0 {
		return nil
	}
	var gone ArtifactMissingDetails
	var what []string
	for _, p := range sortedKeys(d.errs) {
		a := d.arts[p]
		if key := cacheKeyOf(a.Object); key != "" {
			if err := b.DropEntry(ctx, key, a.Object); err != nil {
				return fmt.Errorf("drop damaged cache entry of %s: %w", p, err)
			}
		}
		what = append(what, fmt.Sprintf("%s (%v)", p, d.errs[p]))
		gone.Pipelines = append(gone.Pipelines, p)
		gone.Paths = append(gone.Paths, a.Object)
	}
	return artifactMissing(fab, what, gone)
}

// cacheKeyOf reads the cache key from an artifact's object, cache/<key>/….
func cacheKeyOf(object string) string {
	parts := strings.Split(object, "/")
	if len(parts) < 3 || parts[0] != "cache" {
		return ""
	}
	return parts[1]
}
