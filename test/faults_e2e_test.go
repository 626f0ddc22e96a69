package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/workflows"
)

// TestFlakyFabricAPIs: with 20 % of the workspace's calls failing (429, 503,
// before or after the call was handled; connections dropped before or after
// the call was handled) every deploy succeeds and leaves exactly one job each; a permanent 4xx (a rejected job
// payload, a revoked token, a token without rights) parks the deployment
// within seconds with the API's message, and `shipline resume` finishes it
// once the cause is gone.
func TestFlakyFabricAPIs(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	begin := time.Now()
	h := newHardEnv(t, hardOptions{Projects: []string{"demo"}, Seed: 21})
	h.inProcessWorker()
	const flaky = 5 // deploys under random faults, after one under a single 503
	var versions []string
	for i := range 1 + flaky + 3 {
		v := fmt.Sprintf("v1.0.%d", i)
		if i > 0 {
			h.change("demo", i%2 == 0)
		}
		h.release("demo", v)
		versions = append(versions, v)
	}
	t.Logf("setup and %d releases took %s", len(versions), time.Since(begin).Round(time.Millisecond))

	// 0. The first deploy: one 503 on an upload is retried by the SDK inside
	// the activity (the file is sent again: the Upload activity's first
	// attempt succeeds); the answers of both job creates are lost, one by a
	// dropped connection, one by a 503 the SDK would resend on its own (the
	// retry finds the job instead of creating a second one).
	h.emu.Inject(dbemu.Fault{Method: "PUT", Path: "/api/2.0/fs/files/Volumes/*", Status: 503, Times: 1})
	h.emu.Inject(dbemu.Fault{Method: "POST", Path: "/api/2.2/jobs/create", Drop: dbemu.DropAfter, Times: 1})
	h.emu.Inject(dbemu.Fault{Method: "POST", Path: "/api/2.2/jobs/create", Status: 503, After: true, Times: 1})
	id := h.startDeploy("demo", versions[0])
	if s := h.waitDeploy(id, 2*time.Minute); s.Status != workflows.StatusSucceeded {
		t.Fatalf("%s with one 503 on an upload and a lost create ended %s: %s", id, s.Status, s.Summary)
	}
	h.emu.ClearFaults()
	if n := h.activityAttempts(id)["Upload"]; n != 1 {
		t.Errorf("one 503 on an upload took %d attempts of the Upload activity, want 1 (the SDK's own retry must resend the file)", n)
	}
	lost := 0
	for _, r := range h.emu.Requests() {
		if r.Path == "/api/2.2/jobs/create" && strings.Contains(r.Fault, "after handling") {
			lost++
		}
	}
	if lost != 2 {
		t.Errorf("%d job creates lost their answer, want 2", lost)
	}
	h.checkOneJobEach()
	versions = versions[1:]

	// 1. Transient faults: 12 % answered 429/503 by the emulator (half of them
	// after the call was handled), 8 % of the connections dropped by the
	// proxy (half of them after the call was handled), plus one lost answer
	// of an upload.
	h.emu.Inject(dbemu.Fault{Method: "PUT", Path: "/api/2.0/fs/files/Volumes/*", Drop: dbemu.DropAfter, Times: 1})
	h.emu.RandomFaults(0.12, []int{429, 503})
	h.emu.LoseRandomAnswers(0.5)
	h.flaky.setDrops(0.08)
	h.emu.ResetRequests()
	for _, v := range versions[:flaky] {
		start := time.Now()
		id := h.startDeploy("demo", v)
		s := h.waitDeploy(id, 5*time.Minute)
		if s.Status != workflows.StatusSucceeded {
			t.Fatalf("%s under transient faults ended %s: %s", id, s.Status, s.Summary)
		}
		t.Logf("%s succeeded under transient faults in %s", id, time.Since(start).Round(time.Millisecond))
		h.checkOneJobEach()
	}
	h.emu.ClearFaults()
	h.flaky.setDrops(0)
	faulted := 0
	reqs := h.emu.Requests()
	for _, r := range reqs {
		if r.Fault != "" {
			faulted++
		}
	}
	t.Logf("transient phase: %d calls reached the emulator, %d answered with a fault, %d more dropped by the proxy",
		len(reqs), faulted, h.flaky.drops())
	if faulted == 0 || h.flaky.drops() == 0 {
		t.Errorf("no faults were injected (%d emulator faults, %d drops)", faulted, h.flaky.drops())
	}

	// 2. Permanent faults park the deployment with the API's message; resume finishes it.
	cases := []struct {
		name, version, step string
		fault, clear        func()
		want                []string
	}{
		{
			name: "job payload rejected (400)", version: versions[flaky], step: workflows.StepSchedule,
			fault: func() { h.emu.Inject(dbemu.Fault{Method: "POST", Path: "/api/2.2/jobs/reset", Status: 400}) },
			clear: h.emu.ClearFaults,
			want:  []string{"400 INVALID_PARAMETER_VALUE", "Injected invalid parameter."},
		},
		{
			name: "token revoked (401)", version: versions[flaky+1], step: workflows.StepUpload,
			fault: func() { h.emu.RevokeToken(goodToken) },
			clear: func() { h.emu.AddToken(goodToken) },
			// The first call is a HEAD (file metadata), whose answer has no body: no error_code or message.
			want: []string{"401: Unauthorized", hardTokenEnv},
		},
		{
			name: "token without rights (403)", version: versions[flaky+2], step: workflows.StepUpload,
			fault: func() { h.emu.DenyToken(goodToken) },
			clear: func() { h.emu.AddToken(goodToken) },
			want:  []string{"403: Forbidden", hardTokenEnv},
		},
	}
	for _, c := range cases {
		c.fault()
		start := time.Now()
		id := h.startDeploy("demo", c.version)
		s := h.waitDeploy(id, 2*time.Minute)
		took := time.Since(start).Round(time.Millisecond)
		if s.Status != workflows.StatusParked || s.Parked == nil {
			t.Fatalf("%s: %s ended %s, want parked: %s", c.name, id, s.Status, s.Summary)
		}
		t.Logf("%s: %s parked at %s after %s: %s", c.name, id, s.Parked.Step, took, s.Parked.Reason)
		if s.Parked.Step != c.step {
			t.Errorf("%s: parked at %s, want %s", c.name, s.Parked.Step, c.step)
		}
		for _, w := range c.want {
			if !strings.Contains(s.Parked.Reason, w) {
				t.Errorf("%s: parked reason lacks %q: %s", c.name, w, s.Parked.Reason)
			}
		}
		if strings.Contains(s.Parked.Reason, goodToken) {
			t.Errorf("%s: parked reason holds the token: %s", c.name, s.Parked.Reason)
		}
		code, out, _ := h.shipline("status", id)
		if code != 0 || !strings.Contains(out, "parked at "+c.step) || !strings.Contains(out, "shipline resume "+id) {
			t.Errorf("%s: status of a parked deployment: exit %d\n%s", c.name, code, out)
		}
		// Resuming before the cause is fixed parks it again, with the same reason.
		if code, out, errOut := h.shipline("resume", id, "--as", "bob", "--wait"); code != 1 || !strings.Contains(out+errOut, c.want[0]) {
			t.Errorf("%s: resume before the fix: exit %d, want 1 naming %q", c.name, code, c.want[0])
		}
		c.clear()
		code, out, errOut := h.shipline("resume", id, "--as", "bob", "--wait")
		if code != 0 || !strings.Contains(out, "deployed "+c.version) {
			t.Fatalf("%s: resume after the fix: exit %d\n%s\n%s", c.name, code, out, errOut)
		}
		if got := h.checkOneJobEach()["demo"]; got != c.version {
			t.Errorf("%s: the fabric runs %s after the resume, want %s", c.name, got, c.version)
		}
	}

	// Nothing lost or stuck: every deployment completed; every artifact is the cache's.
	for id, st := range h.deployExecutions() {
		if st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			t.Errorf("deployment %s is %s, want completed", id, st)
		}
	}
	t.Logf("%d artifacts on the volume match the build cache", h.checkArtifacts())
}
