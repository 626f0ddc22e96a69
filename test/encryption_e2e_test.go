package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/shipline/shipline/internal/codec"
	"github.com/shipline/shipline/workflows"
)

// TestEncryptedHistories runs a signed release (with its deploy and the sealed
// messages between Shipline's workflows) on the embedded server with payload
// encryption on, then reads what the Temporal operator would: the raw
// histories hold no job definition and no release message. The codec
// endpoint gives them back to an authorized caller in the Temporal UI's
// request shape and refuses others; the CLI without the key, or with a wrong
// one, says which key and variable; after a rotation, histories written with
// the old key still read and new ones use the new key.
func TestEncryptedHistories(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	root := t.TempDir()
	t.Setenv("HOME", root)
	t.Setenv("SHIPLINE_KEY", "")
	aliceKey, alicePub, _ := writeKey(t, root, "alice")
	oldKey, newKey := randomKey(t), randomKey(t)
	const token = "codec-token-0123456789abcdef"
	t.Setenv("SHIPLINE_CODEC_KEYS", "2026-01:"+oldKey)
	t.Setenv("SHIPLINE_CODEC_TOKEN", token)
	remote, _ := fixtureProject(t, root, filepath.Join("..", "examples", "demo"))
	cfgPath := filepath.Join(root, "platform.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`temporal:
  encryption: {keys_env: SHIPLINE_CODEC_KEYS, codec_token_env: SHIPLINE_CODEC_TOKEN}
state_dir: state
require_signatures: true
users:
  alice: {keys: [%q]}
teams:
  developers: {members: [alice]}
projects:
  demo: {repo: %s, admins: [alice], auto_deploy: true}
fabrics:
  local-dev:  {kind: local, owner: developers, root: fabrics/dev}
  local-qa:   {kind: local, owner: developers, root: fabrics/qa}
  local-prod: {kind: local, owner: developers, root: fabrics/prod}
`, alicePub, remote))

	// What must not be readable in Temporal: the release message, the jobs,
	// their definition files, the pipelines, artifacts and build logs. (The
	// rendered job definitions themselves never enter workflow history.)
	const message = "Quarterly churn model, approved by finance"
	secrets := []string{message, "daily_orders", "jobs/daily_orders/job.json", "jobs/orders_dag/dag.py",
		"pipelines/ingest_orders", "ingest_orders-1.0.0+sl", "Successfully built"}

	s := startStack(t, cfgPath, 0)
	if s.kit.CodecURL == "" {
		t.Fatal("the dev worker with encryption serves no codec endpoint")
	}
	// The embedded UI is configured to decode through it.
	if got := uiCodecEndpoint(t, s.uiURL); got != s.kit.CodecURL {
		t.Errorf("the embedded UI's codec endpoint is %q, want %q", got, s.kit.CodecURL)
	}
	sh := s.shipline
	if code, out, errOut := sh("release", "v1.0.0", "--project", "demo", "--as", "alice", "--key", aliceKey, "--message", message, "--wait"); code != 0 {
		t.Fatalf("signed release with encryption on: exit %d\n%s%s", code, out, errOut)
	}
	// A failure's message is encrypted too; the CLI shows it.
	code, out, errOut := sh("release", "v0.9.0", "--project", "demo", "--as", "alice", "--key", aliceKey, "--ref", "no-such-branch-for-codec", "--wait")
	if code != 1 || !strings.Contains(out+errOut, "no-such-branch-for-codec") {
		t.Fatalf("release of a missing ref: exit %d\n%s%s", code, out, errOut)
	}
	secrets = append(secrets, "no-such-branch-for-codec")

	// The job landed on the fabric in plaintext: encryption is of Temporal's copy only.
	if job := readJob(t, filepath.Join(root, "fabrics", "dev")); !strings.Contains(job, "demo-daily-orders") {
		t.Fatalf("deployed job: %s", job)
	}

	plain := plainClient(t, s.address)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ids := workflowIDs(ctx, t, plain)
	releaseID := workflows.ReleaseID("demo", "v1.0.0")
	if !contains(ids, releaseID) || len(ids) < 3 {
		t.Fatalf("workflows: %v", ids)
	}
	var startInput *commonpb.Payloads // the release's input, for /decode
	encrypted := 0
	for _, id := range ids {
		events := rawHistory(ctx, t, plain, id)
		raw, err := proto.Marshal(&historypb.History{Events: events})
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets {
			if bytes.Contains(raw, []byte(sec)) {
				t.Errorf("the raw history of %s contains %q", id, sec)
			}
		}
		for _, ev := range events {
			if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
				for _, p := range a.GetInput().GetPayloads() {
					encrypted++
					if string(p.Metadata[converter.MetadataEncoding]) != codec.Encoding || string(p.Metadata[codec.MetadataKeyID]) != "2026-01" {
						t.Errorf("input of %s: metadata %v, want encoding %s and key 2026-01", id, p.Metadata, codec.Encoding)
					}
				}
				if id == releaseID && startInput == nil {
					startInput = a.GetInput()
				}
			}
		}
	}
	if encrypted == 0 || startInput == nil {
		t.Fatal("no workflow input found in the raw histories")
	}
	// The same histories read with the key hold every one of those strings:
	// they are there, only encrypted.
	keys, err := codec.Parse("SHIPLINE_CODEC_KEYS", os.Getenv("SHIPLINE_CODEC_KEYS"))
	if err != nil {
		t.Fatal(err)
	}
	decodedAll := []byte{}
	for _, id := range ids {
		raw, err := proto.Marshal(&historypb.History{Events: rawHistory(ctx, t, codecClient(t, s.address, keys), id)})
		if err != nil {
			t.Fatal(err)
		}
		decodedAll = append(decodedAll, raw...)
	}
	for _, sec := range secrets {
		if !bytes.Contains(decodedAll, []byte(sec)) {
			t.Errorf("the decoded histories do not contain %q: the check above proves nothing for it", sec)
		}
	}

	// The codec endpoint decodes for the UI (its origin, its JSON shape, the token) ...
	body := uiDecodeBody(t, startInput)
	code, answer := postDecode(t, s.kit.CodecURL, body, s.uiURL, "Bearer "+token)
	if code != http.StatusOK {
		t.Fatalf("POST /decode with the token: %d %s", code, answer)
	}
	var decoded commonpb.Payloads
	if err := protojson.Unmarshal([]byte(answer), &decoded); err != nil || len(decoded.Payloads) != 1 {
		t.Fatalf("/decode answer %s: %v", answer, err)
	}
	var in workflows.ReleaseInput
	if err := converter.GetDefaultDataConverter().FromPayload(decoded.Payloads[0], &in); err != nil || in.Message != message || in.Project != "demo" {
		t.Fatalf("decoded release input %+v: %v", in, err)
	}
	// ... and refuses a caller without it, giving no plaintext.
	for _, auth := range []string{"", "Bearer wrong-token-0123456789"} {
		code, answer := postDecode(t, s.kit.CodecURL, body, s.uiURL, auth)
		if code != http.StatusUnauthorized || strings.Contains(answer, base64.StdEncoding.EncodeToString([]byte(`{"`))) {
			t.Errorf("POST /decode with authorization %q: %d %s", auth, code, answer)
		}
	}

	// The CLI without the key, or with another key under the same ID, says what to fix.
	// Without any key the CLI sees the worker's "(payloads encrypted)" mark
	// and stops before sending anything (exit 2); with a wrong key it fails
	// decoding what it read (exit 1).
	for _, tc := range []struct {
		keys, want string
		code       int
	}{
		{"", `encrypts payloads (temporal.encryption in its platform.yaml), and SHIPLINE_CODEC_KEYS is not set`, 2},
		{"2026-01:" + randomKey(t), `decrypt payload with key "2026-01" from SHIPLINE_CODEC_KEYS: the key is not the one that encrypted it`, 1},
		{"2025-12:" + randomKey(t), `encrypted with key "2026-01", which SHIPLINE_CODEC_KEYS does not hold`, 1},
	} {
		t.Setenv("SHIPLINE_CODEC_KEYS", tc.keys)
		if code, _, errOut := sh("status", releaseID); code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("status with SHIPLINE_CODEC_KEYS=%.12q…: exit %d %q, want %q", tc.keys, code, errOut, tc.want)
		}
	}

	// Rotation: a new current key first, the old one kept to read old histories.
	s.stop()
	t.Setenv("SHIPLINE_CODEC_KEYS", "2026-11:"+newKey+",2026-01:"+oldKey)
	s = startStack(t, cfgPath, 0)
	sh = s.shipline
	plain = plainClient(t, s.address)
	code, out, errOut = sh("deploy", "v1.0.0", "--project", "demo", "--as", "alice", "--key", aliceKey, "--wait")
	if code != 0 {
		t.Fatalf("deploy after rotation: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := sh("status", releaseID); code != 0 || !strings.Contains(out, "v1.0.0") {
		t.Fatalf("status of the release encrypted with the old key: exit %d %s", code, out)
	}
	code, out, _ = sh("audit", "--project", "demo", "--json")
	// (the failed release's reason is read from its raw history: its message decrypted and restored)
	if code != 0 || !strings.Contains(out, `"action":"deploy"`) || strings.Contains(out, `"result":"refused"`) ||
		!strings.Contains(out, `ref \"no-such-branch-for-codec\" is not a branch`) {
		t.Fatalf("audit over histories of both keys: exit %d\n%s", code, out)
	}
	newIDs := workflowIDs(ctx, t, plain)
	keysSeen := map[string]bool{}
	for _, id := range newIDs {
		if contains(ids, id) {
			continue
		}
		for _, ev := range rawHistory(ctx, t, plain, id) {
			if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
				for _, p := range a.GetInput().GetPayloads() {
					keysSeen[string(p.Metadata[codec.MetadataKeyID])] = true
				}
			}
		}
	}
	if !keysSeen["2026-11"] || keysSeen["2026-01"] {
		t.Errorf("workflows started after the rotation used keys %v, want 2026-11 only", keysSeen)
	}
}

