// Package build turns a pipeline directory into its artifact — a wheel for
// Python, a jar for Java and Scala — with the real tools, once per cache key.
//
// The cache key (Key) is the pipeline directory's git tree hash plus its build
// settings, so an unchanged pipeline is never built twice: a later release, a
// redeploy or another worker sharing the store gets the same bytes from
// cache/<key>/ in the shared store (internal/storage: platform.yaml's storage,
// else state_dir). Builds run in a temporary directory of the worker's own
// state_dir; the artifact is stored first and the entry's marker (meta.json)
// last, so an entry is visible only when complete. Builds of one key are
// serialised on one machine by a lock file; workers on different machines may
// build a key at once and end up with one entry (see commitEntry). Every
// build's full log (commands, output, exit codes, durations) is stored at
// logs/builds/<key>.log.
//
// How each kind of pipeline is built:
//
//   - a `build` command in the manifest (scala, java): the manifest's `test`
//     command if any, then `sh -c <build>` in the pipeline directory, then the
//     single file matching the `artifact` glob.
//   - python: the `test` command if any, else `python -m pytest -q` when tests/
//     exists (PYTHONPATH=src, or the pipeline directory without src/); then
//     `python -m build --wheel --no-isolation`, which must yield one wheel.
//     The interpreter is Builder.Python, else $SHIPLINE_PYTHON, else
//     /usr/bin/python3 (Debian's, which has python3-build), else python3.
//   - java without a build command: javac of src/main/java/**.java, the files
//     of src/main/resources, packed with `jar` into <pipeline>-sl.<hash>.jar. Tests: the
//     `test` command if any, else when src/test/java exists every compiled
//     class named *Test (not nested) is run with `java` as a main class after
//     compiling; a non-zero exit fails the build. The JVM libraries the
//     pipeline uses (Pipeline.Uses) are on its compile and test classpath,
//     not in its jar (java_library.go).
//
// Every wheel and jar carries its content version, the declared version plus
// "+sl.<first 8 hex digits of the tree hash>" (see version.go): a changed
// pipeline never ships under a version a cluster already has installed.
//
// Commands run with SOURCE_DATE_EPOCH set (1980-01-01), so wheels and jars of
// the same tree are byte-identical whoever builds them.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/storage"
)

// Builder builds pipelines into the cache in Store.
type Builder struct {
	// StateDir is the worker's state directory (platform.yaml's state_dir):
	// builds in progress and their locks.
	StateDir string
	// Store is the shared store of cache entries and logs; nil means StateDir
	// as a file:// store.
	Store *storage.Store
	// Python is the interpreter for Python pipelines; see the package comment.
	Python string
	// Getenv reads SHIPLINE_PYTHON and JAVA_HOME; nil means os.Getenv.
	Getenv func(string) string
	// HeartbeatEvery is how often Request.Heartbeat is called; default 5s.
	HeartbeatEvery time.Duration
	// Servers are the worker's Python build servers (server.go); nil: Python
	// commands run as plain processes.
	Servers *Servers

	storeOnce
}

// Request asks for one pipeline's artifact.
type Request struct {
	Pipeline manifest.Pipeline
	// TreeHash is the git tree hash of the pipeline's directory at the commit.
	TreeHash string
	// Export writes the pipeline directory's files into dir (called on a miss).
	Export func(ctx context.Context, dir string) error
	// ExportLibrary writes the files of a library the pipeline uses
	// (Pipeline.Uses) into dir; nil leaves the libraries out of its build.
	ExportLibrary func(ctx context.Context, path, dir string) error
	// Heartbeat, if set, is called every HeartbeatEvery while Build works (also
	// while it waits for another build of the same key), with the current step.
	Heartbeat func(step string)
}

// Result is a built or cached artifact.
type Result struct {
	Key      string
	TreeHash string
	// File is the artifact's file name; Object its key in the store.
	File   string
	Object string
	SHA256 string
	Size   int64
	// Cached is true when no build ran.
	Cached bool
	// LogPath is the store key of the full log of the build that produced the
	// artifact (empty if it is gone); LogTail the end of it (empty on a cache hit).
	LogPath string
	LogTail string
	// Seconds is the time spent in build tools by this call (0 on a hit).
	Seconds float64
	Meta    Meta
}

