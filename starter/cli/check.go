package cli

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/build"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/storage"
)

// checkOptions are the flags of `shipline check`.
type checkOptions struct {
	ctx      context.Context
	dir      string
	ref      string
	fabric   string
	platform string
}

func checkCommand(g *globals) *ucli.Command {
	var o checkOptions
	return &ucli.Command{
		Name:      "check",
		Usage:     "the pull-request gate: validate, build and test every pipeline, render every job and plan against its fabric — writing nothing to any fabric, creating no tag",
		ArgsUsage: "[DIR]",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "ref", Usage: "check this `REF` (branch, tag, commit, HEAD~1) of DIR's git repository instead of the files on disk", Destination: &o.ref},
			&ucli.StringFlag{Name: "fabric", Aliases: []string{"f"}, Usage: "render and plan every job for fabric `F` (default: each job's own)", Destination: &o.fabric},
			&ucli.StringFlag{Name: "platform", Usage: "platform.yaml `FILE`: check the project against it, render the jobs for its fabrics and plan against them (credentials from the environment)", Destination: &o.platform},
		},
		Action: func(c *ucli.Context) error {
			o.ctx = c.Context
			o.dir = "."
			if c.NArg() > 1 {
				return invalid("check takes one directory, got %d arguments", c.NArg())
			}
			if c.NArg() == 1 {
				o.dir = c.Args().First()
			}
			return runCheck(g, o)
		},
	}
}

// Step names and outcomes of a check.
const (
	checkValidate = "validate"
	checkBuild    = "build"
	checkRender   = "render"
	checkPlan     = "plan"

	stepOK      = "ok"
	stepFailed  = "failed"
	stepSkipped = "skipped"
)

// checkReport is what `shipline check` found (its --output json).
type checkReport struct {
	Dir     string `json:"dir"`
	Project string `json:"project,omitempty"`
	// Source says what was read: a ref's commit, or the files on disk.
	Source string `json:"source"`
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit,omitempty"`
	// Version is the provisional release version jobs are rendered with.
	Version   string                  `json:"version"`
	Passed    bool                    `json:"passed"`
	Steps     []checkStep             `json:"steps"`
	Pipelines []checkedPipeline       `json:"pipelines"`
	Jobs      []activities.CheckedJob `json:"jobs"`
	annots    []annotation            // GitHub annotations, in report order
}

// checkStep is one step and how it ended.
type checkStep struct {
	Name        string    `json:"name"`
	Status      string    `json:"status"`
	Summary     string    `json:"summary"`
	Diagnostics diag.List `json:"diagnostics,omitempty"`
}

// checkedPipeline is one pipeline's build and tests.
type checkedPipeline struct {
	Pipeline string `json:"pipeline"`
	// Library: this is one of the project's libraries (shipline.yaml's
	// libraries:), built and tested as a release builds it before publishing.
	Library bool `json:"library,omitempty"`
	// Status is built, cached, failed or skipped.
	Status      string   `json:"status"`
	File        string   `json:"file,omitempty"`
	Error       string   `json:"error,omitempty"`
	FailedTests []string `json:"failed_tests,omitempty"`
	LogPath     string   `json:"log_path,omitempty"`
}

// checker runs the steps of one check.
type checker struct {
	g      *globals
	o      checkOptions
	src    *checkSource
	rep    *checkReport
	m      *manifest.Manifest
	cfg    *platform.Config
	mValid bool
	mWhy   string            // why the manifest side did not validate, for the skipped steps
	files  map[string]string // built artifacts' file names by pipeline
}

