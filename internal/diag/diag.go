// Package diag holds the errors Shipline shows users about their input: each one
// says where (file:line:col, or a job/fabric/field name), what is wrong and how to fix it.
package diag

import (
	"fmt"
	"strings"
)

// Severity tells whether a diagnostic blocks the operation.
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Diagnostic is one finding about user input. It is a plain struct so it can
// travel through workflow and activity payloads unchanged.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	// File is the path as the user knows it (relative to the project or as given on the command line).
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
	// Field names the setting when there is no file position (for example `jobs.daily.fabric`).
	Field   string `json:"field,omitempty"`
	Summary string `json:"summary"`
	// Fix tells the user what to do next.
	Fix string `json:"fix,omitempty"`
}

// Where renders the location part: "file:line:col", "file", or the field name.
func (d Diagnostic) Where() string {
	switch {
	case d.File != "" && d.Line > 0 && d.Col > 0:
		return fmt.Sprintf("%s:%d:%d", d.File, d.Line, d.Col)
	case d.File != "" && d.Line > 0:
		return fmt.Sprintf("%s:%d", d.File, d.Line)
	case d.File != "":
		return d.File
	default:
		return d.Field
	}
}

// String renders one diagnostic the way the CLI prints it:
//
//	shipline.yaml:7:12: error: job "daily" names unknown pipeline "ingest"
//	    fix: define pipelines.ingest or remove it from jobs.daily.pipelines
func (d Diagnostic) String() string {
	var b strings.Builder
	if w := d.Where(); w != "" {
		b.WriteString(w)
		b.WriteString(": ")
	}
	sev := d.Severity
	if sev == "" {
		sev = Error
	}
	b.WriteString(string(sev))
	b.WriteString(": ")
	b.WriteString(d.Summary)
	if d.Fix != "" {
		b.WriteString("\n    fix: ")
		b.WriteString(d.Fix)
	}
	return b.String()
}

// List is an ordered set of diagnostics. A List with at least one Error is
// usable as an error value.
type List []Diagnostic

// HasErrors reports whether any diagnostic is an error (not only warnings).
func (l List) HasErrors() bool {
	for _, d := range l {
		if d.Severity == "" || d.Severity == Error {
			return true
		}
	}
	return false
}

// Error renders every diagnostic on its own line(s).
func (l List) Error() string {
	parts := make([]string, len(l))
	for i, d := range l {
		parts[i] = d.String()
	}
	return strings.Join(parts, "\n")
}

// Err returns the list as an error when it holds errors, else nil.
func (l List) Err() error {
	if l.HasErrors() {
		return l
	}
	return nil
}

// Errorf is shorthand for an error diagnostic at a file position.
func Errorf(file string, line, col int, fix string, format string, args ...any) Diagnostic {
	return Diagnostic{Severity: Error, File: file, Line: line, Col: col, Summary: fmt.Sprintf(format, args...), Fix: fix}
}
