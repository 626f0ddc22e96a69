package activities

import (
	"sync"

	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"golang.org/x/sync/errgroup"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/build"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/storage"
)

// ArtifactMissingDetails name the artifacts an upload found gone from the build
// cache (the details of an apperr.ArtifactMissing failure).
type ArtifactMissingDetails struct {
	Pipelines []string `json:"pipelines"`
	Paths     []string `json:"paths"`
}

// Deploy owns the side effects of a deployment other than builds: reading the
// release's manifest, uploading artifacts, and creating or updating jobs on
// fabrics (through internal/fabric, which owns each fabric's client).
type Deploy struct {
	Git      *Git
	Platform *platform.Config
	// Store is the store workers share, where builds put artifacts and logs;
	// nil opens Platform.StorageURL() on first use.
	Store *storage.Store
	// Getenv reads fabric credentials; nil means os.Getenv.
	Getenv func(string) string

	store     sharedStore
	manifests manifestCache
}

func (d *Deploy) env() fabric.Env {
	if d.Getenv != nil {
		return d.Getenv
	}
	return os.Getenv
}

// ResolveDeployInput selects what a deployment deploys.
type ResolveDeployInput struct {
	Project string   `json:"project"`
	Version string   `json:"version"`
	Fabric  string   `json:"fabric,omitempty"`
	Jobs    []string `json:"jobs,omitempty"`
	// Stage lists a promotion stage's fabrics: every job goes to each of them
	// that can run it; jobs none of them can run are left out.
	Stage []string `json:"stage,omitempty"`
}

// ResolvedJob is one job and the fabric it goes to.
type ResolvedJob struct {
	Name       string   `json:"name"`
	Scheduler  string   `json:"scheduler"`
	Fabric     string   `json:"fabric"`
	Pipelines  []string `json:"pipelines"`
	Definition string   `json:"definition"`
}

// FabricInfo is what a workflow needs to decide on a fabric: its kind and who owns it.
type FabricInfo struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Owner   string   `json:"owner"`
	Members []string `json:"members"`
}

// ResolveDeployOutput is the deployment's plan of record.
type ResolveDeployOutput struct {
	Commit    string              `json:"commit"`
	Jobs      []ResolvedJob       `json:"jobs"`
	Pipelines []manifest.Pipeline `json:"pipelines"` // the pipelines the jobs need, by name
	Fabrics   []FabricInfo        `json:"fabrics"`   // the target fabrics, by name
}

// Resolve finds the release's commit (its tag on the remote), validates the
// manifest there against platform.yaml and selects the jobs: all of them, or
// the --job selection (only with selective_jobs), each to its own fabric or to
// the --fabric override. Every refusal is permanent and says what to do.
func (d *Deploy) Resolve(ctx context.Context, in ResolveDeployInput) (ResolveDeployOutput, error) {
	proj, ok := d.Platform.Projects[in.Project]
	if !ok {
		return ResolveDeployOutput{}, unknownProject(d.Platform, in.Project)
	}
	m, err := d.Git.mirror(in.Project)
	if err != nil {
		return ResolveDeployOutput{}, err
	}
	var out ResolveDeployOutput
	var man *manifest.Manifest
	err = withHeartbeat(ctx, func() error {
		if err := m.Fetch(ctx); err != nil {
			return err
		}
		commit, err := m.Resolve(ctx, "refs/tags/"+in.Version)
		if err != nil {
			return err
		}
		out.Commit = commit
		fsys, err := m.TreeFS(ctx, commit)
		if err != nil {
			return err
		}
		var diags diag.List
		man, diags = manifest.Validate(fsys, d.Platform, in.Project)
		if diags.HasErrors() {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"shipline.yaml of %s %s is invalid against platform.yaml:\n%s", in.Project, in.Version, diags.Error()), apperr.InvalidManifest, nil)
		}
		return nil
	})
	if err != nil {
		err = apperr.ForTemporal(err)
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.Type() == apperr.UnknownRef {
			return out, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"%s of %s is not released: no tag %s on the remote; release it first with `shipline release %s --project %s`",
				in.Version, in.Project, in.Version, in.Version, in.Project), apperr.UnknownRelease, nil)
		}
		return out, err
	}
	jobs, err := selectJobs(d.Platform, man, proj, in)
	if err != nil {
		return out, err
	}
	out.Jobs = jobs
	needed := map[string]bool{}
	targets := map[string]bool{}
	for _, j := range jobs {
		for _, p := range j.Pipelines {
			needed[p] = true
		}
		targets[j.Fabric] = true
	}
	for _, name := range sortedKeys(needed) {
		out.Pipelines = append(out.Pipelines, buildablePipeline(man, name))
	}
	for _, name := range sortedKeys(targets) {
		f := d.Platform.Fabrics[name]
		out.Fabrics = append(out.Fabrics, FabricInfo{Name: name, Kind: string(f.Kind), Owner: f.Owner, Members: slices.Clone(d.Platform.Teams[f.Owner].Members)})
	}
	return out, nil
}

