package test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/workflows"
)

// runsJSON is `shipline runs --output json`.
type runsJSON struct {
	Runs []struct {
		Fabric      string `json:"fabric"`
		Job         string `json:"job"`
		ID          string `json:"id"`
		State       string `json:"state"`
		Result      string `json:"result"`
		TriggeredBy string `json:"triggered_by"`
		Version     string `json:"version"`
		URL         string `json:"url"`
		WorkflowID  string `json:"workflow_id"`
	} `json:"runs"`
	Errors []struct{ Error string } `json:"errors"`
}

// TestRunOnDatabricks deploys the fixture to the emulated workspace, runs its
// Databricks job through `shipline run --wait` (the emulator's tasks go
// pending → running → success on its clock), lists it with `shipline runs`
// (who triggered it, the version), runs it again with a failing task (exit 1
// with the task's message and the run's URL), and finds the refusal and both
// runs in the audit, in order.
func TestRunOnDatabricks(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server and runs real builds")
	}
	f := newDeployFixture(t)
	if code, out, errOut := f.s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release+deploy: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, k := range []string{"ingest_orders", "enrich", "score_churn"} {
		f.emu.SetTaskBehavior(k, dbemu.TaskBehavior{Pending: time.Second, Running: 2 * time.Second})
	}

	// carol is not in the dev fabric's owner team: refused at once, nothing runs.
	code, _, errOut := f.s.shipline("run", "daily_orders", "--project", "demo", "--fabric", "dev", "--as", "carol")
	if code != 1 || !strings.Contains(errOut, "carol may not run jobs on fabric dev") || len(f.emu.Runs()) != 0 {
		t.Fatalf("run as carol: exit %d, %d runs\n%s", code, len(f.emu.Runs()), errOut)
	}

	code, out, errOut := f.s.shipline("run", "daily_orders", "--project", "demo", "--fabric", "dev", "--as", "bob", "--wait")
	if code != 0 {
		t.Fatalf("run --wait: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"running daily_orders of demo on dev (run/demo/dev/daily_orders/", "ingest_orders", "success", "daily_orders on dev succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("run --wait output lacks %q:\n%s", want, out)
		}
	}
	runs := f.emu.Runs()
	if len(runs) != 1 || runs[0].ResultState != "SUCCESS" || runs[0].IdempotencyToken == "" {
		t.Fatalf("emulator runs = %+v", runs)
	}

	// A retried CI step names the same --id: the run it started is shown, none is started.
	for range 2 {
		code, out, errOut = f.s.shipline("run", "daily_orders", "--project", "demo", "--fabric", "dev", "--as", "bob", "--id", "ci-42", "--wait")
		if code != 0 {
			t.Fatalf("run --id ci-42: exit %d\n%s\n%s", code, out, errOut)
		}
	}
	if !strings.Contains(out, "was started before (same --id)") || len(f.emu.Runs()) != 2 {
		t.Fatalf("the second run --id ci-42 made %d runs in all:\n%s", len(f.emu.Runs()), out)
	}

	f.emu.SetTaskBehavior("score_churn", dbemu.TaskBehavior{Pending: time.Second, Running: time.Second, Fail: "ValueError: no orders for today"})
	code, out, errOut = f.s.shipline("run", "daily_orders", "--project", "demo", "--fabric", "dev", "--as", "alice", "--wait")
	if code != 1 || !strings.Contains(errOut, "ValueError: no orders for today") || !strings.Contains(errOut, f.emu.URL) {
		t.Fatalf("failing run: exit %d\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = f.s.shipline("--output", "json", "runs", "--project", "demo", "--fabric", "dev")
	if code != 0 {
		t.Fatalf("runs: exit %d\n%s\n%s", code, out, errOut)
	}
	var got runsJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("runs output: %v\n%s", err, out)
	}
	if len(got.Runs) != 3 || len(got.Errors) != 0 {
		t.Fatalf("runs = %s", out)
	}
	// Newest first: alice's failed run, then bob's two.
	first, second := got.Runs[0], got.Runs[2]
	if first.Result != "failed" || first.TriggeredBy != "alice" || second.Result != "success" || second.TriggeredBy != "bob" ||
		second.Version != "v1.0.0" || second.Job != "daily_orders" || !strings.HasPrefix(second.WorkflowID, "run/demo/dev/daily_orders/") ||
		second.URL == "" {
		t.Errorf("runs = %s", out)
	}
	code, text, _ := f.s.shipline("runs", "--project", "demo")
	if code != 0 || !strings.Contains(text, "TRIGGERED BY") || !strings.Contains(text, "bob") {
		t.Errorf("runs text: exit %d\n%s", code, text)
	}

	// A long run, cancelled through `shipline cancel`: the remote run is cancelled.
	f.emu.SetTaskBehavior("score_churn", dbemu.TaskBehavior{Pending: time.Second, Running: time.Hour})
	code, out, errOut = f.s.shipline("--output", "json", "run", "daily_orders", "--project", "demo", "--fabric", "dev", "--as", "bob")
	var started struct {
		WorkflowID string                `json:"workflow_id"`
		Run        *workflows.RunOutcome `json:"run"`
	}
	if err := json.Unmarshal([]byte(out), &started); code != 0 || err != nil || started.Run == nil || started.Run.RunID == "" || started.Run.URL == "" {
		t.Fatalf("run without --wait: exit %d, %v\n%s\n%s", code, err, out, errOut)
	}
	if code, out, errOut := f.s.shipline("cancel", started.WorkflowID, "--as", "bob", "--wait"); code != 0 {
		t.Fatalf("cancel: exit %d\n%s\n%s", code, out, errOut)
	}
	runs = f.emu.Runs()
	if last := runs[len(runs)-1]; len(runs) != 4 || last.ResultState != "CANCELED" {
		t.Errorf("after cancel, emulator runs = %+v", runs)
	}

	code, out, _ = f.s.shipline("audit", "--project", "demo", "--json")
	if code != 0 {
		t.Fatalf("audit: exit %d", code)
	}
	var runRows []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct{ Actor, Action, Result, Fabric string }
		if json.Unmarshal([]byte(line), &r) == nil && r.Action == workflows.ActionRun {
			runRows = append(runRows, r.Actor+" "+r.Result+" "+r.Fabric)
		}
	}
	want := "carol started dev|carol refused dev|bob started dev|bob succeeded dev|bob started dev|bob succeeded dev|alice started dev|alice failed dev|bob started dev|bob cancelled dev"
	if strings.Join(runRows, "|") != want {
		t.Errorf("audit run rows = %q, want %q\n%s", runRows, want, out)
	}
}
