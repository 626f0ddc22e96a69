package test

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/shipline/shipline/workflows"
)

// statusOf is `shipline --output json status ID`: Temporal's start and close
// times of the workflow, and its state.
func statusOf(tb testing.TB, s *stack, id string, state any) (started time.Time, closed *time.Time) {
	tb.Helper()
	code, out, errOut := s.shipline("--output", "json", "status", id)
	if code != 0 {
		tb.Fatalf("status %s: exit %d %s", id, code, errOut)
	}
	var res struct {
		Started time.Time       `json:"started"`
		Closed  *time.Time      `json:"closed"`
		State   json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		tb.Fatalf("status %s: %v\n%s", id, err, out)
	}
	if state != nil {
		if err := json.Unmarshal(res.State, state); err != nil {
			tb.Fatalf("state of %s: %v", id, err)
		}
	}
	return res.Started, res.Closed
}

// BenchmarkVerifyStart measures, on the embedded stack with the Databricks
// emulator, the time from a stage's deployment finishing (the Deploy child's
// close time, as Temporal records it) to its verification run starting (the
// Run child's start time): 10 releases promoted to qa, which verifies
// daily_orders; it reports the median and the slowest.
//
//	go test ./test -run '^$' -bench VerifyStart -benchtime 1x
func BenchmarkVerifyStart(b *testing.B) {
	f := newPromoteFixtureWith(b, verifyStages)
	quickTasks(f.emus["qa"], "")
	const n = 10
	for iter := 0; iter < b.N; iter++ {
		gaps := make([]time.Duration, 0, n)
		for i := 0; i < n; i++ {
			v := fmt.Sprintf("v1.%d.%d", iter, i)
			releaseNext(b, f, v)
			if code, out, errOut := f.s.shipline("promote", v, "--project", "demo", "--to", "qa", "--as", "alice", "--wait"); code != 0 {
				b.Fatalf("promote %s: exit %d\n%s\n%s", v, code, out, errOut)
			}
			var p workflows.PromoteState
			statusOf(b, f.s, workflows.PromoteID("demo", v), &p)
			qa := p.Stages[1]
			if qa.Status != workflows.StageVerified || len(qa.Runs) != 1 {
				b.Fatalf("qa after promoting %s: %+v", v, qa)
			}
			_, deployed := statusOf(b, f.s, qa.DeploymentID, nil)
			runStarted, _ := statusOf(b, f.s, qa.Runs[0].WorkflowID, nil)
			if deployed == nil {
				b.Fatalf("deployment %s has no close time", qa.DeploymentID)
			}
			gaps = append(gaps, runStarted.Sub(*deployed))
		}
		sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
		b.ReportMetric(float64(gaps[n/2].Microseconds())/1000, "ms-median")
		b.ReportMetric(float64(gaps[n-1].Microseconds())/1000, "ms-max")
	}
}
