package cli

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/workflows"
)

func TestGoldenRollback(t *testing.T) {
	hold := workflows.StageHold{Since: time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC), Version: "v0.9.0", From: "v1.0.0", By: "bob", Reason: "wrong totals", Emergency: true}
	t.Run("emergency", func(t *testing.T) {
		qa := workflows.StageState{Name: "qa", Fabrics: []string{"qa"}, Status: workflows.StageRolledBack, DeployedBy: "bob", Detail: "rolled back (emergency, no approval) to v0.9.0; the stage holds"}
		s := promoteState(workflows.StatusRolledBack, "rolled back (emergency, no approval) qa of demo to v0.9.0 (from v1.0.0) as bob, requested by bob: wrong totals; "+hold.Held("demo", "qa"), qa)
		f := newFake()
		f.onStart[workflows.RollbackWorkflow] = &fakeWF{typ: workflows.RollbackWorkflow, accept: workflows.Acceptance{Accepted: true}, states: []any{s}}
		code, out, _ := golden(t, "rollback_emergency", f, "--as", "bob", "rollback", "--project", "demo", "--stage", "qa", "--emergency", "--reason", "wrong totals", "--wait")
		if code != ExitOK || !strings.Contains(out, "release-hold --project demo --stage qa --clear") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})
	t.Run("refused", func(t *testing.T) {
		f := newFake()
		f.onStart[workflows.RollbackWorkflow] = &fakeWF{typ: workflows.RollbackWorkflow, accept: workflows.Acceptance{Status: workflows.StatusRefused,
			Reason: "v0.1.0 was never verified on stage qa of demo, so it cannot be rolled back to; verified there: v0.9.0, v1.0.0"}}
		if code, _, _ := golden(t, "rollback_refused", f, "rollback", "--project", "demo", "--stage", "qa", "--to", "v0.1.0"); code != ExitFailed {
			t.Errorf("exit %d", code)
		}
	})
	t.Run("bad stage", func(t *testing.T) {
		if code, _, errOut := shipline(t, newFake(), "rollback", "--project", "demo", "--stage", "Q/A"); code != ExitInvalid || !strings.Contains(errOut, "not a stage name") {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
	t.Run("release-hold", func(t *testing.T) {
		f := newFake()
		ledger := workflows.StageLedger{Project: "demo", Stage: "qa", Current: &workflows.StageRelease{Version: "v0.9.0"},
			Verified: []workflows.StageRelease{{Version: "v0.9.0"}, {Version: "v1.0.0"}}, Hold: &hold}
		cleared := ledger
		cleared.Hold = nil
		f.add(workflows.StageID("demo", "qa"), &fakeWF{typ: workflows.StageWorkflow, states: []any{ledger},
			updates: map[string]any{workflows.ReleaseHoldUpdate: cleared}})
		if code, out, _ := golden(t, "release_hold_show", f, "release-hold", "--project", "demo", "--stage", "qa"); code != ExitOK || !strings.Contains(out, "qa held since") {
			t.Errorf("exit %d:\n%s", code, out)
		}
		if code, _, _ := golden(t, "release_hold_clear", f, "--as", "bob", "release-hold", "--project", "demo", "--stage", "qa", "--clear"); code != ExitOK {
			t.Errorf("exit %d", code)
		}
		f = newFake()
		f.add(workflows.StageID("demo", "qa"), &fakeWF{typ: workflows.StageWorkflow, states: []any{ledger},
			updates: map[string]any{workflows.ReleaseHoldUpdate: errors.New("carol may not clear the hold of stage qa: fabric qa is owned by team developers (alice, bob); only the owner team of the stage's fabrics clears its hold")}})
		if code, _, _ := golden(t, "release_hold_refused", f, "--as", "carol", "release-hold", "--project", "demo", "--stage", "qa", "--clear"); code != ExitFailed {
			t.Errorf("exit %d", code)
		}
	})
	t.Run("verify", func(t *testing.T) {
		qa := workflows.StageState{Name: "qa", Fabrics: []string{"qa"}, Status: workflows.StageVerified, Detail: "verified: nightly succeeded on qa"}
		f := newFake()
		f.onStart[workflows.VerifyWorkflow] = &fakeWF{typ: workflows.VerifyWorkflow, accept: workflows.Acceptance{Accepted: true},
			states: []any{promoteState(workflows.StatusSucceeded, "v1.0.0 of demo verified on qa (verified: nightly succeeded on qa)", qa)}}
		if code, _, _ := golden(t, "verify_wait", f, "verify", "v1.0.0", "--project", "demo", "--stage", "qa", "--wait"); code != ExitOK {
			t.Errorf("exit %d", code)
		}
	})
}
