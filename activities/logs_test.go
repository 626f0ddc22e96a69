package activities

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/apperr"
)

// The worker that answers `shipline logs` reads the build log another worker
// stored, by the key the deployment recorded; keys outside logs/ are refused,
// and a path recorded before the shared store (<state_dir>/logs/…) still reads.
func TestReadLogsFromTheSharedStore(t *testing.T) {
	f := newUploadFixture(t)
	failing := f.p
	failing.Build = "echo 'compiling tool'; echo 'error: tool is broken' >&2; exit 2"
	_, err := f.e.pipeline(f.commit, failing)
	ae := appError(t, err, apperr.BuildFailed)
	var details BuildFailureDetails
	if err := ae.Details(&details); err != nil || details.LogPath == "" {
		t.Fatalf("details %+v, %v", details, err)
	}
	ctx := context.Background()
	out, err := f.d.ReadLogs(ctx, ReadLogsInput{Paths: []string{details.LogPath}})
	if err != nil || len(out.Logs) != 1 || out.Logs[0].Error != "" || !strings.Contains(out.Logs[0].Content, "tool is broken") {
		t.Fatalf("ReadLogs on another worker: %+v, %v", out, err)
	}
	out, err = f.d.ReadLogs(ctx, ReadLogsInput{Paths: []string{details.LogPath}, MaxBytes: 10})
	if err != nil || !out.Logs[0].Truncated || len(out.Logs[0].Content) != 10 {
		t.Errorf("ReadLogs with a limit: %+v, %v", out, err)
	}
	for _, bad := range []string{"cache/k/meta.json", "logs/../cache/x", "/etc/passwd", filepath.Join(f.d.Platform.StateDir, "git", "x")} {
		if _, err := f.d.ReadLogs(ctx, ReadLogsInput{Paths: []string{bad}}); err == nil {
			t.Errorf("ReadLogs(%q) was not refused", bad)
		}
	}

	// The default store is state_dir: an absolute path recorded there reads its key.
	d, _, _, _ := deleteFixture(t)
	legacy := filepath.Join(d.Platform.StateDir, "logs", "builds", "k.log")
	if err := os.MkdirAll(filepath.Dir(legacy), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(legacy, []byte("old log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = d.ReadLogs(ctx, ReadLogsInput{Paths: []string{legacy}})
	if err != nil || out.Logs[0].Content != "old log\n" {
		t.Errorf("ReadLogs of a recorded path: %+v, %v", out, err)
	}
}
