package test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/workflows"
)

// workTypes are the workflows that stand for work people asked for; every other
// row in the namespace's list is bookkeeping of a read.
var workTypes = []string{workflows.ReleaseWorkflow, workflows.DeployWorkflow, workflows.PromoteWorkflow, workflows.FabricWorkflow, workflows.AuditWorkflow}

// Read-only commands — `releases --refresh`, `plan`, `deployments` (drift
// against the live fabrics) and `logs` — run many times, some at once, add one
// workflow to the namespace's list in all (the project's read-only entity), and
// each answers as before.
func TestReadOnlyCommandsShareOneProjectEntity(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server and runs real builds")
	}
	f := newDeployFixture(t)
	if code, out, errOut := f.s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release+deploy: exit %d\n%s\n%s", code, out, errOut)
	}
	commit := git(t, f.remote, "rev-parse", "v1.0.0^{commit}")
	// A tag pushed by hand: only a refresh, which fetches the remote, sees it.
	git(t, f.workDir, "tag", "v0.9.0")
	git(t, f.workDir, "push", "-q", f.remote, "v0.9.0")
	deployment := onlyDeployment(t, f)

	// Each read checks its answer; the first round runs all of them at once,
	// before the entity exists (concurrent update-with-start), then twice in turn.
	reads := map[string]func(t *testing.T){
		"releases --refresh": func(t *testing.T) { checkRefresh(t, f, commit) },
		"plan":               func(t *testing.T) { checkPlan(t, f, commit) },
		"deployments":        func(t *testing.T) { checkDeployments(t, f, deployment) },
		"logs":               func(t *testing.T) { checkLogs(t, f, deployment) },
	}
	names := sortedKeysOf(reads)
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() { defer wg.Done(); reads[name](t) }()
	}
	wg.Wait()
	for range 2 {
		for _, name := range names {
			reads[name](t)
		}
	}

	c, err := client.Dial(client.Options{HostPort: f.s.address, Namespace: "default", Logger: quietSDKLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var reading []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{NextPageToken: token, PageSize: 500})
		if err != nil {
			t.Fatalf("list the namespace's workflows: %v", err)
		}
		for _, ex := range resp.Executions {
			if typ := ex.GetType().GetName(); !slices.Contains(workTypes, typ) {
				reading = append(reading, fmt.Sprintf("%s (%s, %s)", ex.GetExecution().GetWorkflowId(), typ, ex.GetStatus()))
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	if d, err := c.DescribeWorkflowExecution(ctx, workflows.ProjectID("demo"), ""); err == nil {
		info := d.GetWorkflowExecutionInfo()
		t.Logf("%s after %d reads: %d history events, %d bytes", workflows.ProjectID("demo"), 3*len(reads), info.GetHistoryLength(), info.GetHistorySizeBytes())
	}
	want := fmt.Sprintf("%s (%s, %s)", workflows.ProjectID("demo"), workflows.ProjectWorkflow, "Running")
	if len(reading) != 1 || reading[0] != want {
		t.Errorf("%d reads left these rows besides releases, deployments, promotions, fabrics and audits:\n  %s\nwant only %s",
			3*len(reads), strings.Join(reading, "\n  "), want)
	}
}

// onlyDeployment returns the ID of the project's one deployment (auto_deploy).
func onlyDeployment(t *testing.T, f *deployFixture) string {
	t.Helper()
	code, out, errOut := f.s.shipline("--output", "json", "history", "--project", "demo")
	var rows []struct {
		ID string `json:"deployment_id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 {
		t.Fatalf("history: exit %d, want one deployment\n%s\n%s", code, out, errOut)
	}
	return rows[0].ID
}

func checkRefresh(t *testing.T, f *deployFixture, commit string) {
	code, out, errOut := f.s.shipline("--output", "json", "releases", "--project", "demo", "--refresh")
	var rows []struct {
		Version string `json:"version"`
		Commit  string `json:"commit"`
		Source  string `json:"source"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Errorf("releases --refresh: exit %d\n%s\n%s", code, out, errOut)
		return
	}
	got := fmt.Sprint(rows)
	if want := fmt.Sprintf("[{v1.0.0 %s shipline} {v0.9.0 %s external}]", commit, commit); got != want {
		t.Errorf("releases --refresh = %s, want %s", got, want)
	}
}

func checkPlan(t *testing.T, f *deployFixture, commit string) {
	code, out, errOut := f.s.shipline("--output", "json", "plan", "v1.0.0", "--project", "demo")
	var p workflows.PlanOutput
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil {
		t.Errorf("plan: exit %d\n%s\n%s", code, out, errOut)
		return
	}
	if p.Project != "demo" || p.Version != "v1.0.0" || p.Commit != commit || len(p.Builds) != 3 || len(p.Jobs) != 2 {
		t.Errorf("plan of the deployed release = %+v", p)
	}
	for _, b := range p.Builds {
		if b.Action != "cached" {
			t.Errorf("plan would %s %s, deployed already", b.Action, b.Pipeline)
		}
	}
	for _, j := range p.Jobs {
		if j.Action != "unchanged" {
			t.Errorf("plan would %s %s on %s, deployed already: %s", j.Action, j.Job, j.Fabric, j.Detail)
		}
	}
}

func checkDeployments(t *testing.T, f *deployFixture, deployment string) {
	code, out, errOut := f.s.shipline("--output", "json", "deployments", "--project", "demo")
	var views []struct {
		Fabric string `json:"fabric"`
		Jobs   []struct {
			Job          string `json:"job"`
			Version      string `json:"version"`
			DeploymentID string `json:"deployment_id"`
			Drift        string `json:"drift"`
		} `json:"jobs"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &views) != nil {
		t.Errorf("deployments: exit %d\n%s\n%s", code, out, errOut)
		return
	}
	var got []string
	for _, v := range views {
		for _, j := range v.Jobs {
			if j.DeploymentID != deployment {
				t.Errorf("%s on %s comes from %s, want %s", j.Job, v.Fabric, j.DeploymentID, deployment)
			}
			got = append(got, fmt.Sprintf("%s/%s %s %s", v.Fabric, j.Job, j.Version, j.Drift))
		}
	}
	if want := "[airflow-dev/orders_dag v1.0.0 in sync dev/daily_orders v1.0.0 in sync]"; fmt.Sprint(got) != want {
		t.Errorf("deployments = %v, want %s", got, want)
	}
}

func checkLogs(t *testing.T, f *deployFixture, deployment string) {
	code, out, errOut := f.s.shipline("--output", "json", "logs", deployment)
	var logs workflows.ReadLogsOutput
	if code != 0 || json.Unmarshal([]byte(out), &logs) != nil {
		t.Errorf("logs: exit %d\n%s\n%s", code, out, errOut)
		return
	}
	if len(logs.Logs) != 3 || slices.ContainsFunc(logs.Logs, func(l activities.LogFile) bool { return l.Content == "" || l.Error != "" }) {
		t.Errorf("logs of %s = %+v, want the 3 builds' logs", deployment, logs.Logs)
	}
}
