package workflows

import (
	"slices"

	"go.temporal.io/sdk/workflow"
)

// Fabric is the entity of one (project, fabric), ID FabricID. It serializes
// deployments (a FIFO queue whose head holds the lock), records which job runs
// which version there, by whom and from which deployment, and keeps the
// deployment history. Deploys start it on demand and talk to it with signals:
//
//   - EnqueueSignal: a deployment joins the queue; it is answered with a
//     GrantSignal saying whether it holds the lock or who is ahead;
//   - DoneSignal: a deployment ended (or was cancelled while queued); its jobs
//     are recorded, it leaves the queue, and the next one is granted the lock.
//
// It never completes; it continues as new when Temporal suggests it.
func Fabric(ctx workflow.Context, in FabricInput) error {
	f := &fabricEntity{state: FabricState{Project: in.Project, Fabric: in.Fabric, Jobs: map[string]JobRecord{}}}
	if in.Carried != nil {
		f.state = *in.Carried
	}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (FabricState, error) { return f.state, nil }); err != nil {
		return err
	}
	enqueue := workflow.GetSignalChannel(ctx, EnqueueSignal)
	done := workflow.GetSignalChannel(ctx, DoneSignal)
	for {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(enqueue, func(c workflow.ReceiveChannel, _ bool) {
			var e QueueEntry
			c.Receive(ctx, &e)
			f.enqueue(ctx, e)
		})
		sel.AddReceive(done, func(c workflow.ReceiveChannel, _ bool) {
			var d DeploymentDone
			c.Receive(ctx, &d)
			f.done(ctx, d)
		})
		sel.Select(ctx)
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() && enqueue.Len() == 0 && done.Len() == 0 {
			carried := f.state
			return workflow.NewContinueAsNewError(ctx, Fabric, FabricInput{Project: in.Project, Fabric: in.Fabric, Carried: &carried})
		}
	}
}

type fabricEntity struct {
	state FabricState
}

// enqueue adds a deployment (once) and tells it where it stands.
func (f *fabricEntity) enqueue(ctx workflow.Context, e QueueEntry) {
	if f.position(e.DeploymentID) < 0 {
		f.state.Queue = append(f.state.Queue, e)
	}
	f.tell(ctx, e.DeploymentID)
}

// done records a finished deployment, drops it from the queue and grants the
// lock to the next one when it was the holder.
func (f *fabricEntity) done(ctx workflow.Context, d DeploymentDone) {
	pos := f.position(d.DeploymentID)
	if pos >= 0 {
		f.state.Queue = slices.Delete(f.state.Queue, pos, pos+1)
	}
	for _, j := range d.Jobs {
		f.state.Jobs[j.Job] = j
	}
	for _, name := range d.Removed {
		delete(f.state.Jobs, name)
	}
	d.Jobs = slices.Clone(d.Jobs)
	f.state.History = append(f.state.History, d)
	if n := len(f.state.History); n > MaxFabricHistory {
		f.state.History = slices.Clone(f.state.History[n-MaxFabricHistory:])
	}
	if pos == 0 && len(f.state.Queue) > 0 {
		f.tell(ctx, f.state.Queue[0].DeploymentID)
	}
}

// tell signals a deployment its place: granted when it is the head.
func (f *fabricEntity) tell(ctx workflow.Context, id string) {
	pos := f.position(id)
	g := Grant{Fabric: f.state.Fabric, Granted: pos == 0}
	for _, e := range f.state.Queue[:max(pos, 0)] {
		g.Ahead = append(g.Ahead, e.DeploymentID)
	}
	err := workflow.SignalExternalWorkflow(ctx, id, "", GrantSignal, g).Get(ctx, nil)
	if err != nil && pos >= 0 {
		// The deployment is gone (terminated by hand): drop it so the queue moves on.
		workflow.GetLogger(ctx).Warn("queued deployment unreachable; dropping it", "deployment", id, "error", err)
		f.done(ctx, DeploymentDone{DeploymentID: id, Outcome: StatusFailed, Reason: "the deployment workflow is gone: " + err.Error(),
			Started: f.state.Queue[pos].Since, Finished: workflow.Now(ctx)})
	}
}

func (f *fabricEntity) position(id string) int {
	return slices.IndexFunc(f.state.Queue, func(e QueueEntry) bool { return e.DeploymentID == id })
}
