package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/gitrepo"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/pkgindex"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/storage"
)

// Libraries publishes the libraries a release built (shipline.yaml's
// libraries:) to the package indexes of the platform config, never to
// fabrics, and checks pipelines' dependencies on them.
type Libraries struct {
	Platform *platform.Config
	// Store is the store workers share (the build cache the artifacts are
	// read from); nil opens Platform.StorageURL() on first use.
	Store *storage.Store
	// Getenv reads the indexes' credentials and git credentials; nil means os.Getenv.
	Getenv func(string) string

	store sharedStore
}

// PublishLibraryInput is one library built by a release, to publish.
type PublishLibraryInput struct {
	Project string `json:"project"`
	// Release is the release's version (a tag, v1.2.0): the library's version.
	Release string           `json:"release"`
	Library manifest.Library `json:"library"`
	// The built artifact, as the build step recorded it.
	File   string `json:"file"`
	Object string `json:"object"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// PublishedLibrary is what a release published: the record `shipline
// releases` and `status` show.
type PublishedLibrary struct {
	Library string `json:"library"`
	Index   string `json:"index"`
	// Name and Version are the package's (Python: the distribution; Maven:
	// group:artifact) as the index serves them.
	Name    string `json:"name"`
	Version string `json:"version"`
	File    string `json:"file"`
	SHA256  string `json:"sha256"`
	URL     string `json:"url,omitempty"`
	// AlreadyPublished: the index held these very bytes already (a resumed or
	// repeated release); nothing was uploaded.
	AlreadyPublished bool `json:"already_published,omitempty"`
}

// Publish puts the library's artifact on its package index. The same
// version with the same bytes is a no-op (AlreadyPublished); with other bytes
// it fails with apperr.VersionAlreadyPublished, naming both checksums.
func (l *Libraries) Publish(ctx context.Context, in PublishLibraryInput) (PublishedLibrary, error) {
	var out PublishedLibrary
	err := withHeartbeat(ctx, func() (err error) {
		out, err = l.publish(ctx, in)
		return err
	})
	return out, apperr.ForTemporal(err)
}

func (l *Libraries) publish(ctx context.Context, in PublishLibraryInput) (PublishedLibrary, error) {
	lib := in.Library
	version, err := lib.PackageVersion(in.Release)
	if err != nil {
		return PublishedLibrary{}, &apperr.Error{Type: apperr.InvalidInput, Msg: err.Error()}
	}
	if in.Object == "" || in.File == "" || in.File != filepath.Base(in.File) {
		return PublishedLibrary{}, &apperr.Error{Type: apperr.InvalidInput, Msg: fmt.Sprintf("publish library %s: no built artifact given", lib.Name)}
	}
	ix, err := OpenIndex(ctx, l.Platform, lib.Index, l.getenv)
	if err != nil {
		return PublishedLibrary{}, err
	}
	st, err := l.store.get(ctx, l.Store, l.Platform)
	if err != nil {
		return PublishedLibrary{}, err
	}
	dir, err := os.MkdirTemp("", "shipline-publish-")
	if err != nil {
		return PublishedLibrary{}, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, in.File)
	if err := copyChecked(ctx, st, in.Object, in.SHA256, in.Size, path); err != nil {
		return PublishedLibrary{}, err
	}
	name := lib.Name
	if lib.Group != "" {
		name = lib.Group + ":" + lib.Name
	}
	res, err := ix.Publish(ctx, pkgindex.File{Project: in.Project, Name: lib.Name, Version: version, Filename: in.File, Path: path,
		GroupID: lib.Group, ArtifactID: lib.Name})
	if err != nil {
		return PublishedLibrary{}, err
	}
	return PublishedLibrary{Library: lib.Name, Index: lib.Index, Name: name, Version: version, File: in.File, SHA256: in.SHA256,
		URL: res.URL, AlreadyPublished: res.AlreadyPublished}, nil
}

// copyChecked copies a store object to path, checking its checksum and size.
func copyChecked(ctx context.Context, st *storage.Store, object, sha string, size int64, path string) error {
	r, err := st.OpenChecked(ctx, object, sha, size)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return &apperr.Error{Type: apperr.ArtifactMissing, Msg: fmt.Sprintf("the built library %s is gone from the build cache (%s): resume the release to build it again", filepath.Base(path), object)}
		}
		return err
	}
	defer r.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// LibraryDepsInput names a commit of a project and the release being made
// of it (empty outside a release).
type LibraryDepsInput struct {
	Project string `json:"project"`
	Commit  string `json:"commit"`
	Release string `json:"release,omitempty"`
}

// LibraryDepsOutput lists the pipelines' dependencies on the project's
// libraries, and the errors for those pinned to a version that is neither
// published nor published by this release.
type LibraryDepsOutput struct {
	Deps        []manifest.LibraryDep `json:"deps,omitempty"`
	Diagnostics diag.List             `json:"diagnostics,omitempty"`
}

