package test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/workflows"
)

// A tag pushed by hand is a release only once a project admin adopts it: it
// shows in `releases --refresh` as external; deploying or promoting it is
// refused with the adoption hint; `release VERSION` by a non-admin is refused,
// by an admin it adopts the tag (same commit, the tag object left as it is);
// then it deploys. A hand-made tag on another commit than --ref stays a conflict.
func TestExternalTagAdoptionEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server")
	}
	cfgPath, remote, work := demoProject(t)
	s := startStack(t, cfgPath, 0)

	git(t, work, "tag", "-a", "v1.2.0", "-m", "pushed by hand")
	git(t, work, "push", "-q", "origin", "v1.2.0")
	handTag := git(t, remote, "rev-parse", "v1.2.0")

	rows := listReleases(t, s, "--refresh")
	if len(rows) != 1 || rows[0]["version"] != "v1.2.0" || rows[0]["source"] != "external" || rows[0]["latest"] == true {
		t.Fatalf("releases --refresh: %+v", rows)
	}

	hint := "v1.2.0 was tagged outside Shipline; a project admin adopts it with `shipline release v1.2.0 --project demo`"
	code, _, errOut := s.shipline("deploy", "v1.2.0", "--project", "demo", "--as", "bob", "--wait")
	if code != 1 || !strings.Contains(errOut, hint) {
		t.Fatalf("deploy of a hand-made tag: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = s.shipline("promote", "v1.2.0", "--project", "demo", "--as", "alice", "--wait")
	if code != 1 || !strings.Contains(errOut, hint) {
		t.Fatalf("promote of a hand-made tag: exit %d, stderr %q", code, errOut)
	}

	// Only an admin adopts.
	code, _, errOut = s.shipline("release", "v1.2.0", "--project", "demo", "--as", "bob", "--wait")
	if code != 1 || !strings.Contains(errOut, "bob may not release project demo") {
		t.Fatalf("adoption by a non-admin: exit %d, stderr %q", code, errOut)
	}
	git(t, work, "commit", "-q", "--allow-empty", "-m", "main moves on")
	git(t, work, "push", "-q", "origin", "main")
	code, out, errOut := s.shipline("release", "v1.2.0", "--project", "demo", "--as", "alice", "--no-deploy", "--wait")
	if code != 0 || !strings.Contains(out, "adopting") {
		t.Fatalf("adoption: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := git(t, remote, "rev-parse", "v1.2.0"); got != handTag {
		t.Fatalf("adoption replaced the tag object %s by %s", handTag, got)
	}
	rows = listReleases(t, s)
	if len(rows) != 1 || rows[0]["source"] != "adopted" || rows[0]["status"] != "released" || rows[0]["created_by"] != "alice" {
		t.Fatalf("releases after adoption: %+v", rows)
	}

	// Now it deploys: the deployment gets past resolve (the example's
	// workspaces are not reachable from the test, so it is cancelled after).
	code, out, errOut = s.shipline("--output", "json", "deploy", "v1.2.0", "--project", "demo", "--as", "bob")
	var started struct {
		WorkflowID string `json:"workflow_id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &started) != nil {
		t.Fatalf("deploy after adoption: exit %d\n%s\n%s", code, out, errOut)
	}
	c, err := client.Dial(client.Options{HostPort: s.address, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; ; i++ {
		var st workflows.DeployState
		v, err := c.QueryWorkflow(ctx, started.WorkflowID, "", workflows.StateQuery)
		if err == nil && v.Get(&st) == nil {
			if st.Status == workflows.StatusRefused || st.Status == workflows.StatusFailed {
				t.Fatalf("deploy after adoption ended %s: %s", st.Status, st.Summary)
			}
			if len(st.Steps) > 0 && st.Steps[0].Status == workflows.StepDone {
				break
			}
		}
		if i == 1200 {
			t.Fatalf("deploy after adoption never resolved: %v %+v", err, st)
		}
		sleep100ms()
	}
	s.shipline("cancel", started.WorkflowID, "--as", "bob")

	// A hand-made tag on another commit than the ref asked for stays a conflict.
	git(t, work, "tag", "-a", "v2.0.0", "-m", "hand-made", "HEAD~1")
	git(t, work, "push", "-q", "origin", "v2.0.0")
	code, _, errOut = s.shipline("release", "v2.0.0", "--project", "demo", "--as", "alice", "--ref", "main", "--wait")
	if code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("hand-made tag on another commit: exit %d, stderr %q", code, errOut)
	}
}

// latest is the highest release whose builds and tests passed: a newer
// release whose tests fail is marked so and is not the latest.
func TestLatestSkipsFailedTestsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server and runs real builds")
	}
	cfgPath, _, work := demoProject(t)
	s := startStack(t, cfgPath, 0)

	if code, out, errOut := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release v1.0.0: exit %d\n%s\n%s", code, out, errOut)
	}
	test := filepath.Join(work, "pipelines", "ingest_orders", "tests", "test_parse.py")
	data, err := os.ReadFile(test)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(test, append(data, []byte("\n\ndef test_broken():\n    assert 1 == 2\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, "commit", "-q", "-am", "a failing test")
	git(t, work, "push", "-q", "origin", "main")
	code, _, errOut := s.shipline("release", "v1.1.0", "--project", "demo", "--as", "alice", "--wait")
	if code != 1 || !strings.Contains(errOut, "parked") {
		t.Fatalf("release v1.1.0 with a failing test: exit %d, stderr %q", code, errOut)
	}

	var rows []map[string]any
	for i := 0; ; i++ {
		rows = listReleases(t, s)
		if len(rows) == 2 && rows[0]["builds"] == "tests failed" {
			break
		}
		if i == 100 {
			t.Fatalf("releases: %+v", rows)
		}
		sleep100ms()
	}
	if rows[0]["version"] != "v1.1.0" || rows[0]["latest"] == true || rows[1]["version"] != "v1.0.0" || rows[1]["latest"] != true || rows[1]["builds"] != "passed" {
		t.Fatalf("releases: %+v", rows)
	}
	code, out, _ := s.shipline("releases", "--project", "demo")
	if code != 0 || !strings.Contains(out, "v1.0.0 (latest)") || !strings.Contains(out, "tests failed") {
		t.Fatalf("releases table: exit %d\n%s", code, out)
	}
}
