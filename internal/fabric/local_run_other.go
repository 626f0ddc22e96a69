//go:build !unix

package fabric

import "errors"

var errNoLocalRuns = errors.New("runs on a local fabric need a Unix system (process groups and file locks)")

func lockHeld(string) bool                     { return false }
func signalRun(string, int) (bool, error)      { return false, errNoLocalRuns }
func withLock(_ string, fn func() error) error { return errNoLocalRuns }
