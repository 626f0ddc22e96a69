package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/workflows"
)

// TestRefusalsAreSynchronous: release, deploy, promote and delete without
// --wait exit 1 with the reason when the request is refused; a version that
// was never released is refused at once, not parked. With no worker polling
// the task queue a command says so instead of waiting, and `cancel` ends a
// workflow no worker ever picked up, recording who and why.
func TestRefusalsAreSynchronous(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server")
	}
	cfgPath, _, _ := demoProject(t)
	s := startStack(t, cfgPath, 0)

	refused := func(want string, args ...string) {
		t.Helper()
		code, out, errOut := s.shipline(args...)
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("shipline %s: exit %d, stdout %q, stderr %q; want exit 1 saying %q", strings.Join(args, " "), code, out, errOut, want)
		}
	}
	refused("bob may not release project demo", "release", "v1.0.0", "--project", "demo", "--as", "bob")
	refused("not registered", "release", "v1.0.0", "--project", "nosuch", "--as", "alice")
	refused("v9.9.9 of demo is not released", "deploy", "v9.9.9", "--project", "demo", "--as", "alice")
	refused("it was never released", "promote", "v9.9.9", "--project", "demo", "--as", "alice")
	refused("v9.9.9 of demo is not released", "plan", "v9.9.9", "--project", "demo", "--as", "alice")

	// The unreleased deploy ended refused; it does not sit parked.
	c, err := client.Dial(client.Options{HostPort: s.address, Logger: quietSDKLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	code, out, _ := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--no-deploy")
	if code != 0 || !strings.Contains(out, "release v1.0.0 of demo started for alice") {
		t.Fatalf("release by an admin: exit %d\n%s", code, out)
	}
	// --wait returns once the release step is done (the entity stays open).
	if code, out, _ = s.shipline("status", workflows.ReleaseID("demo", "v1.0.0"), "--watch"); code != 0 || !strings.Contains(out, "released v1.0.0 of demo") {
		t.Fatalf("status --watch of the release: exit %d\n%s", code, out)
	}
	refused("dave may not deploy", "deploy", "v1.0.0", "--project", "demo", "--as", "dave")
	refused("bob may not", "delete", "v1.0.0", "--project", "demo", "--as", "bob")

	// A task queue no worker polls: said at once, nothing started.
	began := time.Now()
	code, _, errOut := s.shipline("--task-queue", "nowhere", "release", "v1.0.1", "--project", "demo", "--as", "alice")
	t.Logf("a release on a queue nobody polls was refused after %s", time.Since(began).Round(time.Millisecond))
	if code != 1 || !strings.Contains(errOut, `no worker polls task queue "nowhere"`) {
		t.Fatalf("release on a queue nobody polls: exit %d, stderr %q", code, errOut)
	}
	if _, err := c.DescribeWorkflow(context.Background(), workflows.ReleaseID("demo", "v1.0.1"), ""); err == nil {
		t.Fatal("a release was started on a task queue no worker polls")
	}

	// A deployment started (e.g. from the Temporal UI) on a queue no worker polls:
	// status says so, and cancel terminates it with who and why.
	id := workflows.DeployID("demo", "v1.0.0", "stranded")
	if _, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: "nowhere"}, workflows.DeployWorkflow,
		workflows.DeployInput{Project: "demo", Version: "v1.0.0", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	code, _, errOut = s.shipline("status", id, "--watch")
	t.Logf("status --watch of a deployment no worker runs stopped after %s", time.Since(began).Round(time.Millisecond))
	if code != 1 || !strings.Contains(errOut, `no worker polls task queue "nowhere"`) {
		t.Fatalf("status --watch of a stranded deployment: exit %d, stderr %q", code, errOut)
	}
	code, out, _ = s.shipline("cancel", id, "--as", "alice", "--reason", "wrong queue", "--wait")
	if code != 0 || !strings.Contains(out, "terminated "+id+": cancelled by alice: wrong queue") {
		t.Fatalf("cancel of a stranded deployment: exit %d\n%s", code, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	ev, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	if a := ev.GetWorkflowExecutionTerminatedEventAttributes(); a == nil || !strings.Contains(a.GetReason(), "cancelled by alice: wrong queue") {
		t.Fatalf("close event of the stranded deployment: %v", ev)
	}
}

// TestLogsOfFailedBuild: a release whose tests fail ends before its tag with
// the advice to fix, push and release the same version again (resume cannot
// help), and `logs` given the release ID prints the failed build's log first.
func TestLogsOfFailedBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server")
	}
	cfgPath, _, work := demoProject(t)
	test := filepath.Join(work, "pipelines", "score_churn", "tests", "test_score.py")
	if err := os.WriteFile(test, []byte("def test_fails():\n    assert 1 + 1 == 3, 'arithmetic is broken'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, "commit", "-q", "-am", "a failing test")
	git(t, work, "push", "-q", "origin", "main")
	s := startStack(t, cfgPath, 0)

	code, out, errOut := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait")
	all := out + errOut
	if code != 1 || !strings.Contains(all, "v1.0.0 was not tagged") || !strings.Contains(all, "run `shipline release v1.0.0 --project demo` again") ||
		strings.Contains(all, "then `shipline resume") {
		t.Fatalf("release with failing tests: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = s.shipline("logs", workflows.ReleaseID("demo", "v1.0.0"))
	failedAt, builtAt := strings.Index(out, "==> score_churn (failed)"), strings.Index(out, "==> ingest_orders")
	if code != 0 || failedAt < 0 || !strings.Contains(out, "arithmetic is broken") || (builtAt >= 0 && builtAt < failedAt) {
		t.Fatalf("logs of the release: exit %d\n%s%s", code, out, errOut)
	}
}
