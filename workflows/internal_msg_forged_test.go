package workflows

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/msgauth"
)

// attempts decodes the refusals a workflow recorded in the audit.
func attempts(t *testing.T, got []activities.SignalWithStartInput) []Refusal {
	t.Helper()
	var out []Refusal
	for _, in := range got {
		if in.WorkflowID != AuditID("demo") || in.Signal != RefusalSignal {
			t.Fatalf("recorded in %s as %s, want %s as %s", in.WorkflowID, in.Signal, AuditID("demo"), RefusalSignal)
		}
		var r Refusal
		if err := json.Unmarshal(in.Arg, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// Forged enqueue and done signals (no seal, another secret's seal, a copy of a
// genuine one) change nothing on a Fabric entity and are recorded as attempts;
// the genuine ones work.
func TestFabricRefusesForgedMessages(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Fabric)
	useInternalAuth(env)
	var audited []activities.SignalWithStartInput
	recordAttempts(env, &audited)
	grants := map[string][]Grant{}
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", GrantSignal, mock.Anything).Return(
		func(_, id, _, _ string, arg any) error {
			grants[id] = append(grants[id], arg.(Grant))
			return nil
		})
	genuine := sealed(testWorkflowID, EnqueueSignal, QueueEntry{DeploymentID: "d1", Version: "v1", Actor: "bob"})
	at := func(d time.Duration, name string, arg any) {
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(name, arg) }, d)
	}
	at(time.Minute, EnqueueSignal, QueueEntry{DeploymentID: "evil", Version: "v9", Actor: "mallory"})
	at(2*time.Minute, EnqueueSignal, genuine)
	at(3*time.Minute, DoneSignal, DeploymentDone{DeploymentID: "d1", Outcome: StatusSucceeded, Actor: "mallory",
		Jobs: []JobRecord{{Job: "daily", Version: "v9"}}})
	at(4*time.Minute, DoneSignal, forgedSeal(testWorkflowID, DoneSignal, DeploymentDone{DeploymentID: "d1", Outcome: StatusSucceeded}))
	// A genuine done sealed for another fabric's entity.
	at(5*time.Minute, DoneSignal, sealed(FabricID("demo", "prod"), DoneSignal, DeploymentDone{DeploymentID: "d1", Outcome: StatusSucceeded}))
	// The genuine enqueue copied and sent again from history.
	at(6*time.Minute, EnqueueSignal, genuine)
	var state FabricState
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(StateQuery)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Get(&state); err != nil {
			t.Fatal(err)
		}
		env.CancelWorkflow()
	}, 7*time.Minute)
	env.ExecuteWorkflow(Fabric, FabricInput{Project: "demo", Fabric: "dev"})

	if len(state.Queue) != 1 || state.Queue[0].DeploymentID != "d1" || len(state.History) != 0 || len(state.Jobs) != 0 {
		t.Fatalf("state changed by forged messages: %+v", state)
	}
	if len(grants["evil"]) != 0 || len(grants["d1"]) != 1 {
		t.Fatalf("grants = %+v, want one for d1 only", grants)
	}
	refused := attempts(t, audited)
	if len(refused) != 5 {
		t.Fatalf("recorded %d attempts, want 5: %+v", len(refused), refused)
	}
	for i, want := range []string{"carries no seal", "carries no seal", "does not match", "does not match", "copy of one already received"} {
		r := refused[i]
		if !strings.Contains(r.Reason, want) || r.Target != testWorkflowID || !strings.HasPrefix(r.Actor, "unknown (unauthenticated message") {
			t.Errorf("attempt %d = %+v, want reason with %q", i, r, want)
		}
	}
	if refused[0].Action != EnqueueSignal || refused[1].Action != DoneSignal {
		t.Errorf("actions: %+v", refused)
	}
}

