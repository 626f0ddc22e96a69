package build

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/shipline/shipline/internal/apperr"
)

const jdkFix = "install a JDK on the worker (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless), or set JAVA_HOME"

// jarDate is the time stamped on jar entries (jar --date), for reproducible jars.
const jarDate = "1980-01-01T00:00:02Z"

// jdkTool finds a JDK program: $JAVA_HOME/bin first, then PATH.
func (b *Builder) jdkTool(name string) (string, error) {
	if home := b.getenv("JAVA_HOME"); home != "" {
		p := filepath.Join(home, "bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

// jdk holds the JDK programs a Java build uses.
type jdk struct{ javac, jar, java string }

// java builds a Java pipeline by convention (no build command): compile
// src/main/java, add src/main/resources, test, and pack <pipeline>.jar.
func (s *session) java(ctx context.Context) (string, map[string]string, error) {
	var t jdk
	for _, tool := range []struct {
		name string
		dst  *string
	}{{"javac", &t.javac}, {"jar", &t.jar}, {"java", &t.java}} {
		p, err := s.b.jdkTool(tool.name)
		if err != nil {
			return "", nil, s.fail(ErrToolMissing, outcome{}, fmt.Sprintf("`%s` is not installed on the worker", tool.name), jdkFix)
		}
		*tool.dst = p
	}
	tools := map[string]string{"javac": javacVersion(ctx, t.javac)}
	s.r.logf("tools: %s (%s), %s, %s", t.javac, tools["javac"], t.jar, t.java)

	libs, err := s.exposeLibraries(ctx, t.javac)
	if err != nil {
		return "", nil, err
	}
	libCP := joinClasspath(libs...)
	if err := s.testCommand(ctx); err != nil {
		return "", nil, err
	}
	classes := filepath.Join(s.work, "classes")
	sources, err := findFiles(filepath.Join(s.src, "src", "main", "java"), ".java")
	if err != nil {
		return "", nil, fmt.Errorf("list Java sources: %w", err)
	}
	if len(sources) == 0 {
		return "", nil, s.fail(ErrBuildFailed, outcome{}, "no Java sources under src/main/java",
			"put the sources under src/main/java, or set build and artifact in shipline.yaml to build another way")
	}
	if err := s.javac(ctx, t.javac, "compile", sources, classes, libCP, ErrBuildFailed); err != nil {
		return "", nil, err
	}
	if err := copyTree(filepath.Join(s.src, "src", "main", "resources"), classes); err != nil {
		return "", nil, fmt.Errorf("copy resources: %w", err)
	}
	if s.p.Test == "" && isDir(filepath.Join(s.src, "src", "test", "java")) {
		if err := s.javaTests(ctx, t, classes, libCP); err != nil {
			return "", nil, err
		}
	}

	// The jar holds the pipeline's classes only, never its libraries'.
	jarPath := filepath.Join(s.out, s.p.Name+".jar")
	out, err := s.r.run(ctx, command{step: "jar", dir: s.work,
		args: []string{t.jar, "--create", "--file", jarPath, "--date=" + jarDate, "-C", classes, "."}})
	if err != nil {
		return "", nil, err
	}
	if out.exit != 0 {
		return "", nil, s.fail(ErrBuildFailed, out, fmt.Sprintf("jar exited with %d", out.exit), "see the build log")
	}
	return jarPath, tools, nil
}

// javac compiles sources into dir with classpath cp (may be empty).
func (s *session) javac(ctx context.Context, javac, step string, sources []string, dir, cp string, kind *apperr.Error) error {
	out, err := s.compileJava(ctx, javac, step, s.src, sources, dir, cp)
	if err != nil {
		return err
	}
	if out.exit != 0 {
		return s.fail(kind, out, fmt.Sprintf("javac (%s) exited with %d", step, out.exit),
			"fix the compile errors, commit and push")
	}
	return nil
}

// compileJava runs javac in runDir on sources, writing classes into dir,
// with classpath cp (may be empty), and returns its outcome.
func (s *session) compileJava(ctx context.Context, javac, step, runDir string, sources []string, dir, cp string) (outcome, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return outcome{}, fmt.Errorf("create %s: %w", dir, err)
	}
	// An argument file keeps long source lists off the command line.
	var list strings.Builder
	for _, src := range sources {
		list.WriteString(`"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(src) + "\"\n")
	}
	argfile := filepath.Join(s.work, step+"-sources.txt")
	if err := os.WriteFile(argfile, []byte(list.String()), 0o644); err != nil {
		return outcome{}, fmt.Errorf("write javac argument file: %w", err)
	}
	args := []string{javac, "-encoding", "UTF-8", "-d", dir}
	if cp != "" {
		args = append(args, "-cp", cp)
	}
	return s.r.run(ctx, command{step: step, dir: runDir, args: append(args, "@"+argfile)})
}

// javaTests compiles src/test/java against the main classes and the
// libraries' classpath libCP (may be empty) and runs every top-level class
// named *Test as a main class; any non-zero exit fails.
func (s *session) javaTests(ctx context.Context, t jdk, classes, libCP string) error {
	sources, err := findFiles(filepath.Join(s.src, "src", "test", "java"), ".java")
	if err != nil {
		return fmt.Errorf("list Java test sources: %w", err)
	}
	if len(sources) == 0 {
		s.r.logf("tests: src/test/java holds no .java files")
		return nil
	}
	testClasses := filepath.Join(s.work, "test-classes")
	if err := s.javac(ctx, t.javac, "compile tests", sources, testClasses, joinClasspath(classes, libCP), ErrTestsFailed); err != nil {
		return err
	}
	if err := copyTree(filepath.Join(s.src, "src", "test", "resources"), testClasses); err != nil {
		return fmt.Errorf("copy test resources: %w", err)
	}
	compiled, err := findFiles(testClasses, "Test.class")
	if err != nil {
		return fmt.Errorf("list test classes: %w", err)
	}
	cp := joinClasspath(testClasses, classes, libCP)
	ran := 0
	for _, c := range compiled {
		rel, _ := filepath.Rel(testClasses, c)
		if strings.Contains(filepath.Base(rel), "$") {
			continue // nested class
		}
		name := strings.ReplaceAll(strings.TrimSuffix(filepath.ToSlash(rel), ".class"), "/", ".")
		out, err := s.r.run(ctx, command{step: "test " + name, dir: s.src, args: []string{t.java, "-cp", cp, name}})
		if err != nil {
			return err
		}
		if out.exit != 0 {
			return s.fail(ErrTestsFailed, out, fmt.Sprintf("test class %s exited with %d", name, out.exit),
				"fix the failing test, commit and push")
		}
		ran++
	}
	if ran == 0 {
		s.r.logf("tests: no class named *Test under src/test/java; nothing run")
	}
	return nil
}

// javacVersion returns `javac -version`'s answer, or "unknown".
func javacVersion(ctx context.Context, javac string) string {
	out, err := exec.CommandContext(ctx, javac, "-version").CombinedOutput()
	if v := strings.TrimSpace(string(out)); err == nil && v != "" {
		return v
	}
	return "unknown"
}