// JobsFor lists the jobs a deployment of every job of man sends where: each
// to its own fabric, or all to fabric when it is set (as `deploy --fabric`),
// refusing a fabric that cannot run a job. `shipline check` plans them.
func JobsFor(cfg *platform.Config, man *manifest.Manifest, project, fabric string) ([]ResolvedJob, error) {
	return selectJobs(cfg, man, cfg.Projects[project], ResolveDeployInput{Project: project, Fabric: fabric})
}

// selectJobs applies the --job selection and the --fabric override.
func selectJobs(cfg *platform.Config, man *manifest.Manifest, proj platform.Project, in ResolveDeployInput) ([]ResolvedJob, error) {
	names := sortedKeys(man.Jobs)
	if len(in.Jobs) > 0 {
		if !proj.SelectiveJobs {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"project %s deploys all its jobs together (selective_jobs is off); deploy without --job, or ask a platform admin to set projects.%s.selective_jobs: true (and auto_deploy: false)",
				in.Project, in.Project), apperr.SelectiveJobsDisabled, nil)
		}
		for _, j := range in.Jobs {
			if _, ok := man.Jobs[j]; !ok {
				return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
					"job %q is not defined in shipline.yaml of %s %s (jobs: %s)", j, in.Project, in.Version, strings.Join(names, ", ")), apperr.UnknownJob, nil)
			}
		}
		names = slices.Clone(in.Jobs)
		sort.Strings(names)
		names = slices.Compact(names)
	}
	if len(in.Stage) > 0 {
		return stageJobs(cfg, man, names, in)
	}
	jobs := make([]ResolvedJob, 0, len(names))
	for _, name := range names {
		j := man.Jobs[name]
		target := j.Fabric
		if in.Fabric != "" {
			target = in.Fabric
		}
		if err := checkFabricKind(cfg, name, string(j.Scheduler), target, in.Fabric != "", proj.SelectiveJobs); err != nil {
			return nil, err
		}
		jobs = append(jobs, ResolvedJob{Name: name, Scheduler: string(j.Scheduler), Fabric: target, Pipelines: slices.Clone(j.Pipelines), Definition: j.Definition})
	}
	return jobs, nil
}

// stageJobs sends every job to each stage fabric whose kind can run it.
func stageJobs(cfg *platform.Config, man *manifest.Manifest, names []string, in ResolveDeployInput) ([]ResolvedJob, error) {
	var jobs []ResolvedJob
	for _, name := range names {
		j := man.Jobs[name]
		for _, f := range in.Stage {
			fab, ok := cfg.Fabrics[f]
			if !ok {
				return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("stage fabric %q is not defined in platform.yaml", f), apperr.FabricMismatch, nil)
			}
			if fab.Runs(string(j.Scheduler)) {
				jobs = append(jobs, ResolvedJob{Name: name, Scheduler: string(j.Scheduler), Fabric: f, Pipelines: slices.Clone(j.Pipelines), Definition: j.Definition})
			}
		}
	}
	if len(jobs) == 0 {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("no job of %s can run on the stage's fabrics %s", in.Project, strings.Join(in.Stage, ", ")), apperr.FabricMismatch, nil)
	}
	return jobs, nil
}

// checkFabricKind refuses a job whose scheduler the target fabric cannot run.
// The advice names --job only where the project allows choosing jobs.
func checkFabricKind(cfg *platform.Config, job, scheduler, target string, override, selective bool) error {
	f, ok := cfg.Fabrics[target]
	if !ok {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"fabric %q is not defined in platform.yaml (defined: %s)", target, strings.Join(sortedKeys(cfg.Fabrics), ", ")), apperr.FabricMismatch, nil)
	}
	if f.Runs(scheduler) {
		return nil
	}
	how := "fix jobs." + job + ".fabric in shipline.yaml"
	if override {
		how = "choose a fabric of kind " + platform.JoinKinds(platform.KindsRunning(scheduler)) + " for --fabric"
		if selective {
			how += ", or deploy the other jobs with --job"
		}
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
		"job %s runs on %s, but fabric %s is a %s fabric; %s", job, scheduler, target, f.Kind, how), apperr.FabricMismatch, nil)
}

