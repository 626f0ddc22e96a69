package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// DebianPython is the default interpreter: Debian's python3, for which
// python3-build, python3-wheel, python3-setuptools and python3-pytest exist.
const DebianPython = "/usr/bin/python3"

// PythonEnv names the environment variable that overrides the interpreter.
const PythonEnv = "SHIPLINE_PYTHON"

// python returns the interpreter for Python pipelines.
func (b *Builder) python() string {
	if b.Python != "" {
		return b.Python
	}
	if v := b.getenv(PythonEnv); v != "" {
		return v
	}
	if _, err := os.Stat(DebianPython); err == nil {
		return DebianPython
	}
	return "python3"
}

const installFix = "install them on the worker (Debian/Ubuntu: apt-get install python3-build python3-wheel python3-setuptools python3-pytest), or set " +
	PythonEnv + " to an interpreter that has them"

// python tests the package (pytest or the manifest's test command) and builds
// its wheel offline with `python -m build --wheel --no-isolation`.
func (s *session) python(ctx context.Context) (string, map[string]string, error) {
	py := s.b.python()
	pytest := s.p.Test == "" && isDir(filepath.Join(s.src, "tests"))
	need := []string{"build"}
	if pytest {
		need = append(need, "pytest")
	}
	// A manifest test command can name the same interpreter as $SHIPLINE_PYTHON.
	s.r.env = mergeEnv(s.r.env, []string{PythonEnv + "=" + py})
	tools, ok := s.serverTools(ctx, py, need)
	if !ok {
		var err error
		if tools, err = s.pythonTools(ctx, py, need); err != nil {
			return "", nil, err
		}
	}
	if err := s.testCommand(ctx); err != nil {
		return "", nil, err
	}
	if pytest {
		if err := s.pytest(ctx, py); err != nil {
			return "", nil, err
		}
	}

	label := ContentLabel(s.tree)
	how, err := s.versionPython(label)
	var le *labelError
	if errors.As(err, &le) {
		return "", nil, s.fail(ErrBuildFailed, outcome{}, le.what, le.fix)
	}
	if err != nil {
		return "", nil, err
	}
	s.r.logf("content label +%s: %s", label, how)

	backend, err := buildBackend(s.src)
	if err != nil {
		return "", nil, err
	}
	args := []string{py, "-m", "build", "--wheel", "--no-isolation", "--outdir", s.out, "."}
	out, err := s.runPython(ctx, command{step: "build", dir: s.src, args: args}, roleBuild, backend)
	if err != nil {
		return "", nil, err
	}
	if out.exit != 0 {
		if strings.Contains(out.tail, "Missing dependencies") {
			return "", nil, s.fail(ErrToolMissing, out,
				"the build backend named by pyproject.toml's [build-system] requires is not installed for "+py,
				installFix+" (or the backend the project names)")
		}
		return "", nil, s.fail(ErrBuildFailed, out, fmt.Sprintf("`python -m build --wheel` exited with %d", out.exit),
			"fix pyproject.toml or the package (run `python -m build --wheel` in "+s.p.Path+" to reproduce), commit and push")
	}
	wheel, err := s.singleOutput(".whl")
	if err == nil {
		err = s.checkWheelLabel(wheel, label)
	}
	return wheel, tools, err
}

// pytest runs the tests under tests/ with the package importable.
func (s *session) pytest(ctx context.Context, py string) error {
	path := s.src
	if isDir(filepath.Join(s.src, "src")) {
		path = filepath.Join(s.src, "src")
	}
	path, err := s.withUsedLibraries(ctx, path)
	if err != nil {
		return err
	}
	out, err := s.runPython(ctx, command{
		step: "tests",
		dir:  s.src,
		args: []string{py, "-m", "pytest", "-q", "-p", "no:cacheprovider"},
		env:  []string{"PYTHONPATH=" + path},
	}, rolePytest, "")
	if err != nil {
		return err
	}
	switch out.exit {
	case 0:
		return nil
	case 5:
		s.r.logf("tests: pytest collected no tests under tests/; building anyway")
		return nil
	}
	return s.fail(ErrTestsFailed, out, fmt.Sprintf("tests failed: pytest exited with %d", out.exit),
		"fix the failing tests, commit and push")
}

// singleOutput returns the one file in the output directory ending in ext.
func (s *session) singleOutput(ext string) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(s.out, "*"+ext))
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return "", s.fail(ErrArtifactNotFound, outcome{tail: fileTail(s.r.logPath)}, "the build wrote no "+ext+" file",
			"check the build's output above")
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = filepath.Base(m)
	}
	return "", s.fail(ErrArtifactAmbiguous, outcome{}, fmt.Sprintf("the build wrote %d %s files: %s", len(matches), ext, strings.Join(names, ", ")),
		"make the project build exactly one")
}

// probeScript prints the interpreter's version and those of the named
// modules, and which are missing, without importing them.
const probeScript = `
import sys, json, importlib.util
try:
    from importlib import metadata
except ImportError:
    metadata = None
need = sys.argv[1:]
versions = {"python": sys.version.split()[0]}
missing = []
for m in need + ["setuptools", "wheel"]:
    if importlib.util.find_spec(m) is None:
        if m in need:
            missing.append(m)
        continue
    try:
        versions[m] = metadata.version(m)
    except Exception:
        versions[m] = "unknown"
print(json.dumps({"versions": versions, "missing": missing}))
`

// pythonTools checks that py runs and has the modules in need; it returns the
// versions of the interpreter and the build tools.
func (s *session) pythonTools(ctx context.Context, py string, need []string) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, py, append([]string{"-c", probeScript}, need...)...)
	cmd.Env = s.r.env
	data, err := cmd.Output()
	if ps := cmd.ProcessState; ps != nil {
		s.r.cpu += (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	var pathErr *fs.PathError
	if errors.Is(err, exec.ErrNotFound) || errors.As(err, &pathErr) {
		return nil, s.fail(ErrToolMissing, outcome{}, fmt.Sprintf("the Python interpreter %s was not found", py),
			"install python3 on the worker (Debian/Ubuntu: apt-get install python3 python3-build python3-wheel python3-setuptools python3-pytest), or set "+PythonEnv)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var probe struct {
		Versions map[string]string `json:"versions"`
		Missing  []string          `json:"missing"`
	}
	if err != nil || json.Unmarshal(data, &probe) != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			s.r.logf("%s does not run: %v\n%s", py, err, ee.Stderr)
		}
		return nil, s.fail(ErrToolMissing, outcome{}, fmt.Sprintf("the Python interpreter %s does not run (%v)", py, err),
			"install python3 on the worker, or set "+PythonEnv+" to a working interpreter")
	}
	s.r.logf("tools: %s %s", py, toolVersions(probe.Versions))
	if len(probe.Missing) > 0 {
		mods := make([]string, len(probe.Missing))
		for i, m := range probe.Missing {
			mods[i] = "python3-" + m
		}
		return nil, s.fail(ErrToolMissing, outcome{}, fmt.Sprintf("%s lacks the module(s) %s (%s)", py,
			strings.Join(probe.Missing, ", "), strings.Join(mods, " ")), installFix)
	}
	return probe.Versions, nil
}

// toolVersions is how a build log names the Python tools' versions:
// "build 1.0.3, python 3.11.2, …", sorted by tool.
func toolVersions(v map[string]string) string {
	names := make([]string, 0, len(v))
	for n := range v {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		names[i] = n + " " + v[n]
	}
	return strings.Join(names, ", ")
}