// A forged grant does not give a deployment its fabric's lock.
func TestDeployRefusesForgedGrant(t *testing.T) {
	e := newDeployEnv(t)
	e.grantOnEnqueue = false
	var audited []activities.SignalWithStartInput
	e.audit.also = func(in activities.SignalWithStartInput) { audited = append(audited, in) }
	e.okResolve()
	e.okBuilds()
	e.okUpload()
	e.onJobs(func(activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		return activities.UpsertJobOutput{ID: "1", Action: "updated"}, nil
	})
	var afterForgery DeployState
	var buildsAfterForgery int32 = -1
	e.RegisterDelayedCallback(func() {
		e.SignalWorkflow(GrantSignal, Grant{Fabric: "dev", Granted: true})
	}, time.Minute)
	e.RegisterDelayedCallback(func() {
		e.SignalWorkflow(GrantSignal, forgedSeal(deployID, GrantSignal, Grant{Fabric: "dev", Granted: true}))
	}, 2*time.Minute)
	e.RegisterDelayedCallback(func() {
		afterForgery = e.query()
		buildsAfterForgery = e.builds.Load()
		e.SignalWorkflow(GrantSignal, sealed(deployID, GrantSignal, Grant{Fabric: "dev", Granted: true}))
	}, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	s := e.result()
	if afterForgery.Status != StatusQueued || buildsAfterForgery != 0 {
		t.Fatalf("a forged grant moved the deployment on: %s, %d builds", afterForgery.Status, buildsAfterForgery)
	}
	if s.Status != StatusSucceeded {
		t.Fatalf("the genuine grant did not: %s", s.Status)
	}
	refused := attempts(t, audited)
	if len(refused) != 2 || refused[0].Action != GrantSignal || refused[0].Target != deployID {
		t.Fatalf("attempts = %+v", refused)
	}
	// What it sent carries seals its receivers accept.
	if len(e.told) != 1 || e.told[0].Seal == nil {
		t.Fatalf("deployed signal = %+v, want sealed", e.told)
	}
	d := e.told[0]
	d.Seal = nil
	payload, _ := msgauth.Payload(d)
	if err := msgauth.Check(testSecret, ReleaseID("demo", "v1.0.0"), DeployedSignal, payload, e.told[0].Seal, time.Now()); err != nil {
		t.Fatalf("the deployed signal's seal: %v", err)
	}
}

// A forged link is refused as the update's outcome and leaves the release
// deletable; a forged deployed record is ignored. Both are audited.
func TestReleaseRefusesForgedLinkAndDeployed(t *testing.T) {
	e := newRecordEnv(t, fabricWithHistory())
	var audited []activities.SignalWithStartInput
	e.audit.also = func(in activities.SignalWithStartInput) { audited = append(audited, in) }
	var unsealed, wrongKey, otherRelease string
	link := func(at time.Duration, req LinkRequest, refusal *string) {
		e.RegisterDelayedCallback(func() {
			e.UpdateWorkflow(LinkUpdate, at.String(), &testsuite.TestUpdateCallback{
				OnReject: func(err error) { *refusal = "rejected early: " + err.Error() }, OnAccept: func() {},
				OnComplete: func(_ any, err error) {
					if err != nil {
						*refusal = err.Error()
					}
				},
			}, req)
		}, at)
	}
	link(time.Hour, LinkRequest{Stage: "prod", Actor: "mallory"}, &unsealed)
	link(time.Hour+time.Minute, forgedSeal(testWorkflowID, LinkUpdate, LinkRequest{Stage: "prod", Actor: "mallory"}), &wrongKey)
	link(time.Hour+2*time.Minute, sealed(ReleaseID("demo", "v0.9.0"), LinkUpdate, LinkRequest{Stage: "prod", Actor: "mallory"}), &otherRelease)
	e.RegisterDelayedCallback(func() {
		e.SignalWorkflow(DeployedSignal, Deployed{DeploymentID: "deploy/demo/v1.0.0/evil", Fabrics: []string{"prod"}, Stage: "prod", Actor: "mallory"})
	}, time.Hour+3*time.Minute)
	var state ReleaseState
	e.RegisterDelayedCallback(func() {
		v, _ := e.QueryWorkflow(StateQuery)
		_ = v.Get(&state)
		e.CancelWorkflow()
	}, 2*time.Hour)
	e.ExecuteWorkflow(Release, ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"})

	for name, got := range map[string]string{"unsealed": unsealed, "wrong key": wrongKey, "other release": otherRelease} {
		if !strings.Contains(got, `"link" message to`) || !strings.Contains(got, "nothing changed") {
			t.Errorf("%s link: refusal %q", name, got)
		}
	}
	if state.Linked || len(state.Stages) != 0 || state.Fabrics["prod"].DeploymentID != "" || state.Fabrics["dev"].DeploymentID == "" {
		t.Fatalf("state changed by forged messages: linked %v stages %v fabrics %+v", state.Linked, state.Stages, state.Fabrics)
	}
	refused := attempts(t, audited)
	if len(refused) != 4 || refused[0].Action != LinkUpdate || refused[3].Action != DeployedSignal ||
		!strings.Contains(refused[0].Actor, "claiming mallory") {
		t.Fatalf("attempts = %+v", refused)
	}
}

// An audit signal not sent by Shipline is recorded as an unauthenticated
// attempt, trusting none of its content; a copy of a genuine one is refused.
func TestAuditRecordsForgedRecordsAsAttempts(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Audit, workflow.RegisterOptions{Name: AuditWorkflow})
	useInternalAuth(env)
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	genuine := sealed(testWorkflowID, RefusalSignal, Refusal{Actor: "bob", Action: DeleteUpdate, Reason: "only admins may delete"})
	fake := Refusal{Actor: "dave", Action: DeleteUpdate, Target: ReleaseID("demo", "v1.0.0"), Reason: "dave deleted v1.0.0"}
	for i, arg := range []Refusal{genuine, fake, forgedSeal(testWorkflowID, RefusalSignal, fake), genuine} {
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(RefusalSignal, arg) }, time.Duration(i+1)*time.Minute)
	}
	var got []Refusal
	env.RegisterDelayedCallback(func() {
		got = queryRefusals(t, env)
		env.CancelWorkflow()
	}, 10*time.Minute)
	env.ExecuteWorkflow(AuditWorkflow, AuditInput{Project: "demo"})

	if len(got) != 4 || got[0].Actor != "bob" || got[0].Unauthenticated {
		t.Fatalf("refusals = %+v", got)
	}
	for i, want := range []string{"carries no seal", "does not match", "copy of one already received"} {
		r := got[i+1]
		if !r.Unauthenticated || r.Action != RefusalSignal || strings.Contains(r.Actor, "dave") || strings.Contains(r.Reason, "dave") ||
			!strings.Contains(r.Reason, want) {
			t.Errorf("record %d = %+v, want an unauthenticated attempt (%s) without the forged content", i+1, r, want)
		}
	}
}

