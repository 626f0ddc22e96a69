package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/signing"
)

// windowsPlatform is DESIGN.md's dev → qa → prod with prod open on weekdays
// 08:00-17:00 in Berlin, and a platform-wide year-end freeze of prod.
const windowsPlatform = `
teams:
  developers: {members: [alice, bob]}
  prod_support: {members: [carol, dave, erin]}
projects:
  demo: {repo: file:///srv/git/demo.git, admins: [alice]}
fabrics:
  dev: {kind: local, owner: developers, root: dev}
  qa: {kind: local, owner: developers, root: qa}
  prod: {kind: local, owner: prod_support, root: prod}
promotion:
  stages:
    - {name: dev, fabrics: [dev]}
    - {name: qa, fabrics: [qa], approval: {team: developers}}
    - name: prod
      fabrics: [prod]
      approval: {team: prod_support, required: 2, self_approval: false}
      windows:
        open: [{days: [mon-fri], hours: "08:00-17:00", timezone: Europe/Berlin}]
windows:
  freezes:
    - {from: "2026-12-21 00:00", to: "2027-01-04 08:00", timezone: Europe/Berlin, reason: year-end freeze, stages: [prod]}
`

// useWindows answers the Window activity from a real platform.yaml (real
// parsing, real window computation); *cfg may be replaced while a test runs.
func useWindows(t *testing.T, e *testsuite.TestWorkflowEnvironment, yaml string) **platform.Config {
	t.Helper()
	cfg := parseWindowsPlatform(t, yaml)
	p := &cfg
	e.OnActivity(configActs.Window, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.WindowInput) (activities.WindowOutput, error) {
		return (&activities.Config{Platform: *p}).Window(ctx, in)
	})
	return p
}

func parseWindowsPlatform(t *testing.T, yaml string) *platform.Config {
	t.Helper()
	cfg, diags := platform.Parse("platform.yaml", []byte(yaml), "/etc/shipline")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return cfg
}

var berlin, _ = time.LoadLocation("Europe/Berlin")

// A promotion reaching prod on a Saturday waits, saying until when and why,
// and deploys prod when the window opens on Monday 08:00 Berlin time.
func TestPromoteWaitsForTheWindow(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	e.SetStartTime(time.Date(2026, 11, 28, 10, 0, 0, 0, berlin)) // Saturday
	useWindows(t, e.TestWorkflowEnvironment, windowsPlatform)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	e.vote(2*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "carol"}, "")
	e.vote(3*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "dave"}, "")
	var pending string
	var stage StageState
	e.RegisterDelayedCallback(func() {
		s := e.state()
		pending, stage = s.Pending, s.Stages[2]
	}, 5*time.Hour)
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})

	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	want := "prod: closed until Mon 08:00 Europe/Berlin: outside the change windows of stage prod (mon-fri 08:00-17:00 Europe/Berlin)"
	if pending != want {
		t.Errorf("pending = %q\nwant      %q", pending, want)
	}
	if stage.Status != StageClosed || stage.Window == nil || !stage.Window.Until.Equal(time.Date(2026, 11, 30, 8, 0, 0, 0, berlin)) {
		t.Errorf("prod while waiting: %+v %+v", stage, stage.Window)
	}
	if s.Status != StatusPromoted || len(e.deploys) != 3 {
		t.Fatalf("status %s, deploys %d", s.Status, len(e.deploys))
	}
	if got := s.Stages[2].DeployedAt.In(berlin); !got.Equal(time.Date(2026, 11, 30, 8, 0, 0, 0, berlin)) {
		t.Errorf("prod deployed at %s, want Mon 2026-11-30 08:00 Berlin", got)
	}
	if s.Stages[1].DeployedAt.After(time.Date(2026, 11, 28, 12, 0, 0, 0, berlin)) {
		t.Errorf("qa (no windows) waited: deployed %s", s.Stages[1].DeployedAt)
	}
}

// A freeze closes a stage inside its open windows; the message names it.
func TestPromoteFreezeBlocks(t *testing.T) {
	rel := released()
	rel.Fabrics = map[string]FabricReach{"dev": {At: time.Now()}, "qa": {At: time.Now()}}
	rel.Stages = []string{"qa"}
	e := newPromoteEnv(t, stages(), rel)
	e.SetStartTime(time.Date(2026, 12, 31, 10, 0, 0, 0, berlin)) // Thursday, office hours, frozen
	useWindows(t, e.TestWorkflowEnvironment, windowsPlatform)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "carol"}, "")
	e.vote(2*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "dave"}, "")
	var pending string
	e.RegisterDelayedCallback(func() { pending = e.state().Pending }, time.Hour)
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "bob"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if want := "prod: closed until Mon 08:00 Europe/Berlin: year-end freeze"; pending != want {
		t.Errorf("pending = %q, want %q", pending, want)
	}
	if s.Status != StatusPromoted || len(e.deploys) != 1 || !s.Stages[2].DeployedAt.Equal(time.Date(2027, 1, 4, 8, 0, 0, 0, berlin)) {
		t.Fatalf("status %s, deploys %d, prod deployed %s", s.Status, len(e.deploys), s.Stages[2].DeployedAt.In(berlin))
	}
}

