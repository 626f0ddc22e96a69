package templating

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/shipline/shipline/internal/diag"
)

// Render replaces every placeholder of data with its value and every `$${`
// with `${`. A malformed placeholder or a name missing from values is an
// error (a diag.List naming file:line:col of each).
func Render(file string, data []byte, values map[string]string) ([]byte, error) {
	pieces, diags := lex(file, data)
	return render(file, data, pieces, diags, values, nil, nil)
}

// Line tells where a line of a rendered text comes from.
type Line struct {
	// Source is the 1-based line of the source text.
	Source int `json:"source"`
	// Filled is true when something was filled in on the line (a
	// placeholder's value, or a `$${` escape): its columns may differ from
	// the source's.
	Filled bool `json:"filled,omitempty"`
}

// RenderLines is Render that also maps each rendered line (index 0 is line 1)
// to its line in data. Placeholders close on the line they open on, so lines
// only shift when a value holds a newline: the extra rendered lines map to the
// placeholder's line.
func RenderLines(file string, data []byte, values map[string]string) ([]byte, []Line, error) {
	pieces, diags := lex(file, data)
	lines := []Line{{Source: 1}}
	out, err := render(file, data, pieces, diags, values, nil, &lines)
	if err != nil {
		return nil, nil, err
	}
	return out, lines, nil
}

// RenderJSON is Render for JSON texts: values are escaped for a JSON string
// (quotes, backslashes, control characters), and a placeholder outside a JSON
// string literal is an error.
func RenderJSON(file string, data []byte, values map[string]string) ([]byte, error) {
	pieces, diags := lex(file, data)
	spans := jsonStrings(data)
	for _, p := range pieces {
		if p.kind == ref && !inSpan(spans, p.start, p.end) {
			diags = append(diags, diag.Errorf(file, p.line, p.col,
				fmt.Sprintf("put it inside a JSON string, e.g. \"${%s}\"", p.name),
				"placeholder %s is outside a JSON string", quote(p.name)))
		}
	}
	sortByPos(diags)
	return render(file, data, pieces, diags, values, jsonEscape, nil)
}

// render fills the pieces in; with lines non-nil (holding line 1) it appends
// the source line of each further rendered line.
func render(file string, data []byte, pieces []piece, diags diag.List, values map[string]string, esc func(string) string, lines *[]Line) ([]byte, error) {
	src := 1
	// track records the rendered text s: copied (the source moves on with
	// it) or filled in (one source line).
	track := func(s string, filled bool) {
		if lines == nil {
			return
		}
		if filled {
			(*lines)[len(*lines)-1].Filled = true
		}
		for range strings.Count(s, "\n") {
			if !filled {
				src++
			}
			*lines = append(*lines, Line{Source: src, Filled: filled})
		}
	}
	var out bytes.Buffer
	out.Grow(len(data))
	for _, p := range pieces {
		switch p.kind {
		case literal, bad:
			out.Write(data[p.start:p.end])
			track(string(data[p.start:p.end]), false)
		case escape:
			out.WriteString("${")
			track("${", true)
		case ref:
			v, ok := values[p.name]
			if !ok {
				diags = append(diags, diag.Errorf(file, p.line, p.col,
					"define it (see shipline.yaml variables and fabric overrides), or remove the placeholder",
					"no value for %s", quote(p.name)))
				continue
			}
			if esc != nil {
				v = esc(v)
			}
			out.WriteString(v)
			track(v, true)
		}
	}
	if len(diags) > 0 {
		sortByPos(diags)
		return nil, diags
	}
	return out.Bytes(), nil
}

// jsonEscape returns s encoded as the inside of a JSON string literal.
func jsonEscape(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	q := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return string(q[1 : len(q)-1])
}
