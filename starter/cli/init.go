package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/scaffold"
)

type initOptions struct {
	ctx   context.Context
	dir   string
	name  string
	force bool
}

func initCommand(g *globals) *ucli.Command {
	var o initOptions
	return &ucli.Command{
		Name:      "init",
		Usage:     "write a starting shipline.yaml for an existing repository (pipelines, Databricks jobs, Airflow DAGs found in it)",
		ArgsUsage: "[DIR]",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "name", Usage: "the project's name as registered in platform.yaml (default: the directory's name)", Destination: &o.name},
			&ucli.BoolFlag{Name: "force", Usage: "overwrite an existing shipline.yaml", Destination: &o.force},
		},
		Action: func(c *ucli.Context) error {
			o.ctx, o.dir = c.Context, "."
			if c.NArg() > 1 {
				return invalid("init takes one directory, got %d arguments", c.NArg())
			}
			if c.NArg() == 1 {
				o.dir = c.Args().First()
			}
			return runInit(g, o)
		},
	}
}

// initResult is the JSON form of `init`.
type initResult struct {
	File string `json:"file"`
	*scaffold.Result
}

func runInit(g *globals, o initOptions) error {
	if st, err := os.Stat(o.dir); err != nil || !st.IsDir() {
		return invalid("%s is not a directory; pass the repository's root directory", o.dir)
	}
	file := filepath.Join(o.dir, manifest.FileName)
	if _, err := os.Lstat(file); err == nil && !o.force {
		return failed(fmt.Errorf("%s already exists; init does not overwrite it: check it with `shipline validate %s`, or pass --force to replace it", file, o.dir))
	}
	abs, err := filepath.Abs(o.dir)
	if err != nil {
		return failed(err)
	}
	if o.ctx == nil {
		o.ctx = context.Background()
	}
	res, err := scaffold.Init(os.DirFS(o.dir), scaffold.Options{
		Project: o.name, DirName: filepath.Base(abs),
		// What `shipline validate DIR` checks: init writes only what passes.
		Check: func(fsys fs.FS) diag.List { _, _, _, d := validateFS(o.ctx, fsys, ""); return d },
	})
	if errors.Is(err, scaffold.ErrNothingFound) {
		return failed(fmt.Errorf("%s: %w; nothing was written", o.dir, err))
	}
	if err != nil {
		return failed(err)
	}
	if err := writeFileAtomic(file, res.YAML); err != nil {
		return failed(fmt.Errorf("write %s: %w", file, err))
	}
	if g.json() {
		return printJSON(g, initResult{File: file, Result: res})
	}
	printInit(g, o.dir, file, res)
	return nil
}

// writeFileAtomic writes data to a temporary file next to path and renames it.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".shipline-init-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// printInit says what init found, what it wrote, and what to fill in.
func printInit(g *globals, dir, file string, res *scaffold.Result) {
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	var on, offP []scaffold.Pipeline
	for _, p := range res.Pipelines {
		if p.Disabled == "" {
			on = append(on, p)
		} else {
			offP = append(offP, p)
		}
	}
	fmt.Fprintf(tw, "found %s in %s:\n", countOf(len(on), "pipeline"), dir)
	for _, p := range on {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", p.Name, p.Language, p.Marker)
	}
	var jobs, offJ []scaffold.Job
	for _, j := range res.Jobs {
		if j.Disabled == "" {
			jobs = append(jobs, j)
		} else {
			offJ = append(offJ, j)
		}
	}
	if len(jobs) == 0 {
		fmt.Fprintln(tw, "found no jobs (looked for Databricks Jobs API job settings in .json files and Airflow DAGs in .py files that import airflow)")
	} else {
		fmt.Fprintf(tw, "found %s:\n", countOf(len(jobs), "job"))
	}
	for _, j := range jobs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\truns %s\n", j.Name, j.Scheduler, j.Definition, strings.Join(j.Pipelines, ", "))
	}
	tw.Flush()
	if len(offP)+len(offJ) > 0 {
		fmt.Fprintln(g.stdout, "found but commented out in shipline.yaml (do what is said, then uncomment):")
		for _, p := range offP {
			fmt.Fprintf(g.stdout, "  pipeline %s (%s): %s\n", p.Name, p.Marker, strings.Join(strings.Fields(p.Disabled), " "))
		}
		for _, j := range offJ {
			fmt.Fprintf(g.stdout, "  job %s (%s): %s\n", j.Name, j.Definition, strings.Join(strings.Fields(j.Disabled), " "))
		}
	}
	fmt.Fprintf(g.stdout, "wrote %s; fill in what its TODO comments ask:\n", file)
	fmt.Fprintf(g.stdout, "  - name: %s must be the project's name under projects: in platform.yaml\n", res.Project)
	if len(jobs) > 0 {
		fmt.Fprintf(g.stdout, "  - jobs.<job>.fabric: the fabric each job deploys to (written: %s for Databricks jobs, %s for Airflow DAGs)\n",
			scaffold.DatabricksFabric, scaffold.AirflowFabric)
	}
	if len(res.Variables) > 0 {
		vars := make([]string, 0, len(res.Variables))
		for v := range res.Variables {
			vars = append(vars, v)
		}
		sort.Strings(vars)
		fmt.Fprintf(g.stdout, "  - variables the job definitions use: %s (defaults in shipline.yaml, or set by platform.yaml's fabrics)\n", strings.Join(vars, ", "))
	}
	for _, p := range on {
		for _, t := range p.Todo {
			fmt.Fprintf(g.stdout, "  - pipeline %s: %s\n", p.Name, t)
		}
	}
	for _, j := range jobs {
		for _, h := range j.Hints {
			fmt.Fprintf(g.stdout, "  - job %s: %s\n", j.Name, h)
		}
	}
	fmt.Fprintf(g.stdout, "then check it: shipline validate %s --platform <platform.yaml>\n", dir)
}
