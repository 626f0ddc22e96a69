package manifest

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

func FuzzParseManifest(f *testing.F) {
	for _, pattern := range []string{
		"testdata/*/shipline.yaml",
		"../../test/badinput/corpus/*/shipline.yaml",
	} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil && len(data) <= 64<<10 {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("base: &b {path: p, language: python}\npipelines: {p: {<<: *b}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, diags := Parse(FileName, data)
		if m == nil && len(diags) == 0 {
			t.Fatal("no manifest and no diagnostics")
		}
		for _, d := range diags {
			if d.Summary == "" || d.File != FileName {
				t.Fatalf("bad diagnostic %+v", d)
			}
		}
		// Load the same manifest from a tree holding a pipeline and a definition.
		fsys := fstest.MapFS{
			FileName:               {Data: data},
			"pipelines/p/setup.py": {Data: []byte("")},
			"jobs/j/job.json":      {Data: []byte(`{"name": "${project.name}", "t": "${artifact.p}", "v": "${var.x}"}`)},
			"jobs/j/dag.py":        {Data: []byte("x = '${var.y}' ${")},
			"link":                 {Data: []byte("/etc"), Mode: 0o777 | os.ModeSymlink},
			"pipelines/up":         {Data: []byte(".."), Mode: 0o777 | os.ModeSymlink},
		}
		lm, ldiags := Load(fsys)
		if lm == nil && len(ldiags) == 0 {
			t.Fatal("Load: no manifest and no diagnostics")
		}
		for _, d := range ldiags {
			if d.Summary == "" {
				t.Fatalf("Load: diagnostic without summary %+v", d)
			}
		}
	})
}
