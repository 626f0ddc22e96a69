package afemu_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/shipline/shipline/test/afemu"
)

func call(t *testing.T, s *afemu.Server, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, s.URL+path, rd)
	req.SetBasicAuth("admin", "secret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// A run triggered while the DAG is paused stays queued until it is unpaused;
// a duplicate dag_run_id is a 409; marking a run failed skips what had not run.
func TestPausedRunWaitsAndMarkFailed(t *testing.T) {
	s := afemu.Start(afemu.Options{Version: "v1"})
	defer s.Close()
	s.AddDAG("d", afemu.Task{ID: "a"}, afemu.Task{ID: "b", Upstream: []string{"a"}})
	if st, _ := call(t, s, "PATCH", "/api/v1/dags/d?update_mask=is_paused", map[string]any{"is_paused": true}); st != 200 {
		t.Fatalf("pause: %d", st)
	}
	if st, _ := call(t, s, "POST", "/api/v1/dags/d/dagRuns", map[string]any{"dag_run_id": "r1"}); st != 200 {
		t.Fatalf("trigger: %d", st)
	}
	if st, body := call(t, s, "POST", "/api/v1/dags/d/dagRuns", map[string]any{"dag_run_id": "r1"}); st != 409 {
		t.Fatalf("duplicate trigger: %d %v", st, body)
	}
	s.Advance(time.Hour)
	if _, run := call(t, s, "GET", "/api/v1/dags/d/dagRuns/r1", nil); run["state"] != "queued" {
		t.Fatalf("run of a paused DAG: %v", run["state"])
	}
	call(t, s, "PATCH", "/api/v1/dags/d?update_mask=is_paused", map[string]any{"is_paused": false})
	s.Advance(10 * time.Second)
	if _, run := call(t, s, "GET", "/api/v1/dags/d/dagRuns/r1", nil); run["state"] != "running" {
		t.Fatalf("after unpausing: %v", run["state"])
	}
	if st, run := call(t, s, "PATCH", "/api/v1/dags/d/dagRuns/r1", map[string]any{"state": "failed"}); st != 200 || run["state"] != "failed" {
		t.Fatalf("mark failed: %d %v", st, run["state"])
	}
	_, tis := call(t, s, "GET", "/api/v1/dags/d/dagRuns/r1/taskInstances", nil)
	list := tis["task_instances"].([]any)
	if a, b := list[0].(map[string]any)["state"], list[1].(map[string]any)["state"]; a != "failed" || b != "skipped" {
		t.Fatalf("task instances after mark failed: %v %v", a, b)
	}
	if st, _ := call(t, s, "GET", "/api/v2/dags/d/dagRuns", nil); st != 404 {
		t.Fatalf("a v1 server answered v2: %d", st)
	}
}
