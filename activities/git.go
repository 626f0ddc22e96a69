package activities

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/gitrepo"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
)

// Git owns every git side effect: a bare mirror per project under
// <state_dir>/git/<project>.git, fetched from and pushed to the project's remote.
// Credentials are read from the environment variables named in platform.yaml at
// call time; they never appear in activity inputs or outputs.
type Git struct {
	Platform *platform.Config
	// Getenv reads credentials; nil means os.Getenv.
	Getenv func(string) string
}

// ResolveRefInput asks for the commit a ref points to on the project's remote.
type ResolveRefInput struct {
	Project string `json:"project"`
	// Ref is a branch, tag, full ref name or commit hash (full or abbreviated).
	Ref string `json:"ref"`
	// Tag, when set and on the remote, is resolved instead of Ref: a release
	// without an explicit ref adopts the tag of its version pushed by hand.
	Tag string `json:"tag,omitempty"`
}

// ResolveRefOutput is the resolved commit.
type ResolveRefOutput struct {
	Commit string `json:"commit"` // full 40-hex hash
	// FromTag is true when the commit is Tag's.
	FromTag bool `json:"from_tag,omitempty"`
}

// ResolveRef fetches the project's remote into its mirror and resolves Ref.
// An unknown ref is a permanent error of type apperr.UnknownRef.
func (g *Git) ResolveRef(ctx context.Context, in ResolveRefInput) (ResolveRefOutput, error) {
	m, err := g.mirror(in.Project)
	if err != nil {
		return ResolveRefOutput{}, err
	}
	var out ResolveRefOutput
	err = withHeartbeat(ctx, func() (err error) {
		if in.Tag != "" {
			commit, err := m.Resolve(ctx, "refs/tags/"+in.Tag)
			if err == nil {
				out = ResolveRefOutput{Commit: commit, FromTag: true}
				return nil
			}
			if !errors.Is(err, gitrepo.ErrUnknownRef) {
				return err
			}
		}
		out.Commit, err = m.Resolve(ctx, in.Ref)
		return err
	})
	if err != nil {
		return ResolveRefOutput{}, apperr.ForTemporal(err)
	}
	return out, nil
}

// ValidateManifestInput names a commit of a project.
type ValidateManifestInput struct {
	Project string `json:"project"`
	Commit  string `json:"commit"`
}

// ValidateManifestOutput holds the manifest's findings at that commit.
type ValidateManifestOutput struct {
	// Name is the manifest's `name`.
	Name        string    `json:"name"`
	Diagnostics diag.List `json:"diagnostics,omitempty"`
	// Pipelines are the manifest's pipelines sorted by name, each as a deploy
	// builds it (the same build inputs give the same build cache keys).
	Pipelines []manifest.Pipeline `json:"pipelines,omitempty"`
	// Libraries are the manifest's libraries sorted by name (a release builds,
	// tests and publishes them).
	Libraries []manifest.Library `json:"libraries,omitempty"`
}

// ValidateManifest reads shipline.yaml and the files it names at Commit (from the
// mirror, no checkout) and validates them. It returns the diagnostics; it fails
// only when the commit cannot be read. The caller decides what errors mean.
func (g *Git) ValidateManifest(ctx context.Context, in ValidateManifestInput) (ValidateManifestOutput, error) {
	m, err := g.mirror(in.Project)
	if err != nil {
		return ValidateManifestOutput{}, err
	}
	var out ValidateManifestOutput
	err = withHeartbeat(ctx, func() error {
		fsys, err := m.TreeFS(ctx, in.Commit)
		if err != nil {
			return err
		}
		// Validate also checks the manifest against platform.yaml: the project's
		// registration, job fabrics and their kinds, and ${var.*} per fabric.
		man, diags := manifest.Validate(fsys, g.Platform, in.Project)
		if man != nil {
			out.Name = man.Name
			for _, name := range sortedKeys(man.Pipelines) {
				out.Pipelines = append(out.Pipelines, buildablePipeline(man, name))
			}
			out.Libraries = man.SortedLibraries()
		}
		// Every Airflow DAG compiles and names its dag_id, before anything is tagged.
		diags = append(diags, fabric.CheckProjectDAGs(ctx, fsys, man, g.Platform, in.Project, fabric.Env(g.Getenv))...)
		out.Diagnostics = diags
		return nil
	})
	if err != nil {
		return ValidateManifestOutput{}, apperr.ForTemporal(err)
	}
	return out, nil
}

// CreateTagInput describes the annotated release tag.
type CreateTagInput struct {
	Project string `json:"project"`
	Version string `json:"version"` // the tag name, e.g. v1.2.3
	Commit  string `json:"commit"`
	Message string `json:"message"`
	// Tagger is the actor; TaggerEmail defaults to <actor>@shipline.local.
	Tagger      string    `json:"tagger"`
	TaggerEmail string    `json:"tagger_email,omitempty"`
	When        time.Time `json:"when"` // tag time, chosen by the workflow so retries produce the same tag object
}

