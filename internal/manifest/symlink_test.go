package manifest

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// TestSymlinksLeavingTheProject: a pipeline directory, a definition or
// shipline.yaml reached through a symlink that leaves the project is refused;
// links that stay inside are followed.
func TestSymlinksLeavingTheProject(t *testing.T) {
	link := func(target string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink | 0o777}
	}
	manifest := "name: p\npipelines: {p: {path: %s, language: python}}\n" +
		"jobs: {j: {scheduler: airflow, fabric: f, pipelines: [p], definition: %s}}\n"
	for _, c := range []struct {
		name, path, def string
		extra           fstest.MapFS
		want            string
	}{
		{"inside", "pipes", "jobs/dag.py", fstest.MapFS{"pipes": link("real"), "jobs/dag.py": link("../shared/dag.py")}, ""},
		{"dir to /etc", "p", "dag.py", fstest.MapFS{"p": link("/etc")}, `shipline.yaml:2:23: error: pipeline "p": p leads outside the project through a symlink (p -> /etc)`},
		{"dir to ..", "p", "dag.py", fstest.MapFS{"p": link("..")}, "(p -> ..)"},
		{"nested climb", "real/up/x", "dag.py", fstest.MapFS{"real/up": link("../..")}, "(real/up -> ../..)"},
		{"definition to passwd", "real", "jobs/dag.py", fstest.MapFS{"jobs/dag.py": link("/etc/passwd")},
			`shipline.yaml:3:71: error: job "j": definition jobs/dag.py leads outside the project through a symlink (jobs/dag.py -> /etc/passwd)`},
		{"definition through a dir link", "real", "jobs/dag.py", fstest.MapFS{"jobs": link("../outside")}, "(jobs -> ../outside)"},
		{"loop", "real", "a.py", fstest.MapFS{"a.py": link("b.py"), "b.py": link("a.py")}, "too many levels of symbolic links"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				FileName:        {Data: []byte(fmt.Sprintf(manifest, c.path, c.def))},
				"real/setup.py": {Data: []byte("")},
				"shared/dag.py": {Data: []byte("x = 1\n")},
				"dag.py":        {Data: []byte("x = 1\n")},
			}
			for k, v := range c.extra {
				fsys[k] = v
			}
			_, diags := Load(fsys)
			got := diags.Error()
			if c.want == "" {
				if len(diags) != 0 {
					t.Fatalf("unexpected diagnostics:\n%s", got)
				}
				return
			}
			if !strings.Contains(got, c.want) {
				t.Fatalf("got:\n%s\nwant it to contain:\n%s", got, c.want)
			}
		})
	}
}

func TestBinaryDefinition(t *testing.T) {
	fsys := fstest.MapFS{
		FileName: {Data: []byte("name: p\npipelines: {p: {path: p, language: python}}\n" +
			"jobs: {j: {scheduler: airflow, fabric: f, pipelines: [p], definition: dag.py}}\n")},
		"p/setup.py": {Data: []byte("")},
		"dag.py":     {Data: []byte("x = 1\ny = '\xff'\n")},
	}
	_, diags := Load(fsys)
	want := "dag.py:2:6: error: the definition is not a text file: invalid UTF-8 byte 0xff at line 2, column 6"
	if !strings.Contains(diags.Error(), want) {
		t.Fatalf("got:\n%s\nwant:\n%s", diags.Error(), want)
	}
}
