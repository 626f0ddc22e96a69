package workflows

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

func queryRefusals(t *testing.T, env *testsuite.TestWorkflowEnvironment) []Refusal {
	t.Helper()
	v, err := env.QueryWorkflow(StateQuery)
	if err != nil {
		t.Fatal(err)
	}
	var out []Refusal
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The Audit entity keeps refusals newest last, stamps those without a time and
// sets the project's search attribute.
func TestAuditRecordsRefusals(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Audit, workflow.RegisterOptions{Name: AuditWorkflow})
	useInternalAuth(env)
	env.OnUpsertTypedSearchAttributes(temporal.NewSearchAttributes(ProjectKey.ValueSet("demo"))).Return(nil).Once()
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	env.SetStartTime(at.Add(-time.Hour))
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(RefusalSignal, sealed(testWorkflowID, RefusalSignal, Refusal{Actor: "mallory", Action: ApproveUpdate, Target: PromoteID("demo", "v1.0.0"),
			Version: "v1.0.0", Stage: "prod", Reason: "mallory is not in team prod_support", At: at}))
	}, time.Minute)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(RefusalSignal, sealed(testWorkflowID, RefusalSignal, Refusal{Actor: "bob", Action: DeleteUpdate, Target: ReleaseID("demo", "v1.0.0"),
			Version: "v1.0.0", Reason: "only admins may delete"}))
	}, 2*time.Minute)
	var got []Refusal
	env.RegisterDelayedCallback(func() {
		got = queryRefusals(t, env)
		env.CancelWorkflow()
	}, 3*time.Minute)
	env.ExecuteWorkflow(AuditWorkflow, AuditInput{Project: "demo"})

	if len(got) != 2 || got[0].Actor != "mallory" || got[0].Stage != "prod" || !got[0].At.Equal(at) ||
		got[1].Actor != "bob" || got[1].Action != DeleteUpdate || got[1].At.IsZero() {
		t.Fatalf("refusals = %+v", got)
	}
	if start := at.Add(-time.Hour); !got[1].At.Equal(start.Add(2 * time.Minute)) {
		t.Errorf("a refusal without a time is stamped with the workflow's clock: %v", got[1].At)
	}
	env.AssertExpectations(t) // ShiplineProject was set
}

// When Temporal suggests it, the entity drains the signals already delivered and
// continues as new carrying every refusal, bounded to MaxAuditRefusals.
func TestAuditContinuesAsNew(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Audit, workflow.RegisterOptions{Name: AuditWorkflow})
	useInternalAuth(env)
	// This run continues the entity's previous one, as continue-as-new starts it.
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: AuditID("demo")})
	env.SetContinuedExecutionRunID("previous-run")
	carried := make([]Refusal, MaxAuditRefusals-1)
	for i := range carried {
		carried[i] = Refusal{Actor: "old", Action: CancelUpdate, Reason: fmt.Sprint(i), At: time.Unix(int64(i), 0)}
	}
	env.RegisterDelayedCallback(func() {
		env.SetContinueAsNewSuggested(true)
		// Three signals delivered in the same workflow task: none may be lost.
		env.SignalWorkflowSkippingWorkflowTask(RefusalSignal, sealed(AuditID("demo"), RefusalSignal, Refusal{Actor: "a", Action: ResumeUpdate, Reason: "r1"}))
		env.SignalWorkflowSkippingWorkflowTask(RefusalSignal, sealed(AuditID("demo"), RefusalSignal, Refusal{Actor: "b", Action: ResumeUpdate, Reason: "r2"}))
		env.SignalWorkflow(RefusalSignal, sealed(AuditID("demo"), RefusalSignal, Refusal{Actor: "c", Action: ResumeUpdate, Reason: "r3"}))
	}, time.Minute)
	env.ExecuteWorkflow(AuditWorkflow, AuditInput{Project: "demo", Carried: carried})

	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow ended with %v, want continue-as-new", err)
	}
	if can.WorkflowType.Name != AuditWorkflow {
		t.Errorf("continues as %q", can.WorkflowType.Name)
	}
	var next AuditInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	n := len(next.Carried)
	if next.Project != "demo" || n != MaxAuditRefusals {
		t.Fatalf("carried project %q, %d refusals; want demo, %d", next.Project, n, MaxAuditRefusals)
	}
	if next.Carried[0].Reason != "2" || next.Carried[n-3].Reason != "r1" || next.Carried[n-1].Reason != "r3" {
		t.Errorf("carried refusals: first %+v, last three %+v", next.Carried[0], next.Carried[n-3:])
	}
}