func runCheck(g *globals, o checkOptions) error {
	if st, err := os.Stat(o.dir); err != nil || !st.IsDir() {
		return invalid("%s is not a directory; pass the project directory that holds %s", o.dir, manifest.FileName)
	}
	if o.platform != "" {
		if st, err := os.Stat(o.platform); err != nil || st.IsDir() {
			return invalid("--platform %s is not a file; pass the platform.yaml the worker reads", o.platform)
		}
	}
	if o.ctx == nil {
		o.ctx = context.Background()
	}
	src, err := openCheckSource(o.dir, o.ref)
	if err != nil {
		return err
	}
	c := &checker{g: g, o: o, src: src, files: map[string]string{},
		rep: &checkReport{Dir: o.dir, Source: src.desc, Ref: o.ref, Commit: src.commit, Version: src.version()}}
	c.validate()
	if o.fabric != "" && c.cfg != nil {
		if _, ok := c.cfg.Fabrics[o.fabric]; !ok {
			return invalid("--fabric %s is not defined in %s (defined: %s)", o.fabric, o.platform, strings.Join(sortedKeys(c.cfg.Fabrics), ", "))
		}
	}
	if err := c.checkFabricFlag(); err != nil {
		return err
	}
	c.build()
	c.jobs()
	return c.finish()
}

// validate checks both files, as `shipline validate` does.
func (c *checker) validate() {
	m, cfg, pdiags, mdiags := validateFS(c.o.ctx, c.src.fsys, c.o.platform)
	c.m, c.cfg = m, cfg
	c.mValid = m != nil && !mdiags.HasErrors()
	if !c.mValid {
		c.mWhy = validationFailed(mdiags)
	}
	for _, d := range pdiags {
		c.annotate(d, d.File, checkValidate)
	}
	for _, d := range mdiags {
		c.annotate(d, c.src.repoPath(d.File), checkValidate)
	}
	diags := append(pdiags, relativeTo(c.o.dir, mdiags)...)
	st := checkStep{Name: checkValidate, Status: stepOK, Diagnostics: diags}
	if m != nil {
		c.rep.Project = m.Name
		st.Summary = fmt.Sprintf("%s: %s, %s", manifest.FileName, countOf(len(m.Pipelines), "pipeline"), countOf(len(m.Jobs), "job"))
	}
	if c.o.platform != "" {
		st.Summary += "; checked against " + c.o.platform
	}
	if n := countErrors(diags); n > 0 {
		st.Status, st.Summary = stepFailed, countOf(n, "error")
	}
	c.rep.Steps = append(c.rep.Steps, st)
}

// checkFabricFlag refuses a --fabric that shipline.yaml does not name — no
// job targets it and it has no fabrics: override — before anything is
// built. It is decided from the manifest alone, so the answer is the same
// with --platform, on the worker and with neither.
func (c *checker) checkFabricFlag() error {
	if c.o.fabric == "" || c.m == nil || len(c.m.Jobs) == 0 {
		return nil
	}
	named := map[string]bool{}
	targeted := map[string]bool{}
	for _, j := range c.m.Jobs {
		if j.Fabric != "" {
			named[j.Fabric], targeted[j.Fabric] = true, true
		}
	}
	for f := range c.m.Fabrics {
		named[f] = true
	}
	if named[c.o.fabric] {
		return nil
	}
	msg := fmt.Sprintf("--fabric %s is not a fabric of %s: its jobs target %s", c.o.fabric, manifest.FileName, strings.Join(sortedKeys(targeted), ", "))
	if len(c.m.Fabrics) > 0 {
		msg += " and it has overrides for " + strings.Join(sortedKeys(c.m.Fabrics), ", ")
	}
	return invalid("%s; pass one of them (or add the fabric under fabrics: in %s)", msg, manifest.FileName)
}

// validationFailed says why build, render and plan were skipped: the files
// whose errors the validate step reported.
func validationFailed(l diag.List) string {
	seen := map[string]bool{}
	var files []string
	for _, d := range l {
		if d.Severity != diag.Warning && d.File != "" && !seen[d.File] {
			seen[d.File] = true
			files = append(files, d.File)
		}
	}
	if len(files) == 0 {
		return "validation failed (see above)"
	}
	return "validation failed in " + strings.Join(files, ", ") + " (see above)"
}

