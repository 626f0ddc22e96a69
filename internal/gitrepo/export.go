package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// TreeHash returns the git tree hash of directory dir (slash-separated,
// relative to the repository root; "" or "." is the root) at commit. It changes
// exactly when a file, mode or symlink under dir changes, which makes it the
// build cache's key input. If the mirror lacks the commit it fetches first. A
// commit the remote lacks is an ErrUnknownRef; a dir that is missing or not a
// directory at that commit is an ErrInvalid.
func (m *Mirror) TreeHash(ctx context.Context, commit, dir string) (string, error) {
	repo, _, unlock, err := m.open(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	tree, err := m.subtree(ctx, repo, commit, dir)
	if err != nil {
		return "", err
	}
	return tree.Hash.String(), nil
}

// Export writes the files of directory dir at commit into dest (created if
// missing): regular files with mode 0644, executables 0755, directories 0755.
// A symlink is recreated only when its target stays inside dir (so the export
// never points at the host's files, nor at repository files the tree hash of
// dir does not cover); any other symlink, and a submodule, is an ErrInvalid
// naming the entry. Export reads objects straight from the mirror (no checkout).
func (m *Mirror) Export(ctx context.Context, commit, dir, dest string) error {
	repo, _, unlock, err := m.open(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	tree, err := m.subtree(ctx, repo, commit, dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("create export directory: %w", err)
	}
	x := exporter{ctx: ctx, repo: repo, project: m.remote.Project, dir: cleanDir(dir), dest: dest}
	return x.tree(tree, ".")
}

// cleanDir normalises a slash-separated directory ("" and "/" become ".").
func cleanDir(dir string) string {
	dir = path.Clean("/" + strings.Trim(dir, "/"))
	if dir == "/" {
		return "."
	}
	return dir[1:]
}

// subtree finds dir's tree at commit, fetching the commit if the mirror lacks it.
// It runs with the lock held.
func (m *Mirror) subtree(ctx context.Context, repo *git.Repository, commit, dir string) (*object.Tree, error) {
	_, root, err := m.commitTree(ctx, repo, commit)
	if err != nil {
		return nil, err
	}
	d := cleanDir(dir)
	if d == "." {
		return root, nil
	}
	if d == ".." || strings.HasPrefix(d, "../") {
		return nil, newError(ErrInvalid, nil, fmt.Sprintf("project %s: directory %q is outside the repository", m.remote.Project, dir))
	}
	tree, err := root.Tree(d)
	if errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, newError(ErrInvalid, nil, fmt.Sprintf(
			"project %s: directory %s does not exist at commit %s: check the pipeline's path in shipline.yaml, or commit the directory",
			m.remote.Project, d, commit[:12]))
	}
	if err != nil {
		return nil, fmt.Errorf("read directory %s at commit %s in mirror: %w", d, commit, err)
	}
	return tree, nil
}

// exporter writes one subtree into dest.
type exporter struct {
	ctx     context.Context
	repo    *git.Repository
	project string // names the project in errors
	dir     string // the exported directory, relative to the repository root
	dest    string
}

// tree writes the entries of t, found at rel (relative to the exported dir).
func (x *exporter) tree(t *object.Tree, rel string) error {
	for _, e := range t.Entries {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") {
			return newError(ErrInvalid, nil, fmt.Sprintf("project %s: %s holds an entry named %q that cannot be written to disk",
				x.project, path.Join(x.dir, rel), e.Name))
		}
		p := path.Join(rel, e.Name)
		target := filepath.Join(x.dest, filepath.FromSlash(p))
		var err error
		switch e.Mode {
		case filemode.Dir:
			var sub *object.Tree
			if sub, err = x.repo.TreeObject(e.Hash); err != nil {
				return fmt.Errorf("read tree %s in mirror: %w", path.Join(x.dir, p), err)
			}
			if err = os.Mkdir(target, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("export %s: %w", p, err)
			}
			err = x.tree(sub, p)
		case filemode.Regular, filemode.Deprecated:
			err = x.file(e.Hash, p, target, 0o644)
		case filemode.Executable:
			err = x.file(e.Hash, p, target, 0o755)
		case filemode.Symlink:
			err = x.symlink(e.Hash, p, target)
		case filemode.Submodule:
			return newError(ErrInvalid, nil, fmt.Sprintf(
				"project %s: %s is a git submodule, which Shipline cannot export: vendor its files into the directory instead",
				x.project, path.Join(x.dir, p)))
		default:
			return newError(ErrInvalid, nil, fmt.Sprintf("project %s: %s has unsupported git mode %s", x.project, path.Join(x.dir, p), e.Mode))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (x *exporter) file(h plumbing.Hash, rel, target string, mode os.FileMode) error {
	b, err := x.repo.BlobObject(h)
	if err != nil {
		return fmt.Errorf("read %s in mirror: %w", path.Join(x.dir, rel), err)
	}
	r, err := b.Reader()
	if err != nil {
		return fmt.Errorf("read %s in mirror: %w", path.Join(x.dir, rel), err)
	}
	defer r.Close()
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("export %s: %w", rel, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("export %s: %w", rel, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("export %s: %w", rel, err)
	}
	// The umask may have narrowed the mode; executables must stay executable.
	return os.Chmod(target, mode)
}

func (x *exporter) symlink(h plumbing.Hash, rel, target string) error {
	b, err := x.repo.BlobObject(h)
	if err != nil {
		return fmt.Errorf("read %s in mirror: %w", path.Join(x.dir, rel), err)
	}
	r, err := b.Reader()
	if err != nil {
		return fmt.Errorf("read %s in mirror: %w", path.Join(x.dir, rel), err)
	}
	raw, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return fmt.Errorf("read %s in mirror: %w", path.Join(x.dir, rel), err)
	}
	link := string(raw)
	// The link must resolve inside the exported directory.
	if _, err := linkTarget(path.Dir(rel), link); err != nil || strings.ContainsRune(link, '\x00') {
		return newError(ErrInvalid, nil, fmt.Sprintf(
			"project %s: symlink %s points to %q, outside %s: Shipline exports only the directory itself, so copy the file in or make the link relative and inside it",
			x.project, path.Join(x.dir, rel), link, x.dir))
	}
	if err := os.Symlink(filepath.FromSlash(link), target); err != nil {
		return fmt.Errorf("export %s: %w", rel, err)
	}
	return nil
}
