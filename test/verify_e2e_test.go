package test

import (
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/workflows"
)

// verifyStages: qa verifies daily_orders after each deployment and rolls back
// by itself when it fails; prod needs two approvals from prod_support.
const verifyStages = `    - {name: dev,  fabrics: [dev, airflow-dev]}
    - {name: qa,   fabrics: [qa], verify: {jobs: [daily_orders], params: {mode: smoke}, timeout: 10m}, on_failure: rollback}
    - {name: prod, fabrics: [prod], approval: {team: prod_support, required: 2, self_approval: false, timeout: 72h}}
`

// quickTasks makes the fixture's tasks run for a second on a workspace; fail
// makes score_churn fail with that message.
func quickTasks(emu *dbemu.Emulator, fail string) {
	for _, k := range []string{"ingest_orders", "enrich", "score_churn"} {
		b := dbemu.TaskBehavior{Pending: 500 * time.Millisecond, Running: time.Second}
		if k == "score_churn" {
			b.Fail = fail
		}
		emu.SetTaskBehavior(k, b)
	}
}

func releaseNext(t testing.TB, f *promoteFixture, version string) {
	t.Helper()
	git(t, f.workDir, "commit", "-q", "--allow-empty", "-m", "change for "+version)
	git(t, f.workDir, "push", "-q", f.remote, "main")
	if code, out, errOut := f.s.shipline("release", version, "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release %s: %s\n%s", version, out, errOut)
	}
}

// Promote dev → qa → prod where qa verifies each release with a run of
// daily_orders on the Databricks emulator: v1.0.0 passes; v1.1.0's run fails
// (an injected task failure), so qa rolls back to v1.0.0 by itself and holds;
// v1.2.0's promotion waits on the hold until bob clears it, then verifies and
// goes on to prod; the audit tells it in order.
func TestVerifyFailureRollsBackAndHoldsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	f := newPromoteFixtureWith(t, verifyStages)
	sh := f.s.shipline
	quickTasks(f.emus["qa"], "")

	releaseNext(t, f, "v1.0.0")
	if code, out, errOut := sh("promote", "v1.0.0", "--project", "demo", "--to", "qa", "--as", "alice", "--wait"); code != 0 || !strings.Contains(out, "promoted v1.0.0 of demo to qa") {
		t.Fatalf("promote v1.0.0: exit %d\n%s\n%s", code, out, errOut)
	}
	runs := f.emus["qa"].Runs()
	if len(runs) != 1 || runs[0].ResultState != "SUCCESS" {
		t.Fatalf("qa runs after v1.0.0: %+v", runs)
	}

	quickTasks(f.emus["qa"], "AssertionError: churn scores out of range")
	releaseNext(t, f, "v1.1.0")
	code, out, errOut := sh("promote", "v1.1.0", "--project", "demo", "--as", "alice", "--wait")
	if code != 1 || !strings.Contains(errOut, "verification of v1.1.0 on qa failed: daily_orders on qa failed") ||
		!strings.Contains(errOut, "AssertionError: churn scores out of range") || !strings.Contains(errOut, f.emus["qa"].URL) ||
		!strings.Contains(errOut, "rolled back qa to v1.0.0 automatically") {
		t.Fatalf("promote v1.1.0: exit %d\n%s\n%s", code, out, errOut)
	}
	if v := qaVersion(t, f); v != "v1.0.0" {
		t.Fatalf("qa runs %s after the automatic rollback", v)
	}
	if got := len(f.emus["prod"].JobsTagged(map[string]string{"shipline_project": "demo"})); got != 0 {
		t.Fatalf("prod has %d jobs: a failed verification must stop before prod", got)
	}

	quickTasks(f.emus["qa"], "")
	releaseNext(t, f, "v1.2.0")
	if code, out, errOut := sh("promote", "v1.2.0", "--project", "demo", "--as", "alice"); code != 0 {
		t.Fatalf("promote v1.2.0: %s\n%s", out, errOut)
	}
	waitFor(t, f.s, workflows.PromoteID("demo", "v1.2.0"), "after automatic rollback to v1.0.0 by shipline: verification of v1.1.0 on qa failed")
	if v := qaVersion(t, f); v != "v1.0.0" {
		t.Fatalf("qa runs %s while held", v)
	}
	if code, _, errOut := sh("release-hold", "--project", "demo", "--stage", "qa", "--clear", "--as", "bob"); code != 0 {
		t.Fatalf("clear: %s", errOut)
	}
	waitFor(t, f.s, workflows.PromoteID("demo", "v1.2.0"), "prod: 0 of 2 approvals from prod_support")
	for _, who := range []string{"carol", "dave"} {
		if code, _, errOut := sh("approve", "v1.2.0", "--project", "demo", "--stage", "prod", "--as", who); code != 0 {
			t.Fatalf("%s approving: %s", who, errOut)
		}
	}
	waitFor(t, f.s, workflows.PromoteID("demo", "v1.2.0"), "promoted v1.2.0 of demo to prod")

	checkAudit(t, f.s, []string{
		"alice promote v1.0.0 started",
		"alice run v1.0.0 succeeded",
		"alice verified v1.0.0 ok",
		"alice promote v1.0.0 promoted",
		"alice promote v1.1.0 started",
		"alice deploy v1.1.0 succeeded",
		"alice run v1.1.0 failed",
		"shipline rollback  started",
		"alice deploy v1.0.0 succeeded",
		"shipline rollback  rolled",
		"alice promote v1.1.0 failed",
		"alice promote v1.2.0 started",
		"bob release-hold  ok",
		"alice deploy v1.2.0 succeeded",
		"alice run v1.2.0 succeeded",
		"carol approve v1.2.0 ok",
		"dave approve v1.2.0 ok",
		"alice promote v1.2.0 promoted",
	})
}
