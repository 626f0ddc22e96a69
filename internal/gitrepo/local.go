package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Local is a developer's or a CI job's own clone of a project, read without
// changing it: a ref resolved to a commit, the commit's tree as an fs.FS, a
// directory's tree hash and its export — what a Mirror gives for a remote,
// for `shipline check --ref`. Nothing is checked out; objects are read from
// the clone's .git.
type Local struct {
	repo   *git.Repository
	root   string
	prefix string // the project's directory in the repository ("." at the top)
	name   string // names the project in errors
}

// OpenLocal opens the git repository that holds the project directory dir
// (dir itself or one of its parents); every path the methods take is
// relative to dir. A directory outside any repository is an ErrInvalid.
func OpenLocal(dir, project string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, newError(ErrInvalid, nil, fmt.Sprintf("%s is not inside a git repository: --ref needs the project's clone (run it in the checkout, or drop --ref to check the files as they are)", dir))
	}
	if err != nil {
		return nil, fmt.Errorf("open the git repository of %s: %w", dir, err)
	}
	root := abs
	if wt, err := repo.Worktree(); err == nil {
		root = wt.Filesystem.Root()
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		rel = "."
	}
	return &Local{repo: repo, root: root, prefix: cleanDir(filepath.ToSlash(rel)), name: project}, nil
}

// Root is the repository's top directory (its work tree).
func (l *Local) Root() string { return l.root }

// Prefix is the project directory's path in the repository ("." at the top).
func (l *Local) Prefix() string { return l.prefix }

// Resolve returns the full hash of the commit ref names: HEAD, a branch, a
// tag, a remote-tracking branch, a commit hash (full or abbreviated) or any
// revision git's rev-parse accepts (HEAD~1, main^). Tags are peeled. An
// unknown ref is an ErrUnknownRef.
func (l *Local) Resolve(ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", newError(ErrInvalid, nil, "no ref given: name a branch, tag or commit")
	}
	h, err := l.repo.ResolveRevision(plumbing.Revision(ref))
	if err != nil {
		return "", newError(ErrUnknownRef, err, fmt.Sprintf(
			"%q is not a branch, tag or commit of the repository at %s: check the spelling, or fetch it first (git fetch origin %s)", shorten(ref), l.root, shorten(ref)))
	}
	c, err := l.repo.CommitObject(*h)
	if err != nil {
		return "", newError(ErrUnknownRef, err, fmt.Sprintf("%q does not name a commit of the repository at %s", shorten(ref), l.root))
	}
	return c.Hash.String(), nil
}

// TreeFS returns the project directory's tree at commit as a read-only
// fs.FS (see Mirror.TreeFS).
func (l *Local) TreeFS(commit string) (fs.FS, error) {
	c, _, err := l.commitTree(commit)
	if err != nil {
		return nil, err
	}
	tree, err := l.subtree(commit, ".")
	if err != nil {
		return nil, err
	}
	return &treeFS{repo: l.repo, root: tree, modTime: c.Committer.When}, nil
}

// TreeHash returns the git tree hash of directory dir at commit (see Mirror.TreeHash).
func (l *Local) TreeHash(commit, dir string) (string, error) {
	t, err := l.subtree(commit, dir)
	if err != nil {
		return "", err
	}
	return t.Hash.String(), nil
}

// Export writes the files of directory dir at commit into dest, exactly as
// Mirror.Export does.
func (l *Local) Export(ctx context.Context, commit, dir, dest string) error {
	t, err := l.subtree(commit, dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("create export directory: %w", err)
	}
	x := exporter{ctx: ctx, repo: l.repo, project: l.name, dir: cleanDir(path.Join(l.prefix, dir)), dest: dest}
	return x.tree(t, ".")
}

func (l *Local) commitTree(commit string) (*object.Commit, *object.Tree, error) {
	if len(commit) != 40 || !isHex(commit) {
		return nil, nil, newError(ErrInvalid, nil, fmt.Sprintf("commit %q is not a full 40-hex commit hash", commit))
	}
	c, err := l.repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return nil, nil, newError(ErrUnknownRef, err, fmt.Sprintf("commit %s is not in the repository at %s", commit, l.root))
	}
	t, err := c.Tree()
	if err != nil {
		return nil, nil, fmt.Errorf("read tree of commit %s: %w", commit, err)
	}
	return c, t, nil
}

func (l *Local) subtree(commit, dir string) (*object.Tree, error) {
	_, root, err := l.commitTree(commit)
	if err != nil {
		return nil, err
	}
	d := cleanDir(path.Join(l.prefix, dir))
	if d == "." {
		return root, nil
	}
	t, err := root.Tree(d)
	if errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, newError(ErrInvalid, nil, fmt.Sprintf(
			"directory %s does not exist at commit %s: check the pipeline's path in shipline.yaml, or commit the directory", d, commit[:12]))
	}
	if err != nil {
		return nil, fmt.Errorf("read directory %s at commit %s: %w", d, commit, err)
	}
	return t, nil
}
