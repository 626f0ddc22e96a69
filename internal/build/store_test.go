package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/storage"
)

// sharedStore opens a file:// store in a directory of its own.
func sharedStore(t *testing.T) (*storage.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := storage.Open(context.Background(), storage.FileURL(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dir
}

// objectSum reads an object of the store and returns its sha256.
func objectSum(t *testing.T, st *storage.Store, key string) string {
	t.Helper()
	r, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func readMeta(t *testing.T, st *storage.Store, key string) Meta {
	t.Helper()
	data, err := st.ReadAll(context.Background(), metaKey(key))
	if err != nil {
		t.Fatal(err)
	}
	var m Meta
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Two workers with separate state directories build the same key at the
// same moment (each build waits until both are building), and their builds
// give different bytes. Both succeed, each with an artifact that is whole
// in the store, and the store holds one consistent entry, which a third
// worker then gets from the cache.
func TestTwoWorkersBuildOneKeyAtOnce(t *testing.T) {
	st, _ := sharedStore(t)
	barrier := t.TempDir()
	// Each build announces itself, waits (at most ~30s) for the other, and
	// writes bytes of its own (its process ID): a build that is not reproducible.
	cmd := fmt.Sprintf(`touch %[1]s/$$; i=0; while [ "$(ls %[1]s | wc -l)" -lt 2 ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; mkdir -p out && echo "built by $$" > out/c.bin`, barrier)
	p := manifest.Pipeline{Name: "c", Path: "c", Language: manifest.Java, Build: cmd, Artifact: "out/*.bin"}
	src := &source{files: map[string]string{"a.txt": "a\n"}}
	workers := []*Builder{{StateDir: t.TempDir(), Store: st}, {StateDir: t.TempDir(), Store: st}}
	results := make([]Result, len(workers))
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, b := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = b.Build(context.Background(), Request{Pipeline: p, TreeHash: treeT, Export: src.export})
		}()
	}
	wg.Wait()
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("worker %d: %v", i, errs[i])
		}
		if got := objectSum(t, st, r.Object); got != r.SHA256 {
			t.Errorf("worker %d returned %s with sha256 %s; the store holds %s there", i, r.Object, r.SHA256, got)
		}
	}
	if src.calls.Load() != 2 {
		t.Fatalf("%d builds ran; both workers should have built (they share no lock)", src.calls.Load())
	}
	m := readMeta(t, st, results[0].Key)
	if m.SHA256 != results[0].SHA256 && m.SHA256 != results[1].SHA256 {
		t.Errorf("the entry (sha256 %s) is neither worker's build", m.SHA256)
	}
	if got := objectSum(t, st, m.ObjectKey()); got != m.SHA256 {
		t.Errorf("the entry's marker says sha256 %s, its artifact has %s", m.SHA256, got)
	}
	third := &Builder{StateDir: t.TempDir(), Store: st}
	hit, err := third.Build(context.Background(), Request{Pipeline: p, TreeHash: treeT, Export: src.export})
	if err != nil || !hit.Cached || hit.SHA256 != m.SHA256 || hit.Object != m.ObjectKey() {
		t.Errorf("third worker: %+v, %v; want the entry %s from the cache", hit, err, m.SHA256)
	}
}