func randomKey(t *testing.T) string {
	b := make([]byte, codec.KeySize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// plainClient is a client without the codec: it sees what the Temporal operator sees.
func plainClient(t *testing.T, address string) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: address, Logger: quietSDKLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// codecClient is a client decoding payloads with c, as the CLI does.
func codecClient(t *testing.T, address string, c *codec.Codec) client.Client {
	t.Helper()
	o, err := c.DialOption()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.Dial(client.Options{HostPort: address, Logger: quietSDKLogger{},
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{o}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// workflowIDs lists every workflow of the namespace.
func workflowIDs(ctx context.Context, t *testing.T, c client.Client) []string {
	t.Helper()
	var ids []string
	var token []byte
	for {
		resp, err := c.WorkflowService().ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", NextPageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Executions {
			if !contains(ids, e.Execution.WorkflowId) {
				ids = append(ids, e.Execution.WorkflowId)
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return ids
		}
	}
}

// rawHistory reads a workflow's history (latest run) through the
// WorkflowService API, payloads as stored.
func rawHistory(ctx context.Context, t *testing.T, c client.Client, id string) []*historypb.HistoryEvent {
	t.Helper()
	var events []*historypb.HistoryEvent
	var token []byte
	for {
		resp, err := c.WorkflowService().GetWorkflowExecutionHistory(ctx, &workflowservice.GetWorkflowExecutionHistoryRequest{
			Namespace: "default", Execution: &commonpb.WorkflowExecution{WorkflowId: id}, NextPageToken: token})
		if err != nil {
			t.Fatalf("history of %s: %v", id, err)
		}
		events = append(events, resp.GetHistory().GetEvents()...)
		if token = resp.NextPageToken; len(token) == 0 {
			return events
		}
	}
}

// uiDecodeBody is the body the Temporal UI posts to {endpoint}/decode:
// {"payloads":[{"metadata":{"k":"base64"},"data":"base64"}]}.
func uiDecodeBody(t *testing.T, ps *commonpb.Payloads) string {
	t.Helper()
	type payload struct {
		Metadata map[string]string `json:"metadata"`
		Data     string            `json:"data"`
	}
	var body struct {
		Payloads []payload `json:"payloads"`
	}
	for _, p := range ps.GetPayloads() {
		m := map[string]string{}
		for k, v := range p.Metadata {
			m[k] = base64.StdEncoding.EncodeToString(v)
		}
		body.Payloads = append(body.Payloads, payload{Metadata: m, Data: base64.StdEncoding.EncodeToString(p.Data)})
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// postDecode posts body to endpoint/decode as the UI's browser does.
func postDecode(t *testing.T, endpoint, body, origin, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint+"/decode", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	req.Header.Set("Origin", origin)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("/decode answered the UI without Access-Control-Allow-Origin: %v", resp.Header)
	}
	return resp.StatusCode, string(b)
}

// uiCodecEndpoint is the codec endpoint the Temporal UI tells browsers to use
// (its /api/v1/settings).
func uiCodecEndpoint(t *testing.T, uiURL string) string {
	t.Helper()
	resp, err := http.Get(uiURL + "/api/v1/settings")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var settings struct {
		Codec struct{ Endpoint string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&settings); err != nil {
		t.Fatalf("UI settings: %v", err)
	}
	return settings.Codec.Endpoint
}

// readJob returns the deployed Databricks job definitions under a local fabric's root.
func readJob(t *testing.T, root string) string {
	t.Helper()
	var all strings.Builder
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
			b, _ := os.ReadFile(path)
			all.Write(b)
		}
		return nil
	})
	return all.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