// build builds and tests every pipeline with the worker's builder and
// cache: an unchanged pipeline directory comes from the cache.
func (c *checker) build() {
	if !c.mValid {
		c.skip(checkBuild, c.mWhy)
		return
	}
	builder := &activities.Build{Platform: c.buildConfig()}
	names := sortedKeys(c.m.Pipelines)
	failed, cached := 0, 0
	for _, name := range names {
		p := c.m.Pipelines[name]
		p.Name = name
		cp := checkedPipeline{Pipeline: name}
		out, err := c.buildOne(builder, p)
		switch {
		case err == nil && out.Cached:
			cp.Status, cp.File, cached = "cached", out.File, cached+1
			c.files[name] = out.File
		case err == nil:
			cp.Status, cp.File = "built", out.File
			c.files[name] = out.File
		default:
			failed++
			cp.Status, cp.Error = stepFailed, apperr.Message(err)
			if fd, ok := build.Details(err); ok {
				cp.LogPath = fd.LogPath
			}
			c.buildFailure(&cp, p, err)
		}
		c.rep.Pipelines = append(c.rep.Pipelines, cp)
	}
	libFailed, libCached := c.buildLibraries(builder)
	failed, cached = failed+libFailed, cached+libCached
	what := countOf(len(names), "pipeline")
	if n := len(c.m.Libraries); n > 0 {
		what += " and " + countOf(n, "library")
	}
	st := checkStep{Name: checkBuild, Status: stepOK,
		Summary: fmt.Sprintf("%s built and tested, %d from the cache (cache: %s)", what, cached, cacheWhere(builder.Platform))}
	if failed > 0 {
		total := len(names) + len(c.m.Libraries)
		st.Status, st.Summary = stepFailed, fmt.Sprintf("%d of %d failed (%s)", failed, total, what)
		if len(c.m.Libraries) == 0 {
			st.Summary = fmt.Sprintf("%d of %s failed", failed, what)
		}
	}
	c.rep.Steps = append(c.rep.Steps, st)
}

// checkLibraryRelease is the release version libraries are built at by a
// check: what a release publishes is built and tested the same way, under
// its own version.
const checkLibraryRelease = "v0.0.0"

// buildLibraries builds and tests the project's libraries as a release does
// before it publishes them (nothing is published); it returns how many failed
// and how many came from the cache.
func (c *checker) buildLibraries(builder *activities.Build) (failed, cached int) {
	for _, name := range sortedKeys(c.m.Libraries) {
		l := c.m.Libraries[name]
		cp := checkedPipeline{Pipeline: name, Library: true}
		p, err := l.AsPipeline(checkLibraryRelease)
		var out activities.BuildOutput
		if err == nil {
			p.Name = name
			out, err = c.buildOne(builder, p)
		}
		switch {
		case err == nil && out.Cached:
			cp.Status, cp.File, cached = "cached", out.File, cached+1
		case err == nil:
			cp.Status, cp.File = "built", out.File
		default:
			failed++
			cp.Status, cp.Error = stepFailed, apperr.Message(err)
			if fd, ok := build.Details(err); ok {
				cp.LogPath = fd.LogPath
			}
			c.buildFailure(&cp, p, err)
		}
		c.rep.Pipelines = append(c.rep.Pipelines, cp)
	}
	return failed, cached
}

func (c *checker) buildOne(b *activities.Build, p manifest.Pipeline) (activities.BuildOutput, error) {
	tree, err := c.src.treeHash(p.Path)
	if err != nil {
		return activities.BuildOutput{}, err
	}
	p.Uses = append([]manifest.UsedLibrary(nil), p.Uses...)
	for i, u := range p.Uses { // the libraries it uses, as a release builds it
		if p.Uses[i].Tree, err = c.src.treeHash(u.Path); err != nil {
			return activities.BuildOutput{}, err
		}
	}
	return activities.BuildFrom(c.o.ctx, b, p, tree, func(ctx context.Context, dir string) error {
		return c.src.export(ctx, p.Path, dir)
	}, c.src.export)
}

