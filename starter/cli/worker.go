package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// A command that needs the worker (to start, update or query a workflow) must
// not wait forever when none is there: a wrong --task-queue, or a worker that
// is down. These checks tell the user within seconds.
const (
	// workerGrace is how long a command waits for the worker before it checks
	// that one polls the task queue.
	workerGrace = 3 * time.Second
	// workerStale is how long a workflow task may wait unpicked, with pollers
	// on the queue, before the worker is reported as not running.
	workerStale = 10 * time.Second
)

// errNoWorker marks an error that says no worker serves the task queue.
var errNoWorker = errors.New("no worker")

// noWorkerError says what is wrong and what to do.
type noWorkerError struct{ msg string }

func (e *noWorkerError) Error() string        { return e.msg }
func (e *noWorkerError) Is(target error) bool { return target == errNoWorker }

// checkPollers returns a noWorkerError when no worker polls the command's
// task queue for workerGrace (a worker that just started may not have polled
// yet). It says nothing when it cannot tell.
func (g *globals) checkPollers(ctx context.Context, c client.Client) error {
	deadline := time.Now().Add(g.workerWait())
	for {
		err := g.checkQueue(ctx, c, g.taskQueue)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (g *globals) checkQueue(ctx context.Context, c client.Client, queue string) error {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.DescribeTaskQueue(dctx, queue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	if err != nil || len(resp.GetPollers()) > 0 {
		return nil
	}
	return &noWorkerError{fmt.Sprintf("no worker polls task queue %q in namespace %s: start one with `shipline-worker --config platform.yaml` "+
		"(it polls temporal.task_queue of platform.yaml), or pass the queue it polls with --task-queue or SHIPLINE_TASK_QUEUE", queue, g.namespace)}
}

// checkWorker checks the task queue of workflow id (the command's queue when
// id is "" or unknown): a noWorkerError when nothing polls it, or when id has
// a task that waited workerStale without a worker picking it up.
func (g *globals) checkWorker(ctx context.Context, c client.Client, id string) error {
	queue := g.taskQueue
	var desc *workflowservice.DescribeWorkflowExecutionResponse
	if id != "" {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d, err := c.DescribeWorkflowExecution(dctx, id, "")
		cancel()
		if err == nil {
			desc = d
			if q := d.GetExecutionConfig().GetTaskQueue().GetName(); q != "" {
				queue = q
			}
		}
	}
	if err := g.checkQueue(ctx, c, queue); err != nil || desc == nil {
		return err
	}
	pt := desc.GetPendingWorkflowTask()
	if pt == nil || pt.GetState() != enumspb.PENDING_WORKFLOW_TASK_STATE_SCHEDULED || pt.GetScheduledTime() == nil {
		return nil
	}
	waited := time.Since(pt.GetScheduledTime().AsTime())
	if waited < workerStale {
		return nil
	}
	return &noWorkerError{fmt.Sprintf("no worker has picked up %s for %s (task queue %q): is shipline-worker running, and polling this queue? "+
		"The request is kept and runs when a worker comes; `shipline cancel %s` drops it", id, waited.Round(time.Second), queue, id)}
}

// withWorker runs fn, which waits on the worker for the workflow id ("" before
// it exists). When fn has not returned after workerGrace, and again every
// workerGrace, it checks that a worker serves the task queue; if none does,
// fn is abandoned and the check's error is returned (exit 1).
func (g *globals) withWorker(ctx context.Context, c client.Client, id string, fn func(context.Context) error) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(fctx) }()
	tick := time.NewTicker(g.workerWait())
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			cancel()
			<-done
			return ctx.Err()
		case <-tick.C:
			if err := g.checkWorker(ctx, c, id); err != nil {
				cancel()
				<-done
				return failed(err)
			}
		}
	}
}
