package test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// The attacker suite talks to Shipline the way anyone who reaches the Temporal
// namespace can: a plain SDK client, workflow and message names as the Temporal
// UI shows them, and requests written as JSON (or copied from a history and
// edited). Nothing here builds a request with Shipline's packages. Every attempt
// must be refused, change no state and no fabric, and show in `shipline audit`.
//
// Attempts whose protection is not built yet are marked pending: they are
// skipped, naming what is missing, unless SHIPLINE_ATTACK_PENDING=1 runs them.

// carriedRefusal is the reason a forged carry-over is refused with.
const carriedRefusal = "carried state is accepted only from continue-as-new"

// attack is one attempt.
type attack struct {
	name string
	// pending names the protection that is not enforced yet (the attempt is skipped).
	pending string
	// target is the workflow ID the attempt is aimed at; its audit row names
	// it, and the actor the attempt claims to be (when set).
	target, actor string
	// refused says why the attempt was refused (a fragment of the error or of
	// the recorded refusal), and audit is a fragment of its audit row's detail.
	refused, audit string
	// try makes the attempt and returns the error it met (nil: accepted).
	try func(ctx context.Context) error
}

type attackSuite struct {
	t        *testing.T
	s        *stack
	c        client.Client
	root     string
	remote   string
	tried    int
	refused  int
	skipped  []string
	audited  []attack // attempts expected in the audit
	aliceKey string
	keys     map[string]ed25519.PrivateKey
}

