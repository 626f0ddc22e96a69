package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/storage"
)

// BuilderVersion is part of every cache key. Bump it whenever a change to this
// package changes the artifacts it produces, so old cache entries are not reused.
// It was deliberately kept at "1" when content versions (+sl.<hash>) came in:
// entries built before keep serving their exact bytes, which releases already
// deployed have pinned by checksum for their promotion.
const BuilderVersion = "1"

// Key is the cache key of a pipeline's artifact: the sha256 of the pipeline
// directory's git tree hash and every setting that shapes the artifact — the
// pipeline's name (it names Java jars), language, build command, artifact glob,
// test command — and BuilderVersion. The pipeline's path is not part of it:
// moving an unchanged directory reuses its artifact.
func Key(p manifest.Pipeline, treeHash string) string {
	in := struct {
		Builder  string `json:"builder"`
		Tree     string `json:"tree"`
		Name     string `json:"name"`
		Language string `json:"language"`
		Build    string `json:"build"`
		Artifact string `json:"artifact"`
		Test     string `json:"test"`
		// A library's release version (absent for pipelines, whose keys stay as they were).
		Version string `json:"version,omitempty"`
		Group   string `json:"group,omitempty"`
		// The libraries a pipeline uses (its tests import, or it compiles
		// against), with their trees and a JVM library's build settings.
		Uses []manifest.UsedLibrary `json:"uses,omitempty"`
	}{BuilderVersion, treeHash, p.Name, string(p.Language), p.Build, p.Artifact, p.Test, p.Version, p.Group, p.Uses}
	data, _ := json.Marshal(in) // cannot fail: strings only
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Meta is a cache entry's meta.json: the entry's marker. It is written last,
// after the artifact it names is stored whole, so an entry whose marker exists
// is complete; readers still check the artifact against SHA256 and Size.
type Meta struct {
	Key      string `json:"key"`
	Pipeline string `json:"pipeline"`
	Language string `json:"language"`
	TreeHash string `json:"tree_hash"`
	File     string `json:"file"` // the artifact's file name
	// Object is the artifact's key relative to the entry, <sha256>/<file>;
	// empty in entries written before the shared store (the file is then
	// next to meta.json).
	Object  string            `json:"object,omitempty"`
	SHA256  string            `json:"sha256"`
	Size    int64             `json:"size"`
	BuiltAt time.Time         `json:"built_at"`
	Seconds float64           `json:"seconds"` // time spent in build tools
	Tools   map[string]string `json:"tools,omitempty"`
	Builder string            `json:"builder_version"`
}

const metaFile = "meta.json"

// Layout in the shared store (platform.yaml's storage; by default state_dir):
//
//	cache/<key>/meta.json              the entry's marker, written last
//	cache/<key>/<sha256>/<file>        the artifact, content-addressed, so two
//	                                   workers building one key never overwrite
//	                                   each other's bytes with different ones
//	logs/builds/<key>.log              the latest build's full log
//
// and in the worker's own state directory (never shared):
//
//	cache/.tmp/<key>-*/                builds in progress
//	cache/.locks/<key>.lock            one build of a key at a time on this machine
func entryKey(key string) string { return "cache/" + key }
func metaKey(key string) string  { return entryKey(key) + "/" + metaFile }

// ObjectKey is the store key of an entry's artifact.
func (m Meta) ObjectKey() string {
	if m.Object != "" {
		return entryKey(m.Key) + "/" + m.Object
	}
	return entryKey(m.Key) + "/" + m.File
}

// LogKey is the store key of the log of key's latest build.
func LogKey(key string) string { return "logs/builds/" + key + ".log" }

func (b *Builder) tmpDir() string { return filepath.Join(b.StateDir, "cache", ".tmp") }
func (b *Builder) lockPath(key string) string {
	return filepath.Join(b.StateDir, "cache", ".locks", key+".lock")
}

// storage returns the shared store: Store, else state_dir as a file:// store.
func (b *Builder) storage(ctx context.Context) (*storage.Store, error) {
	b.once.Do(func() {
		if b.Store != nil {
			b.opened = b.Store
			return
		}
		b.opened, b.openErr = storage.Open(ctx, storage.FileURL(absDir(b.StateDir)))
	})
	return b.opened, b.openErr
}

type storeOnce struct {
	once    sync.Once
	opened  *storage.Store
	openErr error
}

func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// readEntry returns the complete cache entry of key. With verify the artifact
// is streamed through sha256 and must match the marker; without, only its
// size is checked. An entry that fails the check is a miss; with drop (only
// under the key's lock, so a fresh entry is never dropped by mistake) its
// marker is also removed, so the artifact is built again.
func (b *Builder) readEntry(ctx context.Context, key string, verify, drop bool) (Meta, bool, error) {
	st, err := b.storage(ctx)
	if err != nil {
		return Meta{}, false, err
	}
	damaged := func() (Meta, bool, error) {
		if !drop {
			return Meta{}, false, nil
		}
		if err := st.Delete(ctx, metaKey(key)); err != nil {
			return Meta{}, false, fmt.Errorf("remove damaged cache entry %s: %w", key, err)
		}
		return Meta{}, false, nil
	}
	data, err := st.ReadAll(ctx, metaKey(key))
	if errors.Is(err, storage.ErrNotFound) {
		return Meta{}, false, nil
	}
	if err != nil {
		return Meta{}, false, fmt.Errorf("read cache entry %s: %w", key, err)
	}
	var m Meta
	if err := json.Unmarshal(data, &m); err != nil || m.Key != key || !validName(m.File) || !validObject(m) {
		return damaged()
	}
	var sum string
	var size int64
	if verify {
		sum, size, err = st.HashObject(ctx, m.ObjectKey())
	} else {
		sum = m.SHA256
		size, err = st.Size(ctx, m.ObjectKey())
	}
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (sum != m.SHA256 || size != m.Size)) {
		return damaged()
	}
	if err != nil {
		return Meta{}, false, fmt.Errorf("read cache entry %s: %w", key, err)
	}
	return m, true, nil
}

