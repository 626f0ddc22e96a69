package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/manifest"
)

// session is one build of one pipeline, in its own work directory.
type session struct {
	b    *Builder
	r    *runner
	p    manifest.Pipeline
	key  string
	tree string // the pipeline directory's git tree hash: its content label
	work string // the build's private directory
	src  string // the exported pipeline directory (work/src)
	out  string // where the artifact is written (work/out), outside the sources
	// exportLibrary exports a library the pipeline uses (Request.ExportLibrary).
	exportLibrary func(ctx context.Context, path, dir string) error
}

// run builds the artifact and returns its path and the versions of the tools
// used. A jar gets the content version in its manifest and file name.
func (s *session) run(ctx context.Context) (string, map[string]string, error) {
	artifact, tools, err := s.build(ctx)
	if err != nil || !strings.EqualFold(filepath.Ext(artifact), ".jar") {
		return artifact, tools, err
	}
	s.r.setStep("content version")
	artifact, err = s.stampJar(artifact)
	return artifact, tools, err
}

// build runs the pipeline's build by its kind.
func (s *session) build(ctx context.Context) (string, map[string]string, error) {
	switch {
	case s.p.Build != "":
		return s.custom(ctx)
	case s.p.Language == manifest.Python:
		return s.python(ctx)
	case s.p.Language == manifest.Java:
		return s.java(ctx)
	}
	return "", nil, &apperr.Error{Type: apperr.InvalidInput, Msg: fmt.Sprintf("pipeline %s: no way to build a %s pipeline without a build command", s.p.Name, s.p.Language)}
}

// custom runs the manifest's test and build commands and picks the artifact
// by the manifest's glob.
func (s *session) custom(ctx context.Context) (string, map[string]string, error) {
	if _, err := s.exposeLibraries(ctx, ""); err != nil {
		return "", nil, err
	}
	if err := s.testCommand(ctx); err != nil {
		return "", nil, err
	}
	if err := s.shell(ctx, "build", s.p.Build, ErrBuildFailed,
		"fix the build (run `"+s.p.Build+"` in "+s.p.Path+" to reproduce), commit and push"); err != nil {
		return "", nil, err
	}
	path, err := s.pick(s.p.Artifact, "the manifest's artifact glob")
	return path, nil, err
}

// testCommand runs the manifest's test command, if any, in the pipeline directory.
func (s *session) testCommand(ctx context.Context) error {
	if s.p.Test == "" {
		return nil
	}
	return s.shell(ctx, "tests", s.p.Test, ErrTestsFailed, "fix the failing tests, commit and push")
}

// shell runs `sh -c line` in the pipeline directory; a non-zero exit is a
// permanent error of kind (exit 127, "command not found", is ErrToolMissing).
func (s *session) shell(ctx context.Context, step, line string, kind *apperr.Error, fix string) error {
	out, err := s.r.run(ctx, command{step: step, dir: s.src, args: []string{"sh", "-c", line}})
	if errors.Is(err, exec.ErrNotFound) {
		return s.fail(ErrToolMissing, outcome{}, "no `sh` on the worker's PATH", "install a POSIX shell on the worker")
	}
	if err != nil {
		return err
	}
	switch out.exit {
	case 0:
		return nil
	case 127:
		return s.fail(ErrToolMissing, out, fmt.Sprintf("%s command `%s` exited with 127: a command it runs is not installed", step, line),
			"install the tool on the worker (it must be on the worker's PATH), or change the command in shipline.yaml")
	}
	return s.fail(kind, out, fmt.Sprintf("%s command `%s` exited with %d", step, line, out.exit), fix)
}

// pick returns the single regular file matching glob (slash-separated, relative
// to the pipeline directory).
func (s *session) pick(glob, what string) (string, error) {
	matches, err := fs.Glob(os.DirFS(s.src), glob)
	if err != nil {
		return "", s.fail(ErrInvalid, outcome{}, fmt.Sprintf("%s %q is not a valid glob", what, glob), "fix the glob: * ? and [a-z] are supported")
	}
	var files []string
	for _, m := range matches {
		if fi, err := os.Stat(filepath.Join(s.src, filepath.FromSlash(m))); err == nil && fi.Mode().IsRegular() {
			files = append(files, m)
		}
	}
	switch len(files) {
	case 1:
		return filepath.Join(s.src, filepath.FromSlash(files[0])), nil
	case 0:
		dir := globDir(glob)
		return "", s.fail(ErrArtifactNotFound, outcome{},
			fmt.Sprintf("no file matches %s %q after the build (%s)", what, glob, s.listDir(dir)),
			"fix artifact in shipline.yaml so it names the file the build writes, relative to the pipeline's path")
	}
	return "", s.fail(ErrArtifactAmbiguous, outcome{},
		fmt.Sprintf("%s %q matches %d files: %s", what, glob, len(files), strings.Join(files, ", ")),
		"narrow the glob in shipline.yaml so it matches exactly one file")
}

// globDir is the directory part of glob before its first pattern character.
func globDir(glob string) string {
	dir := glob
	for strings.ContainsAny(dir, "*?[\\") {
		dir = pathDir(dir)
	}
	if dir == glob {
		dir = pathDir(glob)
	}
	return dir
}

func pathDir(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[:i]
	}
	return "."
}

// listDir says what dir (relative to the pipeline directory) holds, naming
// up to 20 entries.
func (s *session) listDir(dir string) string {
	entries, err := os.ReadDir(filepath.Join(s.src, filepath.FromSlash(dir)))
	if err != nil {
		return dir + " does not exist"
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return dir + " is empty"
	}
	if len(names) > 20 {
		names = append(names[:20], fmt.Sprintf("… %d more", len(names)-20))
	}
	return dir + " holds: " + strings.Join(names, ", ")
}

// fail makes a permanent error carrying the failing command's output.
func (s *session) fail(kind *apperr.Error, out outcome, what, fix string) error {
	msg := fmt.Sprintf("pipeline %s: %s: %s", s.p.Name, what, fix)
	t := out.tail
	if t != "" {
		msg += "\n--- output (last lines) ---\n" + t + "\n---"
	}
	msg += "\nfull build log: " + s.r.logWhere
	return &apperr.Error{Type: kind.Type, Msg: msg,
		Details: []any{FailureDetails{Pipeline: s.p.Name, LogPath: s.r.logKey, LogTail: t}}}
}

// isDir reports whether path is a directory.
func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// findFiles lists files under root whose names end in suffix, sorted.
func findFiles(root, suffix string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), suffix) {
			out = append(out, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	slices.Sort(out)
	return out, err
}

// copyTree copies the files under src (if it exists) into dst.
func copyTree(src, dst string) error {
	if !isDir(src) {
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
