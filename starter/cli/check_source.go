package cli

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/gitrepo"
)

// checkSource is what a check reads: a commit of the project's clone
// (--ref) or the files on disk.
type checkSource struct {
	fsys   fs.FS
	commit string // "" outside git
	desc   string
	prefix string // the project's directory in its repository
	dirty  bool   // the files on disk, which may differ from commit
	local  *gitrepo.Local
	work   *gitrepo.WorkDir
}

func openCheckSource(dir, ref string) (*checkSource, error) {
	if ref != "" {
		l, err := gitrepo.OpenLocal(dir, filepath.Base(dir))
		if err != nil {
			return nil, invalid("%s", apperr.Message(err))
		}
		commit, err := l.Resolve(ref)
		if err != nil {
			return nil, invalid("--ref %s", apperr.Message(err))
		}
		fsys, err := l.TreeFS(commit)
		if err != nil {
			return nil, failed(fmt.Errorf("read %s at %s: %w", dir, ref, err))
		}
		return &checkSource{fsys: fsys, commit: commit, prefix: l.Prefix(), local: l,
			desc: fmt.Sprintf("%s at %s (commit %s)", dir, ref, shortHash(commit))}, nil
	}
	w, err := gitrepo.OpenWorkDir(dir)
	if err != nil {
		return nil, failed(err)
	}
	s := &checkSource{fsys: os.DirFS(dir), prefix: w.Prefix(), work: w, dirty: true,
		desc: fmt.Sprintf("the files on disk in %s (not in a git repository)", dir)}
	if head, ok := w.Head(); ok {
		s.commit = head
		s.desc = fmt.Sprintf("the files on disk in %s (HEAD %s)", dir, shortHash(head))
	}
	return s, nil
}

// version is the provisional release version jobs are rendered with: never
// a release's (no v prefix), and naming the commit.
func (s *checkSource) version() string {
	if s.commit == "" {
		return "0.0.0-check+worktree"
	}
	return "0.0.0-check+" + s.commit[:12]
}

func (s *checkSource) commitOrZero() string {
	if s.commit == "" {
		return strings.Repeat("0", 40)
	}
	return s.commit
}

func (s *checkSource) treeHash(dir string) (string, error) {
	if s.local != nil {
		return s.local.TreeHash(s.commit, dir)
	}
	return s.work.TreeHash(dir)
}

func (s *checkSource) export(ctx context.Context, dir, dest string) error {
	if s.local != nil {
		return s.local.Export(ctx, s.commit, dir, dest)
	}
	return s.work.Export(ctx, dir, dest)
}

// repoPath turns a project-relative file into the repository-relative path
// GitHub annotations name; other paths (platform.yaml as given) are kept.
func (s *checkSource) repoPath(file string) string {
	if file == "" || filepath.IsAbs(file) {
		return file
	}
	return path.Clean(path.Join(s.prefix, filepath.ToSlash(file)))
}
