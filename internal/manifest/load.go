package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/templating"
)

// MaxFileSize limits shipline.yaml and each job definition.
const MaxFileSize = 1 << 20 // 1 MiB

// Load reads shipline.yaml at the root of fsys (a checkout, or a commit's tree),
// validates it, checks that pipeline directories and definition files exist,
// checks each Databricks definition is a JSON object, and checks the
// placeholders of every definition against the job's pipelines and the
// variables shipline.yaml defines. Without the platform config a variable
// that shipline.yaml does not define is only a warning (see Validate).
//
// Diagnostics name files by their slash path relative to the project root;
// shipline.yaml's come first, then each definition's, all in document order.
// The manifest is returned (possibly partial) unless shipline.yaml is missing
// or unreadable YAML.
func Load(fsys fs.FS) (*Manifest, diag.List) { return load(fsys, true) }

// load is Load; checkVars false leaves ${var.*} placeholders to CheckPlatform.
func load(fsys fs.FS, checkVars bool) (*Manifest, diag.List) {
	data, d, ok := readLimited(fsys, FileName)
	if !ok {
		if errors.Is(d.err, fs.ErrNotExist) {
			return nil, diag.List{{Severity: diag.Error, File: FileName,
				Summary: "no shipline.yaml at the project root",
				Fix:     "run from the project's root directory, or create shipline.yaml there"}}
		}
		return nil, diag.List{d.diag}
	}
	m, diags := Parse(FileName, data)
	if m == nil {
		return nil, diags
	}
	for _, name := range m.byPosition("pipelines.", sortedKeys(m.Pipelines)) {
		diags = append(diags, m.checkPipelineDir(fsys, m.Pipelines[name])...)
	}
	diags = append(diags, m.checkLibraries(fsys)...)
	m.setUses(fsys)
	scanned := map[string]scan{}
	for _, name := range m.byPosition("jobs.", sortedKeys(m.Jobs)) {
		diags = append(diags, m.checkDefinition(fsys, m.Jobs[name], scanned, checkVars)...)
	}
	return m, order(diags)
}

// checkPipelineDir checks the pipeline's path is a directory of the project.
func (m *Manifest) checkPipelineDir(fsys fs.FS, p Pipeline) diag.List {
	if p.Path == "" || problem(p.Path) {
		return nil
	}
	field := "pipelines." + p.Name + ".path"
	resolved, err := resolveInside(fsys, p.Path)
	if errors.Is(err, errOutside) {
		return diag.List{m.diagAt(diag.Error, field, "keep the pipeline's files inside the repository, not behind a symlink to somewhere else",
			"pipeline %q: %s leads outside the project through a symlink (%v)", p.Name, p.Path, linkOf(err))}
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = fs.Stat(fsys, resolved)
	}
	switch {
	case err != nil:
		return diag.List{m.diagAt(diag.Error, field, "create the directory, or fix the path (relative to the project root)",
			"pipeline %q: directory %s does not exist", p.Name, p.Path)}
	case !fi.IsDir():
		return diag.List{m.diagAt(diag.Error, field, "point path at the pipeline's directory, not a file",
			"pipeline %q: %s is not a directory", p.Name, p.Path)}
	}
	return nil
}

// scan is a definition file read once, even when jobs share it.
type scan struct {
	refs []templating.Ref
	ok   bool
}

