package scaffold

import (
	"bytes"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/shipline/shipline/internal/manifest"
)

// skipDirs are directories never read: build outputs, virtualenvs, caches.
var skipDirs = map[string]bool{
	"node_modules": true, "__pycache__": true, "venv": true, "site-packages": true,
	"target": true, "build": true, "dist": true,
}

// found lists the repository's directories and candidate definition files,
// each in lexical order.
type found struct {
	dirs, json, py []string
}

// walk lists the repository, skipping hidden directories and skipDirs.
func walk(fsys fs.FS) (found, error) {
	var f found
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			return nil // unreadable: not ours to judge here
		}
		name := d.Name()
		if d.IsDir() {
			if p != "." && (strings.HasPrefix(name, ".") || skipDirs[name]) {
				return fs.SkipDir
			}
			f.dirs = append(f.dirs, p)
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		switch {
		case strings.HasSuffix(name, ".json"):
			f.json = append(f.json, p)
		case strings.HasSuffix(name, ".py"):
			f.py = append(f.py, p)
		}
		return nil
	})
	return f, err
}

// readFile reads a repository file the way a deploy would (manifest.ReadFile:
// inside the project, at most 1 MiB); ok is false when it cannot.
func readFile(fsys fs.FS, name string) ([]byte, bool) {
	data, err := manifest.ReadFile(fsys, name)
	return data, err == nil
}

// exists reports whether name is a regular file of fsys.
func exists(fsys fs.FS, name string) bool {
	fi, err := fs.Stat(fsys, name)
	return err == nil && fi.Mode().IsRegular()
}

// isDir reports whether name is a directory of fsys.
func isDir(fsys fs.FS, name string) bool {
	fi, err := fs.Stat(fsys, name)
	return err == nil && fi.IsDir()
}

// join is path.Join that keeps "." roots out of the result.
func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return path.Join(dir, name)
}

// overlay is the repository with a generated shipline.yaml at its root, so
// the generated file is checked against the real files without writing it.
type overlay struct {
	fs.FS
	yaml []byte
}

func (o overlay) Open(name string) (fs.File, error) {
	if name == manifest.FileName {
		return &memFile{Reader: bytes.NewReader(o.yaml), size: int64(len(o.yaml))}, nil
	}
	return o.FS.Open(name)
}

// ReadLink and Lstat keep the repository's symlink checks (fs.ReadLinkFS).
func (o overlay) ReadLink(name string) (string, error) {
	if rl, ok := o.FS.(fs.ReadLinkFS); ok && name != manifest.FileName {
		return rl.ReadLink(name)
	}
	return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
}

func (o overlay) Lstat(name string) (fs.FileInfo, error) {
	if rl, ok := o.FS.(fs.ReadLinkFS); ok && name != manifest.FileName {
		return rl.Lstat(name)
	}
	return fs.Stat(o, name)
}

// memFile is the generated shipline.yaml as an fs.File.
type memFile struct {
	*bytes.Reader
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{size: f.size}, nil }
func (f *memFile) Close() error               { return nil }

var _ io.Reader = (*memFile)(nil)

type memInfo struct{ size int64 }

func (i memInfo) Name() string       { return manifest.FileName }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
