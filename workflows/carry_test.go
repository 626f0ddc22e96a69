package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/signing"
)

func TestCheckCarried(t *testing.T) {
	id := ReleaseID("demo", "v1.0.0")
	cases := []struct {
		name string
		o    runOrigin
		want string // "" = allowed
	}{
		{"continued as new", runOrigin{WorkflowID: id, ContinuedFrom: "r1", Attempt: 1}, ""},
		{"direct start", runOrigin{WorkflowID: id, Attempt: 1}, "was started directly"},
		{"cron run", runOrigin{WorkflowID: id, ContinuedFrom: "r1", Cron: "* * * * *", Attempt: 1}, "cron schedule"},
		{"retry", runOrigin{WorkflowID: id, ContinuedFrom: "r1", Attempt: 2}, "is a retry"},
	}
	for _, c := range cases {
		err := checkCarried(c.o)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), carriedRefusal)):
			t.Errorf("%s: %v, want a refusal with %q", c.name, err, c.want)
		}
	}
}

// auditRecorder mocks the activity that signals the project's Audit entity.
func auditRecorder(env *testsuite.TestWorkflowEnvironment, got *[]activities.SignalWithStartInput) {
	env.RegisterActivity(&activities.Messages{})
	env.OnActivity(messageActs.SignalWithStart, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignalWithStartInput) error {
			*got = append(*got, in)
			return nil
		})
}

// checkAudited asserts one refusal of a carried start reached audit/demo.
func checkAudited(t *testing.T, got []activities.SignalWithStartInput, target string) Refusal {
	t.Helper()
	if len(got) != 1 || got[0].WorkflowID != AuditID("demo") || got[0].Signal != RefusalSignal || got[0].WorkflowType != AuditWorkflow {
		t.Fatalf("audit signals = %+v, want one refusal to %s", got, AuditID("demo"))
	}
	var r Refusal
	if err := json.Unmarshal(got[0].Arg, &r); err != nil {
		t.Fatal(err)
	}
	if r.Action != ActionStart || r.Target != target || !strings.Contains(r.Reason, carriedRefusal) {
		t.Fatalf("audited refusal = %+v", r)
	}
	return r
}

func forgedRelease() *ReleaseState {
	return &ReleaseState{Progress: Progress{Status: StatusReleased, Summary: "released"}, Project: "demo", Version: "v1.0.0",
		Actor: "mallory", Admins: []string{"mallory"}, Commit: commit}
}

// A Release started directly with carried state is refused: nothing of it is
// believed (no admins, not released) and no git step runs. The refused run is
// the attempt's audit record (`shipline audit` reads it).
func TestReleaseRefusesCarriedStateOnADirectStart(t *testing.T) {
	e := newReleaseEnv(t, activities.ProjectSettings{Admins: []string{"alice"}, AutoDeploy: true})
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ReleaseID("demo", "v1.0.0")})
	var audited []activities.SignalWithStartInput
	auditRecorder(e.TestWorkflowEnvironment, &audited)
	e.ExecuteWorkflow(Release, ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "mallory", Carried: forgedRelease(),
		CarriedPolicy: &signing.Policy{}})

	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.CarriedStateRefused || !strings.Contains(app.Message(), carriedRefusal) {
		t.Fatalf("release ended with %v, want %s", err, apperr.CarriedStateRefused)
	}
	var st ReleaseState
	if err := e.GetWorkflowResult(&st); err != nil && !errors.As(err, &app) {
		t.Fatal(err)
	}
	v, err := e.QueryWorkflow(StateQuery)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusRefused || len(st.Admins) != 0 || st.Commit != "" || e.tagCall.in.Version != "" {
		t.Fatalf("state after a forged start: %+v (tag %+v)", st, e.tagCall.in)
	}
	if len(audited) != 0 {
		t.Fatalf("audit signals = %+v; the refused run itself is the record", audited)
	}
}

// A run continued as new from the same release keeps its carried state.
func TestReleaseContinuedAsNewKeepsCarriedState(t *testing.T) {
	e := newReleaseEnv(t, activities.ProjectSettings{Admins: []string{"alice"}})
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ReleaseID("demo", "v1.0.0")})
	e.SetContinuedExecutionRunID("previous-run")
	carried := forgedRelease()
	carried.Admins, carried.Actor = []string{"alice"}, "alice"
	st := e.runOpen(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice", Carried: carried, CarriedPolicy: &signing.Policy{}})
	if st.Status != StatusReleased || len(st.Admins) != 1 || st.Admins[0] != "alice" || st.Commit != commit {
		t.Fatalf("continued release state = %+v", st)
	}
}

