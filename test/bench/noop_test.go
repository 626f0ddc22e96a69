package bench

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The no-op ceiling's workflows: NoopDeploy does a deploy's activities and
// its conversation with an entity (NoopEntity, as a Deploy has with its
// Fabric entity: started as a child, then signals back and forth), with
// nothing done in any of them.
const (
	noopTaskQueue    = "shipline-bench-noop"
	noopWorkflowName = "NoopDeploy"
	noopEntityName   = "NoopEntity"
	noopActivityName = "NoopStep"
	noopPing         = "ping"
	noopPong         = "pong"
)

// noopShape is what a NoopDeploy does: Rounds[i] no-op activities in
// parallel, one round after the other; Signals round trips with its entity
// (a ping it sends, a pong it waits for) and Markers side-effect markers (one
// event each), spread over the rounds.
type noopShape struct {
	Rounds  []int
	Signals int
	Markers int
}

func noopDeploy(ctx workflow.Context, s noopShape) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	self := workflow.GetInfo(ctx).WorkflowExecution.ID
	entity := self + "-entity"
	if s.Signals > 0 {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: entity, ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON})
		child := workflow.ExecuteChildWorkflow(cctx, noopEntityName)
		if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
			return err
		}
	}
	pongs := workflow.GetSignalChannel(ctx, noopPong)
	rounds := max(1, len(s.Rounds))
	for i := 0; i < rounds; i++ {
		for range spread(s.Markers, rounds, i) {
			var v int
			if err := workflow.SideEffect(ctx, func(workflow.Context) any { return i }).Get(&v); err != nil {
				return err
			}
		}
		for k := range spread(s.Signals, rounds, i) {
			last := i == rounds-1 && k == spread(s.Signals, rounds, i)-1
			if err := workflow.SignalExternalWorkflow(ctx, entity, "", noopPing, noopMsg{From: self, Last: last}).Get(ctx, nil); err != nil {
				return err
			}
			if !last {
				pongs.Receive(ctx, nil)
			}
		}
		if i >= len(s.Rounds) {
			continue
		}
		futures := make([]workflow.Future, s.Rounds[i])
		for k := range futures {
			futures[k] = workflow.ExecuteActivity(ctx, noopActivityName)
		}
		for _, f := range futures {
			if err := f.Get(ctx, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// noopMsg is a ping; the last one ends the entity without an answer.
type noopMsg struct {
	From string
	Last bool
}

// noopEntity answers each ping with a pong until the last.
func noopEntity(ctx workflow.Context) error {
	pings := workflow.GetSignalChannel(ctx, noopPing)
	for {
		var m noopMsg
		pings.Receive(ctx, &m)
		if m.Last {
			return nil
		}
		if err := workflow.SignalExternalWorkflow(ctx, m.From, "", noopPong, nil).Get(ctx, nil); err != nil {
			return err
		}
	}
}

// spread is round i's share of n things spread over rounds rounds.
func spread(n, rounds, i int) int {
	share := n / rounds
	if i < n%rounds {
		share++
	}
	return share
}

func noopStep(context.Context) error { return nil }

// startNoopWorker runs the no-op workflows and activity on their own task
// queue of the same server, with the SDK's default worker options, as
// shipline-worker runs (it sets only its stop timeout and interceptors).
func startNoopWorker(b *testing.B, c client.Client) worker.Worker {
	w := worker.New(c, noopTaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(noopDeploy, workflow.RegisterOptions{Name: noopWorkflowName})
	w.RegisterWorkflowWithOptions(noopEntity, workflow.RegisterOptions{Name: noopEntityName})
	w.RegisterActivityWithOptions(noopStep, activity.RegisterOptions{Name: noopActivityName})
	if err := w.Start(); err != nil {
		b.Fatalf("start the no-op worker: %v", err)
	}
	return w
}
