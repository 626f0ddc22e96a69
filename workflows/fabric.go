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

// done records a finished deployment, drops it from the queue and tells every
// deployment behind it its new place: the next one is granted the lock when
// the holder left, the others learn who holds it now.
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
	if pos < 0 || pos >= len(f.state.Queue) {
		return
	}
	// Entities that ran the first version of this code only told the new
	// holder; everyone behind it kept naming the deployment that had left.
	if workflow.GetVersion(ctx, changeTellWholeQueue, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		if pos == 0 {
			f.tell(ctx, f.state.Queue[0].DeploymentID)
		}
		return
	}
	// Everyone who stood behind the one that left moves up: tell them all (the
	// new holder first), so a waiting deployment's status names the holder.
	// The signals go out together; the loop waits for them all.
	type sent struct {
		id     string
		signal workflow.Future
	}
	var all []sent
	for _, e := range f.state.Queue[pos:] {
		all = append(all, sent{e.DeploymentID, f.grant(ctx, e.DeploymentID)})
	}
	for _, s := range all {
		f.unreachable(ctx, s.id, s.signal.Get(ctx, nil))
	}
}

// changeTellWholeQueue: when a deployment leaves the queue, every deployment
// behind it is told its new place (not only a new holder).
const changeTellWholeQueue = "fabric-tell-whole-queue"

// tell signals a deployment its place: granted when it is the head.
func (f *fabricEntity) tell(ctx workflow.Context, id string) {
	f.unreachable(ctx, id, f.grant(ctx, id).Get(ctx, nil))
}

// grant sends a deployment its place (granted when it is the head).
func (f *fabricEntity) grant(ctx workflow.Context, id string) workflow.Future {
	pos := f.position(id)
	g := Grant{Fabric: f.state.Fabric, Granted: pos == 0}
	for _, e := range f.state.Queue[:max(pos, 0)] {
		g.Ahead = append(g.Ahead, e.DeploymentID)
	}
	return workflow.SignalExternalWorkflow(ctx, id, "", GrantSignal, g)
}

// unreachable drops a queued deployment whose grant signal failed.
func (f *fabricEntity) unreachable(ctx workflow.Context, id string, err error) {
	pos := f.position(id)
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
