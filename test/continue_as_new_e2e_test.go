package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/workflows"
)

// TestPromotionWithManyMessages sends a waiting promotion 1,000 messages —
// status queries, refused votes and 20 accepted approvals — on a server that
// suggests continue-as-new after 40 events. The promotion continues as new
// (several runs), carries its approvals, keeps each run's history short, and
// answers correctly throughout and at the end.
func TestPromotionWithManyMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	root := t.TempDir()
	remote, _ := fixtureProject(t, root, projectTrees...)
	var reviewers []string
	for i := 1; i <= 25; i++ {
		reviewers = append(reviewers, fmt.Sprintf("r%02d", i))
	}
	cfg := fmt.Sprintf(`state_dir: state
teams:
  developers: {members: [alice, bob]}
  reviewers:  {members: [%s]}
projects:
  demo: {repo: %s, admins: [alice], auto_deploy: false}
fabrics:
  dev:         {kind: local, owner: developers, root: fabrics/dev}
  airflow-dev: {kind: local, owner: developers, root: fabrics/airflow-dev}
  prod:        {kind: local, owner: reviewers, root: fabrics/prod}
promotion:
  stages:
    - {name: prod, fabrics: [prod], approval: {team: reviewers, required: 20}}
`, strings.Join(reviewers, ", "), remote)
	cfgPath := filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStackWith(t, cfgPath, 0, map[string]any{"limit.historyCount.suggestContinueAsNew": 40})
	if code, _, _ := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatal("release failed")
	}
	id := workflows.PromoteID("demo", "v1.0.0")
	if code, _, _ := s.shipline("promote", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatal("promote failed")
	}

	c, err := client.Dial(client.Options{HostPort: s.address})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	hash := stagePlanHash(t, s, id, "prod")
	vote := func(update string, v workflows.Vote) error {
		v.PlanHash = hash // the plan the gate shows
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: update, Args: []any{v}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		return err
	}
	approved := 0
	for i := 0; i < 1000; i++ {
		switch {
		case i%50 == 49 && approved < 19: // 19 accepted approvals spread over the run
			if err := vote(workflows.ApproveUpdate, workflows.Vote{Stage: "prod", Actor: reviewers[approved]}); err != nil {
				t.Fatalf("approval %d refused: %v", approved, err)
			}
			approved++
		case i%3 == 0:
			v, err := c.QueryWorkflow(ctx, id, "", workflows.PendingQuery)
			if err != nil {
				t.Fatalf("pending query %d: %v", i, err)
			}
			var pending string
			_ = v.Get(&pending)
			if want := fmt.Sprintf("prod: %d of 20 approvals from reviewers", approved); !strings.HasPrefix(pending, want) {
				t.Fatalf("message %d: pending = %q, want prefix %q", i, pending, want)
			}
		case i%3 == 1:
			if err := vote(workflows.ApproveUpdate, workflows.Vote{Stage: "prod", Actor: "bob"}); err == nil || !strings.Contains(err.Error(), "only members of reviewers") {
				t.Fatalf("message %d: bob's approval: %v", i, err)
			}
		default:
			if approved == 0 {
				continue
			}
			if err := vote(workflows.ApproveUpdate, workflows.Vote{Stage: "prod", Actor: reviewers[0]}); err == nil || !strings.Contains(err.Error(), "already approved") {
				t.Fatalf("message %d: double vote: %v", i, err)
			}
		}
	}
	if approved != 19 {
		t.Fatalf("sent %d approvals", approved)
	}
	runs := promoteRuns(ctx, t, c, id)
	if runs < 2 {
		t.Fatalf("the promotion ran in %d run(s); with 19 approvals and a 40-event limit it should have continued as new", runs)
	}
	desc, err := c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if desc.HistoryLength > 80 {
		t.Fatalf("current run's history has %d events; continue-as-new should keep it short", desc.HistoryLength)
	}
	// The last approval completes the gate: the state carried across runs counts 20.
	if err := vote(workflows.ApproveUpdate, workflows.Vote{Stage: "prod", Actor: reviewers[19]}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, id, "promoted v1.0.0 of demo to prod")
	_, out, _ := s.shipline("--output", "json", "status", id)
	if strings.Count(out, `"actor": "r`) < 20 {
		t.Fatalf("the final state lost approvals:\n%s", out)
	}
	t.Logf("promotion ran in %d runs; last run %d events", promoteRuns(ctx, t, c, id), desc.HistoryLength)
}

// promoteRuns counts the runs of a workflow ID (continued-as-new ones included).
func promoteRuns(ctx context.Context, t *testing.T, c client.Client, id string) int {
	t.Helper()
	var n int
	for i := 0; i < 50; i++ {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", id)})
		if err != nil {
			t.Fatal(err)
		}
		if n = len(resp.Executions); n > 1 {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
	return n
}
