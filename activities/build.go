package activities

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/build"
	"github.com/shipline/shipline/internal/gitrepo"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/storage"
)

// Build owns the build runner and cache: it turns a pipeline directory at a
// commit into its artifact under cache/<key>/ in the store workers share,
// building only when the cache lacks it. Builds log to logs/builds/<key>.log
// in the same store.
type Build struct {
	Platform *platform.Config
	// Store is the store workers share; nil opens Platform.StorageURL() on first use.
	Store *storage.Store
	// Python is the interpreter for Python pipelines; empty means
	// $SHIPLINE_PYTHON, else /usr/bin/python3, else python3.
	Python string
	// Getenv reads git credentials, SHIPLINE_PYTHON and JAVA_HOME; nil means os.Getenv.
	Getenv func(string) string
	// Parallelism bounds the builds running at once on this worker (0: the number of CPUs).
	Parallelism int
	// Servers are the worker's Python build servers; nil: Python commands run
	// as plain processes.
	Servers *build.Servers

	slotsOnce sync.Once
	slots     chan struct{}
	store     sharedStore
}

// acquire waits for a build slot, heartbeating while it waits; release frees it.
func (b *Build) acquire(ctx context.Context, pipeline string) (release func(), err error) {
	b.slotsOnce.Do(func() {
		n := b.Parallelism
		if n <= 0 {
			n = runtime.NumCPU()
		}
		b.slots = make(chan struct{}, n)
	})
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case b.slots <- struct{}{}:
			return func() { <-b.slots }, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx, pipeline+": waiting for a build slot")
			}
		}
	}
}

// BuildInput names one pipeline of a project at a commit.
type BuildInput struct {
	Project string `json:"project"`
	Commit  string `json:"commit"` // full 40-hex hash
	// Pipeline is the pipeline as the manifest at Commit defines it.
	Pipeline manifest.Pipeline `json:"pipeline"`
}