// checkDefinition checks the job's definition file and its placeholders, and
// remembers the placeholders for CheckPlatform.
func (m *Manifest) checkDefinition(fsys fs.FS, j Job, scanned map[string]scan, checkVars bool) diag.List {
	if j.Definition == "" || j.Definition == "." || problem(j.Definition) {
		return nil
	}
	field := "jobs." + j.Name + ".definition"
	var diags diag.List
	s, done := scanned[j.Definition]
	if !done {
		data, r, ok := readLimited(fsys, j.Definition)
		switch {
		case !ok && errors.Is(r.err, fs.ErrNotExist):
			diags = append(diags, m.diagAt(diag.Error, field, "create the file, or fix the path (relative to the project root)",
				"job %q: definition %s does not exist", j.Name, j.Definition))
		case !ok:
			r.diag.Summary = fmt.Sprintf("job %q: definition %s", j.Name, r.diag.Summary)
			r.diag.File, r.diag.Field = "", field
			if p, found := m.pos(field); found {
				r.diag.File, r.diag.Line, r.diag.Col = FileName, p.Line, p.Col
			}
			diags = append(diags, r.diag)
		default:
			var d diag.List
			s, d = scanDefinition(j.Definition, j.Scheduler, data)
			diags = append(diags, d...)
		}
		scanned[j.Definition] = s
	}
	if !s.ok {
		return diags
	}
	m.src.defs[j.Name] = definition{file: j.Definition, refs: s.refs}
	refs := s.refs
	if !checkVars {
		refs = withoutVars(refs)
	}
	return append(diags, templating.CheckRefs(j.Definition, refs, templating.Known{
		Pipelines: j.Pipelines, Vars: m.allVars(), VarsComplete: false,
	})...)
}

// scanDefinition finds the placeholders of a definition; a Databricks
// definition must also be a JSON object with placeholders only inside strings.
func scanDefinition(file string, sched Scheduler, data []byte) (scan, diag.List) {
	if line, col, what, bad := notText(data); bad {
		return scan{}, diag.List{diag.Errorf(file, line, col,
			"commit the job definition as UTF-8 text (is this a binary file?)",
			"the definition is not a text file: %s", what)}
	}
	if sched != Databricks {
		refs, d := templating.Scan(file, data)
		return scan{refs: refs, ok: true}, d
	}
	refs, d := templating.ScanJSON(file, data)
	if d.HasErrors() {
		// A placeholder outside a string also breaks the JSON: report it once.
		return scan{refs: refs, ok: true}, d
	}
	if jd := checkJSONObject(file, data); jd != nil {
		return scan{}, append(d, *jd)
	}
	return scan{refs: refs, ok: true}, d
}

// checkJSONObject reports the first JSON syntax error, or a top level that is
// not an object, with line:col in file.
func checkJSONObject(file string, data []byte) *diag.Diagnostic {
	const fix = "fix the JSON syntax; the file is a Databricks Jobs API 2.2 create payload (a JSON object)"
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil {
		if _, ok := v.(map[string]any); !ok {
			off := len(data) - len(bytes.TrimLeft(data, " \t\r\n"))
			line, col := lineCol(data, off)
			d := diag.Errorf(file, line, col, "make the top level a JSON object: { \"name\": ..., \"tasks\": [...] }",
				"the Databricks job definition must be a JSON object")
			return &d
		}
		end := int(dec.InputOffset())
		if _, err2 := dec.Token(); err2 != io.EOF {
			end += len(data[end:]) - len(bytes.TrimLeft(data[end:], " \t\r\n"))
			line, col := lineCol(data, end)
			d := diag.Errorf(file, line, col, "remove everything after the closing } of the job",
				"invalid JSON: unexpected data after the top-level object")
			return &d
		}
		return nil
	}
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		line, col := lineCol(data, max(int(syn.Offset)-1, 0))
		d := diag.Errorf(file, line, col, fix, "invalid JSON: %s", syn.Error())
		return &d
	case errors.Is(err, io.EOF) && len(bytes.TrimSpace(data)) == 0:
		d := diag.Errorf(file, 0, 0, "write the job as a Jobs API 2.2 create payload (a JSON object)", "the definition is empty")
		return &d
	default: // io.ErrUnexpectedEOF
		line, col := lineCol(data, len(data))
		d := diag.Errorf(file, line, col, fix+": close every { [ and \"", "invalid JSON: unexpected end of file")
		return &d
	}
}

// notText finds the first NUL byte or invalid UTF-8 sequence of data.
func notText(data []byte) (line, col int, what string, bad bool) {
	if utf8.Valid(data) && bytes.IndexByte(data, 0) < 0 {
		return 0, 0, "", false
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == 0 || r == utf8.RuneError && size <= 1 {
			line, col = lineCol(data, i)
			if r == 0 {
				return line, col, fmt.Sprintf("a NUL byte at line %d, column %d", line, col), true
			}
			return line, col, fmt.Sprintf("invalid UTF-8 byte 0x%02x at line %d, column %d", data[i], line, col), true
		}
		i += size
	}
	return 0, 0, "", false
}

