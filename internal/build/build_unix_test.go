//go:build unix

package build

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shipline/shipline/internal/manifest"
)

// Cancelling the context kills the build's whole process group.
func TestCancelKillsProcessGroup(t *testing.T) {
	b := &Builder{StateDir: t.TempDir(), HeartbeatEvery: 10 * time.Millisecond}
	pidFile := filepath.Join(t.TempDir(), "pid")
	p := manifest.Pipeline{Name: "slow", Path: "slow", Language: manifest.Scala,
		Build: "sleep 300 & echo $! > " + pidFile + "; wait", Artifact: "*.jar"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var steps sync.Map
	heartbeat := func(step string) {
		steps.Store(step, true)
		if _, err := os.Stat(pidFile); err == nil && step == "build" {
			cancel()
		}
	}
	_, err := b.Build(ctx, Request{Pipeline: p, TreeHash: treeT, Export: (&source{}).export, Heartbeat: heartbeat})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, ok := steps.Load("build"); !ok {
		t.Error("no heartbeat named the build step")
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	give := time.Now().Add(30 * time.Second)
	for time.Now().Before(give) {
		// The grandchild is killed with its group; init reaps it.
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
		if ps, _ := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(pid)).Output(); strings.HasPrefix(string(ps), "Z") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		ps, _ := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(pid)).Output()
		if !strings.HasPrefix(string(ps), "Z") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the build's child %d survived cancellation", pid)
		}
	}
}
