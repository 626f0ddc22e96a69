package build

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/shipline/shipline/internal/manifest"
)

// LibraryClasspathEnv names the environment variable that gives a JVM
// pipeline's build and test commands the classpath of the project's JVM
// libraries it depends on (class directories and jars, separated by the OS's
// path-list separator, ':' on Unix).
const LibraryClasspathEnv = "SHIPLINE_LIBRARY_CLASSPATH"

// A JVM pipeline (java, scala) compiles and tests against the project's JVM
// libraries it depends on (Pipeline.Uses: pom.xml <dependency> on the
// library's group and name) as they are at the build's commit, the way a
// Python pipeline's tests import its libraries' sources: at release the
// libraries are built alongside the pipelines and published only before the
// tag, and a deploy builds pipelines without them, so a pipeline's build
// cannot wait for the library's jar; it builds what it needs from the
// library's sources instead. The libraries' trees (and build settings) are
// part of the pipeline's cache key, so a change of a library builds and
// tests its dependants again.
//
//   - a library built by convention (java without build:): javac of its
//     src/main/java, plus its src/main/resources, into a class directory of
//     the build (work/uses-classes/<library>);
//   - a library with a build command (any scala library, a java one built
//     with mvn or gradle): the command runs in the library's exported copy and
//     the one file its artifact glob matches is the jar used. Shipline runs
//     no test of the library there (its own build at release does), though
//     a command like `mvn package` runs them itself.
//
// The classpath goes on the convention build's javac and java commands, and
// to a pipeline's own build and test commands as $SHIPLINE_LIBRARY_CLASSPATH.
// It never goes into the pipeline's jar: the library is published to its
// package index, and the fabric's cluster installs it from there.

// libraryClasspath exports and builds the JVM libraries the pipeline uses
// and returns their class directories and jars, in Uses order. javac is the
// compiler for libraries built by convention (found when empty). Without an
// exporter (a build outside a release, deploy or check) it returns nothing.
func (s *session) libraryClasspath(ctx context.Context, javac string) ([]string, error) {
	if len(s.p.Uses) == 0 || s.exportLibrary == nil {
		return nil, nil
	}
	var cp []string
	for _, u := range s.p.Uses {
		s.r.setStep("library " + u.Name)
		dir := filepath.Join(s.work, "uses", u.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create build directory: %w", err)
		}
		if err := s.exportLibrary(ctx, u.Path, dir); err != nil {
			s.r.logf("export of library %s (%s) failed: %v", u.Name, u.Path, err)
			return nil, fmt.Errorf("export library %s: %w", u.Path, err)
		}
		var entry string
		var err error
		if u.Build != "" {
			entry, err = s.buildLibraryJar(ctx, u, dir)
		} else {
			if javac == "" {
				if javac, err = s.b.jdkTool("javac"); err != nil {
					return nil, s.fail(ErrToolMissing, outcome{}, fmt.Sprintf("`javac` is not installed on the worker, and library %s (%s) is compiled with it", u.Name, u.Path), jdkFix)
				}
			}
			entry, err = s.compileLibrary(ctx, javac, u, dir)
		}
		if err != nil {
			return nil, err
		}
		s.r.logf("compiles against library %s from %s (tree %s): %s", u.Name, u.Path, u.Tree, s.rel(entry))
		cp = append(cp, entry)
	}
	return cp, nil
}

// compileLibrary compiles a convention-built library's src/main/java (with
// its src/main/resources) into a class directory and returns it.
func (s *session) compileLibrary(ctx context.Context, javac string, u manifest.UsedLibrary, dir string) (string, error) {
	sources, err := findFiles(filepath.Join(dir, "src", "main", "java"), ".java")
	if err != nil {
		return "", fmt.Errorf("list the Java sources of library %s: %w", u.Name, err)
	}
	if len(sources) == 0 {
		return "", s.fail(ErrBuildFailed, outcome{},
			fmt.Sprintf("library %s (%s), which the pipeline depends on, has no Java sources under %s/src/main/java to compile", u.Name, u.Path, u.Path),
			"put the library's sources there, or give the library build: and artifact: in shipline.yaml (a scala library needs them: its jar is then built with that command)")
	}
	classes := filepath.Join(s.work, "uses-classes", u.Name)
	out, err := s.compileJava(ctx, javac, "compile library "+u.Name, dir, sources, classes, "")
	if err != nil {
		return "", err
	}
	if out.exit != 0 {
		return "", s.fail(ErrBuildFailed, out,
			fmt.Sprintf("library %s (%s), which the pipeline depends on, does not compile: javac exited with %d", u.Name, u.Path, out.exit),
			"fix the library's compile errors (its dependants compile against its sources at the same commit), commit and push")
	}
	if err := copyTree(filepath.Join(dir, "src", "main", "resources"), classes); err != nil {
		return "", fmt.Errorf("copy the resources of library %s: %w", u.Name, err)
	}
	return classes, nil
}