// TestAttackerThroughTheTemporalAPI runs every attack in order against one
// platform with require_signatures.
func TestAttackerThroughTheTemporalAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	a := newAttackSuite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// Before anything else: a forged Audit entity (the audit is not running yet).
	a.run(ctx, attack{name: "audit entity started with carried entries", target: "audit/demo", refused: carriedRefusal, audit: carriedRefusal,
		try: func(ctx context.Context) error {
			return a.startEntity(ctx, "audit/demo", "Audit", `{"project":"demo","carried":[
				{"actor":"dave","action":"delete","target":"release/demo/v1.0.0","reason":"dave deleted v1.0.0","at":"2026-01-01T00:00:00Z"}]}`)
		}})

	a.cli("release", "v1.0.0", "--project", "demo", "--as", "alice", "--key", a.aliceKey, "--wait")

	// Forged carry-over on each entity.
	a.run(ctx, attack{name: "release started with carried state", target: "release/demo/v2.0.0", actor: "mallory", refused: carriedRefusal, audit: carriedRefusal,
		try: func(ctx context.Context) error {
			return a.startAndWait(ctx, "release/demo/v2.0.0", "Release", `{"project":"demo","version":"v2.0.0","actor":"mallory",
				"carried":{"status":"released","summary":"released v2.0.0","project":"demo","version":"v2.0.0","actor":"mallory",
					"admins":["mallory"],"linked":true,"stages":["dev","prod"],"commit":"0123456789abcdef0123456789abcdef01234567"},
				"carried_policy":{"require":false}}`)
		}})
	a.run(ctx, attack{name: "promotion started with carried stages and settings", target: "promote/demo/v1.0.0", actor: "mallory", refused: carriedRefusal, audit: carriedRefusal,
		try: func(ctx context.Context) error {
			return a.startAndWait(ctx, "promote/demo/v1.0.0", "Promote", `{"project":"demo","version":"v1.0.0","actor":"mallory","to":"prod",
				"carried":{"status":"running","project":"demo","version":"v1.0.0","actor":"mallory","target":"prod",
					"stages":[{"name":"dev","fabrics":["dev"],"status":"deployed"},
						{"name":"prod","fabrics":["prod"],"status":"approval","team":"prod_support","required":1,"approvals":[{"stage":"prod","actor":"carol"}]}]},
				"carried_settings":{"stages":[{"name":"dev","fabrics":["dev"]},{"name":"prod","fabrics":["prod"]}]},
				"carried_policy":{"require":false}}`)
		}})
	a.run(ctx, attack{name: "fabric entity started with carried jobs", target: "fabric/demo/prod", refused: carriedRefusal, audit: carriedRefusal,
		try: func(ctx context.Context) error {
			return a.startEntity(ctx, "fabric/demo/prod", "Fabric", `{"project":"demo","fabric":"prod","carried":{"project":"demo","fabric":"prod",
				"queue":[{"deployment_id":"deploy/demo/v9.9.9/ghost","version":"v9.9.9","actor":"dave"}],
				"jobs":{"daily_orders":{"fabric":"prod","job":"daily_orders","scheduler":"databricks","version":"v9.9.9","actor":"dave","deployment_id":"deploy/demo/v9.9.9/ghost"}}}}`)
		}})

	// The same forged start on a cron schedule: Temporal starts each later run
	// as a continuation of the one before, with the client's input again.
	a.run(ctx, attack{name: "release started with carried state on a cron schedule", target: "release/demo/v5.0.0", actor: "mallory",
		refused: "cron schedule", audit: carriedRefusal,
		try: func(ctx context.Context) error {
			return a.cronRuns(ctx, "release/demo/v5.0.0", "Release", `{"project":"demo","version":"v5.0.0","actor":"mallory",
				"carried":{"status":"released","project":"demo","version":"v5.0.0","actor":"mallory","admins":["mallory"]}}`)
		}})

	// Unsigned starts.
	a.run(ctx, attack{name: "unsigned release start", target: "release/demo/v3.0.0", actor: "alice", refused: "unsigned", audit: "unsigned",
		try: func(ctx context.Context) error {
			return a.startAndWait(ctx, "release/demo/v3.0.0", "Release", `{"project":"demo","version":"v3.0.0","actor":"alice"}`)
		}})
	a.run(ctx, attack{name: "unsigned deploy start", target: "deploy/demo/v1.0.0/attack-1", actor: "alice", refused: "unsigned", audit: "unsigned",
		try: func(ctx context.Context) error {
			return a.startAndWait(ctx, "deploy/demo/v1.0.0/attack-1", "Deploy", `{"project":"demo","version":"v1.0.0","actor":"alice","fabric":"dev"}`)
		}})
	a.run(ctx, attack{name: "unsigned promote start", target: "promote/demo/v1.0.0", actor: "alice", refused: "unsigned", audit: "unsigned",
		try: func(ctx context.Context) error {
			return a.startAndWait(ctx, "promote/demo/v1.0.0", "Promote", `{"project":"demo","version":"v1.0.0","actor":"alice"}`)
		}})

	// User text that would read as Shipline's own tag trailer.
	a.run(ctx, attack{name: "release message forging a Shipline trailer", target: "release/demo/v4.0.0", actor: "alice", refused: "Shipline trailer", audit: "Shipline trailer",
		try: func(ctx context.Context) error {
			return a.startAndWait(ctx, "release/demo/v4.0.0", "Release", `{"project":"demo","version":"v4.0.0","actor":"alice",
				"message":"Hotfix\n\nShipline-Release: release/demo/v9.9.9"}`)
		}})

	// Replayed starts: alice's signed release of v1.1.0, copied from its
	// history after she deleted it.
	a.cli("release", "v1.1.0", "--project", "demo", "--as", "alice", "--key", a.aliceKey, "--wait", "--no-deploy")
	signedStart := a.startInput(ctx, "release/demo/v1.1.0")
	a.cli("delete", "v1.1.0", "--project", "demo", "--as", "alice", "--key", a.aliceKey)
	a.waitClosed(ctx, "release/demo/v1.1.0")
	a.run(ctx, attack{name: "signed release start replayed under the same workflow ID",
		target: "release/demo/v1.1.0", refused: "replayed", audit: "replayed",
		try: func(ctx context.Context) error {
			return a.startAndWait(ctx, "release/demo/v1.1.0", "Release", signedStart)
		}})
	a.run(ctx, attack{name: "signed release start replayed under a new workflow ID", target: "release/demo/v1.1.1", refused: "forged", audit: "forged",
		try: func(ctx context.Context) error {
			return a.startAndWait(ctx, "release/demo/v1.1.1", "Release", signedStart)
		}})

	// A promotion waiting at the dev gate, with one signed approval by bob.
	a.cli("promote", "v1.0.0", "--project", "demo", "--as", "alice", "--key", a.aliceKey)
	a.waitStatus(ctx, "promote/demo/v1.0.0", "waiting")
	a.cli("approve", "v1.0.0", "--project", "demo", "--stage", "dev", "--as", "bob", "--key", filepath.Join(a.root, "bob"))
	bobVote := a.acceptedUpdate(ctx, "promote/demo/v1.0.0", "approve")
	voteArgs := withoutAuth(a.t, bobVote)

	vote := func(name, actor, fragment string, payload func() string) {
		a.run(ctx, attack{name: name, target: "promote/demo/v1.0.0", actor: actor, refused: fragment, audit: fragment,
			try: func(ctx context.Context) error { return a.update(ctx, "promote/demo/v1.0.0", "approve", payload()) }})
	}
	vote("unsigned approval", "carol", "unsigned", func() string { return `{"stage":"dev","actor":"carol"}` })
	vote("approval signed with the wrong key", "carol", "forged", func() string {
		args := strings.Replace(voteArgs, `"actor":"bob"`, `"actor":"carol"`, 1)
		return signed(args, a.key("mallory"), "promote/demo/v1.0.0", "approve", "carol", "wrong-key-1", time.Now())
	})
	vote("stale approval", "carol", "stale", func() string {
		args := strings.Replace(voteArgs, `"actor":"bob"`, `"actor":"carol"`, 1)
		return signed(args, a.key("carol"), "promote/demo/v1.0.0", "approve", "carol", "stale-1", time.Now().Add(-10*time.Minute))
	})
	vote("replayed approval", "bob", "replayed", func() string { return bobVote })
	// ci is a service identity (a CI job's key) in the developers team: its
	// own, correctly signed votes are refused by the promotion and audited.
	const serviceRefusal = "ci is a service identity"
	vote("approval signed by a service identity", "ci", serviceRefusal, func() string {
		args := strings.Replace(voteArgs, `"actor":"bob"`, `"actor":"ci"`, 1)
		return signed(args, a.key("ci"), "promote/demo/v1.0.0", "approve", "ci", "service-approve-1", time.Now())
	})
	a.run(ctx, attack{name: "rejection signed by a service identity", target: "promote/demo/v1.0.0", actor: "ci", refused: serviceRefusal, audit: serviceRefusal,
		try: func(ctx context.Context) error {
			args := strings.Replace(voteArgs, `"actor":"bob"`, `"actor":"ci","comment":"pipeline red"`, 1)
			return a.update(ctx, "promote/demo/v1.0.0", "reject",
				signed(args, a.key("ci"), "promote/demo/v1.0.0", "reject", "ci", "service-reject-1", time.Now()))
		}})

	// Controls and deletion by an outsider.
	a.run(ctx, attack{name: "unsigned cancel of a release", actor: "mallory",
		target: "release/demo/v1.0.0", refused: "unsigned", audit: "unsigned",
		try: func(ctx context.Context) error {
			return a.update(ctx, "release/demo/v1.0.0", "cancel", `{"actor":"mallory","reason":"no"}`)
		}})
	a.run(ctx, attack{name: "unsigned delete of a release", actor: "mallory", target: "release/demo/v1.0.0", refused: "unsigned", audit: "unsigned",
		try: func(ctx context.Context) error {
			return a.update(ctx, "release/demo/v1.0.0", "delete", `{"actor":"mallory"}`)
		}})

	a.run(ctx, attack{name: "delete signed with the wrong key", actor: "alice", target: "release/demo/v1.0.0", refused: "forged", audit: "forged",
		try: func(ctx context.Context) error {
			return a.update(ctx, "release/demo/v1.0.0", "delete",
				signed(`{"actor":"alice"}`, a.key("mallory"), "release/demo/v1.0.0", "delete", "alice", "wrong-key-2", time.Now()))
		}})

	// Messages that only Shipline's own workflows may send: none carries the
	// seal the workers make with their secret, so each is refused, changes
	// nothing, and is recorded by Shipline as an attempt of someone unknown
	// (the actor it claims is quoted, not believed).
	forged := func(name, target string) string {
		return fmt.Sprintf("%q message to %s was refused, nothing changed", name, target)
	}
	const claimingMallory = "unknown (unauthenticated message claiming mallory)"
	a.run(ctx, attack{name: "forged link update", actor: claimingMallory, target: "release/demo/v1.0.0",
		refused: forged("link", "release/demo/v1.0.0"), audit: forged("link", "release/demo/v1.0.0"),
		try: func(ctx context.Context) error {
			return a.update(ctx, "release/demo/v1.0.0", "link", `{"stage":"prod","promotion_id":"promote/demo/v1.0.0","actor":"mallory"}`)
		}})
	a.run(ctx, attack{name: "forged deployed signal", actor: claimingMallory, target: "release/demo/v1.0.0",
		refused: forged("deployed", "release/demo/v1.0.0"), audit: forged("deployed", "release/demo/v1.0.0"),
		try: func(ctx context.Context) error {
			return a.signal(ctx, "release/demo/v1.0.0", "deployed", `{"deployment_id":"deploy/demo/v1.0.0/ghost","stage":"prod","fabrics":["prod"],"actor":"mallory","at":"2026-01-01T00:00:00Z","artifacts":{}}`)
		}})
	a.run(ctx, attack{name: "forged fabric lock request", actor: claimingMallory, target: "fabric/demo/prod",
		refused: forged("enqueue", "fabric/demo/prod"), audit: forged("enqueue", "fabric/demo/prod"),
		try: func(ctx context.Context) error {
			return a.signal(ctx, "fabric/demo/prod", "enqueue", `{"deployment_id":"deploy/demo/v9.9.9/ghost","version":"v9.9.9","actor":"mallory","since":"2026-01-01T00:00:00Z"}`)
		}})
	a.run(ctx, attack{name: "forged deployment record", actor: "unknown (unauthenticated message claiming dave)", target: "fabric/demo/prod",
		refused: forged("deployment-done", "fabric/demo/prod"), audit: forged("deployment-done", "fabric/demo/prod"),
		try: func(ctx context.Context) error {
			return a.signal(ctx, "fabric/demo/prod", "deployment-done", `{"deployment_id":"deploy/demo/v9.9.9/ghost","version":"v9.9.9","actor":"dave","outcome":"succeeded",
				"started":"2026-01-01T00:00:00Z","finished":"2026-01-01T00:01:00Z","jobs":[{"fabric":"prod","job":"daily_orders","scheduler":"databricks","version":"v9.9.9","commit":"x","deployment_id":"deploy/demo/v9.9.9/ghost","actor":"dave","at":"2026-01-01T00:01:00Z"}]}`)
		}})
	// The audit keeps its own record of a forged audit signal, and `shipline
	// audit` shows the signal as a forged record, quoting it.
	a.run(ctx, attack{name: "forged audit entry", actor: "unknown (unauthenticated)", target: "audit/demo",
		refused: "not sent by Shipline", audit: "not sent by Shipline",
		try: func(ctx context.Context) error {
			return a.signal(ctx, "audit/demo", "refusal", `{"actor":"dave","action":"delete","target":"release/demo/v1.0.0","reason":"dave deleted v1.0.0","at":"2026-01-01T00:00:00Z"}`)
		}})
	// A claim of a request ID before its owner uses it, which would make the
	// owner's request look replayed.
	const claimedID = "claimed-by-mallory-1"
	a.run(ctx, attack{name: "forged request claim", actor: claimingMallory, target: "audit/demo",
		refused: forged("claim-request", "audit/demo"), audit: forged("claim-request", "audit/demo"),
		try: func(ctx context.Context) error {
			return a.update(ctx, "audit/demo", "claim-request", fmt.Sprintf(`{"request_id":%q,"time":%q,"target":"release/demo/v1.0.0","action":"delete","actor":"mallory"}`,
				claimedID, time.Now().UTC().Format(time.RFC3339)))
		}})
	// The forged claim claimed nothing: a signed request with that ID is
	// judged on its own (here refused by the access rules, not as a replay).
	a.run(ctx, attack{name: "delete by a non-admin with the request ID of the forged claim", actor: "carol", target: "release/demo/v1.0.0",
		refused: "only the project's admins", audit: "only the project's admins",
		try: func(ctx context.Context) error {
			// Had the claim been believed, this would be refused as replayed.
			return a.update(ctx, "release/demo/v1.0.0", "delete",
				signed(`{"actor":"carol"}`, a.key("carol"), "release/demo/v1.0.0", "delete", "carol", claimedID, time.Now()))
		}})

	inAudit := a.checkAudit()
	t.Logf("attacker suite: %d attempts tried, %d refused without a change, %d of them in `shipline audit`; %d pending (skipped): %s",
		a.tried, a.refused, inAudit, len(a.skipped), strings.Join(a.skipped, "; "))
	fmt.Printf("attacker suite: %d tried, %d refused, %d audited, %d pending\n", a.tried, a.refused, inAudit, len(a.skipped))
}