// A Promote started directly with carried stages (approved, deployed) is
// refused before it deploys anything or links the release.
func TestPromoteRefusesCarriedStateOnADirectStart(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	var audited []activities.SignalWithStartInput
	e.OnActivity(messageActs.SignalWithStart, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignalWithStartInput) error {
			audited = append(audited, in)
			return nil
		})
	settings := stages()
	forged := &PromoteState{Progress: Progress{Status: StatusWaiting}, Project: "demo", Version: "v1.2.0", Actor: "mallory", Target: "prod",
		Stages: []StageState{{Name: "dev", Status: StageDeployed}, {Name: "qa", Status: StageDeployed},
			{Name: "prod", Fabrics: []string{"prod"}, Status: StageApproval, Approvals: []Vote{{Actor: "carol"}, {Actor: "dave"}}, Required: 2}}}
	e.ExecuteWorkflow(PromoteWorkflow, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "mallory", To: "prod",
		Carried: forged, CarriedSettings: &settings, CarriedPolicy: &signing.Policy{}})

	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.CarriedStateRefused {
		t.Fatalf("promotion ended with %v, want %s", err, apperr.CarriedStateRefused)
	}
	if len(e.deploys) != 0 || len(e.links) != 0 {
		t.Fatalf("a forged promotion deployed %+v, linked %+v", e.deploys, e.links)
	}
	if st := e.state(); st.Status != StatusRefused || len(st.Stages) != 0 {
		t.Fatalf("state after a forged start: %+v", st)
	}
	if len(audited) != 0 {
		t.Fatalf("audit signals = %+v; the refused run itself is the record", audited)
	}
}

// A Fabric entity started directly with carried state drops it, records the
// attempt and goes on serving the queue with an empty state.
func TestFabricDropsCarriedStateOnADirectStart(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Fabric)
	useInternalAuth(env)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: FabricID("demo", "prod")})
	var audited []activities.SignalWithStartInput
	auditRecorder(env, &audited)
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", GrantSignal, mock.Anything).Return(nil)
	forged := &FabricState{Project: "demo", Fabric: "prod", Queue: []QueueEntry{{DeploymentID: "ghost"}},
		Jobs: map[string]JobRecord{"daily": {Job: "daily", Version: "v9.9.9", Actor: "dave"}}}
	var state FabricState
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(EnqueueSignal, sealed(FabricID("demo", "prod"), EnqueueSignal, QueueEntry{DeploymentID: "d1", Version: "v1", Actor: "bob"}))
	}, time.Minute)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(StateQuery)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Get(&state); err != nil {
			t.Fatal(err)
		}
		env.CancelWorkflow()
	}, 2*time.Minute)
	env.ExecuteWorkflow(Fabric, FabricInput{Project: "demo", Fabric: "prod", Carried: forged})

	if len(state.Jobs) != 0 || len(state.Queue) != 1 || state.Queue[0].DeploymentID != "d1" {
		t.Fatalf("fabric state after a forged start: %+v", state)
	}
	checkAudited(t, audited, FabricID("demo", "prod"))
}

// An Audit entity started directly with carried entries drops them and
// records the attempt (to itself); a continued run keeps its entries.
func TestAuditDropsCarriedEntriesOnADirectStart(t *testing.T) {
	fake := []Refusal{{Actor: "dave", Action: DeleteUpdate, Target: ReleaseID("demo", "v1.0.0"), Reason: "deleted v1.0.0"}}
	for _, continued := range []bool{false, true} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(Audit, workflow.RegisterOptions{Name: AuditWorkflow})
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: AuditID("demo")})
		if continued {
			env.SetContinuedExecutionRunID("previous-run")
		}
		var audited []activities.SignalWithStartInput
		auditRecorder(env, &audited)
		var kept []Refusal
		env.RegisterDelayedCallback(func() {
			kept = queryRefusals(t, env)
			env.CancelWorkflow()
		}, time.Minute)
		env.ExecuteWorkflow(AuditWorkflow, AuditInput{Project: "demo", Carried: fake})
		if continued {
			if len(kept) != 1 || kept[0].Actor != "dave" || len(audited) != 0 {
				t.Fatalf("continued audit kept %+v, audited %+v", kept, audited)
			}
			continue
		}
		if len(kept) != 0 {
			t.Fatalf("forged entries kept: %+v", kept)
		}
		checkAudited(t, audited, AuditID("demo"))
	}
}
