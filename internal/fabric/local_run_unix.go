//go:build unix

package fabric

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockHeld tells whether a process holds the run's lock (its supervisor runs).
func lockHeld(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// signalRun sends SIGTERM to the process group of the run's supervisor while
// it holds the lock (so a reused PID is never signalled); false when no
// supervisor runs.
func signalRun(lock string, pid int) (bool, error) {
	if pid <= 0 || !lockHeld(lock) {
		return false, nil
	}
	err := syscall.Kill(-pid, syscall.SIGTERM)
	if errors.Is(err, syscall.ESRCH) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cancel run (process group %d): %w", pid, err)
	}
	return true, nil
}

// withLock runs fn holding the run's lock; it fails when a supervisor holds it.
func withLock(path string, fn func() error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("run lock %s is held (its supervisor just started); try again: %w", path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}
