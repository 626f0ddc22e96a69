package workflows

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/internal/version"
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
//     A deployment that parked leaves the queue the same way: the entity keeps
//     it among Parked with the jobs it changed, until it queues again
//     (resume) or ends (cancel).
//
// A newer version supersedes an older one: a queued deployment is dropped
// (recorded as superseded) before it would get the lock when a deployment of
// a newer version that deploys all its jobs here is queued behind it, or
// succeeded here since it first queued. A parked deployment is marked
// superseded when a newer version succeeds on a job it still has to deploy,
// so resuming it can never roll the fabric back.
//
// Both signals are believed only when sealed by a Shipline workflow (see
// internal_msg.go); its grants are sealed in turn.
//
// It never completes; it continues as new when Temporal suggests it.
func Fabric(ctx workflow.Context, in FabricInput) error {
	ctx = withVersionBaseline(ctx)
	f := &fabricEntity{state: FabricState{Project: in.Project, Fabric: in.Fabric, Jobs: map[string]JobRecord{}}}
	if in.carries() {
		// Forged state is dropped, and the entity goes on empty: completing
		// instead would lose the signals of deployments that joined meanwhile.
		if err := carriedStateAllowed(ctx); err != nil {
			recordRefusal(ctx, in.Project, carriedAttempt(ctx, err))
			in.Carried = nil
		}
	}
	if in.Carried != nil {
		f.state = *in.Carried
	}
	f.v = changeVersion(ctx, ChangeSupersede)
	if f.v >= 1 && len(f.state.Queue) > 0 {
		f.state.Queue[0].Granted = true // the head of a carried queue was told it holds the lock
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
			if refuseInternal(ctx, in.Project, EnqueueSignal, e.Actor, &e, &f.state.Nonces) == nil {
				f.enqueue(ctx, e)
			}
		})
		sel.AddReceive(done, func(c workflow.ReceiveChannel, _ bool) {
			var d DeploymentDone
			c.Receive(ctx, &d)
			if refuseInternal(ctx, in.Project, DoneSignal, d.Actor, &d, &f.state.Nonces) == nil {
				f.done(ctx, d)
			}
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
	// v is ChangeSupersede: DefaultVersion for entities that ran before
	// parked deployments and supersession (until they continue as new).
	v workflow.Version
}

// enqueue adds a deployment (once) and tells it where it stands.
func (f *fabricEntity) enqueue(ctx workflow.Context, e QueueEntry) {
	if f.v < 1 {
		if f.position(e.DeploymentID) < 0 {
			f.state.Queue = append(f.state.Queue, e)
		}
		f.tell(ctx, e.DeploymentID)
		return
	}
	if i := f.parked(e.DeploymentID); i >= 0 {
		// A parked deployment was resumed: it queues again, unless a newer
		// version succeeded here meanwhile.
		p := f.state.Parked[i]
		f.state.Parked = slices.Delete(f.state.Parked, i, i+1)
		if p.Superseded != nil {
			f.drop(ctx, e, p.Superseded)
			return
		}
	}
	if f.position(e.DeploymentID) >= 0 {
		f.tell(ctx, e.DeploymentID)
		return
	}
	f.state.Queue = append(f.state.Queue, e)
	if len(f.state.Queue) == 1 {
		f.advance(ctx)
		f.tellFrom(ctx, 0)
		return
	}
	// The newcomer supersedes the older versions waiting ahead of it (never
	// the holder: it is deploying already).
	first := -1
	for i := 1; i < len(f.state.Queue)-1; {
		w := f.state.Queue[i]
		if w.Granted || version.Compare(e.Version, w.Version) <= 0 || !covers(e.Jobs, w.Jobs) {
			i++
			continue
		}
		f.state.Queue = slices.Delete(f.state.Queue, i, i+1)
		f.drop(ctx, w, queuedSupersession(e, f.state.Fabric))
		if first < 0 {
			first = i
		}
	}
	if first < 0 {
		f.tell(ctx, e.DeploymentID)
		return
	}
	f.tellFrom(ctx, first)
}

func queuedSupersession(n QueueEntry, fab string) *Supersession {
	return &Supersession{By: n.DeploymentID, Version: n.Version, Reason: fmt.Sprintf(
		"%s deploys the newer %s to fabric %s and is queued behind it", n.DeploymentID, n.Version, fab)}
}

// advance hands the lock to the head of the queue, first dropping each head
// that a newer version supersedes.
func (f *fabricEntity) advance(ctx workflow.Context) {
	for len(f.state.Queue) > 0 && !f.state.Queue[0].Granted {
		head := f.state.Queue[0]
		s := f.supersededBy(head)
		if s == nil {
			f.state.Queue[0].Granted = true
			return
		}
		f.state.Queue = slices.Delete(f.state.Queue, 0, 1)
		f.drop(ctx, head, s)
	}
}

// drop ends a deployment as superseded: recorded, and told (it leaves the queue).
func (f *fabricEntity) drop(ctx workflow.Context, e QueueEntry, s *Supersession) {
	f.record(DeploymentDone{DeploymentID: e.DeploymentID, Version: e.Version, Actor: e.Actor, Outcome: StatusSuperseded,
		Reason: s.Reason, Started: e.Since, Finished: workflow.Now(ctx)})
	g := Grant{Fabric: f.state.Fabric, Superseded: s}
	err := signalInternal(ctx, e.DeploymentID, GrantSignal, &g).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("superseded deployment unreachable", "deployment", e.DeploymentID, "error", err)
	}
}

