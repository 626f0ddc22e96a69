package test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/workflows"
)

// hookReceiver is a real HTTP receiver of notifications: it keeps each post
// with its headers, as a Slack channel or a team's webhook endpoint would.
type hookReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	posts []hookPost
}

type hookPost struct {
	header http.Header
	body   []byte
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.posts = append(r.posts, hookPost{header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(r.Close)
	return r
}

// await returns the first post of the event, waiting (bounded) for it.
func (r *hookReceiver) await(t *testing.T, event string) hookPost {
	t.Helper()
	for i := 0; i < 600; i++ {
		r.mu.Lock()
		for _, p := range r.posts {
			if p.header.Get("X-Shipline-Event") == event {
				r.mu.Unlock()
				return p
			}
		}
		r.mu.Unlock()
		sleep100ms()
	}
	t.Fatalf("no %s notification arrived in 60s", event)
	return hookPost{}
}

func TestNotificationsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	const secret = "e2e-webhook-signing-secret"
	const slackToken = "T0E2E/B0E2E/slacktoken0123"
	slack, hook := newHookReceiver(t), newHookReceiver(t)
	t.Setenv("SHIPLINE_TEST_SLACK_URL", slack.URL+"/services/"+slackToken)
	t.Setenv("SHIPLINE_TEST_HOOK_URL", hook.URL+"/shipline")
	t.Setenv("SHIPLINE_TEST_HOOK_SECRET", secret)
	// A receiver that is down: nothing listens on its port.
	down := newHookReceiver(t)
	t.Setenv("SHIPLINE_TEST_DOWN_URL", down.URL+"/down")
	down.Close()
	f := newPromoteFixtureWith(t, `    - {name: dev, fabrics: [dev, airflow-dev]}
    - {name: qa,  fabrics: [qa], approval: {team: developers, required: 1}}
notifications:
  - {name: team, kind: slack, url_env: SHIPLINE_TEST_SLACK_URL, events: [approval_needed, reminder, promoted], remind_every: 4h, escalate_after: 24h, escalate_to: audit}
  - {name: audit, kind: webhook, url_env: SHIPLINE_TEST_HOOK_URL, secret_env: SHIPLINE_TEST_HOOK_SECRET, events: [approval_needed, parked, promoted]}
  - {name: down, kind: slack, url_env: SHIPLINE_TEST_DOWN_URL, events: [promoted]}
`)
	sh := f.s.shipline
	if code, out, errOut := sh("release", "v1.2.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release: %s\n%s", out, errOut)
	}
	if code, out, _ := sh("promote", "v1.2.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 || !strings.Contains(out, "qa: 0 of 1 approvals") {
		t.Fatalf("promote: exit %d\n%s", code, out)
	}

	// The gate is waiting: both receivers are told, with who may approve.
	s := slack.await(t, "approval_needed")
	var msg struct {
		Text   string           `json:"text"`
		Blocks []map[string]any `json:"blocks"`
	}
	if err := json.Unmarshal(s.body, &msg); err != nil || !strings.Contains(msg.Text, "Approval needed: v1.2.0 of demo at qa") ||
		len(msg.Blocks) == 0 || msg.Blocks[0]["type"] != "section" || !strings.Contains(string(s.body), "*May approve:* alice, bob") {
		t.Fatalf("slack message (%v): %s", err, s.body)
	}
	h := hook.await(t, "approval_needed")
	verifySignature(t, h, secret)
	var ev map[string]any
	if err := json.Unmarshal(h.body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev["event"] != "approval_needed" || ev["project"] != "demo" || ev["version"] != "v1.2.0" || ev["stage"] != "qa" || ev["actor"] != "alice" ||
		!strings.Contains(strings.Join(anyStrings(ev["approvers"]), ","), "alice,bob") {
		t.Fatalf("webhook event: %s", h.body)
	}
	if id, _ := ev["id"].(string); !strings.HasPrefix(id, "notify/"+workflows.PromoteID("demo", "v1.2.0")+"/") ||
		h.header.Get("X-Shipline-Delivery") != id+"/audit" || s.header.Get("X-Shipline-Delivery") != id+"/team" {
		t.Fatalf("ids: event %v, deliveries %q %q", ev["id"], h.header.Get("X-Shipline-Delivery"), s.header.Get("X-Shipline-Delivery"))
	}

	if code, out, _ := sh("status", ev["id"].(string)); code != 0 || !strings.Contains(out, "approval_needed delivered to team, audit") {
		t.Fatalf("status of the delivery: exit %d\n%s", code, out)
	}

	// Approval: the promotion goes on and says it reached qa.
	if code, _, _ := sh("approve", "v1.2.0", "--project", "demo", "--stage", "qa", "--as", "bob"); code != 0 {
		t.Fatal("bob's approval refused")
	}
	waitFor(t, f.s, workflows.PromoteID("demo", "v1.2.0"), "promoted v1.2.0 of demo to qa")
	p := hook.await(t, "promoted")
	verifySignature(t, p, secret)
	if !strings.Contains(string(p.body), `"summary":"promoted v1.2.0 of demo to qa"`) {
		t.Fatalf("promoted: %s", p.body)
	}
	slack.await(t, "promoted")
	// The promotion ended while the receiver that is down is still retried
	// (for up to an hour) by the promoted event's own Notify workflow.
	var pev map[string]any
	if err := json.Unmarshal(p.body, &pev); err != nil {
		t.Fatal(err)
	}
	awaitRetrying(t, f.s, pev["id"].(string))
	// The promotion's status says who was told what, and which receiver
	// has not taken it yet, with its answer.
	code, out, _ := sh("status", workflows.PromoteID("demo", "v1.2.0"))
	if code != 0 || !strings.Contains(out, "  notifications:\n") ||
		!regexp.MustCompile(`approval_needed \(qa\) +team: delivered; audit: delivered`).MatchString(out) ||
		!regexp.MustCompile(`promoted \(qa\) +.*down: retrying \(attempt \d+\): notification target down did not answer`).MatchString(out) {
		t.Fatalf("status of the promotion: exit %d\n%s", code, out)
	}

	// A deployment that parks (a bad token) tells the webhook why and how to resume.
	t.Setenv(devTokenEnv, "dapi-e2e-wrong")
	code, out, _ = sh("deploy", "v1.2.0", "--project", "demo", "--as", "bob", "--wait")
	if code != 1 || !strings.Contains(out, "parked") {
		t.Fatalf("deploy with a bad token: exit %d\n%s", code, out)
	}
	parked := hook.await(t, "parked")
	verifySignature(t, parked, secret)
	var pe map[string]any
	if err := json.Unmarshal(parked.body, &pe); err != nil {
		t.Fatal(err)
	}
	if reason, _ := pe["reason"].(string); pe["actor"] != "bob" || pe["version"] != "v1.2.0" || !strings.Contains(reason, devTokenEnv) ||
		!strings.Contains(pe["summary"].(string), "shipline resume deploy/demo/v1.2.0/") {
		t.Fatalf("parked event: %s", parked.body)
	}
	t.Setenv(devTokenEnv, goodToken)
	id := pe["workflow_id"].(string)
	if code, _, errOut := sh("resume", id, "--as", "bob", "--wait"); code != 0 {
		t.Fatalf("resume %s: %s", id, errOut)
	}

	// The URLs' tokens and the signing secret never entered a history, and
	// the promotion (gate timers and all) replays on this code.
	assertNoSecretsInHistory(t, f.s, secret, slackToken, "dapi-e2e-wrong")
	replayPromotion(t, f.s, workflows.PromoteID("demo", "v1.2.0"))
}

// awaitRetrying waits (bounded) until the Notify workflow id runs with a
// delivery past its first attempt.
func awaitRetrying(t *testing.T, s *stack, id string) {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.address})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 300; i++ {
		desc, err := c.DescribeWorkflowExecution(context.Background(), id, "")
		if err != nil {
			t.Fatal(err)
		}
		if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Fatalf("%s is %s; want it still retrying the receiver that is down", id, st)
		}
		for _, a := range desc.GetPendingActivities() {
			if a.GetAttempt() >= 2 && strings.Contains(a.GetLastFailure().GetMessage(), "notification target down did not answer") {
				return
			}
		}
		sleep100ms()
	}
	t.Fatalf("%s never retried the receiver that is down", id)
}

// verifySignature checks X-Shipline-Signature as a receiver does: HMAC-SHA256
// of the raw body with the shared secret, compared in constant time.
func verifySignature(t *testing.T, p hookPost, secret string) {
	t.Helper()
	sig, ok := strings.CutPrefix(p.header.Get("X-Shipline-Signature"), "sha256=")
	got, err := hex.DecodeString(sig)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(p.body)
	if !ok || err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		t.Fatalf("signature %q does not verify", p.header.Get("X-Shipline-Signature"))
	}
}

func anyStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, s := range list {
		if str, ok := s.(string); ok {
			out = append(out, str)
		}
	}
	return out
}

// replayPromotion replays the latest run of a promotion from the server's history.
func replayPromotion(t *testing.T, s *stack, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(client.Options{HostPort: s.address})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	run := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	var h historypb.History
	iter := c.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, e)
	}
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workflows.Promote, workflow.RegisterOptions{Name: workflows.PromoteWorkflow})
	// As the run it was: child IDs (deployments, notifications) name their parent's run.
	opts := worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: id, RunID: run}}
	if err := replayer.ReplayWorkflowHistoryWithOptions(nil, &h, opts); err != nil {
		t.Errorf("%s does not replay: %v", id, err)
	}
}
