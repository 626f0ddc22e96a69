package cli

import (
	"strings"
	"testing"

	"github.com/shipline/shipline/workflows"
)

// `deployments` says what a parked deployment left on a fabric and how to go on.
func TestParkedLine(t *testing.T) {
	p := workflows.ParkedDeployment{DeploymentID: "deploy/demo/v1.1.0/x", Version: "v1.1.0", Step: workflows.StepSchedule,
		Reason: "schedule failed: daily on dev: 403\nmore", LeftBehind: []string{"hourly"}}
	got := parkedLine("dev", p)
	want := "fabric dev: deploy/demo/v1.1.0/x (v1.1.0) is parked at schedule: schedule failed: daily on dev: 403; hourly run v1.1.0 from it; " +
		"`shipline resume deploy/demo/v1.1.0/x` queues it again, `shipline cancel deploy/demo/v1.1.0/x` ends it"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	p.Superseded = &workflows.Supersession{By: "deploy/demo/v1.2.0/y", Version: "v1.2.0", Succeeded: true, Reason: "deploy/demo/v1.2.0/y deployed the newer v1.2.0 to fabric dev"}
	if got := parkedLine("dev", p); !strings.Contains(got, "superseded (deploy/demo/v1.2.0/y deployed the newer v1.2.0 to fabric dev): resume is refused") {
		t.Fatalf("superseded: %q", got)
	}
}

// `deployments` says when the deployment holding a fabric waits for a job's active run.
func TestBusyLineSaysWhyTheHolderWaits(t *testing.T) {
	v := fabricView{Fabric: "qa", Queue: []workflows.QueueEntry{{DeploymentID: "deploy/demo/v1.2.0/x"}, {DeploymentID: "deploy/demo/v1.3.0/y"}},
		Busy: "waiting: nightly on qa has an active run 123 (running 4m); waiting up to 1h (active_runs: wait)"}
	want := "fabric qa: deploy/demo/v1.2.0/x is deploying — waiting: nightly on qa has an active run 123 (running 4m); waiting up to 1h (active_runs: wait); 1 waiting"
	if got := busyLine(v); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	v.Busy, v.Queue = "", v.Queue[:1]
	if got := busyLine(v); got != "fabric qa: deploy/demo/v1.2.0/x is deploying" {
		t.Fatalf("not waiting: %q", got)
	}
}