// UploadInput uploads a deployment's artifacts to one fabric.
type UploadInput struct {
	Project   string            `json:"project"`
	Version   string            `json:"version"`
	Fabric    string            `json:"fabric"`
	Artifacts []fabric.Artifact `json:"artifacts"`
}

// UploadOutput maps each pipeline to its artifact's path on the fabric.
type UploadOutput struct {
	Paths    map[string]string `json:"paths"`
	Uploaded []string          `json:"uploaded,omitempty"` // pipelines whose bytes were sent (the rest were already there)
}

// Upload puts every artifact at its immutable path on the fabric, a few at a
// time, streaming it from the shared store (so any worker uploads what any
// worker built) and verifying checksums; artifacts already there with the
// same bytes are left alone. An artifact gone from the store, or whose stored
// bytes fail their checksum, is the permanent apperr.ArtifactMissing
// (retrying cannot bring it back; a build can): a missing one is found before
// anything is sent, and a damaged one's cache entry is dropped so that the
// rebuild builds it.
func (d *Deploy) Upload(ctx context.Context, in UploadInput) (UploadOutput, error) {
	st, err := d.store.get(ctx, d.Store, d.Platform)
	if err != nil {
		return UploadOutput{}, err
	}
	var damaged damagedSet
	arts, err := artifactSources(ctx, st, d.Platform, in, &damaged)
	if err != nil {
		return UploadOutput{}, err
	}
	fab, err := fabric.Open(d.Platform, in.Fabric, d.env())
	if err != nil {
		return UploadOutput{}, apperr.ForTemporal(err)
	}
	out := UploadOutput{Paths: map[string]string{}}
	var mu sync.Mutex
	err = withHeartbeat(ctx, func() error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(jobWorkers)
		for _, a := range arts {
			g.Go(func() error {
				up, err := fab.Upload(gctx, in.Project, in.Version, a)
				if err != nil {
					return fmt.Errorf("upload %s to fabric %s: %w", a.File, in.Fabric, err)
				}
				mu.Lock()
				defer mu.Unlock()
				out.Paths[a.Pipeline] = up.Path
				if up.Uploaded {
					out.Uploaded = append(out.Uploaded, a.Pipeline)
				}
				return nil
			})
		}
		return g.Wait()
	})
	if derr := damaged.missing(ctx, &build.Builder{StateDir: d.Platform.StateDir, Store: st}, in.Fabric); derr != nil {
		return UploadOutput{}, derr
	}
	sort.Strings(out.Uploaded)
	return out, apperr.ForTemporal(err)
}

// UpsertJobInput creates or updates one job on its fabric.
type UpsertJobInput struct {
	Project      string            `json:"project"`
	Version      string            `json:"version"`
	Commit       string            `json:"commit"`
	DeploymentID string            `json:"deployment_id"`
	Job          ResolvedJob       `json:"job"`
	Artifacts    map[string]string `json:"artifacts"` // pipeline → path on the job's fabric
}

// UpsertJobOutput says what happened to the job.
type UpsertJobOutput struct {
	ID               string `json:"id"`
	Action           string `json:"action"`
	DefinitionSHA256 string `json:"definition_sha256"`
}

// UpsertJob renders the job's definition for its fabric (placeholders,
// variables, pause state) from the release commit and upserts it.
func (d *Deploy) UpsertJob(ctx context.Context, in UpsertJobInput) (UpsertJobOutput, error) {
	spec, err := d.render(ctx, in)
	if err != nil {
		return UpsertJobOutput{}, err
	}
	fab, err := fabric.Open(d.Platform, in.Job.Fabric, d.env())
	if err != nil {
		return UpsertJobOutput{}, apperr.ForTemporal(err)
	}
	var res fabric.JobResult
	err = withHeartbeat(ctx, func() error {
		var err error
		res, err = fab.UpsertJob(ctx, spec)
		return err
	})
	if err != nil {
		return UpsertJobOutput{}, apperr.ForTemporal(fmt.Errorf("job %s on fabric %s: %w", in.Job.Name, in.Job.Fabric, err))
	}
	sum := sha256.Sum256(spec.Definition)
	return UpsertJobOutput{ID: res.ID, Action: string(res.Action), DefinitionSHA256: hex.EncodeToString(sum[:])}, nil
}

