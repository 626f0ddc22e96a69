package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"
)

// Tail limits: a result or error carries at most the last tailLines lines and
// tailBytes bytes of output; the full output is in the log file.
const (
	tailLines = 20
	tailBytes = 2048
)

// runner runs one build's commands, appending each command line, its combined
// output, exit code and duration to the build log.
type runner struct {
	log     *os.File // opened with O_APPEND: commands write into it directly
	logPath string   // the log file in the build's directory
	logKey  string   // where the log is stored when the build ends
	// logWhere names the stored log for people: the store's URL and the key.
	logWhere string
	env      []string      // the environment of every command (plus per-command extras)
	step     *atomic.Value // the current step, read by the heartbeat
	// seconds is the time spent inside build tools so far; cpu their CPU
	// time (user + system, with the processes they waited for).
	seconds, cpu float64
}

// command is one process to run.
type command struct {
	step string   // what it does, for heartbeats and the log ("tests", "build")
	dir  string   // working directory
	args []string // program and arguments
	env  []string // extra KEY=VALUE settings, overriding the runner's
}

// outcome of a command that ran to completion.
type outcome struct {
	exit int
	tail string // the end of this command's output
}

// logf writes a line of Shipline's own to the log.
func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "### "+format+"\n", args...)
}

// setStep names what the build is doing, for heartbeats.
func (r *runner) setStep(s string) { r.step.Store(s) }

// run runs c to completion. A non-zero exit is reported in the outcome, not
// as an error; errors are failures to start it (exec.ErrNotFound, ...) and the
// context's end, which kills the command's whole process group.
func (r *runner) run(ctx context.Context, c command) (outcome, error) {
	r.setStep(c.step)
	r.logf("%s: %s  (in %s)", c.step, shellQuote(c.args), c.dir)
	// The command's own output starts here.
	start, err := r.log.Seek(0, io.SeekEnd)
	if err != nil {
		return outcome{}, fmt.Errorf("build log: %w", err)
	}
	cmd := exec.CommandContext(ctx, c.args[0], c.args[1:]...)
	cmd.Dir = c.dir
	cmd.Env = mergeEnv(r.env, c.env)
	cmd.Stdin = nil
	cmd.Stdout = r.log // an *os.File: the child writes into the log, no copying
	cmd.Stderr = r.log
	cmd.WaitDelay = 5 * time.Second
	setProcessGroup(cmd)
	began := time.Now()
	err = cmd.Run()
	took := time.Since(began)
	r.seconds += took.Seconds()
	var cpu float64
	if ps := cmd.ProcessState; ps != nil {
		cpu = (ps.UserTime() + ps.SystemTime()).Seconds()
		r.cpu += cpu
	}
	out := outcome{tail: r.tailFrom(start)}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.logf("%s: stopped after %.1fs: %v", c.step, took.Seconds(), ctx.Err())
		return out, ctx.Err()
	case errors.As(err, &exitErr):
		out.exit = exitErr.ExitCode()
		if out.exit < 0 {
			out.exit = 128 // killed by a signal
		}
		r.logf("%s: exit %d after %.1fs, cpu %.2fs (%s)", c.step, out.exit, took.Seconds(), cpu, exitErr)
		return out, nil
	case err != nil:
		r.logf("%s: could not run: %v", c.step, err)
		return out, err
	}
	r.logf("%s: exit 0 after %.1fs, cpu %.2fs", c.step, took.Seconds(), cpu)
	return out, nil
}

// tailFrom returns the last lines of the log written since offset start.
func (r *runner) tailFrom(start int64) string {
	end, err := r.log.Seek(0, io.SeekEnd)
	if err != nil || end <= start {
		return ""
	}
	from := max(start, end-tailBytes)
	buf := make([]byte, end-from)
	if _, err := r.log.ReadAt(buf, from); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return tail(buf, from > start)
}

// tail keeps the last tailLines lines of data; cut says data starts mid-output.
func tail(data []byte, cut bool) string {
	data = bytes.TrimRight(data, "\n")
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
		cut = true
	} else if cut && len(lines) > 1 {
		lines = lines[1:] // drop the partial first line
	}
	s := string(bytes.Join(lines, []byte("\n")))
	if cut {
		s = "…\n" + s
	}
	return strings.ToValidUTF8(s, "?")
}

// fileTail returns the end of the file at path ("" if it cannot be read).
func fileTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	from := max(0, fi.Size()-tailBytes)
	buf := make([]byte, fi.Size()-from)
	if _, err := f.ReadAt(buf, from); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return tail(buf, from > 0)
}

// mergeEnv returns base with extra's keys replaced or added.
func mergeEnv(base, extra []string) []string {
	out := make([]string, 0, len(base)+len(extra))
	override := map[string]bool{}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		override[k] = true
	}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !override[k] {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// shellQuote renders args for the log as a shell would read them.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
