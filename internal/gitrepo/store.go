// Package gitrepo is Shipline's git plumbing: one bare mirror per project under
// <state_dir>/git/<project>.git, fetched from and pushed to the project's remote
// with go-git. It resolves refs, reads a commit's tree as an fs.FS, creates and
// pushes annotated release tags idempotently, and lists release tags.
//
// Permanent failures are *apperr.Error values matching ErrUnknownRef, ErrAuth,
// ErrTagConflict or ErrInvalid; every other error is transient. No error text
// carries a credential.
package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
)

// Store holds the mirrors of all projects.
type Store struct {
	// Dir is the directory of the mirrors, normally <state_dir>/git.
	Dir string
	// Getenv reads credentials at call time; nil means os.Getenv.
	Getenv func(string) string
}

// Mirror is one project's bare mirror. Its methods are safe for concurrent use,
// also from several processes sharing the state directory: each takes the
// mirror's lock for its whole duration.
type Mirror struct {
	path   string
	remote Remote
	getenv func(string) string
}

// Mirror returns the mirror of the project named by remote.Project, creating it on
// first use. Opening it does not contact the remote.
func (s *Store) Mirror(remote Remote) (*Mirror, error) {
	if remote.Project == "" || remote.Project != filepath.Base(remote.Project) || remote.Project[0] == '.' {
		return nil, newError(ErrInvalid, nil, fmt.Sprintf("project name %q cannot name a mirror directory", remote.Project))
	}
	if _, err := remote.endpoint(); err != nil {
		return nil, err
	}
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	return &Mirror{
		path:   filepath.Join(s.Dir, remote.Project+".git"),
		remote: remote,
		getenv: getenv,
	}, nil
}

// Path is the mirror's directory.
func (m *Mirror) Path() string { return m.path }

// Remote is the remote the mirror follows.
func (m *Mirror) Remote() Remote { return m.remote }

// open locks the mirror, creates it if needed (bare, remote "origin") and
// points origin at the configured URL. The caller must call the returned unlock.
func (m *Mirror) open(ctx context.Context) (repo *git.Repository, created bool, unlock func(), err error) {
	unlock, err = lockPath(ctx, m.path)
	if err != nil {
		return nil, false, nil, err
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	repo, err = git.PlainOpen(m.path)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err = os.MkdirAll(filepath.Dir(m.path), 0o755); err != nil {
			return nil, false, nil, fmt.Errorf("create mirror directory: %w", err)
		}
		// A crash during a previous init may have left a partial directory.
		if err = os.RemoveAll(m.path); err != nil {
			return nil, false, nil, fmt.Errorf("remove partial mirror %s: %w", m.path, err)
		}
		repo, err = git.PlainInit(m.path, true)
		created = true
	}
	if err != nil {
		return nil, false, nil, fmt.Errorf("open mirror %s: %w", m.path, err)
	}
	if err = m.setOrigin(repo); err != nil {
		return nil, false, nil, err
	}
	return repo, created, unlock, nil
}

// setOrigin makes remote "origin" point at the configured URL, with the refspecs
// of a mirror (branches and tags under their own names).
func (m *Mirror) setOrigin(repo *git.Repository) error {
	cfg, err := repo.Config()
	if err != nil {
		return fmt.Errorf("read mirror config: %w", err)
	}
	want := &config.RemoteConfig{
		Name:  git.DefaultRemoteName,
		URLs:  []string{m.remote.URL},
		Fetch: mirrorRefSpecs,
	}
	have, ok := cfg.Remotes[git.DefaultRemoteName]
	sameURL := ok && len(have.URLs) == 1 && have.URLs[0] == m.remote.URL
	if sameURL && fmt.Sprint(have.Fetch) == fmt.Sprint(want.Fetch) {
		return nil
	}
	if ok && !sameURL {
		// The platform config changed the repo: refs of the old remote must not
		// leak into resolutions of the new one.
		if err := clearRefs(repo); err != nil {
			return err
		}
	}
	cfg.Remotes[git.DefaultRemoteName] = want
	if err := repo.SetConfig(cfg); err != nil {
		return fmt.Errorf("write mirror config: %w", err)
	}
	return nil
}

var mirrorRefSpecs = []config.RefSpec{
	"+refs/heads/*:refs/heads/*",
	"+refs/tags/*:refs/tags/*",
}

// clearRefs removes every branch and tag of the mirror.
func clearRefs(repo *git.Repository) error {
	refs, err := repo.References()
	if err != nil {
		return fmt.Errorf("list mirror refs: %w", err)
	}
	defer refs.Close()
	var names []string
	for {
		ref, err := refs.Next()
		if err != nil {
			break
		}
		if ref.Name().IsBranch() || ref.Name().IsTag() {
			names = append(names, ref.Name().String())
		}
	}
	for _, n := range names {
		if err := repo.Storer.RemoveReference(refName(n)); err != nil {
			return fmt.Errorf("remove mirror ref %s: %w", n, err)
		}
	}
	return nil
}