// The requester's --override-window, as a member of prod's owner team, enters
// the frozen stage at once; the state records whose override and why.
func TestPromoteOverrideByOwnerTeam(t *testing.T) {
	rel := released()
	rel.Fabrics = map[string]FabricReach{"dev": {At: time.Now()}, "qa": {At: time.Now()}}
	rel.Stages = []string{"qa"}
	e := newPromoteEnv(t, stages(), rel)
	start := time.Date(2026, 12, 31, 10, 0, 0, 0, berlin)
	e.SetStartTime(start)
	useWindows(t, e.TestWorkflowEnvironment, windowsPlatform)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "dave"}, "")
	e.vote(2*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "erin"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "carol", OverrideWindow: &WindowOverride{Reason: "hotfix INC-42"}})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	prod := s.Stages[2]
	if s.Status != StatusPromoted || prod.DeployedAt.Sub(start) > time.Hour {
		t.Fatalf("status %s, prod deployed %s", s.Status, prod.DeployedAt)
	}
	w := prod.Window
	if w == nil || w.Override == nil || w.Override.Actor != "carol" || w.Override.Reason != "hotfix INC-42" || !strings.Contains(w.Message, "year-end freeze") {
		t.Fatalf("prod window = %+v", w)
	}
	if want := "stage prod closed until Mon 08:00 Europe/Berlin: year-end freeze — entered by override of carol: hotfix INC-42"; w.Text() != want {
		t.Errorf("text = %q, want %q", w.Text(), want)
	}
}

// An approver of the owner team overrides a stage already waiting for its
// window (approve --override-window); an outsider's override is refused.
func TestApproveOverridesAWaitingStage(t *testing.T) {
	rel := released()
	rel.Fabrics = map[string]FabricReach{"dev": {At: time.Now()}, "qa": {At: time.Now()}}
	rel.Stages = []string{"qa"}
	e := newPromoteEnv(t, stages(), rel)
	start := time.Date(2026, 12, 31, 10, 0, 0, 0, berlin)
	e.SetStartTime(start)
	useWindows(t, e.TestWorkflowEnvironment, windowsPlatform)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "carol"}, "")
	e.vote(2*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "dave"}, "")
	e.vote(time.Hour, ApproveUpdate, Vote{Stage: "prod", Actor: "bob", OverrideWindow: &WindowOverride{Reason: "please"}}, "bob may not override the change windows of stage prod")
	e.vote(2*time.Hour, ApproveUpdate, Vote{Stage: "prod", Actor: "erin", OverrideWindow: &WindowOverride{}}, "--override-window needs --reason")
	e.vote(3*time.Hour, ApproveUpdate, Vote{Stage: "prod", Actor: "erin", OverrideWindow: &WindowOverride{Reason: "payments outage"}}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "bob"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	prod := s.Stages[2]
	if s.Status != StatusPromoted || prod.DeployedAt.Sub(start) != 3*time.Hour {
		t.Fatalf("status %s, prod deployed %s after the start", s.Status, prod.DeployedAt.Sub(start))
	}
	if w := prod.Window; w == nil || w.Override == nil || w.Override.Actor != "erin" || w.Override.Reason != "payments outage" {
		t.Fatalf("prod window = %+v", prod.Window)
	}
	if len(prod.Approvals) != 2 {
		t.Errorf("the override counted as a vote: %+v", prod.Approvals)
	}
	if got := e.audit.state.refusals; len(got) != 2 || got[0].Actor != "bob" {
		t.Errorf("refusals recorded = %+v", got)
	}
}

// A requester outside the target stage's owner team may not override: the
// promotion is refused at once, saying why.
func TestPromoteOverrideByOthersRefused(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	e.SetStartTime(time.Date(2026, 12, 31, 10, 0, 0, 0, berlin))
	useWindows(t, e.TestWorkflowEnvironment, windowsPlatform)
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", OverrideWindow: &WindowOverride{Reason: "I want it"}})
	err := e.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "--override-window: alice may not override the change windows of stage prod") ||
		!strings.Contains(err.Error(), "prod_support (carol, dave, erin)") {
		t.Fatalf("err = %v", err)
	}
	if len(e.deploys) != 0 {
		t.Fatalf("deployed %+v", e.deploys)
	}
}

