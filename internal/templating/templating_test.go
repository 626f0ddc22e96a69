package templating

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/diag"
)

func TestScanPositions(t *testing.T) {
	src := "a: ${release.version}\n" +
		"é ${artifact.ingest_orders} x ${var.schema}\n" +
		"lit $${HOME} and $$ and $x and $\n" +
		"${project.name}${fabric.name}"
	refs, diags := Scan("dag.py", []byte(src))
	if len(diags) != 0 {
		t.Fatalf("diags: %v", diags)
	}
	want := []Ref{
		{"release.version", 1, 4},
		{"artifact.ingest_orders", 2, 3}, // é is one character: columns count characters
		{"var.schema", 2, 31},
		{"project.name", 4, 1},
		{"fabric.name", 4, 16},
	}
	if !reflect.DeepEqual(refs, want) {
		t.Fatalf("refs = %+v\nwant %+v", refs, want)
	}
}

func TestScanMalformed(t *testing.T) {
	src := "x ${}\n  ${var.a b}\n${open\n${1abc} ${var..x} ${ok.name}"
	refs, diags := Scan("f", []byte(src))
	got := diags.Error()
	want := strings.Join([]string{
		"f:1:3: error: empty placeholder `${}`",
		"    fix: name what to insert, e.g. ${release.version}, or write `$${}` for a literal `${}`",
		"f:2:3: error: malformed placeholder `${var.a b}`",
		"    fix: placeholder names are dot-separated words of letters, digits, `_` and `-` (e.g. ${var.schema}); write `$${` for a literal `${`",
		"f:3:1: error: unterminated placeholder: `${` without a closing `}`",
		"    fix: close it with `}` on the same line, or write `$${` for a literal `${`",
		"f:4:1: error: malformed placeholder `${1abc}`",
		"    fix: placeholder names are dot-separated words of letters, digits, `_` and `-` (e.g. ${var.schema}); write `$${` for a literal `${`",
		"f:4:9: error: malformed placeholder `${var..x}`",
		"    fix: placeholder names are dot-separated words of letters, digits, `_` and `-` (e.g. ${var.schema}); write `$${` for a literal `${`",
	}, "\n")
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if len(refs) != 1 || refs[0] != (Ref{"ok.name", 4, 19}) {
		t.Fatalf("refs = %+v", refs)
	}
}

func TestCheckRefs(t *testing.T) {
	refs := []Ref{
		{"artifact.a", 1, 1}, {"artifact.b", 2, 1}, {"release.version", 3, 1}, {"release.commit", 3, 2},
		{"project.name", 3, 3}, {"fabric.name", 3, 4}, {"var.x", 4, 1}, {"var.y", 5, 1}, {"release.date", 6, 1},
		{"var.a.b", 7, 1},
	}
	known := Known{Pipelines: []string{"a"}, Vars: map[string]bool{"x": true}}
	d := CheckRefs("j.json", refs, known)
	var sev []string
	for _, x := range d {
		sev = append(sev, string(x.Severity)+"@"+x.Where())
	}
	want := []string{"error@j.json:2:1", "warning@j.json:5:1", "error@j.json:6:1", "error@j.json:7:1"}
	if !reflect.DeepEqual(sev, want) {
		t.Fatalf("got %v want %v\n%s", sev, want, d.Error())
	}
	if d.HasErrors() != true {
		t.Fatal("want errors")
	}
	known.VarsComplete = true
	d = CheckRefs("j.json", refs[7:8], known)
	if len(d) != 1 || d[0].Severity != diag.Error {
		t.Fatalf("complete vars: %v", d)
	}
}

func TestRender(t *testing.T) {
	src := "path=${artifact.p} v=${release.version} keep=$${HOME} $x ${"[:50]
	_, err := Render("dag.py", []byte(src+"}"), nil)
	if err == nil {
		t.Fatal("want error for malformed placeholder")
	}
	out, err := Render("dag.py", []byte("path=${artifact.p} v=${release.version} keep=$${HOME} $x"),
		map[string]string{"artifact.p": "/a/b.whl", "release.version": "v1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "path=/a/b.whl v=v1.0.0 keep=${HOME} $x"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestRenderMissing(t *testing.T) {
	_, err := Render("dag.py", []byte("a\n  ${var.x} ${var.y}"), map[string]string{"var.y": "1"})
	want := "dag.py:2:3: error: no value for `${var.x}`\n" +
		"    fix: define it (see shipline.yaml variables and fabric overrides), or remove the placeholder"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestRenderJSONEscapes(t *testing.T) {
	src := `{"name": "${project.name} ${var.q}", "tags": {"v": "${release.version}"}, "lit": "$${x}"}`
	vals := map[string]string{
		"project.name":    "p",
		"var.q":           "a \"quoted\" \\ path\nnew <line> \t",
		"release.version": "v1.0.0",
	}
	out, err := RenderJSON("job.json", []byte(src), vals)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("rendered JSON is invalid: %v\n%s", err, out)
	}
	if got["name"] != "p "+vals["var.q"] {
		t.Fatalf("name = %q", got["name"])
	}
	if got["lit"] != "${x}" {
		t.Fatalf("lit = %q", got["lit"])
	}
}

func TestJSONPlaceholderOutsideString(t *testing.T) {
	src := "{\"a\": \"x \\\" ${var.in}\",\n \"n\": ${var.n}}"
	refs, d := ScanJSON("job.json", []byte(src))
	if len(refs) != 1 || refs[0].Name != "var.in" {
		t.Fatalf("refs = %+v", refs)
	}
	want := "job.json:2:7: error: placeholder `${var.n}` is outside a JSON string\n" +
		"    fix: put it inside a JSON string, e.g. \"${var.n}\""
	if d.Error() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", d.Error(), want)
	}
	if _, err := RenderJSON("job.json", []byte(src), map[string]string{"var.in": "1", "var.n": "2"}); err == nil ||
		err.Error() != want {
		t.Fatalf("RenderJSON err = %v", err)
	}
}

// RenderLines maps each rendered line to its source line; a value with
// newlines adds lines that map to the placeholder's line, marked filled.
func TestRenderLines(t *testing.T) {
	src := "a\nb = '${var.doc}' $${x}\nc\n"
	out, lines, err := RenderLines("dag.py", []byte(src), map[string]string{"var.doc": "1\n2\n3"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "a\nb = '1\n2\n3' ${x}\nc\n" {
		t.Fatalf("out = %q", out)
	}
	want := []Line{{Source: 1}, {Source: 2, Filled: true}, {Source: 2, Filled: true}, {Source: 2, Filled: true}, {Source: 3}, {Source: 4}}
	if !reflect.DeepEqual(lines, want) {
		t.Fatalf("lines = %+v, want %+v", lines, want)
	}
}
