package build

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The build server: Python builds and pytest runs without an interpreter
// start and a setuptools (or pytest) import each.
//
// A worker keeps one Python process per role (Servers): "build" has imported
// the PEP 517 frontend `build` and the build backends it could (setuptools,
// flit_core, hatchling, poetry-core, pdm-backend), "pytest" has imported
// pytest. For each command it forks a child that becomes what `python -m
// build …` or `python -m pytest …` would be in a fresh interpreter (cwd,
// environment, sys.path, argv, its own process group, stdout and stderr into
// the build log) and runs the module as __main__; the backend hooks that
// `build` runs in fresh interpreters run in grandchildren forked the same
// way. So a build gives the same output, exit code and wheel bytes as the
// plain command, and nothing one build does reaches the next. The Python side
// is buildserver.py, embedded here.
//
// A server is replaced when it dies, after MaxBuilds commands, when the
// interpreter or the environment it was started with changes, and when a
// directory of its standard sys.path or a preloaded module's file changes (a
// package installed or upgraded). A backend it has not imported, a server that
// cannot start (no interpreter, an import error) and SHIPLINE_BUILD_SERVER=off
// mean the plain commands; the build log says which path ran and why.

//go:embed buildserver.py
var serverScript string

// ServerEnv names the environment variable that turns the build server off
// ("off"); anything else, or unset, leaves it on.
const ServerEnv = "SHIPLINE_BUILD_SERVER"

// ServerMaxBuildsEnv names the environment variable that sets how many
// commands a build server runs before it is replaced (default DefaultMaxBuilds).
const ServerMaxBuildsEnv = "SHIPLINE_BUILD_SERVER_MAX_BUILDS"

// DefaultMaxBuilds is how many commands a server runs before it is replaced.
const DefaultMaxBuilds = 200

// Roles of build servers: what each has imported.
const (
	roleBuild  = "build"
	rolePytest = "pytest"
)

// errServerDied: the server ended while a command of it ran (the command is
// run again the plain way).
var errServerDied = errors.New("the build server exited")

// Servers are a worker's build servers, one per role, shared by its builds.
// The zero value is ready to use; Close stops them.
type Servers struct {
	// MaxBuilds is how many commands a server runs before it is replaced (0:
	// DefaultMaxBuilds).
	MaxBuilds int
	// Logf, if set, receives one line when a server cannot start (once per
	// interpreter and environment) and when one is replaced.
	Logf func(format string, args ...any)

	mu      sync.Mutex
	procs   map[string]*server
	retired []*server         // replaced servers finishing their commands
	broken  map[string]string // start key → why it could not start
	closed  bool
}

// NewServers returns the build servers of a worker, replaced after
// maxBuilds commands each (0: DefaultMaxBuilds).
func NewServers(maxBuilds int) *Servers { return &Servers{MaxBuilds: maxBuilds} }

// Close stops the servers; their running commands are killed.
func (s *Servers) Close() error {
	s.mu.Lock()
	procs := s.retired
	for _, p := range s.procs {
		procs = append(procs, p)
	}
	s.procs, s.retired, s.closed = nil, nil, true
	s.mu.Unlock()
	for _, p := range procs {
		p.stop()
	}
	return nil
}

func (s *Servers) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// get returns the running server of role for interpreter py started with env
// (without PYTHONPATH, which each command sets), starting or replacing it as
// needed. The error says why there is none; the caller runs the plain command.
func (s *Servers) get(ctx context.Context, role, py string, env []string) (*server, error) {
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "PYTHONPATH=") })
	key := startKey(role, py, env)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("the worker is stopping")
	}
	if s.procs == nil {
		s.procs, s.broken = map[string]*server{}, map[string]string{}
	}
	if p := s.procs[role]; p != nil {
		why := p.unusable(key, s.maxBuilds())
		if why == "" {
			return p, nil
		}
		s.logf("replacing the %s server (pid %d): %s", role, p.pid, why)
		delete(s.procs, role)
		p.drain()
		s.retired = append(s.retired, p)
	}
	s.retired = slices.DeleteFunc(s.retired, func(p *server) bool { return p.exited() })
	brokenKey := key + "\x00" + stampOf(py)
	if why, ok := s.broken[brokenKey]; ok {
		return nil, errors.New(why)
	}
	p, err := startServer(ctx, role, py, env, key)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.broken[brokenKey] = err.Error()
		s.logf("%v; Python builds run the plain way", err)
		return nil, err
	}
	s.procs[role] = p
	return p, nil
}

