package cli

import (
	"context"
	"fmt"
	"github.com/shipline/shipline/internal/views"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/shipline/shipline/workflows"
)

var berlinT, _ = time.LoadLocation("Europe/Berlin")

const closedMsg = "closed until Mon 08:00 Europe/Berlin: year-end freeze"

func TestGoldenWindows(t *testing.T) {
	waiting := deployState(workflows.StatusWaiting, "waiting: stage prod "+closedMsg,
		step(workflows.StepResolveRelease, workflows.StepDone, "v1.0.0 is 0123456: 1 jobs to prod, 1 pipelines"),
		step(workflows.StepAccess, workflows.StepDone, "carol may deploy to prod"),
		step(workflows.StepLock, workflows.StepRunning, "waiting: stage prod "+closedMsg))
	waiting.Window = &workflows.WindowWait{Stage: "prod", Message: closedMsg, Reason: "year-end freeze",
		Until: time.Date(2027, 1, 4, 8, 0, 0, 0, berlinT), Since: t0}
	t.Run("deploy waits", func(t *testing.T) {
		f := newFake()
		f.onStart[workflows.DeployWorkflow] = &fakeWF{typ: workflows.DeployWorkflow, accept: workflows.Acceptance{Accepted: true}, states: []any{waiting}}
		code, stdout, _ := golden(t, "deploy_wait_window", f, "deploy", "v1.0.0", "--project", "demo", "--fabric", "prod", "--wait")
		if code != ExitOK || !strings.Contains(stdout, "waiting: stage prod "+closedMsg) {
			t.Errorf("exit %d:\n%s", code, stdout)
		}
	})
	t.Run("status of a waiting deploy", func(t *testing.T) {
		f := newFake()
		f.add(depID, &fakeWF{typ: workflows.DeployWorkflow, states: []any{waiting}})
		golden(t, "status_deploy_window", f, "status", depID)
	})
	t.Run("promotion waits", func(t *testing.T) {
		prod := workflows.StageState{Name: "prod", Fabrics: []string{"prod"}, Status: workflows.StageClosed, Detail: closedMsg,
			Window: &workflows.WindowWait{Stage: "prod", Message: closedMsg}}
		s := promoteState(workflows.StatusWaiting, "promoting v1.0.0 of demo for alice",
			workflows.StageState{Name: "dev", Fabrics: []string{"dev"}, Status: workflows.StageDeployed}, prod)
		s.Pending = "prod: " + closedMsg
		f := newFake()
		f.onStart[workflows.PromoteWorkflow] = &fakeWF{typ: workflows.PromoteWorkflow, accept: workflows.Acceptance{Accepted: true}, states: []any{s}}
		code, stdout, _ := golden(t, "promote_wait_window", f, "promote", "v1.0.0", "--project", "demo", "--wait")
		if code != ExitOK || !strings.Contains(stdout, "pending: prod: "+closedMsg) {
			t.Errorf("exit %d:\n%s", code, stdout)
		}
		f.calls = nil
		golden(t, "status_promote_window", f, "status", workflows.PromoteID("demo", "v1.0.0"))
	})
	t.Run("status of a promotion entered by override", func(t *testing.T) {
		override := &workflows.WindowOverride{Reason: "hotfix INC-42", Actor: "carol", At: t0}
		prod := workflows.StageState{Name: "prod", Fabrics: []string{"prod"}, Status: workflows.StageVerified, Detail: "deployed v1.0.0 of demo to prod (1 jobs)",
			Window: &workflows.WindowWait{Stage: "prod", Message: closedMsg, Reason: "year-end freeze", Since: t0, Override: override}, Override: override}
		s := promoteState(workflows.StatusPromoted, "promoted v1.0.0 of demo to prod",
			workflows.StageState{Name: "dev", Fabrics: []string{"dev"}, Status: workflows.StageVerified}, prod)
		f := newFake()
		f.add(workflows.PromoteID("demo", "v1.0.0"), &fakeWF{typ: workflows.PromoteWorkflow, states: []any{s}})
		_, stdout, _ := golden(t, "status_promote_window_override", f, "status", workflows.PromoteID("demo", "v1.0.0"))
		if !strings.Contains(stdout, "entered by override of carol: hotfix INC-42") {
			t.Errorf("status does not say the stage was entered by override:\n%s", stdout)
		}
	})
	t.Run("override flags", func(t *testing.T) {
		f := newFake()
		f.onStart[workflows.DeployWorkflow] = &fakeWF{typ: workflows.DeployWorkflow, accept: workflows.Acceptance{Accepted: true}}
		golden(t, "deploy_override_window", f, "deploy", "v1.0.0", "--project", "demo", "--fabric", "prod", "--override-window", "--reason", "hotfix INC-42")
		if !strings.Contains(strings.Join(f.calls, "\n"), `"override_window":{"reason":"hotfix INC-42"}`) {
			t.Errorf("the start does not carry the override: %v", f.calls)
		}
		f = newFake()
		f.onStart[workflows.PromoteWorkflow] = &fakeWF{typ: workflows.PromoteWorkflow, accept: workflows.Acceptance{Accepted: true}}
		golden(t, "promote_override_window", f, "promote", "v1.0.0", "--project", "demo", "--override-window", "--reason", "hotfix INC-42")
		if !strings.Contains(strings.Join(f.calls, "\n"), `"override_window":{"reason":"hotfix INC-42"}`) {
			t.Errorf("the start does not carry the override: %v", f.calls)
		}
	})
	t.Run("override refused", func(t *testing.T) {
		f := newFake()
		f.onStart[workflows.DeployWorkflow] = &fakeWF{typ: workflows.DeployWorkflow, accept: workflows.Acceptance{Status: workflows.StatusRefused, Step: workflows.StepAccess,
			Reason: "--override-window: alice may not override the change windows of stage prod: fabric prod is owned by team prod_support (carol, dave); only the owner team of the stage's fabrics may deploy into it while it is closed (outside its windows or in a freeze)"}}
		if code, _, _ := golden(t, "deploy_override_window_refused", f, "deploy", "v1.0.0", "--project", "demo", "--fabric", "prod", "--override-window", "--reason", "x"); code != ExitFailed {
			t.Errorf("exit %d, want 1", code)
		}
	})
	for name, args := range map[string][]string{
		"deploy_override_no_reason":  {"deploy", "v1.0.0", "--project", "demo", "--override-window"},
		"promote_reason_no_override": {"promote", "v1.0.0", "--project", "demo", "--reason", "x"},
		"approve_override_no_reason": {"approve", "v1.0.0", "--project", "demo", "--stage", "prod", "--override-window"},
	} {
		t.Run(name, func(t *testing.T) {
			if code, _, _ := golden(t, name, newFake(), args...); code != ExitInvalid {
				t.Errorf("exit %d, want 2", code)
			}
		})
	}
}

