package test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/shipline/shipline/internal/msgauth"
)

// An attacker with a plain SDK client, who can reach the namespace, sends the
// messages Shipline's workflows send each other: a link to a release, an
// enqueue and a deployment-done to a fabric entity, a record to the audit, and
// a genuine message copied from history (as is, and with its content changed).
// The attacker knows only what the Temporal UI shows (workflow IDs, message
// names, payloads), so the requests are written the way a person would copy
// them. Every attempt is refused, changes no state and shows in `shipline audit`.
func TestInternalMessagesCannotBeForged(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server and runs real builds")
	}
	f := newDeployFixture(t)
	if code, out, errOut := f.s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, errOut)
	}
	c, err := client.Dial(client.Options{HostPort: f.s.address, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const release, fabric, audit = "release/demo/v1.0.0", "fabric/demo/dev", "audit/demo"
	state := func(id string) map[string]any {
		t.Helper()
		v, err := c.QueryWorkflow(ctx, id, "", "state")
		if err != nil {
			t.Fatalf("query %s: %v", id, err)
		}
		var s map[string]any
		if err := v.Get(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	fabricBefore, _ := json.Marshal(state(fabric)["jobs"])
	tried := 0

	// 1. A link, so the release could never be deleted.
	tried++
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: release, UpdateName: "link",
		WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{map[string]any{"stage": "prod", "promotion_id": "promote/demo/v1.0.0", "actor": "mallory"}}})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if err == nil || !strings.Contains(err.Error(), "refused, nothing changed") {
		t.Fatalf("forged link: %v", err)
	}
	if s := state(release); s["linked"] != false {
		t.Fatalf("forged link linked the release: %v", s["linked"])
	}

	// 2. A deployment-done claiming another version runs on dev, and an
	// enqueue that would hold dev's deploy lock forever.
	tried += 2
	done := map[string]any{"deployment_id": "deploy/demo/v6.6.6/evil", "version": "v6.6.6", "actor": "mallory", "outcome": "succeeded",
		"jobs": []map[string]any{{"fabric": "dev", "job": "daily_orders", "version": "v6.6.6", "deployment_id": "deploy/demo/v6.6.6/evil", "actor": "mallory"}}}
	if err := c.SignalWorkflow(ctx, fabric, "", "deployment-done", done); err != nil {
		t.Fatal(err)
	}
	if err := c.SignalWorkflow(ctx, fabric, "", "enqueue", map[string]any{"deployment_id": "deploy/demo/v6.6.6/evil", "version": "v6.6.6", "actor": "mallory"}); err != nil {
		t.Fatal(err)
	}

	// 3. A record in the audit, in dave's name.
	tried++
	if err := c.SignalWorkflow(ctx, audit, "", "refusal", map[string]any{"actor": "dave", "action": "delete", "target": release,
		"version": "v1.0.0", "reason": "dave deleted v1.0.0"}); err != nil {
		t.Fatal(err)
	}

	// 4. The release's genuine "deployed" message, copied from its history:
	// sent again as is, and with a stage added.
	var genuine map[string]any
	iter := c.GetWorkflowHistory(ctx, release, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() && genuine == nil {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.GetSignalName() == "deployed" {
			if err := converter.GetDefaultDataConverter().FromPayload(a.GetInput().GetPayloads()[0], &genuine); err != nil {
				t.Fatal(err)
			}
		}
	}
	if genuine == nil || genuine["seal"] == nil {
		t.Fatalf("the release's history holds no sealed deployed message: %v", genuine)
	}
	stagesBefore := state(release)["stages"]
	tried += 2
	if err := c.SignalWorkflow(ctx, release, "", "deployed", genuine); err != nil {
		t.Fatal(err)
	}
	// Changing the content, and the nonce so it is not a plain copy, breaks the seal.
	genuine["stage"] = "prod"
	genuine["seal"].(map[string]any)["nonce"] = "00112233445566778899aabbccddeeff"
	if err := c.SignalWorkflow(ctx, release, "", "deployed", genuine); err != nil {
		t.Fatal(err)
	}

	// Every attempt shows in the audit, recorded by Shipline (or, for the
	// audit's own signal, as a forged attempt that quotes but does not believe it).
	want := map[string]string{
		"link":              "unknown (unauthenticated message claiming mallory) link refused",
		"done":              "unknown (unauthenticated message claiming mallory) deployment-done refused",
		"enqueue":           "unknown (unauthenticated message claiming mallory) enqueue refused",
		"audit":             "unknown (unauthenticated) forge audit record refused",
		"deployed (copy)":   "copy of one already received",
		"deployed (edited)": "seal does not match",
	}
	var lines []auditLine
	missing := map[string]string{}
	for i := 0; i < 300; i++ {
		lines = f.audit(t)
		clear(missing)
		for name, w := range want {
			missing[name] = w
			for _, l := range lines {
				if strings.Contains(l.Actor+" "+l.Action+" "+l.Result, w) || (l.Action == "deployed" && strings.Contains(l.Detail, w)) {
					delete(missing, name)
				}
			}
		}
		if len(missing) == 0 {
			break
		}
		sleep100ms()
	}
	if len(missing) != 0 {
		t.Fatalf("attempts missing from the audit: %v\naudit: %+v", missing, lines)
	}
	for _, l := range lines {
		if l.Actor == "dave" || l.Actor == "mallory" && l.Result != "failed" && l.Result != "refused" {
			t.Errorf("the audit believes a forged record: %+v", l)
		}
	}

	// Nothing changed: the release is not linked and reached no new stage, dev
	// still runs v1.0.0 with no one queued, and the release can be deleted.
	if s := state(release); s["linked"] != false || !jsonEqual(s["stages"], stagesBefore) {
		t.Errorf("release changed: linked %v, stages %v (before %v)", s["linked"], s["stages"], stagesBefore)
	}
	fs := state(fabric)
	if after, _ := json.Marshal(fs["jobs"]); string(after) != string(fabricBefore) {
		t.Errorf("fabric jobs changed:\n%s\nbefore:\n%s", after, fabricBefore)
	}
	if q, _ := fs["queue"].([]any); len(q) != 0 {
		t.Errorf("fabric queue holds a forged deployment: %v", q)
	}
	for _, h := range fs["history"].([]any) {
		if strings.Contains(h.(map[string]any)["deployment_id"].(string), "evil") {
			t.Errorf("fabric history holds a forged deployment: %v", h)
		}
	}
	if code, out, errOut := f.s.shipline("delete", "v1.0.0", "--project", "demo", "--as", "alice"); code != 0 {
		t.Errorf("delete after a forged link: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("internal messages forged: %d tried, %d refused", tried, tried)

	// The secret that seals the genuine messages (generated under state_dir)
	// is in no workflow history.
	secret, err := os.ReadFile(filepath.Join(f.s.cfg.StateDir, msgauth.GeneratedFile))
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecretsInHistory(t, f.s, strings.TrimSpace(string(secret)))
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
