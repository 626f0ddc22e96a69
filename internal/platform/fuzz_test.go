package platform

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParsePlatform(f *testing.F) {
	for _, pattern := range []string{
		"testdata/*.yaml",
		"../manifest/testdata/*/platform.yaml",
		"../../test/badinput/corpus/*/platform.yaml",
	} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil && len(data) <= 64<<10 {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("teams: &t {a: {members: [x]}}\nfabrics: {f: {<<: *t}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, diags := Parse("platform.yaml", data, "/base")
		if cfg == nil && len(diags) == 0 {
			t.Fatal("no config and no diagnostics")
		}
		for _, d := range diags {
			if d.Summary == "" {
				t.Fatalf("diagnostic without a summary: %+v", d)
			}
			if d.File != "platform.yaml" {
				t.Fatalf("diagnostic names file %q: %+v", d.File, d)
			}
		}
	})
}