func (s *Servers) maxBuilds() int {
	if s.MaxBuilds > 0 {
		return s.MaxBuilds
	}
	return DefaultMaxBuilds
}

// startKey identifies what a server was started with.
func startKey(role, py string, env []string) string {
	h := sha256.New()
	sorted := slices.Clone(env)
	slices.Sort(sorted)
	fmt.Fprintf(h, "%s\x00%s\x00%s", role, py, strings.Join(sorted, "\x00"))
	return hex.EncodeToString(h.Sum(nil))
}

// stampOf names a file's state: size and modification time ("" if absent).
func stampOf(path string) string {
	if p, err := exec.LookPath(path); err == nil {
		path = p
	}
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
}

// server is one running Python build server.
type server struct {
	role, python, key string
	pid               int
	ready             readyEvent
	stamps            map[string]string // file → stampOf at start

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *bytes.Buffer // the server's own errors (its children write to build logs)
	dead   chan struct{} // closed when its output ends

	mu       sync.Mutex
	writeMu  sync.Mutex
	nextID   int64
	waiting  map[int64]chan event
	commands int // commands run, for MaxBuilds
}

// readyEvent is the server's first line.
type readyEvent struct {
	Python   string            `json:"python"`
	Versions map[string]string `json:"versions"`
	Loaded   []string          `json:"loaded"`
	Failed   map[string]string `json:"failed"`
	Files    []string          `json:"files"`
}

// event is a line of the server about one command.
type event struct {
	Event   string  `json:"event"`
	ID      int64   `json:"id"`
	PID     int     `json:"pid"`
	Code    int     `json:"code"`
	Signal  int     `json:"signal"`
	CPU     float64 `json:"cpu"`
	Message string  `json:"message"`
}

// request is a command for the server: `python -m Module Args...` in Dir.
type request struct {
	ID     int64    `json:"id"`
	Module string   `json:"module"`
	Args   []string `json:"args"`
	Dir    string   `json:"dir"`
	Env    []string `json:"env"`
	Log    string   `json:"log"`
}

// serverStartTimeout bounds a server's start (its imports).
const serverStartTimeout = 2 * time.Minute

func startServer(ctx context.Context, role, py string, env []string, key string) (*server, error) {
	cmd := exec.Command(py, "-c", serverScript, role)
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &server{role: role, python: py, key: key, cmd: cmd, stdin: stdin, stderr: &bytes.Buffer{},
		dead: make(chan struct{}), waiting: map[int64]chan event{}}
	cmd.Stderr = &limitedWriter{buf: p.stderr, max: 16 << 10}
	// Its own process group, so that killing a command's group never reaches
	// it; no parent-death signal (it would fire when the starting thread
	// ends): the server exits when its stdin closes, which the worker's death does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("the build server (%s, %s) cannot start: %w", role, py, err)
	}
	p.pid = cmd.Process.Pid
	lines := bufio.NewReader(stdout)
	first := make(chan error, 1)
	go func() {
		line, err := lines.ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &p.ready)
		}
		first <- err
	}()
	timer := time.NewTimer(serverStartTimeout)
	defer timer.Stop()
	var readErr error
	answered := false
	select {
	case readErr = <-first:
		answered = true
	case <-ctx.Done():
		readErr = ctx.Err()
	case <-timer.C:
		readErr = fmt.Errorf("no answer in %s", serverStartTimeout)
	}
	if readErr != nil {
		_ = cmd.Process.Kill()
		if !answered {
			<-first
		}
		_ = cmd.Wait()
		msg := strings.TrimSpace(p.stderr.String())
		if i := strings.LastIndex(msg, "\n"); i >= 0 && strings.Contains(msg, "Traceback") {
			msg = msg[i+1:] // the exception line
		}
		if msg == "" {
			msg = readErr.Error()
		}
		return nil, fmt.Errorf("the build server (%s, %s) cannot start: %s", role, py, msg)
	}
	p.stamps = map[string]string{}
	for _, f := range p.ready.Files {
		p.stamps[f] = stampOf(f)
	}
	go p.read(lines)
	return p, nil
}