func newAttackSuite(t *testing.T) *attackSuite {
	root := t.TempDir()
	t.Setenv("HOME", root)
	t.Setenv("SHIPLINE_KEY", "")
	keys := map[string]ed25519.PrivateKey{}
	aliceKey, alicePub, _ := writeKey(t, root, "alice")
	_, bobPub, _ := writeKey(t, root, "bob")
	_, carolPub, carolPriv := writeKey(t, root, "carol")
	_, ciPub, ciPriv := writeKey(t, root, "ci")       // a service identity: never votes
	_, _, malloryPriv := writeKey(t, root, "mallory") // not registered: mallory is nobody
	keys["carol"], keys["ci"], keys["mallory"] = carolPriv, ciPriv, malloryPriv
	remote, _ := fixtureProject(t, root, projectTrees...)
	cfg := fmt.Sprintf(`state_dir: state
require_signatures: true
users:
  alice: {keys: [%q]}
  bob:   {keys: [%q]}
  carol: {keys: [%q]}
  ci:    {keys: [%q], service: true}
teams:
  developers:   {members: [alice, bob, carol, ci]}
  prod_support: {members: [carol]}
projects:
  demo: {repo: %s, admins: [alice], auto_deploy: false}
fabrics:
  dev:         {kind: local, owner: developers, root: fabrics/dev}
  airflow-dev: {kind: local, owner: developers, root: fabrics/airflow-dev}
  prod:        {kind: local, owner: prod_support, root: fabrics/prod}
promotion:
  stages:
    - {name: dev,  fabrics: [dev, airflow-dev], approval: {team: developers, required: 2, self_approval: false}}
    - {name: prod, fabrics: [prod], approval: {team: prod_support, required: 1, self_approval: false}}
`, alicePub, bobPub, carolPub, ciPub, remote)
	cfgPath := filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, cfgPath, 0)
	c, err := client.Dial(client.Options{HostPort: s.address, Logger: quietSDKLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &attackSuite{t: t, s: s, c: c, root: root, remote: remote, aliceKey: aliceKey, keys: keys}
}

// run makes one attempt and checks it was refused and changed nothing.
func (a *attackSuite) run(ctx context.Context, at attack) {
	a.t.Run(at.name, func(t *testing.T) {
		if at.pending != "" && os.Getenv("SHIPLINE_ATTACK_PENDING") == "" {
			a.skipped = append(a.skipped, at.name)
			t.Skip(at.pending)
		}
		a.tried++
		before := a.snapshot(ctx)
		err := at.try(ctx)
		if err == nil {
			err = a.recordedRefusal(ctx, at.target, at.refused)
		}
		if err == nil || !strings.Contains(err.Error(), at.refused) {
			t.Fatalf("attempt not refused: %v (want a refusal mentioning %q)", err, at.refused)
		}
		if after := a.snapshot(ctx); after != before {
			t.Fatalf("the refused attempt changed state:\nbefore %s\nafter  %s", before, after)
		}
		a.refused++
		a.audited = append(a.audited, at)
		t.Logf("refused: %v", err)
	})
}

// cli runs a legitimate, signed command of the setup.
func (a *attackSuite) cli(args ...string) {
	a.t.Helper()
	if code, out, errOut := a.s.shipline(args...); code != 0 {
		a.t.Fatalf("shipline %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
}

func (a *attackSuite) key(name string) ed25519.PrivateKey { return a.keys[name] }

// plain turns the JSON a person typed into the value the SDK sends.
func plain(t *testing.T, js string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatalf("attack input is not JSON: %v\n%s", err, js)
	}
	return v
}

// startAndWait starts a workflow and returns how it ended (nil: completed).
func (a *attackSuite) startAndWait(ctx context.Context, id, typ, input string) error {
	run, err := a.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "shipline",
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE}, typ, plain(a.t, input))
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	err = run.Get(wctx, nil)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // still running: it took the request
	}
	return err
}

