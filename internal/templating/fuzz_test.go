package templating

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSeeds adds the definitions of the manifest goldens and of the bad-input
// corpus (job JSON and DAGs) plus a few hand-picked texts.
func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		"", "${", "${}", "$${", "$$${x}", "${a.b}", "${artifact.}", "${var.a b}", "${${x}}", "${var.x}\n${",
		`{"a": "${var.x}", "b": "$${HOME}"}`, `{"n": ${var.n}}`, "é ${release.version} ${project.name}${fabric.name}",
		`{"a": "x \" ${var.in}", "k": "${release.commit}\\"}`,
	} {
		f.Add([]byte(s))
	}
	for _, pattern := range []string{
		"../manifest/testdata/*/jobs/*/*",
		"../../test/badinput/corpus/*/jobs/*/*",
	} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil && len(data) <= 64<<10 {
				f.Add(data)
			}
		}
	}
}

// fuzzValues gives every placeholder of data a value free of `$` and `{`, or,
// with nasty, one full of JSON-hostile characters.
func fuzzValues(data []byte, nasty bool) map[string]string {
	pieces, _ := lex("f", data)
	values := map[string]string{}
	for i, p := range pieces {
		if p.kind != ref {
			continue
		}
		v := "V" + strings.Repeat("x", i%3)
		if nasty {
			v = "q\"b\\s\n\t\x00\u2028<>&\xff" + v
		}
		values[p.name] = v
	}
	return values
}

// checkPositions asserts every position lies within data: line <= lines,
// col <= characters of that line + 1.
func checkPositions(t *testing.T, data []byte, line, col int, what string) {
	t.Helper()
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		t.Fatalf("%s: line %d outside 1..%d", what, line, len(lines))
	}
	if n := utf8.RuneCount(lines[line-1]); col < 1 || col > n+1 {
		t.Fatalf("%s: col %d outside 1..%d on line %d", what, col, n+1, line)
	}
}

func FuzzScan(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, diags := Scan("f", data)
		for _, r := range refs {
			checkPositions(t, data, r.Line, r.Col, "ref "+r.Name)
			if !nameRE.MatchString(r.Name) {
				t.Fatalf("ref %q is not a well-formed name", r.Name)
			}
		}
		for _, d := range diags {
			checkPositions(t, data, d.Line, d.Col, "diagnostic "+d.Summary)
		}
		jrefs, jdiags := ScanJSON("f", data)
		if len(jrefs) > len(refs) {
			t.Fatalf("ScanJSON found %d refs, Scan %d", len(jrefs), len(refs))
		}
		for _, d := range jdiags {
			checkPositions(t, data, d.Line, d.Col, "JSON diagnostic "+d.Summary)
		}
		// Every well-formed placeholder is a ref or was diagnosed.
		if len(diags) == 0 && bytes.Count(data, []byte("${")) < len(refs) {
			t.Fatalf("more refs (%d) than `${` in the input", len(refs))
		}
	})
}

func FuzzRender(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		values := fuzzValues(data, false)
		out, err := Render("f", data, values)
		_, diags := Scan("f", data)
		if (err != nil) != (len(diags) > 0) {
			t.Fatalf("Render err = %v but Scan diagnostics = %v", err, diags)
		}
		if err != nil {
			return
		}
		pieces, _ := lex("f", data)
		escapes := 0
		for _, p := range pieces {
			if p.kind == escape {
				escapes++
			}
		}
		// Values hold no `$` or `{`: each `${` of the output is an escaped `$${`.
		if n := bytes.Count(out, []byte("${")); n != escapes {
			t.Fatalf("output has %d `${` but the input %d escapes\ninput:  %q\noutput: %q", n, escapes, data, out)
		}
		// Render without placeholders or escapes is the identity.
		if escapes == 0 && len(values) == 0 && !bytes.Equal(out, data) {
			t.Fatalf("Render changed a text without placeholders: %q -> %q", data, out)
		}
	})
}

func FuzzRenderJSON(f *testing.F) {
	fuzzSeeds(f)
	f.Add([]byte(`{"a": "${var.x}", "b": {"c": ["${artifact.p}", "$${x}"]}, "${var.k}": "v"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		values := fuzzValues(data, true)
		out, err := RenderJSON("f", data, values)
		var obj map[string]any
		if json.Unmarshal(data, &obj) != nil || obj == nil {
			return // only valid JSON objects have an invariant
		}
		if err != nil {
			// A valid JSON object fails only for malformed or outside-string placeholders.
			refs, d := ScanJSON("f", data)
			if len(d) == 0 {
				t.Fatalf("RenderJSON failed on a valid object whose placeholders are fine (%v): %v", refs, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("RenderJSON of a valid object is invalid JSON\ninput:  %q\noutput: %q", data, out)
		}
		var back map[string]any
		if err := json.Unmarshal(out, &back); err != nil || back == nil {
			t.Fatalf("RenderJSON output is not an object: %q", out)
		}
	})
}
