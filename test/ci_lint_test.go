package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
)

// ciExamples is where the example GitHub Actions workflows live.
var ciExamples = filepath.Join("..", "examples", "ci", "github")

// lintWorkflow runs actionlint (its Go module, the same checks as the
// actionlint command) on one workflow's content and returns its findings.
// The scripts of run: steps are checked with shellcheck when it is installed
// (Debian: shellcheck; .ci/run installs it).
func lintWorkflow(t *testing.T, path string, content []byte) []*actionlint.Error {
	t.Helper()
	opts := &actionlint.LinterOptions{}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = sc
	}
	l, err := actionlint.NewLinter(&bytes.Buffer{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.Lint(path, content, nil)
	if err != nil {
		t.Fatalf("actionlint %s: %v", path, err)
	}
	return errs
}

func ciExampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(ciExamples, "*.yml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("examples/ci/github holds %d workflows (%v), want check, release and promote", len(files), err)
	}
	return files
}

// TestCIExamplesLint: every example workflow passes actionlint (and
// shellcheck on its scripts, when installed).
func TestCIExamplesLint(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Log("shellcheck is not installed: the run: scripts are not shellchecked (Debian: shellcheck)")
	}
	for _, f := range ciExampleFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range lintWorkflow(t, f, data) {
				t.Errorf("%s:%d:%d: %s [%s]", f, e.Line, e.Column, e.Message, e.Kind)
			}
		})
	}
}

// TestCIExamplesLintCatchesBrokenWorkflows: the lint is not a formality. A
// broken workflow file, and each example broken in a way that would only
// show on GitHub, are reported.
func TestCIExamplesLintCatchesBrokenWorkflows(t *testing.T) {
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(ciExamples, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	broken, err := os.ReadFile(filepath.Join("testdata", "ci", "broken.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, content, old, new string
		want                    []string // fragments of the findings
	}{
		{name: "testdata/ci/broken.yml", content: string(broken),
			want: []string{`unexpected key "runs-onn"`, `property "verison" is not defined`, `unknown Webhook event "pull-request"`}},
		{name: "release.yml with a misspelt input", content: read("release.yml"),
			old: "inputs.version || github.ref_name", new: "inputs.verison || github.ref_name", want: []string{`property "verison" is not defined`}},
		{name: "promote.yml with a stage input that is not a choice", content: read("promote.yml"),
			old: "type: choice", new: "type: selection", want: []string{`"selection"`}},
		{name: "check.yml without runs-on", content: read("check.yml"),
			old: "    runs-on: ubuntu-latest\n", new: "", want: []string{`"runs-on" section is missing`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			content := c.content
			if c.old != "" {
				if !strings.Contains(content, c.old) {
					t.Fatalf("the example no longer contains %q: update this case", c.old)
				}
				content = strings.Replace(content, c.old, c.new, 1)
			}
			errs := lintWorkflow(t, c.name, []byte(content))
			var found []string
			for _, e := range errs {
				found = append(found, e.Error())
			}
			all := strings.Join(found, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("actionlint did not report %q; it found:\n%s", w, all)
				}
			}
		})
	}
}
