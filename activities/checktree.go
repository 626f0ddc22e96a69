package activities

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing/fstest"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
)

// CheckTreeInput asks for every job of a project tree that is not released
// (a pull request's) to be rendered for its fabric, checked as a deploy
// checks it, and planned against the live fabric: `shipline check`.
type CheckTreeInput struct {
	Project string `json:"project"`
	// Version is the provisional version jobs render with (0.0.0-check+<commit>).
	Version string `json:"version"`
	Commit  string `json:"commit"`
	// Fabric, when set, sends every job to it (as deploy --fabric).
	Fabric string `json:"fabric,omitempty"`
	// Files are the project files a render reads — shipline.yaml, each job's
	// definition and each Python library's pyproject.toml — by path in the
	// project, as the CLI sends them to a worker; Dirs the pipeline and
	// library directories (their other files stay with the CLI).
	Files map[string]string `json:"files,omitempty"`
	Dirs  []string          `json:"dirs,omitempty"`
	// Artifacts maps each pipeline the CLI built to its artifact's file name;
	// a pipeline without one was not built (its jobs plan as updates).
	Artifacts map[string]string `json:"artifacts"`
}

// CheckedJob is one job on one fabric: rendered and checked, then planned.
type CheckedJob struct {
	Job    string `json:"job"`
	Fabric string `json:"fabric"`
	// Render is ok or failed (Error and Diagnostics say why).
	Render      string    `json:"render"`
	Diagnostics diag.List `json:"diagnostics,omitempty"`
	// Plan is create, update, unchanged, failed (Error says why) or skipped
	// (the render failed).
	Plan       string `json:"plan"`
	ID         string `json:"id,omitempty"`
	Detail     string `json:"detail,omitempty"`
	Error      string `json:"error,omitempty"`
	Definition string `json:"definition"`
}

// CheckTreeOutput is the report of a check's render and plan.
type CheckTreeOutput struct {
	// Diagnostics are the manifest's findings against the worker's
	// platform.yaml (CheckTree only); with errors, no job was rendered.
	Diagnostics diag.List `json:"diagnostics,omitempty"`
	// Error says why no job could be sent to its fabric (a fabric that cannot run it).
	Error string       `json:"error,omitempty"`
	Jobs  []CheckedJob `json:"jobs"`
}

// CheckTree validates the project files the CLI sent against this worker's
// platform.yaml and renders, checks and plans every job (CheckJobsOfTree).
// It writes nothing anywhere; what it finds is its answer, not a failure.
func (d *Deploy) CheckTree(ctx context.Context, in CheckTreeInput) (CheckTreeOutput, error) {
	fsys := fstest.MapFS{}
	for name, content := range in.Files {
		if !fs.ValidPath(name) {
			return CheckTreeOutput{}, apperr.New(apperr.InvalidInput, fmt.Sprintf("%q is not a path inside the project", name))
		}
		fsys[name] = &fstest.MapFile{Data: []byte(content), Mode: 0o644}
	}
	for _, dir := range in.Dirs {
		if fs.ValidPath(dir) {
			fsys[path.Clean(dir)] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
		}
	}
	man, diags := manifest.Validate(fsys, d.Platform, in.Project)
	diags = append(diags, fabric.CheckProjectDAGs(ctx, fsys, man, d.Platform, in.Project, d.env())...)
	if diags.HasErrors() {
		return CheckTreeOutput{Diagnostics: diags, Jobs: []CheckedJob{}}, nil
	}
	var out CheckTreeOutput
	err := withHeartbeat(ctx, func() error {
		out = CheckJobsOfTree(ctx, d.Platform, d.env(), fsys, man, in)
		return nil
	})
	out.Diagnostics = diags
	return out, err
}

// CheckJobsOfTree renders every job of the manifest man (read from fsys) for
// its fabric with in's version and artifacts, checks each as a deploy's
// check step does (RenderFrom, CheckRendered) and plans each against its
// live fabric, read-only (PlanJob). The CLI runs it itself with --platform;
// a worker runs it for the CLI in CheckTree. Jobs come sorted by fabric, then name.
func CheckJobsOfTree(ctx context.Context, cfg *platform.Config, env fabric.Env, fsys fs.FS, man *manifest.Manifest, in CheckTreeInput) CheckTreeOutput {
	out := CheckTreeOutput{Jobs: []CheckedJob{}}
	jobs, err := JobsFor(cfg, man, in.Project, in.Fabric)
	if err != nil {
		out.Error = apperr.Message(err)
		return out
	}
	slices.SortFunc(jobs, func(a, b ResolvedJob) int { return strings.Compare(a.Fabric+"/"+a.Name, b.Fabric+"/"+b.Name) })
	for _, j := range jobs {
		cj := CheckedJob{Job: j.Name, Fabric: j.Fabric, Definition: j.Definition, Render: "ok", Plan: "skipped"}
		fab, spec, pending, err := renderChecked(ctx, cfg, env, fsys, in, j)
		if err != nil {
			cj.Render, cj.Error = "failed", apperr.Message(err)
			var l diag.List
			if errors.As(err, &l) {
				cj.Diagnostics = l
			}
			out.Jobs = append(out.Jobs, cj)
			continue
		}
		pj, err := PlanJob(ctx, fab, j, spec, pending)
		if err != nil {
			cj.Plan, cj.Error = "failed", apperr.Message(err)
		} else {
			cj.Plan, cj.ID, cj.Detail = pj.Action, pj.ID, pj.Detail
		}
		out.Jobs = append(out.Jobs, cj)
	}
	return out
}

// renderChecked opens the job's fabric, renders the job with its artifacts'
// paths there and checks it; pending says an artifact was not built.
func renderChecked(ctx context.Context, cfg *platform.Config, env fabric.Env, fsys fs.FS, in CheckTreeInput, j ResolvedJob) (fabric.Fabric, fabric.JobSpec, bool, error) {
	fab, err := fabric.Open(cfg, j.Fabric, env)
	if err != nil {
		return nil, fabric.JobSpec{}, false, err
	}
	pending := false
	paths := map[string]string{}
	for _, p := range j.Pipelines {
		file, ok := in.Artifacts[p]
		if !ok {
			file, pending = "<"+p+" artifact, not built>", true
		}
		paths[p] = fab.ArtifactPath(in.Project, in.Version, p, file)
	}
	spec, err := RenderFrom(cfg, fsys, UpsertJobInput{Project: in.Project, Version: in.Version, Commit: in.Commit, Job: j, Artifacts: paths})
	if err == nil {
		err = CheckRendered(ctx, env, j, spec)
	}
	return fab, spec, pending, err
}
