package cli

import (
	"fmt"
	"io"
	"strings"
)

// annotation is a GitHub Actions workflow command that shows a finding
// inline on a pull request: `::error file=…,line=…,col=…,title=…::message`.
// File is relative to the repository root, as GitHub expects.
type annotation struct {
	Level   string // error or warning
	File    string
	Line    int
	Col     int
	Title   string
	Message string
}

// String renders the workflow command, escaped as GitHub's runner reads it:
// in the message % CR LF become %25 %0D %0A; in property values also : and ,
// (%3A %2C), so a path or title cannot end the property list early.
func (a annotation) String() string {
	var props []string
	if a.File != "" {
		props = append(props, "file="+escapeProperty(a.File))
		if a.Line > 0 {
			props = append(props, fmt.Sprintf("line=%d", a.Line))
			if a.Col > 0 {
				props = append(props, fmt.Sprintf("col=%d", a.Col))
			}
		}
	}
	if a.Title != "" {
		props = append(props, "title="+escapeProperty(a.Title))
	}
	cmd := "::" + a.Level
	if len(props) > 0 {
		cmd += " " + strings.Join(props, ",")
	}
	return cmd + "::" + escapeData(a.Message)
}

func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// writeAnnotations prints each annotation on its own line.
func writeAnnotations(w io.Writer, as []annotation) {
	for _, a := range as {
		fmt.Fprintln(w, a.String())
	}
}