// An entry is published by its marker, written after the artifact: an
// artifact without a marker (a worker died between the two) is not an entry,
// and a marker whose artifact is gone or damaged is not served but rebuilt.
func TestIncompleteOrDamagedEntriesAreRebuilt(t *testing.T) {
	ctx := context.Background()
	st, dir := sharedStore(t)
	p := manifest.Pipeline{Name: "c", Path: "c", Language: manifest.Java, Build: "mkdir -p out && cp a.txt out/c.bin", Artifact: "out/*.bin"}
	src := &source{files: map[string]string{"a.txt": "a\n"}}
	key := Key(p, treeT)
	sum := sha256.Sum256([]byte("a\n"))
	hexSum := hex.EncodeToString(sum[:])
	object := "cache/" + key + "/" + hexSum + "/c.bin"

	// 1. The artifact alone, no marker: a miss.
	if err := st.Put(ctx, object, strings.NewReader("a\n")); err != nil {
		t.Fatal(err)
	}
	b := &Builder{StateDir: t.TempDir(), Store: st}
	if _, ok, err := b.Lookup(ctx, p, treeT); ok || err != nil {
		t.Fatalf("an artifact without its marker was found: %v %v", ok, err)
	}
	first, err := b.Build(ctx, Request{Pipeline: p, TreeHash: treeT, Export: src.export})
	if err != nil || first.Cached || first.SHA256 != hexSum {
		t.Fatalf("build = %+v, %v", first, err)
	}

	for _, damage := range []struct {
		name string
		do   func() error
	}{
		{"artifact truncated", func() error { return os.WriteFile(filepath.Join(dir, filepath.FromSlash(object)), []byte("a"), 0o644) }},
		{"artifact with other bytes of the same size", func() error {
			return os.WriteFile(filepath.Join(dir, filepath.FromSlash(object)), []byte("b\n"), 0o644)
		}},
		{"artifact gone", func() error { return os.Remove(filepath.Join(dir, filepath.FromSlash(object))) }},
		{"marker unreadable", func() error { return st.Put(ctx, metaKey(key), bytes.NewReader([]byte("{"))) }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			if err := damage.do(); err != nil {
				t.Fatal(err)
			}
			before := src.calls.Load()
			// Another worker (another state directory) reads the shared entry.
			other := &Builder{StateDir: t.TempDir(), Store: st}
			res, err := other.Build(ctx, Request{Pipeline: p, TreeHash: treeT, Export: src.export})
			if err != nil {
				t.Fatal(err)
			}
			if res.Cached || src.calls.Load() != before+1 {
				t.Fatalf("a damaged entry was served: %+v", res)
			}
			if res.SHA256 != hexSum || objectSum(t, st, res.Object) != hexSum {
				t.Errorf("rebuilt entry %+v does not hold the built bytes", res)
			}
			if hit, err := other.Build(ctx, Request{Pipeline: p, TreeHash: treeT, Export: src.export}); err != nil || !hit.Cached {
				t.Errorf("the rebuilt entry is not a cache hit: %+v %v", hit, err)
			}
		})
	}
}

// A build's log is stored in the shared store, whatever the outcome, so any
// worker (and `shipline logs`) reads it.
func TestBuildLogsAreStored(t *testing.T) {
	ctx := context.Background()
	st, _ := sharedStore(t)
	b := &Builder{StateDir: t.TempDir(), Store: st}
	p := manifest.Pipeline{Name: "c", Path: "c", Language: manifest.Java, Build: "echo compiling; echo 'error: type mismatch' >&2; exit 3", Artifact: "out/*.bin"}
	_, err := b.Build(ctx, Request{Pipeline: p, TreeHash: treeT, Export: (&source{files: map[string]string{"a": "a"}}).export})
	be := buildErr(t, err, ErrBuildFailed)
	if be.LogPath != LogKey(Key(p, treeT)) || !strings.Contains(be.Msg, "full build log: "+st.String()+"/"+be.LogPath) {
		t.Fatalf("failure names log %q: %s", be.LogPath, be.Msg)
	}
	log, err := st.ReadAll(ctx, be.LogPath)
	if err != nil || !strings.Contains(string(log), "type mismatch") || !strings.Contains(string(log), "exit 3") {
		t.Errorf("stored log (%v):\n%s", err, log)
	}
	if left, _ := os.ReadDir(filepath.Join(b.StateDir, "cache", ".tmp")); len(left) != 0 {
		t.Errorf("build directories left behind: %v", left)
	}
}

// An entry written before the shared store (meta.json and the artifact side
// by side in <state_dir>/cache/<key>/) is still served, byte for byte: the
// default store is state_dir, and releases have pinned those bytes.
func TestEntriesFromBeforeTheStoreAreServed(t *testing.T) {
	b := &Builder{StateDir: t.TempDir()}
	p := manifest.Pipeline{Name: "c", Path: "c", Language: manifest.Java, Build: "exit 1", Artifact: "out/*.bin"}
	key := Key(p, treeT)
	data := []byte("built long ago\n")
	sum := sha256.Sum256(data)
	dir := filepath.Join(b.StateDir, "cache", key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := fmt.Sprintf(`{"key":%q,"pipeline":"c","language":"java","tree_hash":%q,"file":"c.bin","sha256":"%x","size":%d,"builder_version":"1"}`,
		key, treeT, sum, len(data))
	for name, content := range map[string][]byte{"c.bin": data, "meta.json": []byte(meta)} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := &source{files: map[string]string{"a": "a"}}
	res, err := b.Build(context.Background(), Request{Pipeline: p, TreeHash: treeT, Export: src.export})
	if err != nil || !res.Cached || res.Object != "cache/"+key+"/c.bin" || src.calls.Load() != 0 {
		t.Fatalf("old entry: %+v, %v (exports %d)", res, err, src.calls.Load())
	}
	st, _ := b.storage(context.Background())
	if got := objectSum(t, st, res.Object); got != res.SHA256 {
		t.Errorf("served %s, sha256 %s", got, res.SHA256)
	}
}
