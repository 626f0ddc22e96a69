package test

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/workflows"
)

// TestConcurrentDeploysToOneFabric starts 10 deploys of 10 versions of one
// project to one fabric at once: they are serialized (the emulator sees no
// call of one deployment while another holds the fabric), the fabric ends at
// the newest version (older ones still queued behind a newer one end
// superseded, having changed nothing), and while a deployment waits its
// `status` names the deployment that holds the fabric.
func TestConcurrentDeploysToOneFabric(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	const n = 10
	begin := time.Now()
	h := newHardEnv(t, hardOptions{Projects: []string{"demo"}, Seed: 11})
	h.inProcessWorker()
	versions := make([]string, n)
	for i := range versions {
		versions[i] = fmt.Sprintf("v1.0.%d", i)
		if i > 0 {
			h.change("demo", i == 3 || i == 7) // two versions change a pipeline: a build inside the queue
		}
		h.release("demo", versions[i])
	}
	t.Logf("setup and %d releases took %s", n, time.Since(begin).Round(time.Millisecond))

	// Slow job writes down, so each deployment holds the fabric long enough
	// for the others to queue behind it.
	for _, p := range []string{"/api/2.2/jobs/create", "/api/2.2/jobs/reset"} {
		h.emu.Inject(dbemu.Fault{Method: "POST", Path: p, Latency: 400 * time.Millisecond})
	}
	h.emu.ResetRequests()

	start := time.Now()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range versions {
		wg.Go(func() { ids[i] = h.startDeploy("demo", versions[i]) })
	}
	wg.Wait()
	byVersion := map[string]string{}
	for i, id := range ids {
		byVersion[versions[i]] = id
	}

	// Poll every deployment's `shipline status` while they run.
	type sighting struct {
		id, holder string
		at         time.Time
	}
	var seen []sighting
	behind := regexp.MustCompile(`queued for fabric dev behind (\S+)`)
	busy := regexp.MustCompile(`fabric dev is busy with (\S+)`)
	states := map[string]workflows.DeployState{}
	deadline := time.Now().Add(5 * time.Minute)
	for len(states) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d deployments ended within 5 minutes", len(states), n)
		}
		for _, id := range ids {
			if _, done := states[id]; done {
				continue
			}
			at := time.Now()
			code, out, _ := h.shiplineQuiet("status", id)
			if code != 0 {
				t.Fatalf("status %s: exit %d\n%s", id, code, out)
			}
			if m := behind.FindStringSubmatch(out); m != nil {
				seen = append(seen, sighting{id: id, holder: m[1], at: at})
				if b := busy.FindStringSubmatch(out); b == nil || b[1] != m[1] {
					t.Errorf("status of %s: the summary and the queued line disagree:\n%s", id, out)
				}
			}
			// The first line says the execution's status; a parked one is still running.
			if !strings.Contains(firstLineOf(out), "(Deploy, running)") || strings.Contains(out, "parked at") {
				if s, ok := h.deployState(id); ok && ended(s.Status) {
					states[id] = s
				}
			}
		}
		time.Sleep(100 * time.Millisecond) // queries are workflow tasks: leave the worker room to work
	}
	t.Logf("%d deploys ended %s after they were started; %d queued sightings", n, time.Since(start).Round(time.Millisecond), len(seen))

	// Every deployment succeeded or was superseded by a newer version; order
	// the ones that deployed by when they got the fabric.
	var order []held
	superseded := map[string]bool{}
	for _, id := range ids {
		s := states[id]
		if s.Status == workflows.StatusSuperseded {
			if s.Superseded == nil || s.Version == versions[n-1] {
				t.Errorf("%s (%s) superseded: %+v", id, s.Version, s.Superseded)
			}
			superseded[id] = true
			continue
		}
		if s.Status != workflows.StatusSucceeded {
			t.Fatalf("%s ended %s: %s", id, s.Status, s.Summary)
		}
		hd := held{id: id, version: s.Version, to: s.Finished}
		for _, st := range s.Steps {
			switch st.Name {
			case workflows.StepLock:
				hd.from, hd.queuedAt = st.Finished, st.Started
			}
		}
		order = append(order, hd)
	}
	sort.Slice(order, func(a, b int) bool { return order[a].from.Before(order[b].from) })
	var lines []string
	for i, o := range order {
		lines = append(lines, fmt.Sprintf("%d. %s %s  queued %s  held %s .. %s", i+1, o.version, o.id,
			o.queuedAt.Format("15:04:05.000"), o.from.Format("15:04:05.000"), o.to.Format("15:04:05.000")))
		if i > 0 && o.from.Before(order[i-1].to) {
			t.Errorf("interleaved: %s got the fabric at %s, before %s finished at %s", o.id, o.from, order[i-1].id, order[i-1].to)
		}
	}
	t.Logf("lock order:\n%s", strings.Join(lines, "\n"))

	// The emulator's request log: every call falls inside exactly one
	// deployment's hold, and each upload inside the hold of its version's deployment.
	holderAt := func(at time.Time) (held, bool) {
		for _, o := range order {
			if !at.Before(o.from) && !at.After(o.to) {
				return o, true
			}
		}
		return held{}, false
	}
	writes := 0
	for _, r := range h.emu.Requests() {
		o, ok := holderAt(r.Time)
		if !ok {
			t.Errorf("%s %s at %s happened while no deployment held the fabric", r.Method, r.Path, r.Time.Format("15:04:05.000"))
			continue
		}
		if r.Method == "PUT" || r.Method == "POST" {
			writes++
		}
		if r.Method == "PUT" && strings.HasPrefix(r.Path, "/api/2.0/fs/files"+volume+"/demo/") {
			v := strings.Split(strings.TrimPrefix(r.Path, "/api/2.0/fs/files"+volume+"/demo/"), "/")[0]
			if v != o.version {
				t.Errorf("upload %s at %s, while %s (%s) held the fabric", r.Path, r.Time.Format("15:04:05.000"), o.id, o.version)
			}
		}
	}
	t.Logf("%d emulator calls (%d writes), each inside one deployment's hold", len(h.emu.Requests()), writes)

	t.Logf("%d deployed, %d superseded", len(order), len(superseded))

	// The final state is the newest version, deployed last.
	last := order[len(order)-1]
	if last.version != versions[n-1] {
		t.Errorf("the last deployment to hold the fabric was %s (%s), want the newest, %s", last.id, last.version, versions[n-1])
	}
	fs := h.fabricState("demo", "dev")
	for _, job := range []string{"daily", "hourly"} {
		if got := fs.Jobs[job]; got.Version != last.version || got.DeploymentID != last.id {
			t.Errorf("fabric/demo/dev records %s at %s from %s, want %s from %s (the newest)", job, got.Version, got.DeploymentID, last.version, last.id)
		}
	}
	if got := h.checkOneJobEach()["demo"]; got != last.version {
		t.Errorf("the workspace runs %s, want %s", got, last.version)
	}
	// One history entry per deployment; the last success is the newest (older
	// ones still queued when it finished are recorded superseded after it).
	lastSuccess, supersededEntries := "", 0
	for _, h := range fs.History {
		switch h.Outcome {
		case workflows.StatusSucceeded:
			lastSuccess = h.DeploymentID
		case workflows.StatusSuperseded:
			supersededEntries++
		}
	}
	if len(fs.History) < n || lastSuccess != last.id || supersededEntries != len(superseded) {
		t.Errorf("fabric history: %d entries, last success %s (want %s), %d superseded (want %d)",
			len(fs.History), lastSuccess, last.id, supersededEntries, len(superseded))
	}
	code, out, _ := h.shipline("deployments", "--project", "demo")
	if code != 0 || strings.Count(out, last.version) < 2 || !strings.Contains(out, "in sync") {
		t.Errorf("deployments: exit %d, want both jobs at %s and in sync:\n%s", code, last.version, out)
	}

	// While waiting, each status named the deployment then holding the fabric.
	pos := map[string]int{}
	for i, o := range order {
		pos[o.id] = i
	}
	sawQueued := map[string]bool{}
	stale := 0
	for _, s := range seen {
		sawQueued[s.id] = true
		if superseded[s.id] {
			continue // it never got the fabric: the order of holds says nothing about it
		}
		hp, known := pos[s.holder]
		switch {
		case !known:
			t.Errorf("status of %s named %s, which is none of the deployments", s.id, s.holder)
		case hp >= pos[s.id]:
			t.Errorf("status of %s named %s, which got the fabric after it", s.id, s.holder)
		case hp+1 < len(order) && s.at.After(order[hp+1].from.Add(2*time.Second)):
			// The next holder took the fabric more than 2 seconds before this
			// status (slack: a poll is not atomic with the workflows' signals).
			if stale < 5 {
				t.Errorf("status of %s at %s still named %s, which had finished at %s (the fabric was held by %s)",
					s.id, s.at.Format("15:04:05.000"), s.holder, order[hp].to.Format("15:04:05.000"), mustHolder(holderAt, s.at))
			}
			stale++
		}
	}
	if stale > 0 {
		t.Errorf("%d of %d queued sightings named a deployment that had already finished", stale, len(seen))
	}
	for i, o := range order[1:] {
		// A deployment that joined the queue well before the one ahead finished must have been seen queued.
		if o.queuedAt.Before(order[i].to.Add(-2*time.Second)) && !sawQueued[o.id] {
			t.Errorf("%s waited from %s to %s but its status never said it was queued", o.id, o.queuedAt.Format("15:04:05.000"), o.from.Format("15:04:05.000"))
		}
	}
}

// held is one deployment's hold of a fabric.
type held struct {
	id, version string
	from, to    time.Time // lock granted .. deployment finished (workflow time)
	queuedAt    time.Time // joined the queue (the queue step started)
}

func mustHolder(at func(time.Time) (held, bool), t time.Time) string {
	o, ok := at(t)
	if !ok {
		return "nobody"
	}
	return o.id
}

func firstLineOf(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