// Lookup reports whether the cache holds the artifact of p at treeHash,
// without building anything. It checks the artifact's size, not its checksum
// (Build and every reader of the artifact do).
func (b *Builder) Lookup(ctx context.Context, p manifest.Pipeline, treeHash string) (Result, bool, error) {
	key := Key(p, treeHash)
	m, ok, err := b.readEntry(ctx, key, false, false)
	if err != nil || !ok {
		return Result{Key: key, TreeHash: treeHash}, false, err
	}
	return b.hit(ctx, m), true, nil
}

// hit describes a cache entry as a result.
func (b *Builder) hit(ctx context.Context, m Meta) Result {
	r := Result{
		Key: m.Key, TreeHash: m.TreeHash, File: m.File, Object: m.ObjectKey(),
		SHA256: m.SHA256, Size: m.Size, Cached: true, Meta: m,
	}
	if st, err := b.storage(ctx); err == nil {
		if ok, _ := st.Exists(ctx, LogKey(m.Key)); ok {
			r.LogPath = LogKey(m.Key)
		}
	}
	return r
}

// OpenArtifact streams a result's artifact from the store, checking its
// checksum as it is read (see storage.OpenChecked).
func (b *Builder) OpenArtifact(ctx context.Context, object, sha256 string, size int64) (io.ReadCloser, error) {
	st, err := b.storage(ctx)
	if err != nil {
		return nil, err
	}
	return st.OpenChecked(ctx, object, sha256, size)
}

// Build returns the artifact of the request's pipeline, from the cache or by
// building it. Permanent failures are *Error; other errors are transient.
func (b *Builder) Build(ctx context.Context, req Request) (Result, error) {
	p := req.Pipeline
	if err := checkRequest(req); err != nil {
		return Result{}, err
	}
	key := Key(p, req.TreeHash)
	if m, ok, err := b.readEntry(ctx, key, true, false); err != nil {
		return Result{}, err
	} else if ok {
		return b.hit(ctx, m), nil
	}

	step := &atomic.Value{}
	step.Store("waiting for another build of the same pipeline")
	stop := b.heartbeat(ctx, req.Heartbeat, step)
	defer stop()

	unlock, err := lockKey(ctx, b.lockPath(key))
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	// Another worker may have built it while this one waited.
	if m, ok, err := b.readEntry(ctx, key, true, true); err != nil {
		return Result{}, err
	} else if ok {
		return b.hit(ctx, m), nil
	}
	b.cleanStale(key)
	return b.buildLocked(ctx, req, key, step)
}

// buildLocked builds key with its lock held: export the sources into a fresh
// directory, run the language's steps, store the artifact in the cache.
func (b *Builder) buildLocked(ctx context.Context, req Request, key string, step *atomic.Value) (Result, error) {
	p := req.Pipeline
	if err := os.MkdirAll(b.tmpDir(), 0o755); err != nil {
		return Result{}, fmt.Errorf("create build directory: %w", err)
	}
	work, err := os.MkdirTemp(b.tmpDir(), key+"-")
	if err != nil {
		return Result{}, fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(work)

	st, err := b.storage(ctx)
	if err != nil {
		return Result{}, err
	}
	r, err := b.openLog(work, key, step)
	if err != nil {
		return Result{}, err
	}
	r.logWhere = st.String() + "/" + r.logKey
	defer b.storeLog(ctx, r)
	began := time.Now()
	r.logf("shipline build of pipeline %s (%s), path %s, tree %s", p.Name, p.Language, p.Path, req.TreeHash)
	r.logf("cache key %s (builder version %s), started %s", key, BuilderVersion, began.UTC().Format(time.RFC3339))

	src := filepath.Join(work, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		return Result{}, fmt.Errorf("create build directory: %w", err)
	}
	r.setStep("export sources")
	if err := req.Export(ctx, src); err != nil {
		r.logf("export of %s failed: %v", p.Path, err)
		return Result{}, fmt.Errorf("export %s: %w", p.Path, err)
	}
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return Result{}, fmt.Errorf("create build directory: %w", err)
	}

	s := &session{b: b, r: r, p: p, key: key, tree: req.TreeHash, work: work, src: src, out: out, exportLibrary: req.ExportLibrary}
	artifact, tools, err := s.run(ctx)
	if err != nil {
		var be *apperr.Error
		if errors.As(err, &be) {
			r.logf("FAILED: %s", be.Msg)
		} else {
			r.logf("stopped: %v", err)
		}
		return Result{}, err
	}
	r.setStep("store artifact")
	m, err := b.commitEntry(ctx, artifact, Meta{
		Key: key, Pipeline: p.Name, Language: string(p.Language), TreeHash: req.TreeHash,
		BuiltAt: began.UTC(), Seconds: r.seconds, Tools: tools, Builder: BuilderVersion,
	})
	if err != nil {
		return Result{}, err
	}
	r.logf("built %s (%d bytes, sha256 %s) in %.1fs, %.1fs in build tools, %.2fs CPU", m.File, m.Size, m.SHA256, time.Since(began).Seconds(), r.seconds, r.cpu)
	res := Result{
		Key: m.Key, TreeHash: m.TreeHash, File: m.File, Object: m.ObjectKey(), SHA256: m.SHA256, Size: m.Size, Meta: m,
		Seconds: r.seconds, LogPath: r.logKey, LogTail: fileTail(r.logPath),
	}
	return res, nil
}

