package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// TreeFS returns the tree of commit as a read-only fs.FS read straight from the
// mirror's objects (no checkout). If the mirror lacks the commit it fetches
// first; a commit the remote does not have either is an ErrUnknownRef.
//
// Symlinks are reported as such by ReadDir, Lstat and ReadLink. Open and Stat
// follow them only while they stay inside the tree; a link leading outside
// (absolute, or climbing above the root) fails with fs.ErrNotExist.
// Submodules appear as irregular entries that cannot be opened. Every entry's
// modification time is the commit time.
func (m *Mirror) TreeFS(ctx context.Context, commit string) (fs.FS, error) {
	repo, _, unlock, err := m.open(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, tree, err := m.commitTree(ctx, repo, commit)
	if err != nil {
		return nil, err
	}
	return &treeFS{repo: repo, root: tree, modTime: c.Committer.When}, nil
}

// commitTree finds a full commit hash and its root tree in the mirror, fetching
// once when the mirror lacks it. It runs with the lock held.
func (m *Mirror) commitTree(ctx context.Context, repo *git.Repository, commit string) (*object.Commit, *object.Tree, error) {
	if len(commit) != 40 || !isHex(commit) {
		return nil, nil, newError(ErrInvalid, nil, fmt.Sprintf("project %s: commit %q is not a full 40-hex commit hash", m.remote.Project, commit))
	}
	h := plumbing.NewHash(commit)
	c, err := repo.CommitObject(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		if err := m.fetch(ctx, repo); err != nil {
			return nil, nil, err
		}
		c, err = repo.CommitObject(h)
	}
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, nil, m.unknownRef(commit)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read commit %s in mirror: %w", commit, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, nil, fmt.Errorf("read tree of commit %s in mirror: %w", commit, err)
	}
	return c, tree, nil
}

// treeFS is an fs.FS over one git tree.
type treeFS struct {
	repo    *git.Repository
	root    *object.Tree
	modTime time.Time
}

var (
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.ReadFileFS = (*treeFS)(nil)
	_ fs.StatFS     = (*treeFS)(nil)
	_ fs.ReadLinkFS = (*treeFS)(nil)
)

// node is a resolved path: the entry (zero for the root) and its tree if a dir.
type node struct {
	name  string // path as resolved (after following links)
	entry object.TreeEntry
	tree  *object.Tree
}

const maxLinks = 40

var errOutside = errors.New("symlink leads outside the repository")