// The windows are read again at wake: a freeze lifted in platform.yaml while
// a promotion waits lets it go on at the recheck signal.
func TestPromoteRechecksChangedWindows(t *testing.T) {
	rel := released()
	rel.Fabrics = map[string]FabricReach{"dev": {At: time.Now()}, "qa": {At: time.Now()}}
	rel.Stages = []string{"qa"}
	e := newPromoteEnv(t, stages(), rel)
	start := time.Date(2026, 12, 31, 10, 0, 0, 0, berlin)
	e.SetStartTime(start)
	cfg := useWindows(t, e.TestWorkflowEnvironment, windowsPlatform)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "carol"}, "")
	e.vote(2*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "dave"}, "")
	e.RegisterDelayedCallback(func() {
		*cfg = parseWindowsPlatform(t, strings.Split(windowsPlatform, "windows:\n  freezes:")[0])
		e.SignalWorkflow(RecheckWindowSignal, nil)
	}, 2*time.Hour)
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "bob"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if got := s.Stages[2].DeployedAt.Sub(start); got != 2*time.Hour {
		t.Fatalf("prod deployed %s after the start, want at the recheck (2h)", got)
	}
}

// A direct deploy to a fabric of a closed stage waits before it queues,
// saying so in its state, and goes on when the stage opens.
func TestDeployWaitsForTheWindow(t *testing.T) {
	e := newDeployEnv(t)
	start := time.Date(2026, 11, 28, 10, 0, 0, 0, berlin) // Saturday
	e.SetStartTime(start)
	useWindows(t, e.TestWorkflowEnvironment, windowsPlatform)
	e.OnActivity(deployActs.Resolve, mock.Anything, mock.Anything).Return(prodResolved(), nil)
	e.okBuilds()
	e.okUpload()
	e.onJobs(func(activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		return activities.UpsertJobOutput{ID: "1", Action: "created"}, nil
	})
	var waiting DeployState
	e.RegisterDelayedCallback(func() { waiting = e.query() }, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "carol", Fabric: "prod"})
	s := e.result()
	if waiting.Status != StatusWaiting || waiting.Window == nil ||
		waiting.Summary != "waiting: stage prod closed until Mon 08:00 Europe/Berlin: outside the change windows of stage prod (mon-fri 08:00-17:00 Europe/Berlin)" {
		t.Fatalf("while closed: %s %q %+v", waiting.Status, waiting.Summary, waiting.Window)
	}
	if len(e.enqueued) == 0 || !e.enqueued[0].Since.Equal(time.Date(2026, 11, 30, 8, 0, 0, 0, berlin)) {
		t.Fatalf("queued %+v, want at Mon 08:00 Berlin", e.enqueued)
	}
	if s.Status != StatusSucceeded || s.Window != nil {
		t.Fatalf("after: %s %+v", s.Status, s.Window)
	}
}

// A direct deploy with --override-window by the owner team deploys at once;
// by anyone else it is refused at its authorize step.
func TestDeployOverride(t *testing.T) {
	for _, c := range []struct {
		actor, reason, refused string
	}{
		{actor: "carol", reason: "hotfix INC-42"},
		{actor: "carol", refused: "--override-window needs --reason"},
		{actor: "alice", reason: "x", refused: "alice may not deploy to fabric prod"},
	} {
		t.Run(c.actor+"/"+c.reason, func(t *testing.T) {
			e := newDeployEnv(t)
			start := time.Date(2026, 12, 31, 10, 0, 0, 0, berlin) // frozen
			e.SetStartTime(start)
			useWindows(t, e.TestWorkflowEnvironment, windowsPlatform)
			e.OnActivity(deployActs.Resolve, mock.Anything, mock.Anything).Return(prodResolved(), nil)
			e.okBuilds()
			e.okUpload()
			e.onJobs(func(activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
				return activities.UpsertJobOutput{ID: "1", Action: "created"}, nil
			})
			e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: c.actor, Fabric: "prod", OverrideWindow: &WindowOverride{Reason: c.reason}})
			if c.refused != "" {
				err := e.GetWorkflowError()
				if err == nil || !strings.Contains(err.Error(), c.refused) {
					t.Fatalf("err = %v, want %q", err, c.refused)
				}
				return
			}
			s := e.result()
			if s.Status != StatusSucceeded || !e.enqueued[0].Since.Equal(start) {
				t.Fatalf("status %s, queued %+v", s.Status, e.enqueued)
			}
			if w := s.Window; w == nil || w.Override == nil || w.Override.Actor != "carol" || !strings.Contains(w.Message, "year-end freeze") {
				t.Fatalf("window = %+v", s.Window)
			}
		})
	}
}

// prodResolved is resolved() on the prod fabric (stage prod, owned by prod_support).
func prodResolved() activities.ResolveDeployOutput {
	r := resolved()
	for i := range r.Jobs {
		r.Jobs[i].Fabric = "prod"
	}
	r.Fabrics = []activities.FabricInfo{{Name: "prod", Kind: "databricks", Owner: "prod_support", Members: []string{"carol", "dave", "erin"}}}
	return r
}

