package test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/workflows"
)

// auditLine is one JSON line of `shipline audit --json`.
type auditLine struct {
	Time       time.Time `json:"time"`
	Actor      string    `json:"actor"`
	Action     string    `json:"action"`
	Project    string    `json:"project"`
	Version    string    `json:"version"`
	Fabric     string    `json:"fabric"`
	Stage      string    `json:"stage"`
	Result     string    `json:"result"`
	Detail     string    `json:"detail"`
	Trigger    string    `json:"trigger"`
	WorkflowID string    `json:"workflow_id"`
}

// audit runs `shipline audit --json` and parses its lines.
func (f *deployFixture) audit(t *testing.T, args ...string) []auditLine {
	t.Helper()
	code, out, errOut := f.s.shipline(append([]string{"audit", "--project", "demo", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("audit: exit %d\n%s", code, errOut)
	}
	var lines []auditLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var a auditLine
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("audit line is not JSON: %v\n%s", err, l)
		}
		lines = append(lines, a)
	}
	return lines
}

// The audit of a project lists, in time order, who did what with which
// result: a release with its auto_deploy, a refused deploy, a deployment that
// parked and was resumed, and an approval refused by a validator (recorded in
// the project's Audit entity).
func TestAuditEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server and runs real builds")
	}
	f := newDeployFixture(t)

	code, out, _ := f.s.shipline("audit", "--project", "demo")
	if code != 0 || strings.TrimSpace(out) != "no actions recorded for demo" {
		t.Fatalf("audit of an untouched project: exit %d %q", code, out)
	}

	// 1. alice releases v1.0.0; auto_deploy deploys it.
	if code, out, errOut := f.s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, errOut)
	}
	// 2. mallory is in no owner team: refused.
	if code, _, errOut := f.s.shipline("deploy", "v1.0.0", "--project", "demo", "--as", "mallory", "--wait"); code != 1 {
		t.Fatalf("deploy as mallory: exit %d %q", code, errOut)
	}
	// 3. bob's deployment parks on a bad token; bob resumes it once it is fixed.
	t.Setenv(devTokenEnv, "dapi-e2e-wrong")
	code, res := f.deploy(t, "--as", "bob")
	if code != 1 || res.State.Status != workflows.StatusParked {
		t.Fatalf("bad token: exit %d state %+v", code, res.State)
	}
	t.Setenv(devTokenEnv, goodToken)
	if code, out, errOut := f.s.shipline("resume", res.WorkflowID, "--as", "bob", "--wait"); code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, errOut)
	}
	// 4. A refused update leaves no event in its target: the CLI reports it to
	// the project's Audit entity (recordRefusal), here through `cancel` of a
	// deployment that already ended, and directly with signal-with-start. A
	// client cannot seal an audit record (only Shipline's workers hold the
	// secret), so the audit shows both as unauthenticated reports, quoting
	// what they claim without believing it.
	code, _, errOut := f.s.shipline("cancel", res.WorkflowID, "--as", "bob")
	if code != 1 || !strings.Contains(errOut, "refused") {
		t.Fatalf("cancel of an ended deployment: exit %d %q", code, errOut)
	}
	signalRefusal(t, f.s, workflows.Refusal{Actor: "mallory", Action: workflows.ApproveUpdate, Target: workflows.PromoteID("demo", "v1.0.0"),
		Version: "v1.0.0", Stage: "prod", Reason: "mallory is not in team prod_support", At: time.Now().UTC()})

	want := []string{
		"alice release released",
		"alice deploy started",
		"alice deploy succeeded",
		"mallory deploy started",
		"mallory deploy refused",
		"bob deploy started",
		"bob deploy parked",
		"bob resume ok",
		"bob deploy succeeded",
		"unknown (unauthenticated) forge audit record refused",
		"unknown (unauthenticated) forge audit record refused",
	}
	lines := waitAudit(t, f, want)
	for i, l := range lines {
		if l.Project != "demo" || (l.Version != "v1.0.0" && l.WorkflowID != workflows.AuditID("demo")) || l.WorkflowID == "" || l.Time.IsZero() {
			t.Errorf("line %d: %+v", i, l)
		}
		if i > 0 && l.Time.Before(lines[i-1].Time) {
			t.Errorf("line %d is earlier than line %d", i, i-1)
		}
	}
	released, auto, refused, parkedStart, parked, resume, cancel, approval := lines[0], lines[2], lines[4], lines[5], lines[6], lines[7], lines[9], lines[10]
	if released.WorkflowID != workflows.ReleaseID("demo", "v1.0.0") || !strings.HasPrefix(released.Detail, "tag v1.0.0 at ") {
		t.Errorf("release line: %+v", released)
	}
	if auto.Trigger != "release" || auto.Fabric != "airflow-dev,dev" || auto.WorkflowID != workflows.DeployID("demo", "v1.0.0", "release") || lines[1].WorkflowID != auto.WorkflowID {
		t.Errorf("auto_deploy line: %+v", auto)
	}
	if !strings.Contains(refused.Detail, "owned by team developers") {
		t.Errorf("refused deploy line: %+v", refused)
	}
	if parked.WorkflowID != res.WorkflowID || parkedStart.WorkflowID != res.WorkflowID || !strings.Contains(parked.Detail, "parked") || !strings.Contains(parked.Detail, devTokenEnv) {
		t.Errorf("parked deploy line: %+v", parked)
	}
	if !resume.Time.After(parked.Time) || !lines[8].Time.After(resume.Time) {
		t.Errorf("parked %v, resumed %v, succeeded %v: not in the order they happened", parked.Time, resume.Time, lines[8].Time)
	}
	if resume.WorkflowID != res.WorkflowID || !strings.Contains(resume.Detail, "resuming") {
		t.Errorf("resume line: %+v", resume)
	}
	if !strings.Contains(cancel.Detail, "bob cancel on "+res.WorkflowID) {
		t.Errorf("refused cancel line: %+v", cancel)
	}
	if !strings.Contains(approval.Detail, "mallory approve on promote/demo/v1.0.0: mallory is not in team prod_support") {
		t.Errorf("refused approval line: %+v", approval)
	}

	// --since cuts earlier actions; the text form is a table; --output json is --json.
	if later := f.audit(t, "--since", parked.Time.Format(time.RFC3339Nano)); len(later) != 5 || later[0].Actor != "bob" || later[0].Result != "parked" {
		t.Errorf("--since the parked deploy: %+v", later)
	}
	if all := f.audit(t, "--since", "24h"); len(all) != len(want) {
		t.Errorf("--since 24h: %d lines, want %d", len(all), len(want))
	}
	code, out, _ = f.s.shipline("audit", "--project", "demo", "--since", time.Now().Add(time.Hour).Format(time.RFC3339))
	if code != 0 || !strings.Contains(out, "no actions recorded for demo since") {
		t.Errorf("audit since the future: exit %d %q", code, out)
	}
	code, out, _ = f.s.shipline("audit", "--project", "demo")
	if code != 0 || !strings.Contains(out, "FABRIC/STAGE") || !strings.Contains(out, "forge audit record") || strings.Count(out, "\n") != len(want)+1 {
		t.Errorf("audit table: exit %d\n%s", code, out)
	}
	code, out, _ = f.s.shipline("--output", "json", "audit", "--project", "demo")
	if code != 0 || strings.Count(out, "\n") != len(want) {
		t.Errorf("--output json: exit %d\n%s", code, out)
	}
	if code, _, errOut := f.s.shipline("audit", "--project", "demo", "--since", "yesterday"); code != 2 || !strings.Contains(errOut, "neither a time") {
		t.Errorf("--since yesterday: exit %d %q", code, errOut)
	}

	// A later delete adds a row at the end; the release's row keeps its result and its time.
	if code, out, errOut := f.s.shipline("delete", "v1.0.0", "--project", "demo", "--as", "alice"); code != 0 {
		t.Fatalf("delete: exit %d\n%s\n%s", code, out, errOut)
	}
	after := waitAudit(t, f, append(want, "alice delete ok"))
	if got := after[0]; got.Result != "released" || !got.Time.Equal(released.Time) || got.WorkflowID != released.WorkflowID {
		t.Errorf("after the delete, the release's row is %+v; was %+v", got, released)
	}
	if del := after[len(after)-1]; del.WorkflowID != released.WorkflowID || !del.Time.After(lines[len(lines)-1].Time) {
		t.Errorf("delete row: %+v", del)
	}
}

