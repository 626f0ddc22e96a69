package devserver_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/internal/devserver"
)

// BenchmarkStartup measures the dev stack (Temporal server + UI) start-up
// time on a new database (cold) and on an existing one (warm), the time Stop
// takes, and the process's resident memory right after the first warm start
// (later iterations would count the garbage of earlier ones). It reports them
// as custom metrics; nothing is asserted. Run:
//
//	go test ./internal/devserver -run '^$' -bench Startup -benchtime 3x
func BenchmarkStartup(b *testing.B) {
	ctx := context.Background()
	var cold, warm, stop time.Duration
	var rssKB int64
	for i := 0; i < b.N; i++ {
		opts := devserver.Options{
			DBFile: filepath.Join(b.TempDir(), "temporal.db"),
			Port:   freePort(b),
			UIPort: freePort(b),
		}
		start := time.Now()
		srv := startServer(ctx, b, opts)
		cold += time.Since(start)
		start = time.Now()
		srv.Stop()
		stop += time.Since(start)

		start = time.Now()
		srv = startServer(ctx, b, opts)
		warm += time.Since(start)
		if i == 0 {
			rssKB = vmRSSKB()
		}
		srv.Stop()
	}
	b.ReportMetric(cold.Seconds()/float64(b.N), "cold-start-s")
	b.ReportMetric(warm.Seconds()/float64(b.N), "warm-start-s")
	b.ReportMetric(stop.Seconds()/float64(b.N), "stop-s")
	if rssKB > 0 {
		b.ReportMetric(float64(rssKB)/1024, "rss-MB")
	}
}

// vmRSSKB reads this process's resident set size from /proc (Linux only; 0 elsewhere).
func vmRSSKB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}
