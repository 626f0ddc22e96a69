package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/signing"
)

// projectAudit plays a project's Audit entity for workflow tests: request
// claims are answered by the entity's own logic (audit.claim) at the test
// clock's time, and the refusals workflows record are kept.
type projectAudit struct {
	state audit
	// also, when set, sees every record sent as it was sent.
	also func(activities.SignalWithStartInput)
	// stages are the Stage entities (by workflow ID) that records reached.
	stages map[string]*stageEntity
}

// installProjectAudit answers the claim and record activities of env (which
// registers activities.Messages).
func installProjectAudit(env *testsuite.TestWorkflowEnvironment) *projectAudit {
	p := &projectAudit{}
	env.OnActivity(messageActs.UpdateWithStart, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.UpdateWithStartInput) (activities.UpdateOutput, error) {
			if in.Update == StageRecordUpdate { // a Stage entity, played by the entity's own record logic
				var r StageRecord
				if err := json.Unmarshal(in.Arg, &r); err != nil {
					return activities.UpdateOutput{}, err
				}
				st := p.stage(in.WorkflowID)
				st.record(r)
				raw, err := json.Marshal(st.state)
				return activities.UpdateOutput{Result: raw}, err
			}
			var c RequestClaim
			if err := json.Unmarshal(in.Arg, &c); err != nil {
				return activities.UpdateOutput{}, err
			}
			raw, err := json.Marshal(p.state.claim(env.Now(), c))
			return activities.UpdateOutput{Result: raw}, err
		}).Maybe()
	env.OnActivity(messageActs.SignalWithStart, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignalWithStartInput) error {
			if p.also != nil {
				p.also(in)
			}
			var r Refusal
			if err := json.Unmarshal(in.Arg, &r); err != nil {
				return err
			}
			p.state.record(env.Now(), r)
			return nil
		}).Maybe()
	return p
}

// stage returns the Stage entity of a stage ID, created on first use.
func (p *projectAudit) stage(id string) *stageEntity {
	if p.stages == nil {
		p.stages = map[string]*stageEntity{}
	}
	if p.stages[id] == nil {
		parts := strings.Split(id, "/")
		p.stages[id] = &stageEntity{in: StageInput{Project: parts[1], Stage: parts[2]}, state: StageLedger{Project: parts[1], Stage: parts[2]}}
	}
	return p.stages[id]
}

// refusals returns the refusals recorded, newest last.
func (p *projectAudit) refusals() []Refusal { return p.state.refusals }

// A signed release request is accepted once per project: the same request
// started again as a new run (the first run's own list of seen IDs is gone) is
// refused as replayed, and the refusal says where it was used first.
func TestSignedStartReplayedInNewRunIsRefused(t *testing.T) {
	alice, alicePub := newKey(t)
	const id = "default-test-workflow-id"
	pol := signing.Policy{Require: true, Keys: map[string][]string{"alice": {alicePub}}}
	first := newReleaseEnv(t, admins())
	first.pol = pol
	first.okGit(true)
	in := ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"}
	in.Auth = sign(t, alice, id, ActionRelease, "alice", in, first.Now(), "req-1")
	if s := first.runOpen(in); s.Status != StatusReleased {
		t.Fatalf("first run: %+v", s)
	}

	again := newReleaseEnv(t, admins())
	again.pol = pol
	again.okGit(true)
	again.audit.state = first.audit.state // the same project's audit entity
	_, msg := again.runFailing(in, apperr.SignatureRefused)
	if !strings.Contains(msg, "replayed") || !strings.Contains(msg, "req-1") || !strings.Contains(msg, "release of "+id) {
		t.Fatalf("second run refused with %q, want a replay of req-1 first used for the release of %s", msg, id)
	}
	if again.tagCall.in.Version != "" {
		t.Errorf("the replayed request tagged %+v", again.tagCall.in)
	}
}