// openLog opens the build log of key in the build's directory; storeLog
// copies it into the store when the build ends, whatever its outcome.
func (b *Builder) openLog(work, key string, step *atomic.Value) (*runner, error) {
	path := filepath.Join(work, "build.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open build log: %w", err)
	}
	return &runner{log: f, logPath: path, logKey: LogKey(key), env: buildEnv(), step: step}, nil
}

// buildEnv is the environment of every build command: the worker's, with
// reproducible timestamps and no bytecode written into the sources.
func buildEnv() []string {
	return mergeEnv(os.Environ(), []string{
		"SOURCE_DATE_EPOCH=315532800", // 1980-01-01: reproducible zip timestamps
		"PYTHONDONTWRITEBYTECODE=1",
	})
}

// storeLog closes the build's log and stores it at its key (atomically: a
// reader sees the previous build's log or this one's). It runs after the
// build's context may have ended, so it gets a short one of its own.
func (b *Builder) storeLog(ctx context.Context, r *runner) {
	r.log.Close()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	st, err := b.storage(ctx)
	if err == nil {
		err = st.PutFile(ctx, r.logKey, r.logPath)
	}
	if err != nil {
		r.logKey = "" // not stored: nothing to point at
	}
}

// checkRequest refuses requests that cannot be built as given.
func checkRequest(req Request) error {
	p := req.Pipeline
	invalid := func(format string, args ...any) error {
		return &apperr.Error{Type: apperr.InvalidInput, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case !validName(p.Name):
		return invalid("pipeline name %q cannot name a build: use letters, digits, _ and -", p.Name)
	case req.TreeHash == "":
		return invalid("pipeline %s: no tree hash given", p.Name)
	case !validTreeHash(req.TreeHash):
		return invalid("pipeline %s: tree hash %q is not a git object id (hex)", p.Name, req.TreeHash)
	case req.Export == nil:
		return invalid("pipeline %s: no source to export", p.Name)
	case p.Build == "" && p.Language == manifest.Scala:
		return invalid(`scala pipeline %s has no build command: set build and artifact in shipline.yaml, e.g. build: "sbt -batch package", artifact: "target/scala-2.12/*.jar"`, p.Name)
	case p.Build != "" && strings.TrimSpace(p.Artifact) == "":
		return invalid("pipeline %s sets build without artifact: add the glob of the built file relative to the pipeline's path", p.Name)
	}
	switch p.Language {
	case manifest.Python, manifest.Java, manifest.Scala:
		return nil
	}
	return invalid("pipeline %s: unknown language %q: use python, scala or java", p.Name, p.Language)
}

// heartbeat calls fn every HeartbeatEvery until the returned stop is called.
func (b *Builder) heartbeat(ctx context.Context, fn func(string), step *atomic.Value) (stop func()) {
	if fn == nil {
		return func() {}
	}
	every := b.HeartbeatEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				s, _ := step.Load().(string)
				fn(s)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func (b *Builder) getenv(k string) string {
	if b.Getenv != nil {
		return b.Getenv(k)
	}
	return os.Getenv(k)
}