// lookup resolves name. follow makes a symlink in the last element be followed;
// symlinks in earlier elements are always followed (inside the tree only).
func (t *treeFS) lookup(op, name string, follow bool) (node, error) {
	if !fs.ValidPath(name) {
		return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n, err := t.walk(name, follow, 0)
	if err != nil {
		if errors.Is(err, errOutside) {
			err = fmt.Errorf("%w: %w", fs.ErrNotExist, err)
		}
		return node{}, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return n, nil
}

func (t *treeFS) walk(name string, follow bool, hops int) (node, error) {
	cur := node{name: ".", tree: t.root}
	if name == "." {
		return cur, nil
	}
	parts := strings.Split(name, "/")
	for i, part := range parts {
		if cur.tree == nil {
			return node{}, fs.ErrNotExist // a file used as a directory
		}
		e, ok := findEntry(cur.tree, part)
		if !ok {
			return node{}, fs.ErrNotExist
		}
		p := path.Join(cur.name, part)
		last := i == len(parts)-1
		if e.Mode == filemode.Symlink && (!last || follow) {
			if hops >= maxLinks {
				return node{}, errors.New("too many levels of symbolic links")
			}
			target, err := t.blobBytes(e.Hash)
			if err != nil {
				return node{}, err
			}
			resolved, err := linkTarget(path.Dir(p), string(target))
			if err != nil {
				return node{}, err
			}
			rest := strings.Join(parts[i+1:], "/")
			if rest != "" {
				resolved = path.Join(resolved, rest)
			}
			return t.walk(resolved, follow, hops+1)
		}
		next := node{name: p, entry: e}
		if e.Mode == filemode.Dir {
			tree, err := t.repo.TreeObject(e.Hash)
			if err != nil {
				return node{}, err
			}
			next.tree = tree
		}
		cur = next
	}
	return cur, nil
}

// linkTarget resolves a symlink's target relative to dir, refusing to leave the tree.
func linkTarget(dir, target string) (string, error) {
	if target == "" || strings.HasPrefix(target, "/") {
		return "", errOutside
	}
	p := path.Clean(path.Join(dir, target))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errOutside
	}
	return p, nil
}

func findEntry(tree *object.Tree, name string) (object.TreeEntry, bool) {
	for _, e := range tree.Entries {
		if e.Name == name {
			return e, true
		}
	}
	return object.TreeEntry{}, false
}

func (t *treeFS) blobBytes(h plumbing.Hash) ([]byte, error) {
	b, err := t.repo.BlobObject(h)
	if err != nil {
		return nil, err
	}
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// Open implements fs.FS.
func (t *treeFS) Open(name string) (fs.File, error) {
	n, err := t.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	info := t.info(path.Base(name), n)
	if n.tree != nil {
		return &treeDir{fsys: t, info: info, tree: n.tree}, nil
	}
	if !n.entry.Mode.IsFile() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: submodules are not part of the tree", fs.ErrNotExist)}
	}
	data, err := t.blobBytes(n.entry.Hash)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &treeFile{info: info, Reader: bytes.NewReader(data)}, nil
}

// ReadFile implements fs.ReadFileFS.
func (t *treeFS) ReadFile(name string) ([]byte, error) {
	f, err := t.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tf, ok := f.(*treeFile)
	if !ok {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	return io.ReadAll(tf.Reader)
}

// ReadDir implements fs.ReadDirFS, sorted by name.
func (t *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := t.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if n.tree == nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return t.entries(n.name, n.tree), nil
}

// Stat implements fs.StatFS; it follows symlinks inside the tree.
func (t *treeFS) Stat(name string) (fs.FileInfo, error) {
	n, err := t.lookup("stat", name, true)
	if err != nil {
		return nil, err
	}
	return t.info(path.Base(name), n), nil
}

// Lstat implements fs.ReadLinkFS; it reports a symlink as such.
func (t *treeFS) Lstat(name string) (fs.FileInfo, error) {
	n, err := t.lookup("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return t.info(path.Base(name), n), nil
}

// ReadLink implements fs.ReadLinkFS.
func (t *treeFS) ReadLink(name string) (string, error) {
	n, err := t.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.entry.Mode != filemode.Symlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	target, err := t.blobBytes(n.entry.Hash)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return string(target), nil
}

func (t *treeFS) entries(dir string, tree *object.Tree) []fs.DirEntry {
	out := make([]fs.DirEntry, 0, len(tree.Entries))
	for _, e := range tree.Entries {
		n := node{name: path.Join(dir, e.Name), entry: e}
		out = append(out, fs.FileInfoToDirEntry(t.info(e.Name, n)))
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// info describes n. Sizes of files are read lazily.
func (t *treeFS) info(name string, n node) *fileInfo {
	if name == "." || name == "/" {
		name = "."
	}
	fi := &fileInfo{fsys: t, name: name, modTime: t.modTime, hash: n.entry.Hash}
	switch {
	case n.tree != nil || n.entry.Mode == filemode.Dir:
		fi.mode = fs.ModeDir | 0o555
	case n.entry.Mode == filemode.Symlink:
		fi.mode = fs.ModeSymlink | 0o777 // size: the target's length, read lazily
	case n.entry.Mode == filemode.Executable:
		fi.mode = 0o555
	case n.entry.Mode == filemode.Submodule:
		fi.mode = fs.ModeIrregular
		fi.sized = true
	default:
		fi.mode = 0o444
	}
	if fi.mode.IsDir() {
		fi.sized = true
	}
	return fi
}

type fileInfo struct {
	fsys    *treeFS
	name    string
	mode    fs.FileMode
	modTime time.Time
	hash    plumbing.Hash
	sized   bool
	size    int64
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return fi.modTime }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return nil }
func (fi *fileInfo) Size() int64 {
	if !fi.sized {
		if sz, err := fi.fsys.repo.Storer.EncodedObjectSize(fi.hash); err == nil {
			fi.size = sz
		}
		fi.sized = true
	}
	return fi.size
}

// treeFile is an open regular file.
type treeFile struct {
	info *fileInfo
	*bytes.Reader
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *treeFile) Close() error               { return nil }

// treeDir is an open directory.
type treeDir struct {
	fsys    *treeFS
	info    *fileInfo
	tree    *object.Tree
	entries []fs.DirEntry
	read    bool
}

func (d *treeDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *treeDir) Close() error               { return nil }
func (d *treeDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *treeDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		d.entries = d.fsys.entries(d.info.name, d.tree)
		d.read = true
	}
	if n <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	out := d.entries[:n]
	d.entries = d.entries[n:]
	return out, nil
}
