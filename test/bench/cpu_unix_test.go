//go:build unix

package bench

import (
	"syscall"
	"time"
)

// cpuSeconds is the user + system CPU time of this process and of its
// waited-for children (git) so far.
func cpuSeconds() float64 {
	t := 0.0
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			t += time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
	}
	return t
}

// childCPUSeconds is the user + system CPU time of this process's
// waited-for children (git, build tools) so far.
func childCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