// buildLibraryJar runs a library's build command in its exported copy and
// returns the one file its artifact glob matches.
func (s *session) buildLibraryJar(ctx context.Context, u manifest.UsedLibrary, dir string) (string, error) {
	out, err := s.r.run(ctx, command{step: "build library " + u.Name, dir: dir, args: []string{"sh", "-c", u.Build}})
	if err != nil {
		return "", err
	}
	switch out.exit {
	case 0:
	case 127:
		return "", s.fail(ErrToolMissing, out,
			fmt.Sprintf("the build command `%s` of library %s (%s), which the pipeline depends on, exited with 127: a command it runs is not installed", u.Build, u.Name, u.Path),
			"install the tool on the worker (it must be on the worker's PATH), or change the library's build in shipline.yaml")
	default:
		return "", s.fail(ErrBuildFailed, out,
			fmt.Sprintf("library %s (%s), which the pipeline depends on, does not build: `%s` exited with %d", u.Name, u.Path, u.Build, out.exit),
			"fix the library's build (run `"+u.Build+"` in "+u.Path+" to reproduce), commit and push")
	}
	matches, err := fs.Glob(os.DirFS(dir), u.Artifact)
	if err != nil {
		return "", s.fail(ErrInvalid, outcome{}, fmt.Sprintf("library %s: artifact glob %q is not valid", u.Name, u.Artifact), "fix the library's artifact glob in shipline.yaml")
	}
	var files []string
	for _, m := range matches {
		if fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(m))); err == nil && fi.Mode().IsRegular() {
			files = append(files, m)
		}
	}
	if len(files) != 1 {
		return "", s.fail(ErrBuildFailed, outcome{},
			fmt.Sprintf("library %s (%s): its artifact glob %q matches %d files after its build (%s)", u.Name, u.Path, u.Artifact, len(files), strings.Join(files, ", ")),
			"fix the library's build or artifact in shipline.yaml so that exactly one jar matches")
	}
	return filepath.Join(dir, filepath.FromSlash(files[0])), nil
}

// exposeLibraries builds the JVM libraries a JVM pipeline uses and returns
// their classpath entries; the pipeline's own build and test commands get
// them as $SHIPLINE_LIBRARY_CLASSPATH. javac may be empty (see
// libraryClasspath).
func (s *session) exposeLibraries(ctx context.Context, javac string) ([]string, error) {
	if s.p.Language != manifest.Java && s.p.Language != manifest.Scala {
		return nil, nil
	}
	cp, err := s.libraryClasspath(ctx, javac)
	if err != nil || len(cp) == 0 {
		return nil, err
	}
	s.r.env = mergeEnv(s.r.env, []string{LibraryClasspathEnv + "=" + joinClasspath(cp...)})
	if s.p.Build != "" || s.p.Test != "" {
		s.r.logf("%s is set for the build and test commands", LibraryClasspathEnv)
	}
	return cp, nil
}

// rel names a path of the build's directory relative to it, for the log.
func (s *session) rel(path string) string {
	if r, err := filepath.Rel(s.work, path); err == nil {
		return filepath.ToSlash(r)
	}
	return path
}

// joinClasspath joins classpath entries, skipping empty ones.
func joinClasspath(entries ...string) string {
	var out []string
	for _, e := range entries {
		if e != "" {
			out = append(out, e)
		}
	}
	return strings.Join(out, string(os.PathListSeparator))
}