// The Audit entity answers claims: the first claim of an ID is accepted, a
// second one (from any workflow) is a replay; claims are kept while the
// request is fresh and carried over continue-as-new.
func TestAuditClaimsRequestIDsOncePerProject(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Audit, workflow.RegisterOptions{Name: AuditWorkflow})
	useInternalAuth(env)
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	var answers []string
	claim := func(at time.Duration, c RequestClaim) {
		c = sealed(testWorkflowID, ClaimRequestUpdate, c)
		env.RegisterDelayedCallback(func() {
			env.UpdateWorkflow(ClaimRequestUpdate, fmt.Sprint(at), &testsuite.TestUpdateCallback{
				OnReject: func(err error) { answers = append(answers, "rejected: "+err.Error()) },
				OnAccept: func() {},
				OnComplete: func(v any, err error) {
					r, _ := v.(ClaimResult)
					answers = append(answers, fmt.Sprintf("%s accepted=%v %s", c.RequestID, r.Accepted, r.FirstUse))
				},
			}, c)
		}, at)
	}
	claim(time.Minute, RequestClaim{RequestID: "r1", Time: start, Target: ReleaseID("demo", "v1.0.0"), Action: ActionRelease})
	claim(2*time.Minute, RequestClaim{RequestID: "r1", Time: start, Target: "deploy/demo/v1.0.0/x", Action: ActionDeploy})
	claim(3*time.Minute, RequestClaim{RequestID: "r2", Time: start.Add(3 * time.Minute)})
	claim(4*time.Minute, RequestClaim{})
	claim(7*time.Minute, RequestClaim{RequestID: "r3", Time: start.Add(7 * time.Minute)})
	// r1 is no longer fresh at 8 minutes: only r2 and r3 are carried.
	env.RegisterDelayedCallback(func() { env.SetContinueAsNewSuggested(true) }, 8*time.Minute)
	env.ExecuteWorkflow(AuditWorkflow, AuditInput{Project: "demo"})

	want := []string{"r1 accepted=true ", "r1 accepted=false release of release/demo/v1.0.0", "r2 accepted=true ",
		"rejected: the claim names no request ID", "r3 accepted=true "}
	if fmt.Sprint(answers) != fmt.Sprint(want) {
		t.Fatalf("answers\n%q\nwant\n%q", answers, want)
	}
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow ended with %v, want continue-as-new", err)
	}
	var next AuditInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	var carried []string
	for _, c := range next.CarriedClaims {
		carried = append(carried, c.RequestID)
	}
	if fmt.Sprint(carried) != "[r2 r3]" {
		t.Errorf("carried claims %v, want [r2 r3]", carried)
	}
	// The next run refuses a carried ID as a replay.
	next2 := audit{claims: next.CarriedClaims}
	if r := next2.claim(start.Add(8*time.Minute), RequestClaim{RequestID: "r2", Time: start.Add(3 * time.Minute)}); r.Accepted {
		t.Errorf("r2 accepted again after continue-as-new")
	}
}