// read dispatches the server's events until its output ends.
func (p *server) read(r *bufio.Reader) {
	defer func() {
		_ = p.cmd.Wait()
		p.mu.Lock()
		close(p.dead)
		p.mu.Unlock()
	}()
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var ev event
			if json.Unmarshal(line, &ev) == nil {
				p.mu.Lock()
				ch := p.waiting[ev.ID]
				p.mu.Unlock()
				if ch != nil {
					ch <- ev
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// unusable says why a running server must not take a command started with
// key ("" if it can).
func (p *server) unusable(key string, maxBuilds int) string {
	select {
	case <-p.dead:
		return "it exited (" + p.exitText() + ")"
	default:
	}
	if key != p.key {
		return "the interpreter or the environment changed"
	}
	p.mu.Lock()
	n := p.commands
	p.mu.Unlock()
	if n >= maxBuilds {
		return fmt.Sprintf("it ran %d commands", n)
	}
	for f, st := range p.stamps {
		if stampOf(f) != st {
			return f + " changed"
		}
	}
	return ""
}

// exitText says how the server ended, with the last line of its own error
// output if any (its children write theirs into their build logs).
func (p *server) exitText() string {
	if p.cmd.ProcessState == nil {
		return "running"
	}
	text := p.cmd.ProcessState.String()
	if msg := strings.TrimSpace(p.stderr.String()); msg != "" {
		text += ": " + msg[strings.LastIndex(msg, "\n")+1:]
	}
	return text
}

// exited reports whether the server has ended.
func (p *server) exited() bool {
	select {
	case <-p.dead:
		return true
	default:
		return false
	}
}

// has reports whether the server imported module.
func (p *server) has(module string) bool { return slices.Contains(p.ready.Loaded, module) }

// drain asks the server to exit once its running commands end.
func (p *server) drain() {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	_, _ = p.stdin.Write([]byte("{\"drain\": true}\n"))
}

// stop ends the server: closing its stdin kills its running commands.
func (p *server) stop() {
	_ = p.stdin.Close()
	select {
	case <-p.dead:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.dead
	}
}

// serverOutcome is how a command run by the server ended.
type serverOutcome struct {
	exit   int
	signal int
	cpu    float64 // CPU seconds of the command's process and its waited-for children
}

// run runs `python -m module args...` in dir through the server, its output
// appended to the file at log. The context's end kills the command's process
// group. errServerDied: the server ended first.
func (p *server) run(ctx context.Context, module string, args []string, dir string, env []string, log string) (serverOutcome, error) {
	ch := make(chan event, 4)
	p.mu.Lock()
	p.commands++
	p.nextID++
	id := p.nextID
	p.waiting[id] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiting, id)
		p.mu.Unlock()
	}()
	data, err := json.Marshal(request{ID: id, Module: module, Args: args, Dir: dir, Env: env, Log: log})
	if err != nil {
		return serverOutcome{}, err
	}
	p.writeMu.Lock()
	_, err = p.stdin.Write(append(data, '\n'))
	p.writeMu.Unlock()
	if err != nil {
		return serverOutcome{}, fmt.Errorf("%w: %v", errServerDied, err)
	}
	pid, killed := 0, false
	var grace <-chan time.Time
	kill := func() {
		if pid > 0 && !killed {
			killed = true
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	done := ctx.Done()
	for {
		select {
		case ev := <-ch:
			switch ev.Event {
			case "started":
				pid = ev.PID
				if ctx.Err() != nil {
					kill()
				}
			case "exit":
				if ctx.Err() != nil {
					return serverOutcome{}, ctx.Err()
				}
				return serverOutcome{exit: ev.Code, signal: ev.Signal, cpu: ev.CPU}, nil
			case "error":
				return serverOutcome{}, fmt.Errorf("%w: %s", errServerDied, ev.Message)
			}
		case <-done:
			done = nil
			kill()
			grace = time.After(5 * time.Second)
		case <-grace:
			return serverOutcome{}, ctx.Err()
		case <-p.dead:
			select {
			case ev := <-ch: // its last words, read before it ended
				if ev.Event == "exit" && ctx.Err() == nil {
					return serverOutcome{exit: ev.Code, signal: ev.Signal, cpu: ev.CPU}, nil
				}
			default:
			}
			if ctx.Err() != nil {
				return serverOutcome{}, ctx.Err()
			}
			return serverOutcome{}, fmt.Errorf("%w (%s)", errServerDied, p.exitText())
		}
	}
}

// limitedWriter keeps the first max bytes written to it.
type limitedWriter struct {
	mu  sync.Mutex
	buf *bytes.Buffer
	max int
}

func (w *limitedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}
