// Package yamlnode decodes YAML configuration files through yaml.v3 nodes so
// that every problem is reported as a diag.Diagnostic with file:line:col.
// It is shared by shipline.yaml (internal/manifest) and platform.yaml
// (internal/platform).
package yamlnode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/diag"
)

// Pos is a 1-based position in a YAML file; Col counts characters.
type Pos struct{ Line, Col int }

// PosOf returns the position of a node.
func PosOf(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

var (
	lineRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	anchorRE = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// position converts a byte offset of data into a 1-based line and character column.
func position(data []byte, off int) (int, int) {
	before := data[:min(off, len(data))]
	line := bytes.Count(before, []byte("\n")) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}

// Parse reads one YAML document and returns its top node, or nil when the
// document is empty. Syntax errors are diagnostics.
func Parse(file string, data []byte) (*yaml.Node, diag.List) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, diag.List{syntaxError(file, data, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, diag.List{diag.Errorf(file, extra.Line, extra.Column,
			"remove the `---` separator and keep one document", "%s holds more than one YAML document", file)}
	} else if !errors.Is(err, io.EOF) {
		return nil, diag.List{syntaxError(file, data, err)}
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return Resolve(doc.Content[0]), nil
	}
	return Resolve(&doc), nil
}

func syntaxError(file string, data []byte, err error) diag.Diagnostic {
	msg := err.Error()
	line, problem := 0, strings.TrimPrefix(msg, "yaml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		problem = m[2]
	}
	if strings.HasPrefix(problem, parserProblem) {
		// yaml.v3 reports a parser error's line 0-based (its scanner errors
		// 1-based), and none at all on the first line.
		// The end of a file without a final newline counts as its last line.
		last := bytes.Count(data, []byte("\n"))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			last++
		}
		return parserError(file, max(1, min(line+1, last)), problem)
	}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d := diag.Diagnostic{Severity: diag.Error, File: file, Line: line,
			Summary: "invalid YAML: " + m[2], Fix: "fix the YAML syntax (indentation, quoting, `key: value` pairs)"}
		// yaml.v3 gives no column; a tab in the indentation is the usual culprit.
		if col, ok := indentTab(data, line); ok {
			d.Col = col
			d.Summary += " (a tab in the indentation)"
			d.Fix = "indent with spaces: YAML does not allow tabs for indentation"
		}
		return d
	}
	d := diag.Diagnostic{Severity: diag.Error, File: file,
		Summary: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: "), Fix: "fix the YAML syntax"}
	if m := anchorRE.FindStringSubmatch(msg); m != nil {
		// yaml.v3 gives no position: point at the first use of the alias.
		if i := strings.Index(string(data), "*"+m[1]); i >= 0 {
			d.Line, d.Col = position(data, i)
		}
		d.Fix = fmt.Sprintf("define the anchor &%s before this alias uses it, or write the value in full", m[1])
		return d
	}
	// Encoding errors come without a position: find the first offending byte.
	if line, col, what, ok := firstNonText(data); ok {
		d.Line, d.Col = line, col
		d.Summary = fmt.Sprintf("not a YAML text file: %s at line %d, column %d", what, line, col)
		d.Fix = "save the file as UTF-8 text without control characters (is this a binary file?)"
	}
	return d
}

// parserProblem starts every problem of yaml.v3's parser (as opposed to its
// scanner): a collection that does not go on as YAML expects.
const parserProblem = "did not find expected "

// parserError is a parser problem at line, where yaml.v3 points: the start of
// the collection that does not go on as expected, or the problem itself.
func parserError(file string, line int, problem string) diag.Diagnostic {
	d := diag.Diagnostic{Severity: diag.Error, File: file, Line: line, Summary: "invalid YAML: " + problem,
		Fix: "fix the YAML syntax (indentation, quoting, `key: value` pairs)"}
	switch {
	case strings.HasSuffix(problem, "'}'"), strings.HasSuffix(problem, "']'"):
		d.Summary += " (a `{…}` or `[…]` from this line on is not closed where YAML expects)"
		d.Fix = "close it on the line it opens; inside `{…}` and `[…]` quote a value holding `?`, `,`, `[`, `]`, `{`, `}` or ` #`, " +
			"e.g. dags_folder: \"s3://bucket/dags?region=eu-west-1\""
	case strings.HasSuffix(problem, "key"), strings.HasSuffix(problem, "indicator"):
		d.Summary += " (in the block that starts on this line, or at it)"
		d.Fix = "indent the entries of one mapping (or the `-` items of one list) to the same column, and nested ones further"
	}
	return d
}

// indentTab returns the column of a tab in the leading whitespace of line
// (1-based) of data, or of the line before it (yaml.v3 often reports the
// line after the offending one).
func indentTab(data []byte, line int) (int, bool) {
	lines := strings.Split(string(data), "\n")
	for _, l := range []int{line, line - 1} {
		if l < 1 || l > len(lines) {
			continue
		}
		text := lines[l-1]
		for i, r := range text {
			if r == '\t' {
				if l != line {
					return 0, false // only when the reported line itself has it
				}
				return i + 1, true
			}
			if r != ' ' {
				break
			}
		}
	}
	return 0, false
}

// firstNonText finds the first byte of data that YAML does not accept in a
// UTF-8 text: invalid UTF-8, or a control character other than tab, LF and CR.
func firstNonText(data []byte) (line, col int, what string, ok bool) {
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, col, fmt.Sprintf("invalid UTF-8 byte 0x%02x", data[i]), true
		case r == '\n':
			line, col = line+1, 1
		case r < 0x20 && r != '\t' && r != '\r', r == 0x7f:
			return line, col, fmt.Sprintf("control character %U", r), true
		default:
			col++
		}
		i += size
	}
	return 0, 0, "", false
}

