package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/workflows"
)

// latest is the highest release whose builds and tests passed: not a release
// whose tests failed, not one not built yet, not a tag pushed by hand.
func TestMarkLatestSkipsFailedTests(t *testing.T) {
	rows := []releaseRow{
		{Version: "v1.0.0", Source: "shipline", Status: "released", Builds: workflows.BuildsPassed},
		{Version: "v1.1.0", Source: "shipline", Status: "released", Builds: workflows.BuildsPassed},
		{Version: "v1.2.0", Source: "shipline", Status: "released", Builds: workflows.TestsFailed},
		{Version: "v1.3.0", Source: "shipline", Status: "released"},
		{Version: "v2.0.0", Source: "external", Status: "tagged"},
	}
	markLatest(rows)
	for _, r := range rows {
		if r.Latest != (r.Version == "v1.1.0") {
			t.Errorf("%s latest = %v, want only v1.1.0 latest", r.Version, r.Latest)
		}
	}
	if rows[0].Version != "v2.0.0" || rows[4].Version != "v1.0.0" {
		t.Errorf("order: %+v", rows)
	}
}

func TestWorseBuilds(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"", "", ""},
		{"", workflows.TestsFailed, workflows.TestsFailed},
		{workflows.BuildsFailed, workflows.TestsFailed, workflows.TestsFailed},
		{workflows.TestsFailed, workflows.BuildsPassed, workflows.BuildsPassed},
	} {
		if got := worseBuilds(tc.a, tc.b); got != tc.want {
			t.Errorf("worseBuilds(%q, %q) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

// The table: stages and fabrics in their own columns, the build outcome shown.
func TestReleasesTable(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.Local)
	rows := []releaseRow{
		{Version: "v1.2.0", Commit: "2222222222", CreatedBy: "alice", CreatedAt: at, Source: "shipline", Status: "released", Builds: workflows.TestsFailed},
		{Version: "v1.1.0", Commit: "1111111111", CreatedBy: "alice", CreatedAt: at, Source: "adopted", Status: "released", Builds: workflows.BuildsPassed,
			Stages: []string{"dev", "qa"}, Fabrics: []string{"airflow-dev", "dev", "qa"}, Linked: true},
		{Version: "v1.0.0", Commit: "0000000000", CreatedBy: "alice", CreatedAt: at, Source: "shipline", Status: "released",
			Fabrics: []string{"local"}},
		{Version: "v0.9.0", Commit: "9999999999", CreatedBy: "dev", CreatedAt: at, Source: "external", Status: "tagged"},
	}
	markLatest(rows)
	var out bytes.Buffer
	if err := printReleases(&globals{stdout: &out}, rows); err != nil {
		t.Fatal(err)
	}
	want := `VERSION                   COMMIT   CREATED BY  CREATED AT        SOURCE    STATUS    BUILDS         STAGES  FABRICS             
v1.2.0                    2222222  alice       2026-11-22 10:00  shipline  released  tests failed   -       -                   
v1.1.0 (latest) [linked]  1111111  alice       2026-11-22 10:00  adopted   released  passed         dev,qa  airflow-dev,dev,qa  
v1.0.0                    0000000  alice       2026-11-22 10:00  shipline  released  not built yet  -       local               
v0.9.0                    9999999  dev         2026-11-22 10:00  external  tagged    -              -       -                   
`
	if got := out.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", strings.ReplaceAll(got, " ", "·"), strings.ReplaceAll(want, " ", "·"))
	}
}