// supersededBy names the deployment of a newer version that makes a queued
// one pointless: queued behind it and deploying all its jobs here, or
// succeeded here (with all its jobs) since it first queued.
func (f *fabricEntity) supersededBy(e QueueEntry) *Supersession {
	pos := f.position(e.DeploymentID)
	for _, n := range f.state.Queue[pos+1:] {
		if version.Compare(n.Version, e.Version) > 0 && covers(n.Jobs, e.Jobs) {
			return queuedSupersession(n, f.state.Fabric)
		}
	}
	since := e.Queued
	if since.IsZero() {
		since = e.Since
	}
	for i := len(f.state.History) - 1; i >= 0; i-- {
		h := f.state.History[i]
		if h.Outcome == StatusSucceeded && h.Finished.After(since) && version.Compare(h.Version, e.Version) > 0 && covers(jobNames(h.Jobs), e.Jobs) {
			return succeededSupersession(h, f.state.Fabric)
		}
	}
	return nil
}

// supersedeParked marks the parked deployments that a success of a newer
// version superseded (it deployed a job they still have to deploy), and tells them.
func (f *fabricEntity) supersedeParked(ctx workflow.Context, d DeploymentDone) {
	done := jobNames(d.Jobs)
	var gone []ParkedDeployment
	for i := range f.state.Parked {
		p := &f.state.Parked[i]
		if p.Superseded != nil || version.Compare(d.Version, p.Version) <= 0 {
			continue
		}
		if len(p.Jobs) > 0 { // else unknown: any newer success supersedes it
			left := remaining(p.Jobs, p.LeftBehind)
			if len(left) == 0 || !overlaps(done, left) {
				continue // resuming it changes no job the newer version deployed
			}
		}
		p.Superseded = succeededSupersession(d, f.state.Fabric)
		g := Grant{Fabric: f.state.Fabric, Superseded: p.Superseded}
		err := signalInternal(ctx, p.DeploymentID, GrantSignal, &g).Get(ctx, nil)
		if err != nil {
			workflow.GetLogger(ctx).Warn("parked deployment unreachable; dropping it", "deployment", p.DeploymentID, "error", err)
			gone = append(gone, *p)
		}
	}
	// A parked deployment that is gone (terminated by hand) leaves the record.
	for _, p := range gone {
		f.state.Parked = slices.DeleteFunc(f.state.Parked, func(q ParkedDeployment) bool { return q.DeploymentID == p.DeploymentID })
		f.record(DeploymentDone{DeploymentID: p.DeploymentID, Version: p.Version, Actor: p.Actor, Outcome: StatusFailed,
			Reason: "the deployment workflow is gone while parked", Step: p.Step, Started: p.Queued, Finished: workflow.Now(ctx)})
	}
}

func succeededSupersession(d DeploymentDone, fab string) *Supersession {
	return &Supersession{By: d.DeploymentID, Version: d.Version, Succeeded: true, Reason: fmt.Sprintf(
		"%s deployed the newer %s to fabric %s at %s", d.DeploymentID, d.Version, fab, fmtTime(d.Finished))}
}

// covers: newer deploys every job of older (unknown job lists cover everything).
func covers(newer, older []string) bool {
	if len(newer) == 0 {
		return true
	}
	for _, j := range older {
		if !slices.Contains(newer, j) {
			return false
		}
	}
	return true
}

// overlaps: the two job lists share a job (an unknown list overlaps any).
func overlaps(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	return slices.ContainsFunc(a, func(j string) bool { return slices.Contains(b, j) })
}