// render reads the manifest and the job's definition at the commit and renders it.
func (d *Deploy) render(ctx context.Context, in UpsertJobInput) (fabric.JobSpec, error) {
	m, err := d.Git.mirror(in.Project)
	if err != nil {
		return fabric.JobSpec{}, err
	}
	var fsys fs.FS
	err = withHeartbeat(ctx, func() (err error) {
		fsys, err = m.TreeFS(ctx, in.Commit)
		return err
	})
	if err != nil {
		return fabric.JobSpec{}, apperr.ForTemporal(err)
	}
	man, diags := d.manifests.load(in.Project, in.Commit, fsys)
	spec, err := renderWith(d.Platform, fsys, man, diags, in)
	var e *apperr.Error
	switch {
	case err == nil:
		return spec, nil
	case errors.As(err, &e) && e.Type == apperr.InvalidDefinition:
		return fabric.JobSpec{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("render job %s for fabric %s: %v", in.Job.Name, in.Job.Fabric, err), apperr.InvalidDefinition, nil)
	}
	return fabric.JobSpec{}, apperr.ForTemporal(err)
}

// RenderFrom renders a job for its fabric from the project's files at the
// commit (fsys): the manifest and the job's definition are read from fsys,
// the variables and pause state merged from the manifest and platform.yaml.
// A deploy renders from the release's commit in the mirror; `shipline
// check` from a pull request's tree. An invalid manifest is an
// apperr.InvalidManifest, an invalid definition an apperr.InvalidDefinition
// whose cause is a diag.List naming the definition's file:line:col.
// (A function, not a method: Deploy's methods are its activities.)
func RenderFrom(cfg *platform.Config, fsys fs.FS, in UpsertJobInput) (fabric.JobSpec, error) {
	man, diags := manifest.Load(fsys)
	return renderWith(cfg, fsys, man, diags, in)
}

// renderWith is RenderFrom with the manifest of fsys already loaded.
func renderWith(cfg *platform.Config, fsys fs.FS, man *manifest.Manifest, diags diag.List, in UpsertJobInput) (fabric.JobSpec, error) {
	if diags.HasErrors() {
		return fabric.JobSpec{}, &apperr.Error{Type: apperr.InvalidManifest, Msg: "shipline.yaml is invalid:\n" + diags.Error(), Cause: diags}
	}
	path := in.Job.Definition
	if path == "" { // a recorded job (revert, drift): take it from the manifest of its commit
		path = man.Jobs[in.Job.Name].Definition
	}
	def, err := fs.ReadFile(fsys, path)
	if err != nil {
		return fabric.JobSpec{}, fmt.Errorf("read the definition of job %s: %w", in.Job.Name, err)
	}
	job := man.Jobs[in.Job.Name]
	job.Name = in.Job.Name
	return fabric.RenderJobSpec(fabric.RenderInput{
		Project: in.Project, Version: in.Version, Commit: in.Commit, Fabric: in.Job.Fabric,
		Job: job, Definition: def, ArtifactPaths: in.Artifacts,
		Variables: fabric.MergeVariables(man, cfg, in.Job.Fabric),
		Paused:    fabric.PausedFor(man, cfg, in.Job.Fabric, in.Job.Name),
	}, in.DeploymentID)
}

// CheckRendered checks a rendered job offline as a deployment's check step
// does before anything is written (the JSON shape of a Databricks payload
// was checked by rendering it): an Airflow DAG must compile and name its
// dag_id, compiled with the python3 env names. It writes nothing to any fabric.
func CheckRendered(ctx context.Context, env fabric.Env, j ResolvedJob, spec fabric.JobSpec) error {
	if j.Scheduler != string(manifest.Airflow) {
		return nil
	}
	return fabric.CheckDAG(ctx, env, spec)
}

// buildablePipeline is a manifest's pipeline as BuildInput takes it: Release
// and Deploy both build through it, so the same pipeline at the same commit has
// the same build cache key whichever builds it first.
func buildablePipeline(man *manifest.Manifest, name string) manifest.Pipeline {
	p := man.Pipelines[name]
	p.Name = name
	return p
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
