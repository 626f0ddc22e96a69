package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/temporalconn"
	"github.com/shipline/shipline/internal/workerapp"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    flags
		wantErr string
	}{
		{args: []string{"--config", "p.yaml"}, want: flags{config: "p.yaml", temporalPort: 7233, uiPort: 8233, logLevel: "info", logFormat: "console"}},
		{args: []string{"--config=p.yaml", "--dev", "--temporal-port", "17233", "--ui-port", "-1", "--log-level", "debug", "--log-format", "json"},
			want: flags{config: "p.yaml", dev: true, temporalPort: 17233, uiPort: -1, logLevel: "debug", logFormat: "json", webAddr: "127.0.0.1:8080"}},
		{args: []string{"--config", "p.yaml", "--dev", "--web-addr", "off"},
			want: flags{config: "p.yaml", dev: true, temporalPort: 7233, uiPort: 8233, logLevel: "info", logFormat: "console"}},
		{args: []string{"--config", "p.yaml", "--web-addr", "0.0.0.0:9090"},
			want: flags{config: "p.yaml", temporalPort: 7233, uiPort: 8233, logLevel: "info", logFormat: "console", webAddr: "0.0.0.0:9090"}},
		{args: []string{"--config", "p.yaml", "--web-addr", "8080"}, wantErr: "--web-addr \"8080\": want HOST:PORT"},
		{args: []string{"--config", "p.yaml", "--metrics-addr", "127.0.0.1:9464"},
			want: flags{config: "p.yaml", temporalPort: 7233, uiPort: 8233, logLevel: "info", logFormat: "console", metricsAddr: "127.0.0.1:9464"}},
		{args: []string{"--config", "p.yaml", "--metrics-addr", "9464"}, wantErr: "want HOST:PORT"},
		{args: []string{"--config", "p.yaml", "--codec-addr", "127.0.0.1:8234"},
			want: flags{config: "p.yaml", temporalPort: 7233, uiPort: 8233, logLevel: "info", logFormat: "console", codecAddr: "127.0.0.1:8234"}},
		{args: []string{"--config", "p.yaml", "--codec-addr", "8234"}, wantErr: "--codec-addr \"8234\": want HOST:PORT"},
		{args: nil, wantErr: "--config FILE is required"},
		{args: []string{"--config", "p.yaml", "extra"}, wantErr: "unexpected arguments"},
		{args: []string{"--nope"}, wantErr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, err := parseFlags(tt.args, &bytes.Buffer{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseFlags = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestRunExitsTwoOnBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "platform.yaml")
	if err := os.WriteFile(bad, []byte("temporal: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{},
		{"--config", filepath.Join(t.TempDir(), "missing.yaml")},
		{"--config", bad},
		{"--config", bad, "--log-format", "xml"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr, temporalconn.EnvMap{}); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr: %s)", args, code, stderr.String())
		}
		if stderr.Len() == 0 {
			t.Errorf("run(%q) printed no reason", args)
		}
	}
}

// A SHIPLINE_STORAGE that platform.yaml's storage: would refuse stops the
// worker before it dials anything, naming the variable.
func TestRunRefusesABadStorageOverride(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "platform.yaml")
	if err := os.WriteFile(cfg, []byte("teams: {dev: {members: [a]}}\nprojects: {}\nfabrics: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"--config", cfg}, &stdout, &stderr, temporalconn.EnvMap{"SHIPLINE_STORAGE": "s3://key:secret@bucket/p"})
	if code != 2 || !strings.Contains(stderr.String(), "SHIPLINE_STORAGE") {
		t.Errorf("run with a bad SHIPLINE_STORAGE = %d, want 2 naming it; stderr: %s", code, stderr.String())
	}
}

func TestReadyLine(t *testing.T) {
	info := workerapp.Info{Address: "127.0.0.1:7233", Namespace: "default", TaskQueue: "shipline", UIURL: "http://127.0.0.1:8233"}
	want := "shipline worker ready: temporal 127.0.0.1:7233 namespace default task queue shipline, UI http://127.0.0.1:8233"
	if got := readyLine(info); got != want {
		t.Errorf("readyLine = %q, want %q", got, want)
	}
	info.UIURL = ""
	if got := readyLine(info); strings.Contains(got, "UI") || strings.Contains(got, "metrics") {
		t.Errorf("readyLine without UI = %q", got)
	}
	info.MetricsURL = "http://127.0.0.1:9464/metrics"
	if got := readyLine(info); !strings.HasSuffix(got, ", metrics http://127.0.0.1:9464/metrics") {
		t.Errorf("readyLine with metrics = %q", got)
	}
	info.CodecURL = "http://127.0.0.1:8234"
	if got := readyLine(info); !strings.HasSuffix(got, ", codec http://127.0.0.1:8234") {
		t.Errorf("readyLine with codec = %q", got)
	}
}
