package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

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

// A release builds and tests every pipeline before it pushes its tag: a
// release whose pytest fails ends failed with the test output, leaves no tag
// on the remote and is not listed (latest stays where it was); `logs` shows
// the failing test's log; fixed, the same version releases, and its deploy
// takes every artifact from the build cache the release filled.
func TestReleaseTestsBeforeTagEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server and runs real builds")
	}
	cfgPath, remote, work := demoProject(t)
	s := startStack(t, cfgPath, 0)

	if code, out, errOut := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release v1.0.0: exit %d\n%s\n%s", code, out, errOut)
	}
	// The release built and tested both pipelines; its deploy built nothing.
	rel := releaseStateOf(t, s, "release/demo/v1.0.0")
	if st := stepNamed(rel.Steps, workflows.StepBuildTest); st.Status != workflows.StepDone || len(rel.Builds) != 2 {
		t.Fatalf("release build step %+v, builds %+v", st, rel.Builds)
	}
	for name, b := range rel.Builds {
		if b.Status != workflows.StepDone || b.Cached {
			t.Errorf("release build of %s: %+v, want built (not from cache)", name, b)
		}
	}
	dep := deployStateOf(t, s, rel.DeployID)
	if dep.Status != workflows.StatusSucceeded || len(dep.Builds) != 2 {
		t.Fatalf("auto_deploy %s: %+v", rel.DeployID, dep)
	}
	for name, b := range dep.Builds {
		if !b.Cached || b.SHA256 != rel.Builds[name].SHA256 || b.Seconds != 0 {
			t.Errorf("deploy build of %s: %+v, want the release's artifact from the cache (sha256 %s)", name, b, rel.Builds[name].SHA256)
		}
	}
	if st := stepNamed(dep.Steps, workflows.StepBuild); st.Detail != "2 pipelines (2 from cache)" {
		t.Errorf("deploy build step %+v", st)
	}

	// A failing pytest: v1.1.0 ends failed, untagged, with the test's output.
	test := filepath.Join(work, "pipelines", "ingest_orders", "tests", "test_parse.py")
	good, err := os.ReadFile(test)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(test, append(slices.Clone(good), []byte("\n\ndef test_broken():\n    assert 1 == 2\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, "commit", "-q", "-am", "a failing test")
	git(t, work, "push", "-q", "origin", "main")
	code, _, errOut := s.shipline("release", "v1.1.0", "--project", "demo", "--as", "alice", "--wait")
	for _, want := range []string{"the tests of pipeline ingest_orders failed", "v1.1.0 was not tagged", "assert 1 == 2", "shipline logs release/demo/v1.1.0"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("release v1.1.0 with a failing test: exit %d, stderr lacks %q:\n%s", code, want, errOut)
		}
	}
	if tags := git(t, remote, "tag", "-l"); tags != "v1.0.0" {
		t.Fatalf("remote tags after a release whose tests failed: %q, want only v1.0.0", tags)
	}
	rows := listReleases(t, s, "--refresh")
	if len(rows) != 1 || rows[0]["version"] != "v1.0.0" || rows[0]["latest"] != true || rows[0]["builds"] != "passed" {
		t.Fatalf("releases after a release whose tests failed: %+v", rows)
	}
	code, out, _ := s.shipline("logs", "release/demo/v1.1.0")
	if code != 0 || !strings.Contains(out, "ingest_orders (failed)") || !strings.Contains(out, "assert 1 == 2") {
		t.Fatalf("logs of the failed release: exit %d\n%s", code, out)
	}

	// Fixed, the same version releases; only the changed pipeline is built.
	if err := os.WriteFile(test, append(slices.Clone(good), []byte("\n\ndef test_fixed():\n    assert 2 == 2\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, "commit", "-q", "-am", "fix the test")
	git(t, work, "push", "-q", "origin", "main")
	if code, out, errOut := s.shipline("release", "v1.1.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release v1.1.0 after the fix: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := git(t, remote, "rev-parse", "v1.1.0^{commit}"); got != git(t, work, "rev-parse", "HEAD") {
		t.Fatalf("v1.1.0 is on %s, want the fixed commit", got)
	}
	rel = releaseStateOf(t, s, "release/demo/v1.1.0")
	if !rel.Builds["score_churn"].Cached || rel.Builds["ingest_orders"].Cached {
		t.Errorf("release v1.1.0 builds %+v: want score_churn (unchanged) from the cache, ingest_orders built", rel.Builds)
	}
	for i := 0; ; i++ {
		rows = listReleases(t, s)
		if len(rows) == 2 && rows[0]["version"] == "v1.1.0" && rows[0]["latest"] == true {
			break
		}
		if i == 100 {
			t.Fatalf("releases after the fixed release: %+v", rows)
		}
		sleep100ms()
	}

	// Every run the server recorded — built and tagged, failed at its tests,
	// released after the fix — replays on this code.
	replayReleases(t, s, "release/demo/v1.0.0", "release/demo/v1.1.0")
}

// replayReleases replays every run of the Release workflows with these IDs
// from the server's histories.
func replayReleases(t *testing.T, s *stack, ids ...string) {
	t.Helper()
	ctx := context.Background()
	c, err := client.Dial(client.Options{HostPort: s.address})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workflows.Release, workflow.RegisterOptions{Name: workflows.ReleaseWorkflow})
	type run struct{ id, runID string }
	var runs []run
	// Visibility is eventually consistent: wait until it lists every run.
	for i := 0; len(runs) != len(ids)+1 && i < 50; i++ {
		runs = nil
		for _, id := range ids {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", id)})
			if err != nil {
				t.Fatal(err)
			}
			for _, ex := range resp.Executions {
				runs = append(runs, run{id, ex.GetExecution().GetRunId()})
			}
		}
		if len(runs) != len(ids)+1 {
			sleep100ms()
		}
	}
	if len(runs) != len(ids)+1 {
		t.Fatalf("visibility lists %d runs of %v, want %d (the failed release and the one after the fix)", len(runs), ids, len(ids)+1)
	}
	for _, r := range runs {
		var h historypb.History
		iter := c.GetWorkflowHistory(ctx, r.id, r.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			e, err := iter.Next()
			if err != nil {
				t.Fatal(err)
			}
			h.Events = append(h.Events, e)
		}
		if err := replayer.ReplayWorkflowHistory(nil, &h); err != nil {
			t.Errorf("%s run %s does not replay: %v", r.id, r.runID, err)
		}
	}
}

// releaseStateOf reads a release's state with `shipline status --output json`.
func releaseStateOf(t *testing.T, s *stack, id string) workflows.ReleaseState {
	t.Helper()
	var st workflows.ReleaseState
	statusJSON(t, s, id, &st)
	return st
}

// deployStateOf reads a deployment's state with `shipline status --output json`.
func deployStateOf(t *testing.T, s *stack, id string) workflows.DeployState {
	t.Helper()
	var st workflows.DeployState
	statusJSON(t, s, id, &st)
	return st
}

func statusJSON(t *testing.T, s *stack, id string, state any) {
	t.Helper()
	code, out, errOut := s.shipline("--output", "json", "status", id)
	if code != 0 {
		t.Fatalf("status %s: exit %d\n%s", id, code, errOut)
	}
	var res struct {
		State json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.State) == 0 {
		t.Fatalf("status %s --output json: %v\n%s", id, err, out)
	}
	if err := json.Unmarshal(res.State, state); err != nil {
		t.Fatalf("status %s: state: %v", id, err)
	}
}

func stepNamed(steps []workflows.Step, name string) workflows.Step {
	for _, s := range steps {
		if s.Name == name {
			return s
		}
	}
	return workflows.Step{}
}
