package msgauth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var secret = []byte(strings.Repeat("k", 32))

type msg struct {
	ID   string    `json:"id"`
	At   time.Time `json:"at"`
	N    int       `json:"n"`
	Seal *Seal     `json:"seal,omitempty"`
}

func TestSealChecksTargetNamePayloadAndTime(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	m := msg{ID: "deploy/demo/v1/x", At: now, N: 3}
	p, err := Payload(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Make(secret, "fabric/demo/dev", "enqueue", p, now)
	if err != nil {
		t.Fatal(err)
	}
	// The payload as a receiver sees it: decoded with its seal, re-encoded.
	m.Seal = &s
	raw, _ := json.Marshal(m)
	var got msg
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	gp, _ := Payload(got)
	if err := Check(secret, "fabric/demo/dev", "enqueue", gp, got.Seal, now.Add(time.Minute)); err != nil {
		t.Fatalf("genuine message refused: %v", err)
	}
	rp, _ := Payload(json.RawMessage(raw))
	if err := Check(secret, "fabric/demo/dev", "enqueue", rp, got.Seal, now); err != nil {
		t.Fatalf("raw form refused: %v", err)
	}
	changed := got
	changed.N = 4
	cp, _ := Payload(changed)
	for name, err := range map[string]error{
		"other target":  Check(secret, "fabric/demo/prod", "enqueue", gp, got.Seal, now),
		"other name":    Check(secret, "fabric/demo/dev", "deployment-done", gp, got.Seal, now),
		"other payload": Check(secret, "fabric/demo/dev", "enqueue", cp, got.Seal, now),
		"other secret":  Check([]byte(strings.Repeat("x", 32)), "fabric/demo/dev", "enqueue", gp, got.Seal, now),
		"no seal":       Check(secret, "fabric/demo/dev", "enqueue", gp, nil, now),
		"stale":         Check(secret, "fabric/demo/dev", "enqueue", gp, got.Seal, now.Add(MaxAge+time.Second)),
		"future":        Check(secret, "fabric/demo/dev", "enqueue", gp, got.Seal, now.Add(-MaxSkew-time.Second)),
		"no secret":     Check(nil, "fabric/demo/dev", "enqueue", gp, got.Seal, now),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Make([]byte("short"), "t", "n", gp, now); err == nil {
		t.Error("a short secret seals")
	}
}

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	a, src, err := LoadSecret("", "", dir)
	if err != nil || !strings.Contains(src, GeneratedFile) {
		t.Fatalf("generate: %v %q", err, src)
	}
	b, _, err := LoadSecret("", "", dir)
	if err != nil || string(a) != string(b) {
		t.Fatalf("a second worker on the same state_dir gets another secret: %v", err)
	}
	t.Setenv("SHIPLINE_TEST_SECRET", "")
	if _, _, err := LoadSecret("SHIPLINE_TEST_SECRET", "", dir); err == nil || !strings.Contains(err.Error(), "SHIPLINE_TEST_SECRET, which is not set") {
		t.Errorf("unset env: %v", err)
	}
	t.Setenv("SHIPLINE_TEST_SECRET", "short")
	if _, _, err := LoadSecret("SHIPLINE_TEST_SECRET", "", dir); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short env: %v", err)
	}
	t.Setenv("SHIPLINE_TEST_SECRET", strings.Repeat("e", 40))
	if s, _, err := LoadSecret("SHIPLINE_TEST_SECRET", "", dir); err != nil || string(s) != strings.Repeat("e", 40) {
		t.Errorf("env: %v", err)
	}
	f := filepath.Join(dir, "secret")
	if _, _, err := LoadSecret("", f, dir); err == nil || !strings.Contains(err.Error(), "cannot read") {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(f, []byte(strings.Repeat("f", 33)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, _, err := LoadSecret("", f, dir); err != nil || string(s) != strings.Repeat("f", 33) {
		t.Errorf("file: %v %q", err, s)
	}
}