// waitAudit reads the audit until its "actor action result" lines are want
// (visibility is eventually consistent) and returns them.
func waitAudit(t *testing.T, f *deployFixture, want []string) []auditLine {
	t.Helper()
	var lines []auditLine
	var got []string
	for i := 0; i < 300; i++ {
		lines = f.audit(t)
		got = got[:0]
		for _, l := range lines {
			got = append(got, l.Actor+" "+l.Action+" "+l.Result)
		}
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			return lines
		}
		sleep100ms()
	}
	t.Fatalf("audit sequence:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	return nil
}

// signalRefusal records a refusal the way the CLI's recordRefusal does.
func signalRefusal(t *testing.T, s *stack, r workflows.Refusal) {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.address, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := workflows.AuditID("demo")
	_, err = c.SignalWithStartWorkflow(ctx, id, workflows.RefusalSignal, r, client.StartWorkflowOptions{
		ID: id, TaskQueue: s.cfg.Temporal.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.ProjectKey.ValueSet("demo")),
	}, workflows.AuditWorkflow, workflows.AuditInput{Project: "demo"})
	if err != nil {
		t.Fatalf("signal-with-start %s: %v", id, err)
	}
	// The entity keeps its own record of the attempt, without the claimed content.
	for i := 0; ; i++ {
		v, err := c.QueryWorkflow(ctx, id, "", workflows.StateQuery)
		var kept []workflows.Refusal
		if err == nil && v.Get(&kept) == nil && len(kept) > 0 {
			if last := kept[len(kept)-1]; !last.Unauthenticated || strings.Contains(last.Reason, r.Reason) {
				t.Fatalf("audit entity keeps %+v", last)
			}
			return
		}
		if i == 300 {
			t.Fatalf("audit entity state: %v %v", err, kept)
		}
		sleep100ms()
	}
}
