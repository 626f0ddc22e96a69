// Package templating finds and fills the placeholders of job definitions
// (Databricks job JSON payloads and Airflow DAG files).
//
// A placeholder is `${NAME}` where NAME is one of
//
//	artifact.<pipeline>   the path of the pipeline's artifact on the target fabric
//	release.version       the release's version tag, e.g. v1.2.0
//	release.commit        the full commit hash the release tag points at
//	project.name          the project's name
//	fabric.name           the name of the fabric being deployed to
//	var.<name>            a variable (shipline.yaml variables, fabric overrides, platform fabric variables)
//
// `$${` is an escape: it is rendered as a literal `${` and never read as a
// placeholder (for example `$${HOME}` in a Bash command becomes `${HOME}`).
// A placeholder must close on the line it opens on.
//
// Positions are 1-based; columns count characters (Unicode code points), not
// bytes, like yaml.v3 and most editors do.
package templating

import (
	"fmt"
	"regexp"
	"unicode/utf8"

	"github.com/shipline/shipline/internal/diag"
)

// Ref is one placeholder found in a file.
type Ref struct {
	// Name is the text between `${` and `}`, for example `artifact.ingest_orders`.
	Name string `json:"name"`
	// Line and Col locate the `$` (1-based; Col counts characters).
	Line int `json:"line"`
	Col  int `json:"col"`
}

// nameRE is the syntax of a placeholder name: dot-separated segments.
var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$`)

// pieceKind tells what a piece of a scanned file is.
type pieceKind int

const (
	literal pieceKind = iota // text copied as is
	escape                   // `$${`, rendered as `${`
	ref                      // a well-formed placeholder
	bad                      // a malformed placeholder, copied as is
)

// piece is a byte range [start,end) of a file.
type piece struct {
	kind       pieceKind
	start, end int
	name       string
	line, col  int
}

// lex splits data into pieces and reports malformed placeholders.
func lex(file string, data []byte) ([]piece, diag.List) {
	var (
		pieces    []piece
		diags     diag.List
		line, col = 1, 1
		litStart  = 0
	)
	flush := func(end int) {
		if end > litStart {
			pieces = append(pieces, piece{kind: literal, start: litStart, end: end})
		}
	}
	// advance moves the position over data[from:to].
	advance := func(from, to int) {
		for i := from; i < to; i++ {
			switch {
			case data[i] == '\n':
				line, col = line+1, 1
			case utf8.RuneStart(data[i]):
				col++
			}
		}
	}
	i := 0
	for i < len(data) {
		if data[i] != '$' {
			advance(i, i+1)
			i++
			continue
		}
		if i+2 < len(data) && data[i+1] == '$' && data[i+2] == '{' {
			flush(i)
			pieces = append(pieces, piece{kind: escape, start: i, end: i + 3, line: line, col: col})
			advance(i, i+3)
			i += 3
			litStart = i
			continue
		}
		if i+1 >= len(data) || data[i+1] != '{' {
			advance(i, i+1)
			i++
			continue
		}
		flush(i)
		p := piece{kind: bad, start: i, line: line, col: col}
		closeAt := -1
		for j := i + 2; j < len(data) && data[j] != '\n'; j++ {
			if data[j] == '}' {
				closeAt = j
				break
			}
		}
		switch {
		case closeAt < 0:
			p.end = i + 2
			diags = append(diags, diag.Errorf(file, line, col,
				"close it with `}` on the same line, or write `$${` for a literal `${`",
				"unterminated placeholder: `${` without a closing `}`"))
		default:
			p.end = closeAt + 1
			name := string(data[i+2 : closeAt])
			switch {
			case name == "":
				diags = append(diags, diag.Errorf(file, line, col,
					"name what to insert, e.g. ${release.version}, or write `$${}` for a literal `${}`",
					"empty placeholder `${}`"))
			case !nameRE.MatchString(name):
				diags = append(diags, diag.Errorf(file, line, col,
					"placeholder names are dot-separated words of letters, digits, `_` and `-` "+
						"(e.g. ${var.schema}); write `$${` for a literal `${`",
					"malformed placeholder %s", quote(name)))
			default:
				p.kind, p.name = ref, name
			}
		}
		pieces = append(pieces, p)
		advance(i, p.end)
		i = p.end
		litStart = i
	}
	flush(len(data))
	return pieces, diags
}

// quote shows a placeholder name as the user wrote it, shortened when long.
func quote(name string) string {
	const max = 60
	if utf8.RuneCountInString(name) > max {
		r := []rune(name)
		name = string(r[:max]) + "…"
	}
	return fmt.Sprintf("`${%s}`", name)
}

// Scan returns every well-formed placeholder of data in order, and a diagnostic
// for each malformed one (`${` without `}` on the same line, `${}`, bad characters).
func Scan(file string, data []byte) ([]Ref, diag.List) {
	pieces, diags := lex(file, data)
	var refs []Ref
	for _, p := range pieces {
		if p.kind == ref {
			refs = append(refs, Ref{Name: p.name, Line: p.line, Col: p.col})
		}
	}
	return refs, diags
}

// ScanJSON is Scan for JSON files: a placeholder is only allowed inside a JSON
// string literal (where RenderJSON escapes the value); one anywhere else is
// reported and not returned.
func ScanJSON(file string, data []byte) ([]Ref, diag.List) {
	pieces, diags := lex(file, data)
	spans := jsonStrings(data)
	var refs []Ref
	for _, p := range pieces {
		if p.kind != ref {
			continue
		}
		if !inSpan(spans, p.start, p.end) {
			diags = append(diags, diag.Errorf(file, p.line, p.col,
				fmt.Sprintf("put it inside a JSON string, e.g. \"${%s}\"", p.name),
				"placeholder %s is outside a JSON string", quote(p.name)))
			continue
		}
		refs = append(refs, Ref{Name: p.name, Line: p.line, Col: p.col})
	}
	sortByPos(diags)
	return refs, diags
}

// span is the byte range [start,end) of a JSON string literal's contents.
type span struct{ start, end int }

// jsonStrings finds the string literals of a JSON text. It does not validate
// the JSON; an unterminated string runs to the end of data.
func jsonStrings(data []byte) []span {
	var spans []span
	for i := 0; i < len(data); i++ {
		if data[i] != '"' {
			continue
		}
		start := i + 1
		j := start
		for j < len(data) && data[j] != '"' {
			if data[j] == '\\' {
				j++
			}
			j++
		}
		if j > len(data) {
			j = len(data)
		}
		spans = append(spans, span{start, j})
		i = j
	}
	return spans
}

func inSpan(spans []span, start, end int) bool {
	for _, s := range spans {
		if start >= s.start && end <= s.end {
			return true
		}
		if s.start > start {
			break
		}
	}
	return false
}

// sortByPos orders diagnostics of one file by line and column (stable).
func sortByPos(l diag.List) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && (l[j].Line < l[j-1].Line || l[j].Line == l[j-1].Line && l[j].Col < l[j-1].Col); j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}
