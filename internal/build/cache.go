package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shipline/shipline/internal/manifest"
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
	}{BuilderVersion, treeHash, p.Name, string(p.Language), p.Build, p.Artifact, p.Test}
	data, _ := json.Marshal(in) // cannot fail: strings only
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Meta is a cache entry's meta.json.
type Meta struct {
	Key      string            `json:"key"`
	Pipeline string            `json:"pipeline"`
	Language string            `json:"language"`
	TreeHash string            `json:"tree_hash"`
	File     string            `json:"file"` // the artifact's file name, next to meta.json
	SHA256   string            `json:"sha256"`
	Size     int64             `json:"size"`
	BuiltAt  time.Time         `json:"built_at"`
	Seconds  float64           `json:"seconds"` // time spent in build tools
	Tools    map[string]string `json:"tools,omitempty"`
	Builder  string            `json:"builder_version"`
}

const metaFile = "meta.json"

// Cache layout under the state directory:
//
//	cache/<key>/meta.json, cache/<key>/<artifact file>   complete entries
//	cache/.tmp/<key>-*/                                 builds in progress
//	cache/.locks/<key>.lock                             one build of a key at a time
//	logs/builds/<key>.log                               the latest build's full log
func (b *Builder) cacheDir() string           { return filepath.Join(b.StateDir, "cache") }
func (b *Builder) entryDir(key string) string { return filepath.Join(b.cacheDir(), key) }
func (b *Builder) tmpDir() string             { return filepath.Join(b.cacheDir(), ".tmp") }
func (b *Builder) lockPath(key string) string {
	return filepath.Join(b.cacheDir(), ".locks", key+".lock")
}

// LogPath is where the build of key logs.
func (b *Builder) LogPath(key string) string {
	return filepath.Join(b.StateDir, "logs", "builds", key+".log")
}

// readEntry returns the complete cache entry of key, checking the artifact's
// size and checksum. An entry that fails the check is a miss; with drop (only
// under the key's lock, so a fresh entry is never dropped by mistake) it is
// also removed, so the artifact is built again.
func (b *Builder) readEntry(key string, drop bool) (Meta, bool, error) {
	damaged := func() (Meta, bool, error) {
		if !drop {
			return Meta{}, false, nil
		}
		return Meta{}, false, b.dropEntry(key)
	}
	dir := b.entryDir(key)
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Meta{}, false, nil
	}
	if err != nil {
		return Meta{}, false, fmt.Errorf("read cache entry %s: %w", key, err)
	}
	var m Meta
	if err := json.Unmarshal(data, &m); err != nil || m.File == "" || m.File != filepath.Base(m.File) {
		return damaged()
	}
	sum, size, err := fileSHA256(filepath.Join(dir, m.File))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && (sum != m.SHA256 || size != m.Size)) {
		return damaged()
	}
	if err != nil {
		return Meta{}, false, fmt.Errorf("read cache entry %s: %w", key, err)
	}
	return m, true, nil
}

// dropEntry moves a damaged entry aside and removes it.
func (b *Builder) dropEntry(key string) error {
	if err := os.MkdirAll(b.tmpDir(), 0o755); err != nil {
		return fmt.Errorf("create cache directory: %w", err)
	}
	aside, err := os.MkdirTemp(b.tmpDir(), "damaged-")
	if err != nil {
		return fmt.Errorf("create cache directory: %w", err)
	}
	dst := filepath.Join(aside, key)
	if err := os.Rename(b.entryDir(key), dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove damaged cache entry %s: %w", key, err)
	}
	return os.RemoveAll(aside)
}

// commitEntry copies the artifact into a new entry directory beside the cache,
// writes meta.json last, and renames the directory into place. If another
// process got there first (possible only without file locks) its entry wins.
func (b *Builder) commitEntry(work, artifact string, m Meta) (Meta, error) {
	staged := filepath.Join(work, "entry")
	if err := os.Mkdir(staged, 0o755); err != nil {
		return Meta{}, fmt.Errorf("stage cache entry: %w", err)
	}
	m.File = filepath.Base(artifact)
	sum, size, err := copyFile(artifact, filepath.Join(staged, m.File))
	if err != nil {
		return Meta{}, fmt.Errorf("stage artifact: %w", err)
	}
	m.SHA256, m.Size = sum, size
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Meta{}, err
	}
	if err := writeFileSync(filepath.Join(staged, metaFile), append(data, '\n')); err != nil {
		return Meta{}, fmt.Errorf("stage cache entry: %w", err)
	}
	err = os.Rename(staged, b.entryDir(m.Key))
	if err == nil {
		return m, nil
	}
	if theirs, ok, rerr := b.readEntry(m.Key, false); rerr == nil && ok {
		return theirs, nil
	}
	return Meta{}, fmt.Errorf("store artifact in the build cache: %w", err)
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

// copyFile copies src to dst (synced), returning the copy's sha256 and size.
func copyFile(src, dst string) (string, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// validName reports whether a pipeline name can name files (the jar, logs).
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`+"\x00")
}