// Resolve follows aliases (*anchor) to the node they name. The node returned
// for an alias is a copy of its target placed where the alias is written, so
// that a problem with the value is reported where it is used; the target's
// children keep their own positions.
func Resolve(n *yaml.Node) *yaml.Node {
	if n == nil || n.Kind != yaml.AliasNode {
		return n
	}
	at := n
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n == at {
		return n
	}
	cp := *n
	cp.Line, cp.Column = at.Line, at.Column
	return &cp
}

// IsNull reports whether n is absent or an explicit null / empty value.
func IsNull(n *yaml.Node) bool {
	n = Resolve(n)
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// KindName describes a node for "must be X, not Y" messages.
func KindName(n *yaml.Node) string {
	n = Resolve(n)
	switch {
	case IsNull(n):
		return "empty"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "true/false"
	}
	return "a string"
}

// Decoder collects diagnostics for one file.
type Decoder struct {
	File  string
	Diags diag.List
}

// Errorf adds an error at n.
func (d *Decoder) Errorf(n *yaml.Node, fix, format string, args ...any) {
	d.Diags = append(d.Diags, diag.Errorf(d.File, n.Line, n.Column, fix, format, args...))
}

// Warnf adds a warning at n.
func (d *Decoder) Warnf(n *yaml.Node, fix, format string, args ...any) {
	w := diag.Errorf(d.File, n.Line, n.Column, fix, format, args...)
	w.Severity = diag.Warning
	d.Diags = append(d.Diags, w)
}

// Map walks a mapping in document order, calling fn for each key. It reports
// a node that is not a mapping, keys that are not plain strings, duplicate
// keys and, when allowed is non-nil, keys not in allowed. fn is not called for
// rejected keys. It returns false when n is not a mapping.
func (d *Decoder) Map(n *yaml.Node, field string, allowed []string, fn func(key string, k, v *yaml.Node)) bool {
	at := n // an alias is reported where it is used, not where its anchor is
	n = Resolve(n)
	if n.Kind != yaml.MappingNode {
		d.Errorf(at, "write it as a mapping of `key: value` lines (or {key: value})",
			"%s must be a mapping, not %s", field, KindName(n))
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], Resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			d.Errorf(k, "write plain keys; YAML merge keys (<<) and complex keys are not supported",
				"unsupported key in %s", field)
			continue
		}
		key := k.Value
		if first, dup := seen[key]; dup {
			d.Errorf(k, fmt.Sprintf("remove one of them or merge them into the first (line %d)", first),
				"duplicate key %q in %s (first defined at line %d)", key, field, first)
			continue
		}
		seen[key] = k.Line
		if allowed != nil && !contains(allowed, key) {
			fix := "allowed keys: " + strings.Join(allowed, ", ")
			if s := suggest(key, allowed); s != "" {
				fix = fmt.Sprintf("did you mean %q? ", s) + fix
			}
			d.Errorf(k, fix, "unknown key %q in %s", key, field)
			continue
		}
		fn(key, k, v)
	}
	return true
}

