package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/workflows"
)

// On the embedded server with the real CLI, under a platform-wide freeze: a
// promotion and a direct deploy wait and say why; an override by someone
// outside the stage's owner team is refused; the owner team's goes through,
// stage by stage, and the audit shows each with its reason.
func TestWindowsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	now := time.Now().UTC()
	stages := promoteStages[:strings.Index(promoteStages, "    - {name: qa")] +
		"    - {name: prod, fabrics: [prod], approval: {team: prod_support, required: 1}}\n" +
		fmt.Sprintf("windows:\n  freezes: [{from: %q, to: %q, reason: year-end freeze}]\n",
			now.Add(-time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339))
	f := newPromoteFixtureWith(t, stages)
	sh := f.s.shipline
	id := workflows.PromoteID("demo", "v1.2.0")

	if code, out, errOut := sh("release", "v1.2.0", "--project", "demo", "--as", "alice", "--no-deploy", "--wait"); code != 0 {
		t.Fatalf("release: %s\n%s", out, errOut)
	}
	code, out, _ := sh("promote", "v1.2.0", "--project", "demo", "--as", "alice", "--wait")
	if code != 0 || !strings.Contains(out, "pending: dev: closed until ") || !strings.Contains(out, " UTC: year-end freeze") {
		t.Fatalf("promote: exit %d\n%s", code, out)
	}
	if code, out, _ := sh("status", id); code != 0 || !strings.Contains(out, "closed     dev") {
		t.Fatalf("status:\n%s", out)
	}

	// A direct deploy to the frozen stage's fabrics waits before it queues, and says so.
	code, out, _ = sh("deploy", "v1.2.0", "--project", "demo", "--as", "bob", "--wait")
	if code != 0 || !strings.Contains(out, "waiting: stage dev closed until ") {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	_, rest, _ := strings.Cut(out, "(")
	depID, _, _ := strings.Cut(rest, ")")
	if code, out, errOut := sh("cancel", depID, "--as", "bob", "--reason", "promoting instead", "--wait"); code != 0 {
		t.Fatalf("cancel %s: exit %d\n%s%s", depID, code, out, errOut)
	}

	// carol is not in dev's owner team: her override is refused.
	if code, _, errOut := sh("approve", "v1.2.0", "--project", "demo", "--stage", "dev", "--as", "carol", "--override-window", "--reason", "please"); code != 1 ||
		!strings.Contains(errOut, "carol may not override the change windows of stage dev") {
		t.Fatalf("carol's override of dev: exit %d %q", code, errOut)
	}
	if code, out, _ := sh("approve", "v1.2.0", "--project", "demo", "--stage", "dev", "--as", "bob", "--override-window", "--reason", "hotfix INC-42"); code != 0 ||
		!strings.Contains(out, "goes ahead while closed") {
		t.Fatalf("bob's override of dev: exit %d\n%s", code, out)
	}
	// prod's gate: carol approves and overrides its window in one request.
	waitFor(t, f.s, id, "prod: 0 of 1 approvals from prod_support")
	if code, out, _ := sh("approve", "v1.2.0", "--project", "demo", "--stage", "prod", "--as", "carol", "--override-window", "--reason", "hotfix INC-42 in prod"); code != 0 ||
		!strings.Contains(out, "prod: 1 of 1 approvals") || !strings.Contains(out, "window override recorded (hotfix INC-42 in prod)") {
		t.Fatalf("carol's override of prod: exit %d\n%s", code, out)
	}
	waitFor(t, f.s, id, `"status": "promoted"`)
	if len(artifactSums(f.emus["prod"], "v1.2.0")) == 0 {
		t.Fatal("prod got no artifacts")
	}
	code, out, _ = sh("audit", "--project", "demo")
	if code != 0 || !strings.Contains(out, "hotfix INC-42 (stage dev was closed until") ||
		!strings.Contains(out, "hotfix INC-42 in prod (stage prod was closed until") {
		t.Fatalf("audit:\n%s", out)
	}
}
