package test

import (
	"strings"
	"testing"

	"github.com/shipline/shipline/workflows"
)

// promoteToQA releases version (auto_deploy reaches dev) and promotes it to
// qa, where bob approves.
func promoteToQA(t *testing.T, f *promoteFixture, version string) {
	t.Helper()
	sh := f.s.shipline
	git(t, f.workDir, "commit", "-q", "--allow-empty", "-m", "change for "+version)
	git(t, f.workDir, "push", "-q", f.remote, "main")
	if code, out, errOut := sh("release", version, "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release %s: %s\n%s", version, out, errOut)
	}
	if code, out, errOut := sh("promote", version, "--project", "demo", "--to", "qa", "--as", "alice"); code != 0 {
		t.Fatalf("promote %s: %s\n%s", version, out, errOut)
	}
	waitFor(t, f.s, workflows.PromoteID("demo", version), "qa: 0 of 1 approvals from developers")
	if code, _, errOut := sh("approve", version, "--project", "demo", "--stage", "qa", "--as", "bob"); code != 0 {
		t.Fatalf("approve %s: %s", version, errOut)
	}
}

// qaVersion is the version of daily_orders on the qa workspace.
func qaVersion(t *testing.T, f *promoteFixture) string {
	t.Helper()
	jobs := f.emus["qa"].JobsTagged(map[string]string{"shipline_project": "demo", "shipline_job": "daily_orders"})
	if len(jobs) != 1 {
		t.Fatalf("qa jobs: %+v", jobs)
	}
	return jobs[0].Tags()["shipline_version"]
}

// A stage rolled back by hand (as an emergency) holds: the next promotion into
// it waits, saying why, until its owner team clears the hold; the audit tells
// it in order.
func TestRollbackAndHoldEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	f := newPromoteFixture(t)
	sh := f.s.shipline

	promoteToQA(t, f, "v1.0.0")
	waitFor(t, f.s, workflows.PromoteID("demo", "v1.0.0"), "promoted v1.0.0 of demo to qa")
	promoteToQA(t, f, "v1.1.0")
	waitFor(t, f.s, workflows.PromoteID("demo", "v1.1.0"), "promoted v1.1.0 of demo to qa")
	if v := qaVersion(t, f); v != "v1.1.0" {
		t.Fatalf("qa runs %s", v)
	}

	// Only versions qa verified may be rolled back to; carol is not in qa's owner team.
	if code, _, errOut := sh("rollback", "--project", "demo", "--stage", "qa", "--to", "v0.9.0", "--emergency", "--as", "bob"); code != 1 ||
		!strings.Contains(errOut, "v0.9.0 was never verified on stage qa of demo, so it cannot be rolled back to; verified there: v1.0.0, v1.1.0") {
		t.Fatalf("rollback to v0.9.0: exit %d %q", code, errOut)
	}
	if code, _, errOut := sh("rollback", "--project", "demo", "--stage", "qa", "--emergency", "--as", "carol"); code != 1 ||
		!strings.Contains(errOut, "carol may not roll back, as an emergency, stage qa") {
		t.Fatalf("carol's emergency rollback: exit %d %q", code, errOut)
	}
	code, out, errOut := sh("rollback", "--project", "demo", "--stage", "qa", "--emergency", "--reason", "wrong totals", "--as", "bob", "--wait")
	if code != 0 || !strings.Contains(out, "rolled back (emergency, no approval) qa of demo to v1.0.0 (from v1.1.0)") {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, out, errOut)
	}
	if v := qaVersion(t, f); v != "v1.0.0" {
		t.Fatalf("qa runs %s after the rollback", v)
	}
	code, out, _ = sh("deployments", "--project", "demo")
	if code != 0 || !strings.Contains(out, "stage qa: runs v1.0.0; qa held since ") {
		t.Fatalf("deployments after the rollback:\n%s", out)
	}

	// The hold stops the next promotion into qa until bob clears it.
	promoteToQA(t, f, "v1.2.0")
	waitFor(t, f.s, workflows.PromoteID("demo", "v1.2.0"), "after emergency rollback to v1.0.0 by bob: wrong totals; clear with `shipline release-hold --project demo --stage qa --clear`")
	if v := qaVersion(t, f); v != "v1.0.0" {
		t.Fatalf("qa runs %s while held", v)
	}
	if code, _, errOut := sh("release-hold", "--project", "demo", "--stage", "qa", "--clear", "--as", "carol"); code != 1 || !strings.Contains(errOut, "carol may not clear the hold of stage qa") {
		t.Fatalf("carol clearing: exit %d %q", code, errOut)
	}
	if code, out, errOut := sh("release-hold", "--project", "demo", "--stage", "qa", "--clear", "--as", "bob"); code != 0 {
		t.Fatalf("bob clearing: exit %d %s %s", code, out, errOut)
	}
	waitFor(t, f.s, workflows.PromoteID("demo", "v1.2.0"), "promoted v1.2.0 of demo to qa")
	if v := qaVersion(t, f); v != "v1.2.0" {
		t.Fatalf("qa runs %s after the hold was cleared", v)
	}
	code, out, _ = sh("releases", "--project", "demo")
	if code != 0 || !strings.Contains(out, "stage qa: runs v1.2.0; previous verified v1.0.0; not held") {
		t.Fatalf("releases after clearing:\n%s", out)
	}

	checkAudit(t, f.s, []string{
		"alice promote v1.0.0 started",
		"bob approve v1.0.0 ok",
		"alice promote v1.0.0 promoted",
		"alice promote v1.1.0 promoted",
		"bob rollback v0.9.0 refused",
		"carol rollback  refused",
		"bob rollback  started",
		"bob deploy v1.0.0 succeeded",
		"bob rollback  rolled",
		"alice promote v1.2.0 started",
		"carol release-hold  refused",
		"bob release-hold  ok",
		"bob deploy v1.2.0 succeeded",
		"alice promote v1.2.0 promoted",
	})
}