// A claim not sealed by Shipline (none, another secret's seal, a copy of a
// genuine claim) claims nothing and is recorded as an attempt: the forged
// claim of an ID does not block the genuine request that uses it later, and
// the genuine claim works.
func TestAuditRefusesForgedClaims(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Audit, workflow.RegisterOptions{Name: AuditWorkflow})
	useInternalAuth(env)
	var audited []activities.SignalWithStartInput
	recordAttempts(env, &audited)
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	var answers []string
	claim := func(at time.Duration, c RequestClaim) {
		env.RegisterDelayedCallback(func() {
			env.UpdateWorkflow(ClaimRequestUpdate, fmt.Sprint(at), &testsuite.TestUpdateCallback{
				OnReject: func(err error) { answers = append(answers, "rejected: "+err.Error()) },
				OnAccept: func() {},
				OnComplete: func(v any, err error) {
					if err != nil {
						answers = append(answers, "refused")
						return
					}
					r, _ := v.(ClaimResult)
					answers = append(answers, fmt.Sprintf("%s accepted=%v %s", c.RequestID, r.Accepted, r.FirstUse))
				},
			}, c)
		}, at)
	}
	c := RequestClaim{RequestID: "r1", Time: start, Target: ReleaseID("demo", "v1.0.0"), Action: ActionRelease, Actor: "alice"}
	claim(time.Minute, c) // no seal
	claim(2*time.Minute, forgedSeal(testWorkflowID, ClaimRequestUpdate, c))
	claim(3*time.Minute, sealed(AuditID("other"), ClaimRequestUpdate, c)) // sealed for another entity
	genuine := sealed(testWorkflowID, ClaimRequestUpdate, c)
	claim(4*time.Minute, genuine)
	claim(5*time.Minute, genuine) // copied from history and sent again
	claim(6*time.Minute, sealed(testWorkflowID, ClaimRequestUpdate, c))
	claim(6*time.Minute+30*time.Second, RequestClaim{Actor: "alice"}) // no seal and no ID: recorded too
	env.RegisterDelayedCallback(env.CancelWorkflow, 7*time.Minute)
	env.ExecuteWorkflow(AuditWorkflow, AuditInput{Project: "demo"})

	want := []string{"refused", "refused", "refused", "r1 accepted=true ", "refused", "r1 accepted=false release of release/demo/v1.0.0", "refused"}
	if fmt.Sprint(answers) != fmt.Sprint(want) {
		t.Fatalf("answers\n%q\nwant\n%q", answers, want)
	}
	got := attempts(t, audited)
	if len(got) != 5 {
		t.Fatalf("recorded %d attempts, want 5: %+v", len(got), got)
	}
	for i, r := range got {
		if r.Action != ClaimRequestUpdate || r.Actor != unauthenticatedActor("alice") || !strings.Contains(r.Reason, "nothing changed") {
			t.Errorf("attempt %d recorded as %+v", i, r)
		}
	}
	for i, frag := range []string{"no seal", "does not match", "does not match", "copy", "no seal"} {
		if !strings.Contains(got[i].Reason, frag) {
			t.Errorf("attempt %d: reason %q, want it to say %q", i, got[i].Reason, frag)
		}
	}
}

// The audit keeps MaxRefusalsPerActor refusals of one actor per window; the
// rest are counted on one summary record, and other actors are unaffected.
func TestAuditFloodCapCountsDropped(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)
	var a audit
	for i := 0; i < MaxRefusalsPerActor+7; i++ {
		a.record(now.Add(time.Duration(i)*time.Second), Refusal{Actor: "mallory", Action: ActionApprove, Reason: fmt.Sprint(i)})
	}
	a.record(now.Add(time.Minute), Refusal{Actor: "bob", Action: ActionResume, Reason: "not parked"})
	// The next window keeps mallory's refusals again.
	a.record(now.Add(time.Hour), Refusal{Actor: "mallory", Action: ActionApprove, Reason: "later"})

	kept, dropped := 0, 0
	for _, r := range a.refusals {
		switch {
		case r.Actor == "mallory" && r.Dropped > 0:
			dropped += r.Dropped
			if !r.At.Equal(now.Truncate(RefusalWindow)) || !strings.Contains(r.Reason, "counted") {
				t.Errorf("summary %+v", r)
			}
		case r.Actor == "mallory":
			kept++
		}
	}
	if kept != MaxRefusalsPerActor+1 || dropped != 7 || len(a.refusals) != MaxRefusalsPerActor+3 {
		t.Fatalf("kept %d of mallory, dropped %d, %d records: %+v", kept, dropped, len(a.refusals), a.refusals)
	}
	if last := a.refusals[len(a.refusals)-1]; last.Reason != "later" {
		t.Errorf("the next window's refusal was not kept: %+v", last)
	}
}
