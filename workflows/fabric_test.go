package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
)

// The Fabric entity grants its lock first come, first served, tells waiters
// who is ahead, records the jobs of finished deployments and moves on.
func TestFabricQueue(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Fabric)
	useInternalAuth(env)
	grants := map[string][]Grant{}
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", GrantSignal, mock.Anything).Return(
		func(_, id, _, _ string, arg any) error {
			grants[id] = append(grants[id], arg.(Grant))
			return nil
		})
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	enqueue := func(id string, at time.Duration) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(EnqueueSignal, sealed(testWorkflowID, EnqueueSignal, QueueEntry{DeploymentID: id, Version: "v1", Actor: "bob", Since: now}))
		}, at)
	}
	enqueue("d1", time.Minute)
	enqueue("d2", 2*time.Minute)
	enqueue("d3", 3*time.Minute)
	enqueue("d2", 4*time.Minute) // a retried enqueue does not queue twice
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DoneSignal, sealed(testWorkflowID, DoneSignal, DeploymentDone{DeploymentID: "d3", Outcome: StatusCancelled})) // cancelled while waiting
	}, 5*time.Minute)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DoneSignal, sealed(testWorkflowID, DoneSignal, DeploymentDone{DeploymentID: "d1", Outcome: StatusSucceeded, Version: "v1",
			Jobs: []JobRecord{{Job: "daily", Version: "v1", DeploymentID: "d1", Actor: "bob"}}}))
	}, 6*time.Minute)
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

	if g := grants["d1"]; len(g) != 1 || !g[0].Granted {
		t.Fatalf("d1 grants = %+v, want granted at once", g)
	}
	if g := grants["d2"]; len(g) != 3 || g[0].Granted || g[0].Ahead[0] != "d1" || g[1].Granted || !g[2].Granted {
		t.Fatalf("d2 grants = %+v, want behind d1 (twice), then granted", g)
	}
	if g := grants["d3"]; len(g) != 1 || g[0].Granted || len(g[0].Ahead) != 2 {
		t.Fatalf("d3 grants = %+v, want behind d1, d2 and never granted", g)
	}
	if len(state.Queue) != 1 || state.Queue[0].DeploymentID != "d2" {
		t.Fatalf("queue = %+v, want d2 holding", state.Queue)
	}
	if j := state.Jobs["daily"]; j.DeploymentID != "d1" || len(state.History) != 2 || state.History[0].Outcome != StatusCancelled {
		t.Fatalf("jobs = %+v history = %+v", state.Jobs, state.History)
	}
}

// A newer version supersedes an older one that waits in the queue only when
// it deploys all of that one's jobs here; the holder is never superseded.
func TestFabricSupersedesOlderQueuedVersion(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Fabric)
	useInternalAuth(env)
	grants := map[string][]Grant{}
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", GrantSignal, mock.Anything).Return(
		func(_, id, _, _ string, arg any) error {
			grants[id] = append(grants[id], arg.(Grant))
			return nil
		})
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	enqueue := func(id, version string, jobs []string, at time.Duration) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(EnqueueSignal, sealed(testWorkflowID, EnqueueSignal, QueueEntry{DeploymentID: id, Version: version, Actor: "bob", Since: now.Add(at), Jobs: jobs}))
		}, at)
	}
	both := []string{"daily", "hourly"}
	enqueue("holder", "v1.0.0", both, time.Minute)
	enqueue("old", "v1.1.0", both, 2*time.Minute)
	enqueue("partial", "v1.2.0", []string{"daily"}, 3*time.Minute) // does not deploy hourly: old stays
	enqueue("older", "v0.9.0", both, 4*time.Minute)                // older than what waits: stays, behind
	enqueue("newest", "v1.3.0", both, 5*time.Minute)               // supersedes old, partial and older: it deploys all their jobs
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
	}, 6*time.Minute)
	env.ExecuteWorkflow(Fabric, FabricInput{Project: "demo", Fabric: "dev"})

	superseded := func(id string) *Supersession {
		g := grants[id]
		if len(g) == 0 {
			return nil
		}
		return g[len(g)-1].Superseded
	}
	if s := superseded("old"); s == nil || s.By != "newest" || s.Version != "v1.3.0" || s.Succeeded {
		t.Fatalf("old: grants %+v, want superseded by newest", grants["old"])
	}
	for _, id := range []string{"partial", "older"} {
		if s := superseded(id); s == nil || s.By != "newest" {
			t.Fatalf("%s: grants %+v, want superseded by newest", id, grants[id])
		}
	}
	if superseded("holder") != nil || superseded("newest") != nil {
		t.Fatalf("holder %+v newest %+v", grants["holder"], grants["newest"])
	}
	if len(state.Queue) != 2 || state.Queue[0].DeploymentID != "holder" || !state.Queue[0].Granted || state.Queue[1].DeploymentID != "newest" {
		t.Fatalf("queue = %+v", state.Queue)
	}
	if len(state.History) != 3 || state.History[0].Outcome != StatusSuperseded {
		t.Fatalf("history = %+v", state.History)
	}
	// Before newest came, partial (daily only) did not supersede old (daily and hourly).
	if g := grants["old"]; len(g) < 2 || g[len(g)-2].Superseded != nil {
		t.Fatalf("old grants = %+v", g)
	}
}