// String decodes a scalar string. Numbers and booleans are refused (a quoted
// "123" is fine); null reports false without a diagnostic.
func (d *Decoder) String(n *yaml.Node, field string) (string, bool) {
	at := n
	n = Resolve(n)
	if IsNull(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		d.Errorf(at, "write a string (quote it if it looks like a number or true/false)",
			"%s must be a string, not %s", field, KindName(n))
		return "", false
	}
	return n.Value, true
}

// Scalar decodes any scalar (string, number, boolean) as its text.
func (d *Decoder) Scalar(n *yaml.Node, field string) (string, bool) {
	at := n
	n = Resolve(n)
	if n.Kind != yaml.ScalarNode || IsNull(n) {
		d.Errorf(at, `write a single value such as a string, a number or true/false (use "" for an empty string)`,
			"%s must be a single value, not %s", field, KindName(n))
		return "", false
	}
	return n.Value, true
}

// Bool decodes true/false.
func (d *Decoder) Bool(n *yaml.Node, field string) (bool, bool) {
	at := n
	n = Resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, true
		}
	}
	d.Errorf(at, "write true or false", "%s must be true or false, not %s", field, KindName(n))
	return false, false
}

// Int decodes an integer.
func (d *Decoder) Int(n *yaml.Node, field string) (int, bool) {
	at := n
	n = Resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		var i int
		if err := n.Decode(&i); err == nil {
			return i, true
		}
	}
	d.Errorf(at, "write a whole number, e.g. 1", "%s must be a whole number, not %s", field, KindName(n))
	return 0, false
}

// StringList decodes a list of strings. Each item's node is returned too.
func (d *Decoder) StringList(n *yaml.Node, field string) ([]string, []*yaml.Node, bool) {
	at := n
	n = Resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.Errorf(at, "write a YAML list, e.g. [a, b]", "%s must be a list, not %s", field, KindName(n))
		return nil, nil, false
	}
	var out []string
	var nodes []*yaml.Node
	ok := true
	for i, it := range n.Content {
		s, good := d.String(it, fmt.Sprintf("%s[%d]", field, i))
		if !good {
			if IsNull(it) {
				d.Errorf(it, "remove the empty item", "%s[%d] is empty", field, i)
			}
			ok = false
			continue
		}
		out = append(out, s)
		nodes = append(nodes, Resolve(it))
	}
	return out, nodes, ok
}

// Vars decodes a string→string mapping of variables: keys must match keyRE,
// values may be strings, numbers or booleans (kept as written); mappings,
// lists and empty values are errors.
func (d *Decoder) Vars(n *yaml.Node, field string, keyRE *regexp.Regexp, keyRule string) (map[string]string, map[string]Pos) {
	out := map[string]string{}
	pos := map[string]Pos{}
	d.Map(n, field, nil, func(key string, k, v *yaml.Node) {
		if !keyRE.MatchString(key) {
			d.Errorf(k, keyRule, "invalid variable name %q in %s", key, field)
			return
		}
		if IsNull(v) {
			d.Errorf(k, `give it a value (use "" for an empty string)`, "variable %s.%s has no value", field, key)
			return
		}
		s, ok := d.Scalar(v, field+"."+key)
		if !ok {
			return
		}
		out[key] = s
		pos[key] = PosOf(k)
	})
	return out, pos
}

// Sort orders diagnostics of one file by position, keeping the order of equal positions.
func Sort(l diag.List) {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Col < l[j].Col
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns the allowed key closest to key when it is a likely typo.
func suggest(key string, allowed []string) string {
	best, bestD := "", 3
	for _, a := range allowed {
		if strings.EqualFold(a, key) {
			return a
		}
		if dist := levenshtein(key, a); dist < bestD {
			best, bestD = a, dist
		}
	}
	if bestD <= 2 && len(key) > 3 {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