// lineCol converts a byte offset into a 1-based line and character column.
func lineCol(data []byte, off int) (int, int) {
	off = min(off, len(data))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}

// ReadFile reads a project file the way Load does: a regular file inside the
// project (no symlink leading out, no directory, device or FIFO) of at most
// MaxFileSize bytes. The error is the diagnostic Load reports for it.
func ReadFile(fsys fs.FS, name string) ([]byte, error) {
	data, r, ok := readLimited(fsys, name)
	if !ok {
		return nil, diag.List{r.diag}
	}
	return data, nil
}

// readResult is why a file could not be read.
type readResult struct {
	err  error
	diag diag.Diagnostic
}

// readLimited reads a project file of at most MaxFileSize bytes. The file must
// be a regular file inside the project: a symlink (of the file or of a
// directory on its way) that leads outside the project, a directory, a device
// or a FIFO is refused, and at most MaxFileSize+1 bytes are ever read.
func readLimited(fsys fs.FS, name string) ([]byte, readResult, bool) {
	resolved, err := resolveInside(fsys, name)
	if err != nil {
		if errors.Is(err, errOutside) {
			return nil, readResult{err: err, diag: diag.Diagnostic{Severity: diag.Error, File: name,
				Summary: fmt.Sprintf("%s leads outside the project through a symlink (%v)", name, linkOf(err)),
				Fix:     "commit the file itself inside the repository, not a link to somewhere else"}}, false
		}
		return nil, readResult{err: err, diag: diag.Diagnostic{Severity: diag.Error, File: name,
			Summary: fmt.Sprintf("cannot read %s: %v", name, unwrapPath(err)), Fix: "check the file exists and is readable"}}, false
	}
	fi, err := fs.Stat(fsys, resolved)
	if err != nil {
		return nil, readResult{err: err, diag: diag.Diagnostic{Severity: diag.Error, File: name,
			Summary: fmt.Sprintf("cannot read %s: %v", name, unwrapPath(err)), Fix: "check the file exists and is readable"}}, false
	}
	if fi.IsDir() {
		return nil, readResult{err: errors.New("is a directory"), diag: diag.Diagnostic{Severity: diag.Error, File: name,
			Summary: name + " is a directory, not a file", Fix: "point at a file"}}, false
	}
	if !fi.Mode().IsRegular() {
		return nil, readResult{err: errors.New("not a regular file"), diag: diag.Diagnostic{Severity: diag.Error, File: name,
			Summary: fmt.Sprintf("%s is not a regular file (%s)", name, fi.Mode().Type()), Fix: "point at a plain file committed in the repository"}}, false
	}
	tooLarge := func(size int64) readResult {
		return readResult{err: errors.New("too large"), diag: diag.Diagnostic{Severity: diag.Error, File: name,
			Summary: fmt.Sprintf("%s is too large (%d bytes; the limit is %d bytes = 1 MiB)", name, size, MaxFileSize),
			Fix:     tooLargeFix(name)}}
	}
	if fi.Size() > MaxFileSize {
		return nil, tooLarge(fi.Size()), false
	}
	f, err := fsys.Open(resolved)
	var data []byte
	if err == nil {
		data, err = io.ReadAll(io.LimitReader(f, MaxFileSize+1))
		f.Close()
	}
	if err != nil {
		return nil, readResult{err: err, diag: diag.Diagnostic{Severity: diag.Error, File: name,
			Summary: fmt.Sprintf("cannot read %s: %v", name, unwrapPath(err)), Fix: "check the file is readable"}}, false
	}
	if len(data) > MaxFileSize { // grew since Stat, or a size the file system does not report
		return nil, tooLarge(int64(len(data))), false
	}
	return data, readResult{}, true
}

// errOutside is a path of the project that leads outside it through a symlink.
var errOutside = errors.New("symlink leads outside the project")

