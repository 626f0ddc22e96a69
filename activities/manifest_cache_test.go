package activities

import (
	"io/fs"
	"sync/atomic"
	"testing"
	"testing/fstest"
)

// countingFS counts the opens of shipline.yaml.
type countingFS struct {
	fs.FS
	opens atomic.Int32
}

func (c *countingFS) Open(name string) (fs.File, error) {
	if name == "shipline.yaml" {
		c.opens.Add(1)
	}
	return c.FS.Open(name)
}

// A deployment renders each job at check, plan and upsert: the manifest of a
// commit is loaded once for all of them, and again for another commit.
func TestManifestLoadedOncePerCommit(t *testing.T) {
	tree := &countingFS{FS: fstest.MapFS{
		"shipline.yaml": {Data: []byte("name: p\npipelines:\n  a: {path: a, language: python}\njobs:\n" +
			"  j1: {scheduler: databricks, fabric: dev, pipelines: [a], definition: j1.json}\n" +
			"  j2: {scheduler: databricks, fabric: dev, pipelines: [a], definition: j2.json}\n")},
		"a/pyproject.toml": {Data: []byte("[project]\nname = \"a\"\nversion = \"1.0\"\n")},
		"j1.json":          {Data: []byte(`{"name": "j1", "tasks": [{"task_key": "t", "python_wheel_task": {"package_name": "a", "entry_point": "main"}, "libraries": [{"whl": "${artifact.a}"}]}]}`)},
		"j2.json":          {Data: []byte(`{"name": "j2", "tasks": [{"task_key": "t", "python_wheel_task": {"package_name": "a", "entry_point": "main"}, "libraries": [{"whl": "${artifact.a}"}]}]}`)},
	}}
	d := &Deploy{}
	const commit1, commit2 = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	var once int32         // opens of shipline.yaml by one load
	for i := range 3 * 2 { // three steps, two jobs
		man, diags := d.manifests.load("p", commit1, tree)
		if diags.HasErrors() || man == nil || len(man.Jobs) != 2 {
			t.Fatalf("load: %v %+v", diags, man)
		}
		if i == 0 {
			once = tree.opens.Load()
		}
	}
	if n := tree.opens.Load(); once == 0 || n != once {
		t.Fatalf("shipline.yaml of one commit opened %d times by 6 loads, %d by the first", n, once)
	}
	d.manifests.load("p", commit2, tree)
	if n := tree.opens.Load(); n != 2*once {
		t.Fatalf("another commit's manifest: %d opens in all, want %d", n, 2*once)
	}
	for i := range manifestCacheSize + 1 {
		d.manifests.load("q", string(rune('a'+i)), tree)
	}
	if len(d.manifests.entries) != manifestCacheSize {
		t.Errorf("the cache holds %d manifests, want at most %d", len(d.manifests.entries), manifestCacheSize)
	}
}