// CheckDependencies reads the pipelines' dependencies on the project's
// libraries at the commit and asks each library's index for the pinned
// versions. An index that cannot be asked is a transient error (retried).
func (l *Libraries) CheckDependencies(ctx context.Context, in LibraryDepsInput) (LibraryDepsOutput, error) {
	m, err := (&Git{Platform: l.Platform, Getenv: l.Getenv}).mirror(in.Project)
	if err != nil {
		return LibraryDepsOutput{}, err
	}
	var out LibraryDepsOutput
	err = withHeartbeat(ctx, func() error {
		fsys, err := m.TreeFS(ctx, in.Commit)
		if err != nil {
			return err
		}
		man, diags := manifest.Load(fsys)
		if man == nil {
			return &apperr.Error{Type: apperr.InvalidManifest, Msg: diags.Error()}
		}
		out.Deps = man.LibraryDeps(fsys)
		out.Diagnostics, err = man.CheckLibraryDeps(out.Deps, in.Release, PublishedIn(ctx, l.Platform, l.getenv))
		return err
	})
	return out, apperr.ForTemporal(err)
}

// PublishedIn answers, for manifest.CheckLibraryDeps, whether a library's
// version is on its index of cfg (each index opened once). (A function, not
// a method: Libraries' methods are its activities.)
func PublishedIn(ctx context.Context, cfg *platform.Config, getenv func(string) string) manifest.Published {
	opened := map[string]pkgindex.Index{}
	return func(lib manifest.Library, version string) (bool, error) {
		ix, ok := opened[lib.Index]
		if !ok {
			var err error
			if ix, err = OpenIndex(ctx, cfg, lib.Index, getenv); err != nil {
				return false, err
			}
			opened[lib.Index] = ix
		}
		name := lib.Name
		if lib.Group != "" {
			name = lib.Group + ":" + lib.Name
		}
		return ix.Has(ctx, name, version)
	}
}

// OpenIndex opens the package index the platform config names, with its
// credentials read from the environment variables it names. A missing index
// or an unset variable is apperr.IndexConfig.
func OpenIndex(ctx context.Context, cfg *platform.Config, name string, getenv func(string) string) (pkgindex.Index, error) {
	if cfg == nil {
		return nil, errors.New("library activities have no platform config")
	}
	ix, ok := cfg.PackageIndexes[name]
	if !ok {
		names := make([]string, 0, len(cfg.PackageIndexes))
		for n := range cfg.PackageIndexes {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, &apperr.Error{Type: apperr.IndexConfig, Msg: fmt.Sprintf("package index %q is not defined in the platform config (package_indexes: %s): ask the platform admins to add it, or fix the library's index:",
			name, strings.Join(names, ", "))}
	}
	c := pkgindex.Config{Name: name, Kind: ix.Kind, URL: ix.URL, SimpleURL: ix.SimpleURL}
	for _, v := range []struct {
		env string
		to  *string
	}{{ix.UsernameEnv, &c.Username}, {ix.PasswordEnv, &c.Password}, {ix.TokenEnv, &c.Token}} {
		if v.env == "" {
			continue
		}
		if *v.to = getenv(v.env); *v.to == "" {
			return nil, &apperr.Error{Type: apperr.IndexConfig, Msg: fmt.Sprintf("package index %s: the environment variable %s that platform.yaml names for its credentials is not set: set it in the worker's environment, restart the worker and resume the release (for `shipline validate` or `check`: in their environment)", name, v.env)}
		}
	}
	return pkgindex.Open(ctx, c)
}

// UnsetIndexVariables lists, for the worker's start, the package indexes
// whose credential variables are not set in its environment: a release that
// publishes a library there parks until they are. (A function: every method
// of Libraries is an activity.)
func UnsetIndexVariables(cfg *platform.Config) []string {
	names := make([]string, 0, len(cfg.PackageIndexes))
	for n := range cfg.PackageIndexes {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	for _, name := range names {
		ix := cfg.PackageIndexes[name]
		for _, env := range []string{ix.UsernameEnv, ix.PasswordEnv, ix.TokenEnv} {
			if env != "" && os.Getenv(env) == "" {
				out = append(out, fmt.Sprintf("package index %s: %s is not set in the worker's environment; a release that publishes a library there parks until it is (set it and restart the worker)", name, env))
			}
		}
	}
	return out
}

func (l *Libraries) getenv(k string) string {
	if l.Getenv != nil {
		return l.Getenv(k)
	}
	return os.Getenv(k)
}

// usedTrees returns in.Pipeline with the git tree hash of each library it
// uses at the commit: part of the build's cache key, so a change of a
// library tests its dependants again.
func (b *Build) usedTrees(ctx context.Context, m *gitrepo.Mirror, in BuildInput) (manifest.Pipeline, error) {
	p := in.Pipeline
	if len(p.Uses) == 0 {
		return p, nil
	}
	p.Uses = append([]manifest.UsedLibrary(nil), p.Uses...)
	for i, u := range p.Uses {
		var tree string
		err := withHeartbeat(ctx, func() (err error) {
			tree, err = m.TreeHash(ctx, in.Commit, u.Path)
			return err
		})
		if err != nil {
			return p, apperr.ForTemporal(err)
		}
		p.Uses[i].Tree = tree
	}
	return p, nil
}
