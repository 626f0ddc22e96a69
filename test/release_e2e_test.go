package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReleaseEndToEnd releases the example project on the embedded stack with
// the real CLI code and checks the tag on the bare remote, then the rules a
// user meets: refusal of a non-admin, bad versions, idempotent re-release, a
// moved tag, an invalid manifest, listing with external tags, and a restart.
func TestReleaseEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts the embedded Temporal server")
	}
	cfgPath, remote, work := demoProject(t)
	s := startStack(t, cfgPath, 0)

	// A release by an admin: the annotated tag lands on the remote, tagged by alice.
	code, out, _ := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait", "--message", "First release")
	if code != 0 || !strings.Contains(out, "released v1.0.0 of demo") {
		t.Fatalf("release exit %d, output:\n%s", code, out)
	}
	head := git(t, work, "rev-parse", "HEAD")
	if got := git(t, remote, "rev-parse", "v1.0.0^{commit}"); got != head {
		t.Fatalf("remote tag v1.0.0 peels to %s, want %s", got, head)
	}
	tagObj := git(t, remote, "cat-file", "-p", "v1.0.0")
	for _, want := range []string{"type commit", "tag v1.0.0", "tagger alice <alice@shipline.local>", "First release", "Shipline-Release: release/demo/v1.0.0"} {
		if !strings.Contains(tagObj, want) {
			t.Errorf("tag object lacks %q:\n%s", want, tagObj)
		}
	}

	// Running the same release again succeeds without a second tag.
	code, out, _ = s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait")
	if code != 0 || !strings.Contains(out, "already exists") {
		t.Fatalf("second release exit %d:\n%s", code, out)
	}
	if tags := git(t, remote, "tag", "-l"); tags != "v1.0.0" {
		t.Fatalf("remote tags after re-release: %q", tags)
	}

	// A non-admin is refused (exit 1), and the refusal is recorded in the workflow.
	code, _, errOut := s.shipline("release", "v1.0.1", "--project", "demo", "--as", "bob", "--wait")
	if code != 1 || !strings.Contains(errOut, "bob may not release project demo") {
		t.Fatalf("non-admin release: exit %d, stderr %q", code, errOut)
	}
	code, out, _ = s.shipline("status", "release/demo/v1.0.1")
	if code != 0 || !strings.Contains(out, "refused") || !strings.Contains(out, "bob may not release") {
		t.Fatalf("status of refused release: exit %d\n%s", code, out)
	}

	// A version that is not vMAJOR.MINOR.PATCH is refused before anything starts.
	for _, v := range []string{"1.0.0", "v1.0", "latest"} {
		if code, _, errOut := s.shipline("release", v, "--project", "demo", "--as", "alice"); code != 2 || !strings.Contains(errOut, "not a release version") {
			t.Fatalf("release %s: exit %d, stderr %q", v, code, errOut)
		}
	}

	// A tag made outside Shipline on another commit: releasing that version from main fails permanently.
	git(t, work, "commit", "-q", "--allow-empty", "-m", "second commit")
	git(t, work, "tag", "-a", "v2.0.0", "-m", "hand-made", "HEAD~1")
	git(t, work, "push", "-q", "origin", "main", "v2.0.0")
	code, _, errOut = s.shipline("release", "v2.0.0", "--project", "demo", "--as", "alice", "--ref", "main", "--wait")
	if code != 1 || !strings.Contains(errOut, "v2.0.0") || !strings.Contains(errOut, "already exists") {
		t.Fatalf("moved tag: exit %d, stderr %q", code, errOut)
	}

	// An invalid manifest at the ref refuses the release with file:line errors.
	git(t, work, "checkout", "-q", "-b", "broken")
	manifest := filepath.Join(work, "shipline.yaml")
	data, _ := os.ReadFile(manifest)
	if err := os.WriteFile(manifest, []byte(strings.Replace(string(data), "pipelines: [ingest_orders]", "pipelines: [ingest_ordrs]", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, "commit", "-q", "-am", "typo")
	git(t, work, "push", "-q", "origin", "broken")
	code, _, errOut = s.shipline("release", "v1.1.0", "--project", "demo", "--as", "alice", "--ref", "broken", "--wait")
	if code != 1 || !strings.Contains(errOut, "shipline.yaml:") || !strings.Contains(errOut, "ingest_ordrs") {
		t.Fatalf("invalid manifest: exit %d, stderr %q", code, errOut)
	}
	if tags := git(t, remote, "tag", "-l", "v1.1.0"); tags != "" {
		t.Fatalf("an invalid manifest still produced tag %q", tags)
	}

	// Listing: Shipline's release, and with --refresh the hand-made tag as external.
	rows := listReleases(t, s, "--refresh")
	if len(rows) != 2 {
		t.Fatalf("releases --refresh: %+v", rows)
	}
	byVersion := map[string]map[string]any{}
	for _, r := range rows {
		byVersion[r["version"].(string)] = r
	}
	if r := byVersion["v1.0.0"]; r["source"] != "shipline" || r["created_by"] != "alice" || r["commit"] != head {
		t.Errorf("v1.0.0 row: %+v", r)
	}
	// A tag made outside Shipline is not a release until adopted: never the latest.
	if r := byVersion["v2.0.0"]; r["source"] != "external" || r["created_by"] != "dev" || r["latest"] == true {
		t.Errorf("v2.0.0 row: %+v", r)
	}

	// A release started the way the Temporal UI does it: a plain JSON input, no
	// search attributes; the workflow sets them and a readable summary itself.
	startLikeUI(t, s, "release/demo/v1.2.0", `{"project":"demo","version":"v1.2.0","actor":"alice","ref":"main","no_deploy":true}`)

	// The release survives a restart of the whole stack (SQLite under state_dir).
	s.stop()
	s = startStack(t, cfgPath, s.tempPort)
	code, out, _ = s.shipline("status", "release/demo/v1.0.0")
	if code != 0 || !strings.Contains(out, "released v1.0.0 of demo") || !strings.Contains(out, "running") {
		t.Fatalf("status after restart: exit %d\n%s", code, out)
	}
	if rows := listReleases(t, s); len(rows) != 2 || rows[0]["version"] != "v1.2.0" || rows[1]["version"] != "v1.0.0" {
		t.Fatalf("releases after restart: %+v", rows)
	}
}

func listReleases(t *testing.T, s *stack, extra ...string) []map[string]any {
	t.Helper()
	var rows []map[string]any
	// Visibility is eventually consistent: give it a moment to index new runs.
	for i := 0; i < 50; i++ {
		code, out, _ := s.shipline(append([]string{"releases", "--project", "demo", "--output", "json"}, extra...)...)
		if code != 0 {
			t.Fatalf("releases: exit %d", code)
		}
		rows = nil
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("releases json: %v\n%s", err, out)
		}
		// A release that just ended may still be listed as running for a moment.
		if len(rows) > 0 && !strings.Contains(out, `"status": "releasing"`) {
			return rows
		}
		sleep100ms()
	}
	return rows
}