// The audit shows a window override as a row of its own: who, which stage,
// their reason and why the stage was closed.
func TestAuditWindowOverride(t *testing.T) {
	w := workflows.WindowWait{Stage: "prod", Message: closedMsg, Override: &workflows.WindowOverride{Actor: "carol", Reason: "hotfix INC-42"}}
	p, err := converter.GetDefaultDataConverter().ToPayload(w)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := views.WindowOverrideRecord("demo", "promote/demo/v1.0.0", t0, map[string]*commonpb.Payload{workflows.MemoWindowOverride: p})
	if !ok || r.Actor != "carol" || r.Action != "override-window" || r.Stage != "prod" ||
		r.Detail != "hotfix INC-42 (stage prod was "+closedMsg+")" {
		t.Fatalf("record = %+v, %v", r, ok)
	}
	if _, ok := views.WindowOverrideRecord("demo", "x", t0, map[string]*commonpb.Payload{}); ok {
		t.Error("a memo without an override made a row")
	}
	if got := views.OverrideDetail(map[string]any{"override_window": map[string]any{"reason": "outage"}}); got != "--override-window: outage" {
		t.Errorf("vote detail = %q", got)
	}
}

// SignalWorkflow records the signal as a call (only recheck-window sends one).
func (f *fakeClient) SignalWorkflow(_ context.Context, id, _, name string, _ any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.wf(id); err != nil {
		return err
	}
	f.calls = append(f.calls, fmt.Sprintf("signal %s %s", name, id))
	return nil
}

func TestGoldenRecheckWindow(t *testing.T) {
	id := workflows.PromoteID("demo", "v1.0.0")
	f := newFake()
	f.add(id, &fakeWF{typ: workflows.PromoteWorkflow})
	if code, _, _ := golden(t, "recheck_window", f, "recheck-window", id); code != ExitOK || len(f.calls) != 1 {
		t.Errorf("exit %d, calls %v", code, f.calls)
	}
	f = newFake()
	f.add("release/demo/v1.0.0", &fakeWF{typ: workflows.ReleaseWorkflow})
	if code, _, _ := golden(t, "recheck_window_release", f, "recheck-window", "release/demo/v1.0.0"); code != ExitInvalid || len(f.calls) != 0 {
		t.Errorf("exit %d, calls %v", code, f.calls)
	}
}

// validate --platform reports bad windows with file:line: an unknown weekday,
// a bad timezone, a freeze ending before it starts, bad hours, an unknown stage.
func TestGoldenValidateWindows(t *testing.T) {
	code, _, _ := golden(t, "validate_windows", newFake(), "validate", "testdata/validate/good", "--platform", "testdata/validate/windows/platform.yaml")
	if code != ExitInvalid {
		t.Errorf("exit %d, want 2", code)
	}
}

// approve --override-window on a stage waiting for its window says it goes ahead.
func TestGoldenApproveOverride(t *testing.T) {
	id := workflows.PromoteID("demo", "v1.0.0")
	f := newFake()
	f.add(id, &fakeWF{typ: workflows.PromoteWorkflow, updates: map[string]any{workflows.ApproveUpdate: workflows.StageState{Name: "prod", Status: workflows.StageClosed,
		Override: &workflows.WindowOverride{Reason: "hotfix INC-42", Actor: "alice"}}}})
	if code, _, _ := golden(t, "approve_override_window", f, "approve", "v1.0.0", "--project", "demo", "--stage", "prod", "--override-window", "--reason", "hotfix INC-42"); code != ExitOK {
		t.Errorf("exit %d", code)
	}
}
