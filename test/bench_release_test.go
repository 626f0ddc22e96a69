package test

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

// BenchmarkReleaseWait measures, on the embedded stack, the time from
// `shipline release VERSION --wait` starting to the annotated tag being on the
// bare remote (the CLI returns once the tag is pushed; the tag is then checked
// on the remote). It runs 10 releases and reports the median and the slowest.
//
//	go test ./test -run '^$' -bench ReleaseWait -benchtime 1x
func BenchmarkReleaseWait(b *testing.B) {
	cfgPath, remote, _ := demoProject(b)
	s := startStack(b, cfgPath, 0)
	const n = 10
	for iter := 0; iter < b.N; iter++ {
		durations := make([]time.Duration, 0, n)
		for i := 0; i < n; i++ {
			v := fmt.Sprintf("v0.%d.%d", iter, i)
			start := time.Now()
			code, _, errOut := s.shipline("release", v, "--project", "demo", "--as", "alice", "--wait", "--no-deploy")
			if code != 0 {
				b.Fatalf("release %s: exit %d: %s", v, code, errOut)
			}
			if got := git(b, remote, "tag", "-l", v); got != v {
				b.Fatalf("tag %s not on the remote after release --wait", v)
			}
			durations = append(durations, time.Since(start))
		}
		sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
		b.ReportMetric(float64(durations[n/2].Milliseconds()), "ms-median")
		b.ReportMetric(float64(durations[n-1].Milliseconds()), "ms-max")
	}
}
