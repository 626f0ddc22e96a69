package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/shipline/shipline/activities"
)

// A flood of recheck-window signals (anyone with a Temporal client may send
// them) reads the windows at most once per windowRecheckPace: each read is an
// activity in the waiting workflow's history.
func TestRecheckWindowFloodIsPaced(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	start := time.Date(2026, 11, 28, 10, 0, 0, 0, berlin) // Saturday
	e.SetStartTime(start)
	cfg := parseWindowsPlatform(t, windowsPlatform)
	reads := 0
	e.OnActivity(configActs.Window, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.WindowInput) (activities.WindowOutput, error) {
		reads++
		return (&activities.Config{Platform: cfg}).Window(ctx, in)
	})
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	e.vote(2*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "carol"}, "")
	e.vote(3*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "dave"}, "")
	const flood = 300 // one a second for five minutes, from the first hour on
	for i := range flood {
		e.RegisterDelayedCallback(func() { e.SignalWorkflow(RecheckWindowSignal, nil) }, time.Hour+time.Duration(i)*time.Second)
	}
	readsAt := map[string]int{}
	e.RegisterDelayedCallback(func() { readsAt["flood"] = reads }, time.Hour+flood*time.Second+2*windowRecheckPace)
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusPromoted {
		t.Fatalf("status %s: %s", s.Status, s.Summary)
	}
	// Before the flood: dev, qa, prod read once each (prod closed).
	maxReads := 3 + int(flood*time.Second/windowRecheckPace) + 2
	if readsAt["flood"] > maxReads {
		t.Errorf("%d recheck signals made %d reads of the windows, want at most %d (one per %s)", flood, readsAt["flood"], maxReads, windowRecheckPace)
	}
	if got := s.Stages[2].DeployedAt.In(berlin); !got.Equal(time.Date(2026, 11, 30, 8, 0, 0, 0, berlin)) {
		t.Errorf("prod deployed at %s, want Mon 2026-11-30 08:00 Berlin", got)
	}
}

// A rollback restores what the stage verified: it never waits for a window,
// not even in a freeze.
func TestRollbackDuringAFreezeDoesNotWait(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	start := time.Date(2026, 12, 23, 10, 0, 0, 0, berlin) // in the year-end freeze of prod
	e.SetStartTime(start)
	useWindows(t, e.TestWorkflowEnvironment, windowsPlatform)
	e.olderRelease("v1.0.0", "sha-old")
	e.stageRan("prod", "v1.0.0", "v1.1.0")
	s, err := e.rollback(PromoteInput{Project: "demo", Actor: "carol", Rollback: &RollbackRequest{Stage: "prod", Emergency: true, Reason: "pager"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusRolledBack || len(e.deploys) != 1 || e.deploys[0].Stage != "prod" {
		t.Fatalf("status %s (%s), deploys %+v", s.Status, s.Summary, e.deploys)
	}
	if got := e.Now().Sub(start); got > time.Hour {
		t.Errorf("the rollback ended %s after its start: it waited", got)
	}
}