// cronRuns starts a workflow on a one-minute cron schedule, waits for its
// second run (the first a schedule started) to end, stops the schedule and
// returns how the runs ended.
func (a *attackSuite) cronRuns(ctx context.Context, id, typ, input string) error {
	if _, err := a.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "shipline", CronSchedule: "* * * * *"},
		typ, plain(a.t, input)); err != nil {
		return err
	}
	defer func() {
		_ = a.c.TerminateWorkflow(context.WithoutCancel(ctx), id, "", "attack done: stop the schedule")
	}()
	for range 300 {
		var ended []string
		resp, err := a.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowId = '" + id + "'"})
		if err != nil {
			return err
		}
		for _, ex := range resp.GetExecutions() {
			if ex.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				continue
			}
			it := a.c.GetWorkflowHistory(ctx, id, ex.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
			if ev, err := it.Next(); err == nil {
				// A cron run closes as continued-as-new, with its failure.
				f := ev.GetWorkflowExecutionFailedEventAttributes().GetFailure()
				if f == nil {
					//lint:ignore SA1019 the server still records the failure of a cron run that fails here
					f = ev.GetWorkflowExecutionContinuedAsNewEventAttributes().GetFailure()
				}
				if f != nil {
					ended = append(ended, f.GetMessage())
				} else {
					ended = append(ended, "ended "+ev.GetEventType().String())
				}
			}
		}
		if len(ended) >= 2 {
			return errors.New(strings.Join(ended, " | "))
		}
		time.Sleep(time.Second)
	}
	return errors.New("the cron schedule ran fewer than two runs in five minutes")
}