// buildConfig is where builds and their cache live: platform.yaml's
// state_dir (the worker's, when they share a machine), else the user's
// cache directory ($XDG_CACHE_HOME/shipline), which a CI job can keep.
func (c *checker) buildConfig() *platform.Config {
	if c.cfg != nil {
		return c.cfg
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return &platform.Config{StateDir: filepath.Join(dir, "shipline")}
}

// buildFailure annotates a failed build: each failing test at its file and
// line when pytest's output names them, else the pipeline's directory.
func (c *checker) buildFailure(cp *checkedPipeline, p manifest.Pipeline, err error) {
	fd, _ := build.Details(err)
	kind := "pipeline"
	if cp.Library {
		kind = "library"
	}
	if apperr.IsType(err, apperr.TestsFailed) {
		tests := failedTests(fd.LogTail)
		for _, t := range tests {
			cp.FailedTests = append(cp.FailedTests, t.ID)
			a := annotation{Level: "error", Title: "shipline check: tests of " + p.Name,
				Message: fmt.Sprintf("%s %s: test %s failed", kind, p.Name, t.ID)}
			if t.Reason != "" {
				a.Message += ": " + t.Reason
			}
			if t.File != "" {
				a.File, a.Line = c.src.repoPath(path.Join(p.Path, t.File)), t.Line
			}
			c.rep.annots = append(c.rep.annots, a)
		}
		if len(tests) > 0 {
			return
		}
	}
	c.rep.annots = append(c.rep.annots, annotation{Level: "error", File: c.src.repoPath(p.Path),
		Title: "shipline check: build of " + p.Name, Message: firstLine(apperr.Message(err))})
}

// skip records a step that did not run and why; on GitHub it is a warning.
func (c *checker) skip(step, why string) {
	c.rep.Steps = append(c.rep.Steps, checkStep{Name: step, Status: stepSkipped, Summary: why})
	c.rep.annots = append(c.rep.annots, annotation{Level: "warning", Title: "shipline check: " + step + " skipped", Message: step + ": skipped — " + why})
}

// annotate records a diagnostic as an annotation at file (repository-relative).
func (c *checker) annotate(d diag.Diagnostic, file, step string) {
	level := "error"
	if d.Severity == diag.Warning {
		level = "warning"
	}
	msg := d.Summary
	if d.Fix != "" {
		msg += "\nfix: " + d.Fix
	}
	if file == "" && d.Field != "" {
		msg = d.Field + ": " + msg
	}
	c.rep.annots = append(c.rep.annots, annotation{Level: level, File: file, Line: d.Line, Col: d.Col, Title: "shipline check: " + step, Message: msg})
}

// finish prints the report (and, on GitHub Actions, the annotations) and
// returns exit 1 when a step failed.
func (c *checker) finish() error {
	var failedSteps []string
	for _, s := range c.rep.Steps {
		if s.Status == stepFailed {
			failedSteps = append(failedSteps, s.Name)
		}
	}
	c.rep.Passed = len(failedSteps) == 0
	if c.rep.Pipelines == nil {
		c.rep.Pipelines = []checkedPipeline{}
	}
	if c.rep.Jobs == nil {
		c.rep.Jobs = []activities.CheckedJob{}
	}
	if os.Getenv("GITHUB_ACTIONS") == "true" {
		// Workflow commands are read from the job's output; with --output
		// json they go to stderr so stdout stays one JSON document.
		w := c.g.stdout
		if c.g.json() {
			w = c.g.stderr
		}
		writeAnnotations(w, c.rep.annots)
	}
	if c.g.json() {
		if err := printJSON(c.g, c.rep); err != nil {
			return err
		}
	} else {
		printCheckReport(c.g, c.rep)
	}
	if len(failedSteps) > 0 {
		return failed(fmt.Errorf("check of %s failed at %s; nothing was written to any fabric", c.o.dir, strings.Join(failedSteps, ", ")))
	}
	return nil
}

// cacheWhere names where check's builds are cached: the platform's shared
// storage (its URL without query), else its state directory.
func cacheWhere(cfg *platform.Config) string {
	if cfg.Storage != "" {
		return storage.Redact(cfg.Storage)
	}
	return cfg.StateDir
}
