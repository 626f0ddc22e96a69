package cli

import (
	"bytes"
	"github.com/shipline/shipline/internal/views"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

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
	views.MarkLatest(rows)
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
		if got := views.WorseBuilds(tc.a, tc.b); got != tc.want {
			t.Errorf("views.WorseBuilds(%q, %q) = %q, want %q", tc.a, tc.b, got, tc.want)
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
	views.MarkLatest(rows)
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

// A release built and tested before its tag carries the outcome in its own
// memo: a --no-deploy release whose builds passed can be the latest, and a
// release whose tests failed before the tag (status failed) is not listed.
func TestReleaseRowReadsReleaseBuilds(t *testing.T) {
	memo := func(status, builds string) *commonpb.Memo {
		fields := map[string]*commonpb.Payload{}
		for k, v := range map[string]string{workflows.MemoStatus: status, workflows.MemoBuilds: builds, workflows.MemoCreatedBy: "alice"} {
			p, err := converter.GetDefaultDataConverter().ToPayload(v)
			if err != nil {
				t.Fatal(err)
			}
			fields[k] = p
		}
		return &commonpb.Memo{Fields: fields}
	}
	row, ok := views.ReleaseFromExecution("demo", workflows.ReleaseID("demo", "v1.2.0"), enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, memo(string(workflows.StatusReleased), workflows.BuildsPassed))
	if !ok || row.Builds != workflows.BuildsPassed {
		t.Fatalf("released row %+v (listed %v), want builds passed", row, ok)
	}
	rows := []releaseRow{row, {Version: "v1.1.0", Source: "shipline", Status: "released", Builds: workflows.BuildsPassed}}
	views.MarkLatest(rows)
	if !rows[0].Latest || rows[0].Version != "v1.2.0" {
		t.Fatalf("rows %+v: the release built and tested before its tag is the latest", rows)
	}
	if row, ok := views.ReleaseFromExecution("demo", workflows.ReleaseID("demo", "v1.3.0"), enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, memo(string(workflows.StatusFailed), workflows.TestsFailed)); ok {
		t.Fatalf("a release whose tests failed before the tag is listed: %+v", row)
	}
}