// The override is part of what is signed: added to a request signed without
// it, the signature no longer verifies and the promotion is refused; signed
// with it, the frozen stage is entered.
func TestOverrideIsSigned(t *testing.T) {
	carol, carolPub := newKey(t)
	rel := released()
	rel.Fabrics = map[string]FabricReach{"dev": {At: time.Now()}, "qa": {At: time.Now()}}
	rel.Stages = []string{"qa"}
	for _, forge := range []bool{true, false} {
		e := newPromoteEnv(t, stages(), rel)
		e.SetStartTime(time.Date(2026, 12, 31, 10, 0, 0, 0, berlin))
		useWindows(t, e.TestWorkflowEnvironment, windowsPlatform)
		e.policy = signing.Policy{Require: true, Keys: map[string][]string{"carol": {carolPub}}}
		in := PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "carol"}
		if !forge {
			in.OverrideWindow = &WindowOverride{Reason: "hotfix INC-42"}
		}
		in.Auth = sign(t, carol, PromoteID("demo", "v1.2.0"), ActionPromote, "carol", in, e.Now(), "p-1")
		in.OverrideWindow = &WindowOverride{Reason: "hotfix INC-42"}
		e.ExecuteWorkflow(Promote, in)
		err := e.GetWorkflowError()
		if forge {
			if err == nil || !strings.Contains(err.Error(), "forged") {
				t.Fatalf("forged override: err = %v", err)
			}
			if len(e.deploys) != 0 {
				t.Fatalf("forged override deployed %+v", e.deploys)
			}
			continue
		}
		// Signed with the override: accepted (no votes follow, so the gate expires after 72h).
		var st PromoteState
		if err != nil || e.GetWorkflowResult(&st) != nil || st.Status != StatusExpired {
			t.Fatalf("signed override: err %v, status %s (%s)", err, st.Status, st.Summary)
		}
	}
}

// A deploy waiting for its window can be cancelled: it ends at once, having
// queued for nothing.
func TestDeployCancelWhileWaitingForTheWindow(t *testing.T) {
	e := newDeployEnv(t)
	e.SetStartTime(time.Date(2026, 11, 28, 10, 0, 0, 0, berlin)) // Saturday
	useWindows(t, e.TestWorkflowEnvironment, windowsPlatform)
	e.OnActivity(deployActs.Resolve, mock.Anything, mock.Anything).Return(prodResolved(), nil)
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(CancelUpdate, "c", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Fatalf("cancel rejected: %v", err) },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, ControlRequest{Actor: "carol", Reason: "it can wait for next week"})
	}, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "carol", Fabric: "prod"})
	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.Cancelled || !strings.Contains(app.Message(), "next week") {
		t.Fatalf("error = %v", err)
	}
	if len(e.enqueued) != 0 {
		t.Fatalf("queued while waiting for the window: %+v", e.enqueued)
	}
}

// Without a signal, the windows are read again when the timer fires: a freeze
// added to platform.yaml while the promotion waited for Monday keeps it
// waiting until the freeze ends.
func TestPromoteReadsWindowsAgainAtWake(t *testing.T) {
	rel := released()
	rel.Fabrics = map[string]FabricReach{"dev": {At: time.Now()}, "qa": {At: time.Now()}}
	rel.Stages = []string{"qa"}
	e := newPromoteEnv(t, stages(), rel)
	e.SetStartTime(time.Date(2026, 11, 28, 10, 0, 0, 0, berlin)) // Saturday
	cfg := useWindows(t, e.TestWorkflowEnvironment, windowsPlatform)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "carol"}, "")
	e.vote(2*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "dave"}, "")
	var pending string
	e.RegisterDelayedCallback(func() {
		*cfg = parseWindowsPlatform(t, windowsPlatform+
			`    - {from: "2026-11-30 00:00", to: "2026-12-01 12:00", timezone: Europe/Berlin, reason: database migration}`+"\n")
	}, time.Hour)
	// The timers fire at most a day apart: Sunday 10:02 (still outside the
	// windows), then Monday 10:02, inside the windows but frozen.
	e.RegisterDelayedCallback(func() { pending = e.state().Pending }, 49*time.Hour) // Monday 11:00
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "bob"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if want := "prod: closed until Tue 12:00 Europe/Berlin: database migration"; pending != want {
		t.Errorf("pending on Monday = %q, want %q", pending, want)
	}
	if got := s.Stages[2].DeployedAt.In(berlin); !got.Equal(time.Date(2026, 12, 1, 12, 0, 0, 0, berlin)) {
		t.Errorf("prod deployed %s, want Tue 12:00 Berlin", got)
	}
}