// startEntity starts an entity workflow that never completes on its own.
func (a *attackSuite) startEntity(ctx context.Context, id, typ, input string) error {
	_, err := a.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "shipline",
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL}, typ, plain(a.t, input))
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		a.t.Fatalf("%s is already running: this attempt must come before anything starts it", id)
	}
	return err
}

func (a *attackSuite) update(ctx context.Context, id, name, input string) error {
	h, err := a.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: name,
		Args: []any{plain(a.t, input)}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		return err
	}
	return h.Get(ctx, nil)
}

func (a *attackSuite) signal(ctx context.Context, id, name, input string) error {
	if err := a.c.SignalWorkflow(ctx, id, "", name, plain(a.t, input)); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // let the workflow handle it before the state is compared
	return nil
}

// recordedRefusal looks for the refusal an accepted start or signal should
// have recorded in the project's audit entity (an entity that drops forged
// state goes on running), waiting up to 30 s.
func (a *attackSuite) recordedRefusal(ctx context.Context, target, fragment string) error {
	for range 60 {
		var kept []map[string]any
		if a.query(ctx, "audit/demo", "state", &kept) {
			for _, r := range kept {
				if r["target"] == target && strings.Contains(fmt.Sprint(r["reason"]), fragment) {
					return errors.New(fmt.Sprint(r["reason"]))
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return nil
}

func (a *attackSuite) query(ctx context.Context, id, name string, out any) bool {
	v, err := a.c.QueryWorkflow(ctx, id, "", name)
	return err == nil && v.Get(out) == nil
}

// startInput is the input of a workflow's first run, as its history shows it.
func (a *attackSuite) startInput(ctx context.Context, id string) string {
	a.t.Helper()
	it := a.c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	ev, err := it.Next()
	if err != nil {
		a.t.Fatal(err)
	}
	return string(firstData(ev.GetWorkflowExecutionStartedEventAttributes().GetInput()))
}

// acceptedUpdate is the input of the last accepted update of that name.
func (a *attackSuite) acceptedUpdate(ctx context.Context, id, name string) string {
	a.t.Helper()
	it := a.c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var found string
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			a.t.Fatal(err)
		}
		if u := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes(); u != nil && u.GetAcceptedRequest().GetInput().GetName() == name {
			found = string(firstData(u.GetAcceptedRequest().GetInput().GetArgs()))
		}
	}
	if found == "" {
		a.t.Fatalf("no accepted %s update in %s", name, id)
	}
	return found
}

func firstData(p *commonpb.Payloads) []byte {
	if p == nil || len(p.Payloads) == 0 {
		return nil
	}
	return p.Payloads[0].GetData()
}

func (a *attackSuite) waitClosed(ctx context.Context, id string) {
	a.t.Helper()
	for range 120 {
		d, err := a.c.DescribeWorkflowExecution(ctx, id, "")
		if err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	a.t.Fatalf("%s did not close", id)
}

func (a *attackSuite) waitStatus(ctx context.Context, id, status string) {
	a.t.Helper()
	for range 120 {
		var st map[string]any
		if a.query(ctx, id, "state", &st) && st["status"] == status {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	a.t.Fatalf("%s never reached %s", id, status)
}

// withoutAuth is a request's arguments without their signature: the JSON up
// to its last field, "auth" (what the signature covers).
func withoutAuth(t *testing.T, js string) string {
	t.Helper()
	i := strings.LastIndex(js, `,"auth":`)
	if i < 0 {
		t.Fatalf("no auth in %s", js)
	}
	return js[:i] + "}"
}

// signed signs args the way Shipline's documented request format says (see
// internal/signing's package comment) and returns the request with its auth.
func signed(args string, key ed25519.PrivateKey, workflowID, action, actor, requestID string, at time.Time) string {
	at = at.UTC().Truncate(time.Second)
	var b bytes.Buffer
	b.WriteString("shipline-request-v1\n")
	for _, f := range []string{workflowID, action, actor, requestID, strconv.FormatInt(at.Unix(), 10)} {
		b.WriteString(f + "\n")
	}
	b.WriteString(args)
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(key, b.Bytes()))
	auth, _ := json.Marshal(map[string]any{"request_id": requestID, "time": at, "signature": sig})
	return strings.TrimSuffix(args, "}") + `,"auth":` + string(auth) + "}"
}

// snapshot is everything an attempt must not change: the remote's tags, the
// fabrics' files, and the state of the release, promotion, fabric and audit
// entities (as their queries answer, in plain JSON).
func (a *attackSuite) snapshot(ctx context.Context) string {
	var parts []string
	parts = append(parts, "tags: "+strings.Join(strings.Fields(git(a.t, a.root, "ls-remote", "--tags", a.remote)), " "))
	var files []string
	_ = filepath.WalkDir(filepath.Join(a.root, "fabrics"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			info, _ := d.Info()
			files = append(files, fmt.Sprintf("%s:%d", p, info.Size()))
		}
		return nil
	})
	sort.Strings(files)
	parts = append(parts, "files: "+strings.Join(files, " "))
	pick := func(id string, keys ...string) {
		var st map[string]any
		if !a.query(ctx, id, "state", &st) {
			parts = append(parts, id+": none")
			return
		}
		sel := map[string]any{}
		for _, k := range keys {
			if v, ok := st[k]; ok && v != nil {
				sel[k] = v
			}
		}
		if sel["status"] == "refused" && sel["linked"] != true && len(asSlice(sel["admins"])) == 0 && len(asSlice(sel["stages"])) == 0 && sel["fabrics"] == nil {
			parts = append(parts, id+": none") // a refused run records the attempt and holds nothing
			return
		}
		if sel["status"] == "deleted" {
			// A deleted release holds nothing either (its tag and artifacts
			// are gone, which tags and files show); a replayed start of it
			// leaves a refused run after it.
			parts = append(parts, id+": none")
			return
		}
		js, _ := json.Marshal(sel)
		parts = append(parts, id+": "+string(js))
	}
	for _, v := range []string{"v1.0.0", "v1.1.0", "v2.0.0", "v3.0.0", "v4.0.0", "v5.0.0"} {
		pick("release/demo/"+v, "status", "linked", "stages", "fabrics", "admins", "commit", "deleted")
	}
	pick("promote/demo/v1.0.0", "status", "stages")
	for _, f := range []string{"dev", "airflow-dev", "prod"} {
		var st map[string]any
		if a.query(ctx, "fabric/demo/"+f, "state", &st) && (len(asSlice(st["queue"])) > 0 || len(asSlice(st["history"])) > 0 || len(asMap(st["jobs"])) > 0) {
			js, _ := json.Marshal(map[string]any{"queue": st["queue"], "jobs": st["jobs"], "history": len(asSlice(st["history"]))})
			parts = append(parts, "fabric/demo/"+f+": "+string(js))
		}
	}
	var kept []map[string]any
	a.query(ctx, "audit/demo", "state", &kept)
	for _, r := range kept {
		if r["actor"] == "dave" {
			parts = append(parts, fmt.Sprintf("audit/demo holds a forged entry: %v", r))
		}
	}
	return strings.Join(parts, "\n")
}

func asSlice(v any) []any        { s, _ := v.([]any); return s }
func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// checkAudit runs `shipline audit` and finds every refused attempt in it; it
// returns how many it found.
func (a *attackSuite) checkAudit() int {
	a.t.Helper()
	code, out, errOut := a.s.shipline("audit", "--project", "demo", "--json")
	if code != 0 {
		a.t.Fatalf("audit: exit %d\n%s", code, errOut)
	}
	n := 0
	var rows []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(l), &r) == nil {
			rows = append(rows, r)
		}
	}
	for _, at := range a.audited {
		found := false
		for _, r := range rows {
			found = found || (r["workflow_id"] == at.target && r["result"] == "refused" && strings.Contains(fmt.Sprint(r["detail"]), at.audit) &&
				(at.actor == "" || r["actor"] == at.actor))
		}
		if !found {
			a.t.Errorf("%s: no refused row for %s mentioning %q in `shipline audit`", at.name, at.target, at.audit)
			continue
		}
		n++
	}
	return n
}
