package yamlnode

import (
	"strings"
	"testing"
)

// A YAML syntax error points at the right line: yaml.v3 gives its parser's
// problems (an unclosed `{…}`, a mis-indented block) one line early, or no
// line on the first one; the diagnostic says the 1-based line and how to fix
// it (quoting inside a flow mapping, indentation of a block).
func TestSyntaxErrorLines(t *testing.T) {
	for _, c := range []struct {
		yaml string
		line int
		want string
	}{
		{"a: 1\nb: 2\nc: {d: s3://x/y?region=eu}\ne: 3\n", 3, "quote a value holding `?`"},
		{"teams:\n  a: {members: [x]\nprojects: {}\n", 2, "is not closed where YAML expects"},
		{"a: 1\nb: [1, 2\nc: 3\n", 2, "`[…]` from this line on is not closed"},
		{"{a: 1", 1, "did not find expected ',' or '}'"},
		{"name: demo\npipelines:\n  ingest: {path: p}\n   score: {path: q}\n", 3, "indent the entries of one mapping"},
		{"a:\n  - 1\n  b: 2\n", 2, "did not find expected '-' indicator"},
		{"a: 1\n- b\n", 2, "did not find expected key"},
		// Scanner errors keep yaml.v3's line, which is right.
		{"a: 1\nb: c: d\n", 2, "mapping values are not allowed"},
	} {
		root, diags := Parse("f.yaml", []byte(c.yaml))
		if root != nil || len(diags) != 1 {
			t.Errorf("%q: %v", c.yaml, diags)
			continue
		}
		d := diags[0]
		if d.Line != c.line || !strings.Contains(d.Summary+" "+d.Fix, c.want) {
			t.Errorf("%q: line %d, want %d; %q / %q lacks %q", c.yaml, d.Line, c.line, d.Summary, d.Fix, c.want)
		}
	}
}
