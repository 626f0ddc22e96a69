package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// WorkDir reads a project's files as they are on disk, the way `git add -A`
// would stage them: what .gitignore and .git/info/exclude leave out is left
// out. The tree hash of a directory is git's, so an unchanged, committed
// directory hashes as it does at HEAD and shares build cache entries with a
// release of that commit; an edited one gets a new hash.
type WorkDir struct {
	dir     string   // the project directory (absolute)
	rel     []string // dir's path in the repository, as elements
	repo    *git.Repository
	matcher gitignore.Matcher // nil outside a repository
}

// OpenWorkDir reads the project directory dir; inside a git repository its
// ignore rules apply.
func OpenWorkDir(dir string) (*WorkDir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	w := &WorkDir{dir: abs}
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return w, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open the git repository of %s: %w", dir, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return w, nil // a bare repository: no ignore rules apply to dir
	}
	root := wt.Filesystem.Root()
	ps, err := gitignore.ReadPatterns(osfs.New(root), nil)
	if err != nil {
		return nil, fmt.Errorf("read the ignore rules of %s: %w", root, err)
	}
	w.repo, w.matcher = repo, gitignore.NewMatcher(ps)
	if rel, err := filepath.Rel(root, abs); err == nil && rel != "." {
		w.rel = strings.Split(filepath.ToSlash(rel), "/")
	}
	return w, nil
}

// Head returns the commit HEAD names, when dir is in a repository with one.
func (w *WorkDir) Head() (string, bool) {
	if w.repo == nil {
		return "", false
	}
	h, err := w.repo.Head()
	if err != nil {
		return "", false
	}
	return h.Hash().String(), true
}

// TreeHash returns the git tree hash the files under dir (relative to the
// project directory) would have once staged.
func (w *WorkDir) TreeHash(dir string) (string, error) {
	h, _, err := w.walk(context.Background(), cleanDir(dir), "")
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// Export copies the files under dir that TreeHash covers into dest, with
// the modes an export of the same tree from git gives (0644, 0755).
func (w *WorkDir) Export(ctx context.Context, dir, dest string) error {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("create export directory: %w", err)
	}
	_, _, err := w.walk(ctx, cleanDir(dir), dest)
	return err
}

// walk hashes the tree of rel (slash-separated, relative to the project
// directory) and, when out is set, writes its entries into out. It reports
// whether the tree has any entry (git stores no empty directory).
func (w *WorkDir) walk(ctx context.Context, rel, out string) (plumbing.Hash, bool, error) {
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return plumbing.ZeroHash, false, newError(ErrInvalid, nil, fmt.Sprintf("directory %q is outside the project", rel))
	}
	full := filepath.Join(w.dir, filepath.FromSlash(rel))
	ents, err := os.ReadDir(full)
	if errors.Is(err, os.ErrNotExist) {
		return plumbing.ZeroHash, false, newError(ErrInvalid, nil, fmt.Sprintf("directory %s does not exist: check the pipeline's path in shipline.yaml", rel))
	}
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	var tree object.Tree
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return plumbing.ZeroHash, false, err
		}
		name := e.Name()
		p := path.Join(rel, name)
		if name == ".git" || w.ignored(p, e.IsDir()) {
			continue
		}
		src := filepath.Join(full, name)
		target := ""
		if out != "" {
			target = filepath.Join(out, name)
		}
		switch t := e.Type(); {
		case t.IsDir():
			if target != "" {
				if err := os.MkdirAll(target, 0o755); err != nil {
					return plumbing.ZeroHash, false, fmt.Errorf("export %s: %w", p, err)
				}
			}
			h, any, err := w.walk(ctx, p, target)
			if err != nil {
				return plumbing.ZeroHash, false, err
			}
			if any {
				tree.Entries = append(tree.Entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
			} else if target != "" {
				os.Remove(target)
			}
		case t&os.ModeSymlink != 0:
			link, err := os.Readlink(src)
			if err != nil {
				return plumbing.ZeroHash, false, err
			}
			if target != "" {
				if _, err := linkTarget(path.Dir(p), filepath.ToSlash(link)); err != nil {
					return plumbing.ZeroHash, false, newError(ErrInvalid, nil, fmt.Sprintf(
						"symlink %s points to %q, outside the project: copy the file in or make the link relative and inside it", p, link))
				}
				if err := os.Symlink(link, target); err != nil {
					return plumbing.ZeroHash, false, fmt.Errorf("export %s: %w", p, err)
				}
			}
			tree.Entries = append(tree.Entries, object.TreeEntry{Name: name, Mode: filemode.Symlink,
				Hash: plumbing.ComputeHash(plumbing.BlobObject, []byte(filepath.ToSlash(link)))})
		case t.IsRegular():
			h, mode, err := copyHashed(src, target)
			if err != nil {
				return plumbing.ZeroHash, false, fmt.Errorf("read %s: %w", p, err)
			}
			tree.Entries = append(tree.Entries, object.TreeEntry{Name: name, Mode: mode, Hash: h})
		}
		// Other kinds (sockets, pipes, devices) are not content git stages.
	}
	sort.Sort(object.TreeEntrySorter(tree.Entries))
	obj := &plumbing.MemoryObject{}
	if err := tree.Encode(obj); err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("hash directory %s: %w", rel, err)
	}
	return obj.Hash(), len(tree.Entries) > 0, nil
}

// ignored applies the repository's ignore rules to a path of the project.
func (w *WorkDir) ignored(rel string, isDir bool) bool {
	if w.matcher == nil {
		return false
	}
	parts := append(append([]string{}, w.rel...), strings.Split(rel, "/")...)
	return w.matcher.Match(parts, isDir)
}

// copyHashed returns the blob hash and git mode of the file src, copying it
// to target when target is set.
func copyHashed(src, target string) (plumbing.Hash, filemode.FileMode, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return plumbing.ZeroHash, 0, err
	}
	mode, perm := filemode.Regular, os.FileMode(0o644)
	if fi.Mode()&0o111 != 0 {
		mode, perm = filemode.Executable, 0o755
	}
	f, err := os.Open(src)
	if err != nil {
		return plumbing.ZeroHash, 0, err
	}
	defer f.Close()
	hasher := plumbing.NewHasher(plumbing.BlobObject, fi.Size())
	var w io.Writer = hasher
	var out *os.File
	if target != "" {
		if out, err = os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm); err != nil {
			return plumbing.ZeroHash, 0, err
		}
		defer out.Close()
		w = io.MultiWriter(hasher, out)
	}
	if _, err := io.Copy(w, f); err != nil {
		return plumbing.ZeroHash, 0, err
	}
	if out != nil {
		if err := out.Close(); err != nil {
			return plumbing.ZeroHash, 0, err
		}
		if err := os.Chmod(target, perm); err != nil {
			return plumbing.ZeroHash, 0, err
		}
	}
	return hasher.Sum(), mode, nil
}

// Prefix is the project directory's path in its repository ("." at the
// top, or outside any repository).
func (w *WorkDir) Prefix() string {
	if len(w.rel) == 0 {
		return "."
	}
	return strings.Join(w.rel, "/")
}
