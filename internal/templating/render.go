package templating

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/shipline/shipline/internal/diag"
)

// Render replaces every placeholder of data with its value and every `$${`
// with `${`. A malformed placeholder or a name missing from values is an
// error (a diag.List naming file:line:col of each).
func Render(file string, data []byte, values map[string]string) ([]byte, error) {
	pieces, diags := lex(file, data)
	return render(file, data, pieces, diags, values, nil)
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
	return render(file, data, pieces, diags, values, jsonEscape)
}

func render(file string, data []byte, pieces []piece, diags diag.List, values map[string]string, esc func(string) string) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(data))
	for _, p := range pieces {
		switch p.kind {
		case literal, bad:
			out.Write(data[p.start:p.end])
		case escape:
			out.WriteString("${")
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