func remaining(all, done []string) []string {
	var out []string
	for _, j := range all {
		if !slices.Contains(done, j) {
			out = append(out, j)
		}
	}
	return out
}

func jobNames(jobs []JobRecord) []string {
	out := make([]string, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, j.Job)
	}
	return out
}

// done records a finished deployment, drops it from the queue and tells every
// deployment behind it its new place: the next one is granted the lock when
// the holder left, the others learn who holds it now.
func (f *fabricEntity) done(ctx workflow.Context, d DeploymentDone) {
	if f.v >= 1 {
		f.doneOrParked(ctx, d)
		return
	}
	pos := f.position(d.DeploymentID)
	if pos >= 0 {
		f.state.Queue = slices.Delete(f.state.Queue, pos, pos+1)
	}
	f.record(d)
	if pos < 0 || pos >= len(f.state.Queue) {
		return
	}
	// Entities that ran the first version of this code only told the new
	// holder; everyone behind it kept naming the deployment that had left.
	if changeVersion(ctx, changeTellWholeQueue) == workflow.DefaultVersion {
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

// doneOrParked: a deployment left the queue (ended or parked) or ended while
// parked. Its jobs are recorded; a parked one is kept among Parked; a success
// supersedes older parked deployments; the queue moves on.
func (f *fabricEntity) doneOrParked(ctx workflow.Context, d DeploymentDone) {
	pos := f.position(d.DeploymentID)
	var entry QueueEntry
	if pos >= 0 {
		entry = f.state.Queue[pos]
		f.state.Queue = slices.Delete(f.state.Queue, pos, pos+1)
	}
	i := f.parked(d.DeploymentID)
	if d.Outcome == StatusParked {
		p := ParkedDeployment{DeploymentID: d.DeploymentID, Version: d.Version, Actor: d.Actor, Step: d.Step, Reason: d.Reason,
			Since: d.Finished, Queued: entry.Queued, Jobs: entry.Jobs, LeftBehind: jobNames(d.Jobs)}
		if p.Queued.IsZero() {
			p.Queued = entry.Since
		}
		f.recordJobs(d)
		if i >= 0 {
			f.state.Parked[i] = p
		} else {
			f.state.Parked = append(f.state.Parked, p)
		}
	} else {
		if i >= 0 {
			f.state.Parked = slices.Delete(f.state.Parked, i, i+1)
		}
		f.record(d)
		if d.Outcome == StatusSucceeded {
			f.supersedeParked(ctx, d)
		}
	}
	if pos < 0 || pos >= len(f.state.Queue) {
		return
	}
	if pos == 0 {
		f.advance(ctx)
	}
	f.tellFrom(ctx, pos)
}

// record keeps what an ended deployment changed, and its outcome in the history.
func (f *fabricEntity) record(d DeploymentDone) {
	f.recordJobs(d)
	d.Jobs = slices.Clone(d.Jobs)
	f.state.History = append(f.state.History, d)
	if n := len(f.state.History); n > MaxFabricHistory {
		f.state.History = slices.Clone(f.state.History[n-MaxFabricHistory:])
	}
}

// recordJobs notes which job runs which version now. A record older than the
// one kept is stale (a parked deployment that ends after a newer one changed
// the job) and is not applied.
func (f *fabricEntity) recordJobs(d DeploymentDone) {
	for _, j := range d.Jobs {
		if cur, ok := f.state.Jobs[j.Job]; ok && f.v >= 1 && cur.At.After(j.At) {
			continue
		}
		f.state.Jobs[j.Job] = j
	}
	for _, name := range d.Removed {
		delete(f.state.Jobs, name)
	}
}

// tellFrom tells every deployment from position pos on its place (together).
func (f *fabricEntity) tellFrom(ctx workflow.Context, pos int) {
	type sent struct {
		id     string
		signal workflow.Future
	}
	var all []sent
	for _, e := range f.state.Queue[min(pos, len(f.state.Queue)):] {
		all = append(all, sent{e.DeploymentID, f.grant(ctx, e.DeploymentID)})
	}
	for _, s := range all {
		f.unreachable(ctx, s.id, s.signal.Get(ctx, nil))
	}
}

func (f *fabricEntity) parked(id string) int {
	return slices.IndexFunc(f.state.Parked, func(p ParkedDeployment) bool { return p.DeploymentID == id })
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
	return signalInternal(ctx, id, GrantSignal, &g)
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
