package test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"golang.org/x/crypto/ssh"

	"github.com/shipline/shipline/internal/signing"
	"github.com/shipline/shipline/workflows"
)

// writeKey makes an ed25519 key pair: the private key file (OpenSSH format) and
// the public authorized_keys line.
func writeKey(t *testing.T, dir, name string) (string, string, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pub)
	return path, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))), priv
}

// TestSignedRequests runs a platform with require_signatures: signed requests
// work; unsigned, forged, stale and replayed ones are refused with a reason and
// show in the audit; read-only commands need no signature.
func TestSignedRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	root := t.TempDir()
	t.Setenv("HOME", root) // no ~/.ssh/id_ed25519: commands without --key are unsigned
	t.Setenv("SHIPLINE_KEY", "")
	aliceKey, alicePub, _ := writeKey(t, root, "alice")
	bobKey, bobPub, bobPriv := writeKey(t, root, "bob")
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
promotion:
  stages:
    - {name: dev, fabrics: [dev, airflow-dev], approval: {team: developers, required: 1, self_approval: false}}
`, alicePub, bobPub, remote)
	cfgPath := filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, cfgPath, 0)
	sh := s.shipline

	// Unsigned: refused, and the refusal is recorded in the release's history.
	code, _, errOut := sh("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait")
	if code != 1 || !strings.Contains(errOut, "unsigned: this platform requires signed requests") {
		t.Fatalf("unsigned release: exit %d %q", code, errOut)
	}
	// Bob's key cannot speak for alice: --as is not trusted.
	code, _, errOut = sh("release", "v1.0.0", "--project", "demo", "--as", "alice", "--key", bobKey, "--wait")
	if code != 1 || !strings.Contains(errOut, "forged") {
		t.Fatalf("release as alice with bob's key: exit %d %q", code, errOut)
	}
	// Signed by alice: released.
	if code, out, errOut := sh("release", "v1.0.0", "--project", "demo", "--as", "alice", "--key", aliceKey, "--wait"); code != 0 {
		t.Fatalf("signed release: exit %d\n%s%s", code, out, errOut)
	}
	// A start from the Temporal UI carries no signature: refused.
	c, err := client.Dial(client.Options{HostPort: s.address})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.PromoteID("demo", "v1.0.0"), TaskQueue: "shipline"},
		workflows.PromoteWorkflow, workflows.PromoteInput{Project: "demo", Version: "v1.0.0", Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err == nil || !strings.Contains(err.Error(), "unsigned") {
		t.Fatalf("UI-started promotion: %v", err)
	}

	// A signed promotion waits for bob; alice may not approve her own promotion.
	if code, _, _ := sh("promote", "v1.0.0", "--project", "demo", "--as", "alice", "--key", aliceKey, "--wait"); code != 0 {
		t.Fatal("signed promote failed")
	}
	id := workflows.PromoteID("demo", "v1.0.0")
	vote := workflows.Vote{Stage: "dev", Actor: "bob", PlanHash: stagePlanHash(t, s, id, "dev")} // the plan the gate shows
	canonical, _ := signing.Canonical(workflows.SignedArgs(vote))
	stale := signing.Sign(bobPriv, signing.Request{WorkflowID: id, Action: workflows.ActionApprove, Actor: "bob", Args: canonical, RequestID: "stale-1", Time: time.Now().Add(-10 * time.Minute)})
	vote.Auth = &stale
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.ApproveUpdate, Args: []any{vote}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if err == nil || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("stale approval: %v", err)
	}
	fresh := signing.Sign(bobPriv, signing.Request{WorkflowID: id, Action: workflows.ActionApprove, Actor: "bob", Args: canonical, RequestID: "fresh-1", Time: time.Now()})
	vote.Auth = &fresh
	for i, want := range []string{"", "replayed"} {
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.ApproveUpdate, Args: []any{vote}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		if (want == "" && err != nil) || (want != "" && (err == nil || !strings.Contains(err.Error(), want))) {
			t.Fatalf("approval %d: %v (want %q)", i, err, want)
		}
		if want == "" {
			continue
		}
	}
	waitFor(t, s, id, "promoted v1.0.0 of demo to dev")

	// Read-only commands need no key.
	if code, _, _ := sh("status", id); code != 0 {
		t.Fatal("status needs no signature")
	}
	if code, out, _ := sh("releases", "--project", "demo"); code != 0 || !strings.Contains(out, "v1.0.0") {
		t.Fatalf("releases: %s", out)
	}
	// The refused attempts are in the audit.
	code, out, _ := sh("audit", "--project", "demo", "--json")
	if code != 0 || strings.Count(out, `"result":"refused"`) < 3 {
		t.Fatalf("audit should show the refused release, forged release and UI promotion:\n%s", out)
	}
}