// A forged stage-deployment message (claiming the parked deployment runs
// again) does not change what the promotion says.
func TestPromoteRefusesForgedStageDeployment(t *testing.T) {
	l := newLab(t)
	var audited []activities.SignalWithStartInput
	l.audit.also = func(in activities.SignalWithStartInput) { audited = append(audited, in) }
	dev := activities.PromotionSettings{Stages: []activities.StageSettings{
		{Name: "dev", Fabrics: []string{"dev"}, Owners: map[string]activities.FabricInfo{"dev": owners("developers", "alice", "bob")}},
	}}
	l.OnActivity(configActs.Promotion, mock.Anything, mock.Anything).Return(dev, nil)
	rel, _ := json.Marshal(ReleaseState{Progress: Progress{Status: StatusReleased}, Actor: "alice"})
	l.OnActivity(messageActs.Query, mock.Anything, mock.Anything).Return(activities.QueryOutput{Result: rel}, nil)
	l.fail = func(dep, job string, call int) error {
		if job == "daily_orders" && call == 1 {
			return errors.New("fabric dev refused the token (403 PERMISSION_DENIED)")
		}
		return nil
	}
	id := PromoteID("demo", "v1.0.0")
	l.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
	var after PromoteState
	var refused string
	l.RegisterDelayedCallback(func() {
		v, _ := l.QueryWorkflow(StateQuery)
		var s PromoteState
		_ = v.Get(&s)
		l.SignalWorkflow(StageParkedSignal, StageDeployment{Stage: "dev", DeploymentID: s.Stages[0].DeploymentID})
		l.SignalWorkflow(StageParkedSignal, forgedSeal(id, StageParkedSignal, StageDeployment{Stage: "dev", DeploymentID: s.Stages[0].DeploymentID}))
	}, 5*time.Minute)
	l.RegisterDelayedCallback(func() {
		v, _ := l.QueryWorkflow(StateQuery)
		_ = v.Get(&after)
		l.control(0, after.Stages[0].DeploymentID, ResumeUpdate, &refused)
	}, 10*time.Minute)
	l.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})

	if after.Status != StatusParked || after.Stages[0].Status != StageParked {
		t.Fatalf("a forged message changed the promotion: %s, stage %s", after.Status, after.Stages[0].Status)
	}
	var n int
	for _, r := range attempts(t, audited) {
		if r.Action == StageParkedSignal && r.Target == id {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("attempts = %+v, want the two forged stage-deployment messages", audited)
	}
	var end PromoteState
	if err := l.GetWorkflowResult(&end); err != nil || end.Status != StatusPromoted {
		t.Fatalf("the genuine messages still work: %v %s (resume refused %q)", err, end.Status, refused)
	}
}