// CreateTagOutput says what happened.
type CreateTagOutput struct {
	// Created is false when the remote already had the same tag on the same commit.
	Created bool      `json:"created"`
	Tagger  string    `json:"tagger"`
	When    time.Time `json:"when"`
}

// CreateTag creates the annotated tag in the mirror and pushes it. Idempotent: a
// tag of that name already on the remote pointing at Commit is success; one
// pointing elsewhere is a permanent error of type apperr.TagConflict.
func (g *Git) CreateTag(ctx context.Context, in CreateTagInput) (CreateTagOutput, error) {
	m, err := g.mirror(in.Project)
	if err != nil {
		return CreateTagOutput{}, err
	}
	var res gitrepo.TagResult
	err = withHeartbeat(ctx, func() (err error) {
		res, err = m.CreateTag(ctx, gitrepo.TagRequest{
			Name:        in.Version,
			Commit:      in.Commit,
			Message:     in.Message,
			Tagger:      in.Tagger,
			TaggerEmail: in.TaggerEmail,
			When:        in.When,
		})
		return err
	})
	if err != nil {
		return CreateTagOutput{}, apperr.ForTemporal(err)
	}
	return CreateTagOutput{Created: res.Created, Tagger: res.Tagger, When: res.When}, nil
}

// ListTagsInput names a project.
type ListTagsInput struct {
	Project string `json:"project"`
	// Fetch fetches tags from the remote first (otherwise the mirror's tags are listed).
	Fetch bool `json:"fetch"`
}

// TagInfo is one tag found on the remote.
type TagInfo struct {
	Name      string    `json:"name"`
	Commit    string    `json:"commit"`
	Annotated bool      `json:"annotated"`
	Message   string    `json:"message,omitempty"`
	Creator   string    `json:"creator"` // tagger name for annotated tags, else committer name
	Created   time.Time `json:"created"` // tagger time, else commit time
}

// ListTagsOutput lists tags whose names are release versions (vMAJOR.MINOR.PATCH[-pre]).
type ListTagsOutput struct {
	Tags []TagInfo `json:"tags"`
}

// ListTags lists release tags of the project's remote.
func (g *Git) ListTags(ctx context.Context, in ListTagsInput) (ListTagsOutput, error) {
	m, err := g.mirror(in.Project)
	if err != nil {
		return ListTagsOutput{}, err
	}
	var tags []gitrepo.Tag
	err = withHeartbeat(ctx, func() (err error) {
		tags, err = m.ListTags(ctx, in.Fetch)
		return err
	})
	if err != nil {
		return ListTagsOutput{}, apperr.ForTemporal(err)
	}
	out := ListTagsOutput{Tags: make([]TagInfo, 0, len(tags))}
	for _, t := range tags {
		out.Tags = append(out.Tags, TagInfo{
			Name:      t.Name,
			Commit:    t.Commit,
			Annotated: t.Annotated,
			Message:   t.Message,
			Creator:   t.Creator,
			Created:   t.Created,
		})
	}
	return out, nil
}

// mirror returns the project's mirror, or apperr.UnknownProject.
func (g *Git) mirror(project string) (*gitrepo.Mirror, error) {
	if g.Platform == nil {
		return nil, errors.New("git activities have no platform config")
	}
	p, ok := g.Platform.Projects[project]
	if !ok {
		known := make([]string, 0, len(g.Platform.Projects))
		for name := range g.Platform.Projects {
			known = append(known, name)
		}
		slices.Sort(known)
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"project %q is not registered in platform.yaml (registered: %s): check the name, or ask a platform admin to add it under projects",
			project, strings.Join(known, ", ")), apperr.UnknownProject, nil)
	}
	if p.Repo == "" {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"project %s has no repo in platform.yaml: set projects.%s.repo", project, project), apperr.InvalidInput, nil)
	}
	store := gitrepo.Store{Dir: filepath.Join(g.Platform.StateDir, "git"), Getenv: g.Getenv}
	m, err := store.Mirror(gitrepo.Remote{
		Project:       project,
		URL:           p.Repo,
		TokenEnv:      p.GitTokenEnv,
		UserEnv:       p.GitUserEnv,
		SSHKeyFile:    p.SSHKeyFile,
		SSHKnownHosts: p.SSHKnownHosts,
	})
	if err != nil {
		return nil, apperr.ForTemporal(err)
	}
	return m, nil
}

// heartbeatEvery is how often long git operations report liveness.
const heartbeatEvery = 5 * time.Second

// withHeartbeat runs fn, heartbeating while it runs so a fetch of a large
// repository does not trip the activity's heartbeat timeout.
func withHeartbeat(ctx context.Context, fn func() error) error {
	if !activity.IsActivity(ctx) {
		return fn()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return fn()
}