// outsideError names the link that leads outside the project.
type outsideError struct{ link, target string }

func (e *outsideError) Error() string        { return e.link + " -> " + e.target }
func (e *outsideError) Is(target error) bool { return target == errOutside }

// linkOf renders "link -> target" for an error wrapping an *outsideError.
func linkOf(err error) string {
	var o *outsideError
	if errors.As(err, &o) {
		return o.Error()
	}
	return unwrapPath(err).Error()
}

// resolveInside follows the symlinks along name (a valid fs path) and returns
// the path it leads to inside fsys, or an error wrapping errOutside when a
// link is absolute or climbs above the root. File systems without symlinks
// (no fs.ReadLinkFS) return name unchanged.
func resolveInside(fsys fs.FS, name string) (string, error) {
	if _, ok := fsys.(fs.ReadLinkFS); !ok || name == "." {
		return name, nil
	}
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	hops := 0
	parts := strings.Split(name, "/")
	cur := "."
	for i := 0; i < len(parts); i++ {
		p := path.Join(cur, parts[i])
		fi, err := fs.Lstat(fsys, p)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = p
			continue
		}
		if hops++; hops > 40 {
			return "", &fs.PathError{Op: "open", Path: name, Err: errors.New("too many levels of symbolic links")}
		}
		target, err := fs.ReadLink(fsys, p)
		if err != nil {
			return "", err
		}
		t := filepath.ToSlash(target)
		if t == "" || strings.HasPrefix(t, "/") || filepath.IsAbs(target) || filepath.VolumeName(target) != "" {
			return "", &outsideError{link: p, target: target}
		}
		resolved := path.Join(cur, t)
		if resolved == ".." || strings.HasPrefix(resolved, "../") {
			return "", &outsideError{link: p, target: target}
		}
		// Continue from the link's target with the remaining elements.
		rest := append(strings.Split(resolved, "/"), parts[i+1:]...)
		if resolved == "." {
			rest = parts[i+1:]
		}
		parts, cur, i = rest, ".", -1
	}
	return cur, nil
}

func tooLargeFix(name string) string {
	if name == FileName {
		return "check this is the right file: shipline.yaml only names pipelines and jobs"
	}
	return "keep definitions small: move data and code into the pipelines, not the job definition"
}

// unwrapPath drops the path from *fs.PathError (the diagnostic names the file).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// problem reports whether a path was already rejected by Parse.
func problem(p string) bool { s, _ := relPathProblem(p); return s != "" }

func withoutVars(refs []templating.Ref) []templating.Ref {
	var out []templating.Ref
	for _, r := range refs {
		if !strings.HasPrefix(r.Name, templating.VarPrefix) {
			out = append(out, r)
		}
	}
	return out
}

// allVars is every variable shipline.yaml defines, on any fabric.
func (m *Manifest) allVars() map[string]bool {
	vars := map[string]bool{}
	for k := range m.Variables {
		vars[k] = true
	}
	for _, o := range m.Fabrics {
		for k := range o.Variables {
			vars[k] = true
		}
	}
	return vars
}

// byPosition orders names by where prefix+name sits in shipline.yaml.
func (m *Manifest) byPosition(prefix string, names []string) []string {
	sort.SliceStable(names, func(i, j int) bool {
		a, _ := m.pos(prefix + names[i])
		b, _ := m.pos(prefix + names[j])
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return names
}

// order sorts diagnostics: shipline.yaml first, then other files in order of
// first appearance, then those without a file; by position within a file;
// exact duplicates (a definition shared by jobs) are dropped.
func order(l diag.List) diag.List {
	rank := map[string]int{FileName: 0}
	for _, d := range l {
		if _, ok := rank[d.File]; !ok && d.File != "" {
			rank[d.File] = len(rank)
		}
	}
	rank[""] = len(rank) + 1
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if rank[a.File] != rank[b.File] {
			return rank[a.File] < rank[b.File]
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	out := l[:0]
	seen := map[diag.Diagnostic]bool{}
	for _, d := range l {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
