package cli

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
)

type validateOptions struct {
	ctx      context.Context
	dir      string
	platform string
}

func validateCommand(g *globals) *ucli.Command {
	var o validateOptions
	return &ucli.Command{
		Name:      "validate",
		Usage:     "check shipline.yaml, its job definitions and placeholders offline",
		ArgsUsage: "[DIR]",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "platform", Usage: "also check against this platform.yaml (fabrics, variables, registration)", Destination: &o.platform},
		},
		Action: func(c *ucli.Context) error {
			o.ctx = c.Context
			o.dir = "."
			if c.NArg() > 1 {
				return invalid("validate takes one directory, got %d arguments", c.NArg())
			}
			if c.NArg() == 1 {
				o.dir = c.Args().First()
			}
			return runValidate(g, o)
		},
	}
}

// validateResult is the JSON form of a validation.
type validateResult struct {
	Dir         string    `json:"dir"`
	Valid       bool      `json:"valid"`
	Pipelines   int       `json:"pipelines"`
	Jobs        int       `json:"jobs"`
	Libraries   int       `json:"libraries,omitempty"`
	Diagnostics diag.List `json:"diagnostics"`
}

func runValidate(g *globals, o validateOptions) error {
	if st, err := os.Stat(o.dir); err != nil || !st.IsDir() {
		return invalid("%s is not a directory; pass the project directory that holds %s", o.dir, manifest.FileName)
	}
	if o.ctx == nil {
		o.ctx = context.Background()
	}
	m, _, pdiags, mdiags := validateFS(o.ctx, os.DirFS(o.dir), o.platform)
	diags := append(pdiags, relativeTo(o.dir, mdiags)...)
	res := validateResult{Dir: o.dir, Valid: !diags.HasErrors(), Diagnostics: diags}
	if m != nil {
		res.Pipelines, res.Jobs, res.Libraries = len(m.Pipelines), len(m.Jobs), len(m.Libraries)
	}
	if g.json() {
		if res.Diagnostics == nil {
			res.Diagnostics = diag.List{}
		}
		if err := printJSON(g, res); err != nil {
			return err
		}
	} else {
		for _, d := range diags {
			fmt.Fprintln(g.stdout, d.String())
		}
		if res.Valid {
			libs := ""
			switch {
			case res.Libraries == 1:
				libs = ", 1 library"
			case res.Libraries > 1:
				libs = fmt.Sprintf(", %d libraries", res.Libraries)
			}
			fmt.Fprintf(g.stdout, "%s is valid: %s, %s%s\n", o.dir, countOf(res.Pipelines, "pipeline"), countOf(res.Jobs, "job"), libs)
		}
	}
	if !res.Valid {
		n := countErrors(diags)
		what := "errors"
		if n == 1 {
			what = "error"
		}
		return &exitError{code: ExitInvalid, err: fmt.Errorf("%s is invalid: %d %s", o.dir, n, what)}
	}
	return nil
}

// validateFS checks the project files fsys (shipline.yaml, its definitions
// and placeholders, and every Airflow DAG compiled) and, when platformFile is
// set, platform.yaml and the project against it: what `shipline validate`
// checks, and the first step of `shipline check`. The diagnostics of
// platform.yaml name the file as given; those of the project are relative
// to fsys. cfg is nil without platformFile or when it is invalid (the
// project is then checked on its own).
func validateFS(ctx context.Context, fsys fs.FS, platformFile string) (m *manifest.Manifest, cfg *platform.Config, pdiags, mdiags diag.List) {
	if platformFile != "" {
		cfg, pdiags = platform.Load(platformFile)
		if pdiags.HasErrors() {
			cfg = nil
		}
	}
	if cfg != nil {
		m, mdiags = manifest.Validate(fsys, cfg, "")
	} else {
		m, mdiags = manifest.Load(fsys)
	}
	mdiags = append(mdiags, fabric.CheckProjectDAGs(ctx, fsys, m, cfg, "", nil)...)
	mdiags = append(mdiags, checkLibraryDeps(ctx, fsys, m, cfg, platformFile)...)
	return m, cfg, pdiags, mdiags
}

// relativeTo prefixes project-relative file names with the directory the user named.
func relativeTo(dir string, l diag.List) diag.List {
	if dir == "." || dir == "" {
		return l
	}
	out := make(diag.List, len(l))
	for i, d := range l {
		if d.File != "" && !filepath.IsAbs(d.File) {
			d.File = filepath.ToSlash(filepath.Join(dir, d.File))
		}
		out[i] = d
	}
	return out
}

func countErrors(l diag.List) int {
	n := 0
	for _, d := range l {
		if d.Severity != diag.Warning {
			n++
		}
	}
	return n
}

// countOf says "1 job", "2 jobs".
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if stem, ok := strings.CutSuffix(noun, "ry"); ok {
		return fmt.Sprintf("%d %sries", n, stem)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
