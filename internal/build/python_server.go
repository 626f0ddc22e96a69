package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// How a Python command of a build runs: through the worker's build server
// when it can (see server.go), else as a plain process (runner.run). Both
// write the same output into the build log and give the same exit code.

// server returns the worker's build server of role for this build's
// interpreter and environment, or nil and why not ("" when the builder has
// no servers).
func (s *session) server(ctx context.Context, role string) (*server, string) {
	if s.b.Servers == nil {
		return nil, ""
	}
	if serverOff(s.b.getenv(ServerEnv)) {
		return nil, ServerEnv + "=off"
	}
	p, err := s.b.Servers.get(ctx, role, s.b.python(), s.r.env)
	if err != nil {
		return nil, "no build server: " + err.Error()
	}
	return p, ""
}

// StartServers starts the build servers Python builds will use, so that the
// first build does not wait for their imports. It returns when they are up;
// a server that cannot start is logged by Servers and builds fall back.
func (b *Builder) StartServers(ctx context.Context) {
	if b.Servers == nil || serverOff(b.getenv(ServerEnv)) {
		return
	}
	py := b.python()
	env := mergeEnv(buildEnv(), []string{PythonEnv + "=" + py}) // as session.python sets it
	for _, role := range []string{roleBuild, rolePytest} {
		_, _ = b.Servers.get(ctx, role, py, env)
	}
}

func serverOff(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "off") }

// serverTools returns the tool versions the probe would report (see
// pythonTools), from the build servers, which exist only if the interpreter
// runs and has build (and pytest when needed); ok is false without them.
func (s *session) serverTools(ctx context.Context, py string, need []string) (map[string]string, bool) {
	var versions map[string]string
	for _, role := range []string{roleBuild, rolePytest} {
		if role == rolePytest && !containsString(need, "pytest") {
			continue
		}
		p, _ := s.server(ctx, role)
		if p == nil {
			return nil, false
		}
		if versions == nil {
			versions = p.ready.Versions
		}
	}
	tools := map[string]string{}
	for _, m := range append([]string{"python", "setuptools", "wheel"}, need...) {
		if v, ok := versions[m]; ok {
			tools[m] = v
		}
	}
	s.r.logf("tools: %s %s (from the build server)", py, toolVersions(tools))
	return tools, true
}

// runPython runs c, a `python -m MODULE …` command, through the server of
// role when there is one that has imported backend (if set), else the plain
// way, saying in the log why.
func (s *session) runPython(ctx context.Context, c command, role, backend string) (outcome, error) {
	p, why := s.server(ctx, role)
	if p != nil && backend != "" && !p.has(backend) {
		why = fmt.Sprintf("the build backend %s is not one the build server has loaded (%s)", backend, strings.Join(p.backends(), ", "))
		p = nil
	}
	if p == nil {
		if why != "" {
			s.r.logf("%s: %s; running the plain command", c.step, why)
		}
		return s.r.run(ctx, c)
	}
	out, err := s.r.runServer(ctx, c, p)
	if errors.Is(err, errServerDied) && ctx.Err() == nil {
		s.r.logf("%s: %v; running the command again the plain way", c.step, err)
		return s.r.run(ctx, c)
	}
	return out, err
}

// backends lists the build backends among a server's imports.
func (p *server) backends() []string {
	var out []string
	for _, m := range p.ready.Loaded {
		if strings.HasSuffix(m, ".build_meta") || strings.HasSuffix(m, ".buildapi") || m == "hatchling.build" ||
			strings.HasSuffix(m, ".masonry.api") || m == "pdm.backend" {
			out = append(out, m)
		}
	}
	return out
}

// buildBackend returns the module of the build backend that `python -m
// build` uses for the project at dir (setuptools' when pyproject.toml names none).
func buildBackend(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "pyproject.toml"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read pyproject.toml: %w", err)
	}
	backend := readPyproject(string(data)).backend
	if backend == "" {
		backend = "setuptools.build_meta"
	}
	module, _, _ := strings.Cut(backend, ":")
	return strings.TrimSpace(module), nil
}

// runServer is run (see there) through the build server p: c.args is
// `python -m MODULE ARGS…`.
func (r *runner) runServer(ctx context.Context, c command, p *server) (outcome, error) {
	if len(c.args) < 3 || c.args[1] != "-m" {
		return outcome{}, fmt.Errorf("build server: %q is not a `python -m` command", shellQuote(c.args))
	}
	r.setStep(c.step)
	r.logf("%s: %s  (in %s; forked by the build server: %s, pid %d)", c.step, shellQuote(c.args), c.dir, p.role, p.pid)
	start, err := r.log.Seek(0, io.SeekEnd)
	if err != nil {
		return outcome{}, fmt.Errorf("build log: %w", err)
	}
	began := time.Now()
	res, err := p.run(ctx, c.args[2], c.args[3:], c.dir, mergeEnv(r.env, c.env), r.logPath)
	took := time.Since(began)
	r.seconds += took.Seconds()
	r.cpu += res.cpu
	out := outcome{tail: r.tailFrom(start), exit: res.exit}
	switch {
	case ctx.Err() != nil:
		r.logf("%s: stopped after %.1fs: %v", c.step, took.Seconds(), ctx.Err())
		return out, ctx.Err()
	case err != nil:
		return out, err
	case res.signal != 0:
		out.exit = 128
		r.logf("%s: exit %d after %.1fs, cpu %.2fs (signal %d)", c.step, out.exit, took.Seconds(), res.cpu, res.signal)
		return out, nil
	}
	r.logf("%s: exit %d after %.1fs, cpu %.2fs", c.step, out.exit, took.Seconds(), res.cpu)
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