// BuildOutput describes the pipeline's artifact.
type BuildOutput struct {
	Pipeline string `json:"pipeline"`
	// File is the artifact's file name (a wheel or a jar).
	File string `json:"file"`
	// Object is the artifact's key in the shared store.
	Object string `json:"object,omitempty"`
	// LocalPath was the artifact's file in one worker's build cache; only
	// outputs recorded before the shared store carry it.
	LocalPath string `json:"local_path,omitempty"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	// Cached is true when the artifact came from the cache (no build ran).
	Cached   bool   `json:"cached"`
	TreeHash string `json:"tree_hash"`
	CacheKey string `json:"cache_key"`
	// LogPath is the store key of the full log of the build that produced the
	// artifact (`shipline logs` reads it); LogTail its last lines (empty on a
	// cache hit).
	LogPath string `json:"log_path,omitempty"`
	LogTail string `json:"log_tail,omitempty"`
	// Seconds is the time spent in build tools (0 on a cache hit).
	Seconds float64 `json:"seconds"`
}

// BuildFailureDetails are the details of a permanent build failure's
// application error: the pipeline and its log (set by internal/build).
type BuildFailureDetails = build.FailureDetails

// Pipeline returns the artifact of in.Pipeline at in.Commit: from the cache when
// the pipeline directory's tree and build settings were built before, else by
// exporting the directory from the project's mirror and building it. It
// heartbeats with the current step. A failing test or build, a missing artifact
// and a missing tool are permanent errors (apperr.TestsFailed, apperr.BuildFailed,
// apperr.ArtifactNotFound, apperr.ArtifactAmbiguous, apperr.BuildToolMissing) whose
// message holds the end of the failing command's output and the log's path.
func (b *Build) Pipeline(ctx context.Context, in BuildInput) (BuildOutput, error) {
	release, err := b.acquire(ctx, in.Pipeline.Name)
	if err != nil {
		return BuildOutput{}, err
	}
	defer release()
	m, tree, err := b.tree(ctx, in)
	if err != nil {
		return BuildOutput{}, err
	}
	p, err := b.usedTrees(ctx, m, in)
	if err != nil {
		return BuildOutput{}, err
	}
	out, err := BuildFrom(ctx, b, p, tree, func(ctx context.Context, dir string) error {
		return m.Export(ctx, in.Commit, in.Pipeline.Path, dir)
	}, func(ctx context.Context, path, dir string) error {
		return m.Export(ctx, in.Commit, path, dir)
	})
	return out, apperr.ForTemporal(err)
}

// BuildFrom returns the artifact of pipeline p whose directory has the git tree
// hash tree: from the cache, else built and tested from the files export
// writes (called on a miss only). A release or deploy exports from the
// project's mirror (Pipeline); `shipline check` from a pull request's clone,
// with the same builder, tests and cache. Permanent failures are the
// *apperr.Error values of internal/build. (A function, not a method: Build's
// methods are its activities.)
//
// exportLibrary writes the files of a library the pipeline uses (p.Uses,
// whose Tree must be set: it is part of the cache key) into dir: its tests
// import it, or it compiles against it.
func BuildFrom(ctx context.Context, b *Build, p manifest.Pipeline, tree string, export func(ctx context.Context, dir string) error,
	exportLibrary func(ctx context.Context, path, dir string) error) (BuildOutput, error) {
	bld, err := b.builder(ctx)
	if err != nil {
		return BuildOutput{}, err
	}
	res, err := bld.Build(ctx, build.Request{
		Pipeline: p,
		TreeHash: tree,
		Export:   export,
		// The libraries the pipeline uses (Pipeline.Uses).
		ExportLibrary: exportLibrary,
		Heartbeat: func(step string) {
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx, p.Name+": "+step)
			}
		},
	})
	if err != nil {
		return BuildOutput{}, err
	}
	return BuildOutput{
		Pipeline: p.Name, File: res.File, Object: res.Object, SHA256: res.SHA256, Size: res.Size,
		Cached: res.Cached, TreeHash: res.TreeHash, CacheKey: res.Key,
		LogPath: res.LogPath, LogTail: res.LogTail, Seconds: res.Seconds,
	}, nil
}

// StartBuildServers starts b's Python build servers (see internal/build), so
// that a worker's first build does not wait for their imports. (A function,
// not a method: Build's methods are its activities.)
func StartBuildServers(ctx context.Context, b *Build) {
	if b.Servers == nil || b.Platform == nil {
		return
	}
	bld, err := b.builder(ctx)
	if err != nil {
		return
	}
	bld.StartServers(ctx)
}

// CacheKeyOutput says whether a pipeline's artifact is already built.
type CacheKeyOutput struct {
	Key      string `json:"key"`
	TreeHash string `json:"tree_hash"`
	// Cached is true when the cache holds the artifact, so a deploy would not build it.
	Cached bool `json:"cached"`
	// File is the cached artifact's file name (empty when not cached).
	File string `json:"file,omitempty"`
}

// CacheKey computes the pipeline's cache key and looks it up, without building:
// `shipline plan` uses it to show what a deploy would build.
func (b *Build) CacheKey(ctx context.Context, in BuildInput) (CacheKeyOutput, error) {
	m, tree, err := b.tree(ctx, in)
	if err != nil {
		return CacheKeyOutput{}, err
	}
	p, err := b.usedTrees(ctx, m, in)
	if err != nil {
		return CacheKeyOutput{}, err
	}
	bld, err := b.builder(ctx)
	if err != nil {
		return CacheKeyOutput{}, err
	}
	res, ok, err := bld.Lookup(ctx, p, tree)
	if err != nil {
		return CacheKeyOutput{}, err
	}
	return CacheKeyOutput{Key: res.Key, TreeHash: tree, Cached: ok, File: res.File}, nil
}

// tree checks the input, opens the project's mirror and returns the git tree
// hash of the pipeline directory at the commit (fetching the commit if needed).
func (b *Build) tree(ctx context.Context, in BuildInput) (*gitrepo.Mirror, string, error) {
	if in.Pipeline.Name == "" || in.Pipeline.Path == "" {
		return nil, "", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("build of project %s: the pipeline has no name or path", in.Project), apperr.InvalidInput, nil)
	}
	if b.Platform == nil {
		return nil, "", errors.New("build activities have no platform config")
	}
	m, err := (&Git{Platform: b.Platform, Getenv: b.Getenv}).mirror(in.Project)
	if err != nil {
		return nil, "", err
	}
	var tree string
	err = withHeartbeat(ctx, func() (err error) {
		tree, err = m.TreeHash(ctx, in.Commit, in.Pipeline.Path)
		return err
	})
	if err != nil {
		return nil, "", apperr.ForTemporal(err)
	}
	return m, tree, nil
}

func (b *Build) builder(ctx context.Context) (*build.Builder, error) {
	st, err := b.store.get(ctx, b.Store, b.Platform)
	if err != nil {
		return nil, err
	}
	return &build.Builder{StateDir: b.Platform.StateDir, Store: st, Python: b.Python, Getenv: b.Getenv, Servers: b.Servers}, nil
}
