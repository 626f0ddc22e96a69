package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/internal/signing"
	"github.com/shipline/shipline/workflows"
)

// An attacker with a plain SDK client replays a signed request and sends
// unsigned votes straight to a promotion. The signed deploy is accepted once
// per project: started again as a new run of its workflow ID, under a new
// workflow ID, or after the project's audit continued as new, it is refused.
// Each refused vote is the update's recorded outcome, shows in `shipline
// audit` exactly once with how it arrived, and a flood of them is capped with
// the rest counted.
func TestAttackReplayAndAuditedRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	root := t.TempDir()
	t.Setenv("HOME", root)
	t.Setenv("SHIPLINE_KEY", "")
	aliceKey, alicePub, alicePriv := writeKey(t, root, "alice")
	_, bobPub, _ := writeKey(t, root, "bob")
	remote, _ := fixtureProject(t, root, projectTrees...)
	cfg := fmt.Sprintf(`state_dir: state
require_signatures: true
users:
  alice: {keys: [%q]}
  bob:   {keys: [%q]}
teams:
  developers: {members: [alice, bob]}
projects:
  demo: {repo: %s, admins: [alice], auto_deploy: false}
fabrics:
  dev:         {kind: local, owner: developers, root: fabrics/dev}
  airflow-dev: {kind: local, owner: developers, root: fabrics/airflow-dev}
  qa:          {kind: local, owner: developers, root: fabrics/qa}
promotion:
  stages:
    - {name: qa, fabrics: [qa], approval: {team: developers, required: 1, self_approval: false}}
`, alicePub, bobPub, remote)
	cfgPath := filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// Short histories: the entities continue as new while the attack goes on.
	s := startStackWith(t, cfgPath, 0, map[string]any{"limit.historyCount.suggestContinueAsNew": 40})
	sh := s.shipline
	if code, out, errOut := sh("release", "v1.0.0", "--project", "demo", "--as", "alice", "--key", aliceKey, "--wait"); code != 0 {
		t.Fatalf("signed release: exit %d\n%s%s", code, out, errOut)
	}
	c, err := client.Dial(client.Options{HostPort: s.address})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tried, refused := 0, 0

	// A deploy signed by alice, as the CLI would send it; copied from history
	// by the attacker, who starts it again.
	id := workflows.DeployID("demo", "v1.0.0", "replay-1")
	in := workflows.DeployInput{Project: "demo", Version: "v1.0.0", Actor: "alice", Trigger: "cli"}
	canonical, _ := signing.Canonical(workflows.SignedArgs(in))
	auth := signing.Sign(alicePriv, signing.Request{WorkflowID: id, Action: workflows.ActionDeploy, Actor: "alice", Args: canonical, RequestID: "deploy-req-1", Time: time.Now()})
	in.Auth = &auth
	start := func(wid string) error {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: "shipline"}, workflows.DeployWorkflow, in)
		if err != nil {
			return err
		}
		var st workflows.DeployState
		return run.Get(ctx, &st)
	}
	if err := start(id); err != nil {
		t.Fatalf("the signed deploy itself: %v", err)
	}
	attempt := func(what string, err error, want string) {
		t.Helper()
		tried++
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v (want a refusal with %q)", what, err, want)
		}
		refused++
	}
	attempt("the same signed deploy as a new run of its workflow ID", start(id), "replayed")
	attempt("the same signed deploy under a new workflow ID", start(workflows.DeployID("demo", "v1.0.0", "replay-2")), "forged")

	// A promotion signed by alice waits at qa for a developer's approval.
	if code, _, errOut := sh("promote", "v1.0.0", "--project", "demo", "--as", "alice", "--key", aliceKey); code != 0 {
		t.Fatalf("signed promote: %s", errOut)
	}
	pid := workflows.PromoteID("demo", "v1.0.0")
	waitFor(t, s, pid, "waiting")
	vote := func(actor string) error {
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: pid, UpdateName: workflows.ApproveUpdate,
			Args: []any{workflows.Vote{Stage: "qa", Actor: actor}}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		return err
	}
	attempt("bob's unsigned approval", vote("bob"), "unsigned")
	// A flood of unsigned approvals in mallory's name: each refused, the audit
	// keeps MaxRefusalsPerActor of them and counts the rest.
	flood := workflows.MaxRefusalsPerActor + 5
	auditRun := func() string {
		d, err := c.DescribeWorkflowExecution(ctx, workflows.AuditID("demo"), "")
		if err != nil {
			t.Fatal(err)
		}
		return d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	}
	firstAuditRun := auditRun()
	for i := 0; i < flood; i++ {
		attempt("mallory's unsigned approval", vote("mallory"), "unsigned")
	}
	// After the project's audit continued as new, the signed deploy is still
	// a replay.
	for i := 0; i < 100 && auditRun() == firstAuditRun; i++ {
		sleep100ms()
	}
	if auditRun() == firstAuditRun {
		t.Fatal("the project's audit never continued as new")
	}
	attempt("the same signed deploy after the audit continued as new", start(id), "replayed")

	// shipline audit: bob's attempt once, with how it arrived; mallory's
	// flood capped and counted; the promotion is still waiting.
	var lines []map[string]any
	for i := 0; i < 300; i++ {
		code, out, errOut := sh("audit", "--project", "demo", "--json")
		if code != 0 {
			t.Fatalf("audit: %s", errOut)
		}
		lines = lines[:0]
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil {
				lines = append(lines, m)
			}
		}
		if countAudit(lines, "mallory", workflows.ActionApprove) >= workflows.MaxRefusalsPerActor {
			break
		}
		sleep100ms()
	}
	if n := countAudit(lines, "bob", workflows.ActionApprove); n != 1 {
		t.Fatalf("bob's refused approval shows %d times in the audit:\n%v", n, lines)
	}
	dropped := 0.0
	for _, l := range lines {
		if l["actor"] == "bob" && l["action"] == workflows.ActionApprove && (l["result"] != "refused" || l["via"] != workflows.ViaUnsigned) {
			t.Errorf("bob's approval in the audit: %v", l)
		}
		if d, ok := l["dropped"].(float64); ok && l["actor"] == "mallory" {
			dropped += d
		}
	}
	if kept := countAudit(lines, "mallory", workflows.ActionApprove); kept != workflows.MaxRefusalsPerActor || dropped != float64(flood-workflows.MaxRefusalsPerActor) {
		t.Fatalf("mallory's flood: %d kept, %v counted as dropped; want %d and %d", kept, dropped, workflows.MaxRefusalsPerActor, flood-workflows.MaxRefusalsPerActor)
	}
	if n := countAudit(lines, "alice", workflows.ActionDeploy); n < 3 {
		t.Errorf("the replayed deploys are not in the audit (%d deploy lines of alice)", n)
	}
	waitFor(t, s, pid, "waiting")
	t.Logf("attacks tried: %d, refused: %d", tried, refused)
}

// countAudit counts the audit lines of an actor's action (the flood summary,
// with "dropped", is not counted).
func countAudit(lines []map[string]any, actor, action string) int {
	n := 0
	for _, l := range lines {
		if l["actor"] == actor && l["action"] == action && l["dropped"] == nil {
			n++
		}
	}
	return n
}