// validObject checks a marker's object names <sha256>/<file> of its own bytes.
func validObject(m Meta) bool {
	if m.Object == "" {
		return true
	}
	dir, file := path.Split(m.Object)
	return dir == m.SHA256+"/" && file == m.File
}

// DropEntry removes key's marker if it still names object (the store key of
// an artifact found damaged when read), so the next build of key rebuilds it.
func (b *Builder) DropEntry(ctx context.Context, key, object string) error {
	st, err := b.storage(ctx)
	if err != nil {
		return err
	}
	data, err := st.ReadAll(ctx, metaKey(key))
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var m Meta
	if json.Unmarshal(data, &m) == nil && m.ObjectKey() != object {
		return nil // rebuilt meanwhile
	}
	return st.Delete(ctx, metaKey(key))
}

// commitEntry streams the artifact into the store at its content address,
// then publishes the marker. If another worker published a complete entry of
// the key meanwhile, that entry stands and is returned: every worker ends up
// with the same entry, and the bytes any of them returned stay readable.
func (b *Builder) commitEntry(ctx context.Context, artifact string, m Meta) (Meta, error) {
	st, err := b.storage(ctx)
	if err != nil {
		return Meta{}, err
	}
	m.File = filepath.Base(artifact)
	if m.SHA256, m.Size, err = fileSHA256(artifact); err != nil {
		return Meta{}, fmt.Errorf("read artifact: %w", err)
	}
	m.Object = m.SHA256 + "/" + m.File
	if err := st.PutFile(ctx, m.ObjectKey(), artifact); err != nil {
		return Meta{}, fmt.Errorf("store artifact in the build cache: %w", err)
	}
	if theirs, ok, err := b.readEntry(ctx, m.Key, true, false); err == nil && ok {
		return theirs, nil
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Meta{}, err
	}
	if err := st.Put(ctx, metaKey(m.Key), strings.NewReader(string(data)+"\n")); err != nil {
		return Meta{}, fmt.Errorf("publish cache entry %s: %w", m.Key, err)
	}
	// A worker that published at the same moment may have overwritten the
	// marker: take whichever entry the store now holds, if complete.
	if now, ok, err := b.readEntry(ctx, m.Key, false, false); err == nil && ok {
		return now, nil
	}
	return m, nil
}

// cleanStale removes build directories of key left by a crashed build. It runs
// with the key's lock held, so no live build owns them.
func (b *Builder) cleanStale(key string) {
	matches, _ := filepath.Glob(filepath.Join(b.tmpDir(), key+"-*"))
	for _, m := range matches {
		_ = os.RemoveAll(m)
	}
}

// fileSHA256 returns the hex sha256 and size of the file at path.
func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// validName reports whether a pipeline name can name files (the jar, logs).
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`+"\x00")
}
