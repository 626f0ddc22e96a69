package test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/test/dbemu"
	"github.com/shipline/shipline/workflows"
)

// promoteFixture has three Databricks workspaces (dev, qa, prod, each its own
// emulator) and an Airflow folder, with DESIGN.md's three stages.
type promoteFixture struct {
	s       *stack
	emus    map[string]*dbemu.Emulator
	remote  string
	workDir string
}

// promoteStages are DESIGN.md's three stages.
const promoteStages = `    - {name: dev,  fabrics: [dev, airflow-dev]}
    - {name: qa,   fabrics: [qa],   approval: {team: developers, required: 1}}
    - {name: prod, fabrics: [prod], approval: {team: prod_support, required: 2, self_approval: false, timeout: 72h}}
`

func newPromoteFixture(t *testing.T) *promoteFixture {
	t.Helper()
	return newPromoteFixtureWith(t, promoteStages)
}

// newPromoteFixtureWith is the fixture with other promotion stages (YAML list items).
func newPromoteFixtureWith(t testing.TB, stages string) *promoteFixture {
	t.Helper()
	f := &promoteFixture{emus: map[string]*dbemu.Emulator{}}
	for _, name := range []string{"dev", "qa", "prod"} {
		emu := dbemu.Start(dbemu.Options{Volumes: []string{volume}, Tokens: []string{goodToken}})
		t.Cleanup(emu.Close)
		f.emus[name] = emu
	}
	t.Setenv(devTokenEnv, goodToken)
	root := t.TempDir()
	f.remote, f.workDir = fixtureProject(t, root, projectTrees...)
	dags := filepath.Join(root, "airflow", "dags")
	mkdirs(t, dags)
	fab := func(name, owner string) string {
		return fmt.Sprintf("  %s: {kind: databricks, owner: %s, host: %s, token_env: %s, artifact_root: %s}\n", name, owner, f.emus[name].URL, devTokenEnv, volume)
	}
	cfg := fmt.Sprintf(`state_dir: state
teams:
  developers:   {members: [alice, bob]}
  prod_support: {members: [carol, dave, erin]}
projects:
  demo: {repo: %s, admins: [alice], auto_deploy: true}
fabrics:
%s%s%s  airflow-dev: {kind: airflow, owner: developers, dags_folder: %s, artifact_fabric: dev}
promotion:
  stages:
%s`, f.remote, fab("dev", "developers"), fab("qa", "developers"), fab("prod", "prod_support"), dags, stages)
	path := filepath.Join(root, "platform.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	f.s = startStack(t, path, 0)
	return f
}

// artifactSums maps each artifact file name on a workspace to its sha256.
func artifactSums(emu *dbemu.Emulator, version string) map[string]string {
	sums := map[string]string{}
	for _, p := range emu.Files() {
		if strings.HasPrefix(p, volume+"/demo/"+version+"/") {
			data, _ := emu.File(p)
			sum := sha256.Sum256(data)
			sums[filepath.Base(p)] = fmt.Sprintf("%x", sum)
		}
	}
	return sums
}

func TestPromoteEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	f := newPromoteFixture(t)
	sh := f.s.shipline

	// Release (auto_deploy reaches the dev stage), then promote: qa waits for developers.
	if code, out, errOut := sh("release", "v1.2.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatalf("release: %s\n%s", out, errOut)
	}
	code, out, _ := sh("promote", "v1.2.0", "--project", "demo", "--as", "alice", "--wait")
	if code != 0 || !strings.Contains(out, "pending: qa: 0 of 1 approvals from developers; alice, bob may approve") {
		t.Fatalf("promote: exit %d\n%s", code, out)
	}
	if code, _, errOut := sh("approve", "v1.2.0", "--project", "demo", "--stage", "qa", "--as", "carol"); code != 1 || !strings.Contains(errOut, "only members of developers") {
		t.Fatalf("carol approving qa: exit %d %q", code, errOut)
	}
	if code, out, _ := sh("approve", "v1.2.0", "--project", "demo", "--stage", "qa", "--as", "bob", "--comment", "tests green"); code != 0 || !strings.Contains(out, "qa: 1 of 1 approvals") {
		t.Fatalf("bob approving qa: exit %d\n%s", code, out)
	}
	waitFor(t, f.s, workflows.PromoteID("demo", "v1.2.0"), "prod: 0 of 2 approvals from prod_support")

	// prod: alice requested it (self-approval off and not in the team), carol once, then dave.
	if code, _, errOut := sh("approve", "v1.2.0", "--project", "demo", "--stage", "prod", "--as", "alice"); code != 1 || !strings.Contains(errOut, "alice may not vote on prod") {
		t.Fatalf("alice approving prod: exit %d %q", code, errOut)
	}
	if code, _, _ := sh("approve", "v1.2.0", "--project", "demo", "--stage", "prod", "--as", "carol"); code != 0 {
		t.Fatal("carol's approval refused")
	}
	if code, _, errOut := sh("approve", "v1.2.0", "--project", "demo", "--stage", "prod", "--as", "carol"); code != 1 || !strings.Contains(errOut, "carol already approved prod") {
		t.Fatalf("second vote: exit %d %q", code, errOut)
	}
	code, out, _ = sh("status", workflows.PromoteID("demo", "v1.2.0"))
	if code != 0 || !strings.Contains(out, "prod: 1 of 2 approvals from prod_support (carol approved ") || !strings.Contains(out, "dave, erin may approve; expires ") {
		t.Fatalf("pending explanation:\n%s", out)
	}
	if code, _, _ := sh("approve", "v1.2.0", "--project", "demo", "--stage", "prod", "--as", "dave"); code != 0 {
		t.Fatal("dave's approval refused")
	}
	waitFor(t, f.s, workflows.PromoteID("demo", "v1.2.0"), "promoted v1.2.0 of demo to prod")
	// SHIPLINE_RECORD_PROMOTE_HISTORY=1 records the promotion's history for
	// workflows/replay_test.go, which keeps replaying it as the code changes.
	if os.Getenv("SHIPLINE_RECORD_PROMOTE_HISTORY") != "" {
		c, err := client.Dial(client.Options{HostPort: f.s.address, Logger: quietSDKLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		recordHistory(context.Background(), t, c, workflows.PromoteID("demo", "v1.2.0"), "", filepath.Join("..", "workflows", "testdata", "histories", "promote.json"))
		c.Close()
	}

	// The same bytes reached every workspace.
	dev, qa, prod := artifactSums(f.emus["dev"], "v1.2.0"), artifactSums(f.emus["qa"], "v1.2.0"), artifactSums(f.emus["prod"], "v1.2.0")
	if len(dev) != 3 || fmt.Sprint(dev) != fmt.Sprint(qa) || fmt.Sprint(dev) != fmt.Sprint(prod) {
		t.Fatalf("artifacts differ:\n dev  %v\n qa   %v\n prod %v", dev, qa, prod)
	}
	jobs := f.emus["prod"].JobsTagged(map[string]string{"shipline_project": "demo", "shipline_job": "daily_orders"})
	if len(jobs) != 1 || jobs[0].CreatorUserName == "" {
		t.Fatalf("prod jobs: %+v", jobs)
	}

	// A linked release cannot be deleted; releases shows it linked, with its stages.
	if code, _, errOut := sh("delete", "v1.2.0", "--project", "demo", "--as", "alice"); code != 1 || !strings.Contains(errOut, "is linked: it reached qa, prod") {
		t.Fatalf("delete linked: exit %d %q", code, errOut)
	}
	code, out, _ = sh("releases", "--project", "demo")
	if code != 0 || !strings.Contains(out, "v1.2.0 (latest) [linked]") || !strings.Contains(out, "qa,prod") {
		t.Fatalf("releases:\n%s", out)
	}

	// A newer release that only reached dev can be deleted: its jobs go back to v1.2.0.
	git(t, f.workDir, "commit", "-q", "--allow-empty", "-m", "next")
	git(t, f.workDir, "push", "-q", f.remote, "main")
	if code, _, _ := sh("release", "v1.3.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatal("release v1.3.0 failed")
	}
	if code, _, errOut := sh("delete", "v1.3.0", "--project", "demo", "--as", "bob"); code != 1 || !strings.Contains(errOut, "only the project's admins") {
		t.Fatalf("bob deleting: exit %d %q", code, errOut)
	}
	code, out, errOut := sh("delete", "v1.3.0", "--project", "demo", "--as", "alice")
	if code != 0 || !strings.Contains(out, "reverted dev/daily_orders → v1.2.0") {
		t.Fatalf("delete v1.3.0: exit %d\n%s\n%s", code, out, errOut)
	}
	if tags := git(t, f.remote, "tag", "-l", "v1.3.0"); tags != "" {
		t.Fatal("tag v1.3.0 still on the remote")
	}
	if len(artifactSums(f.emus["dev"], "v1.3.0")) != 0 || len(artifactSums(f.emus["dev"], "v1.2.0")) != 3 {
		t.Fatal("v1.3.0 artifacts should be gone and v1.2.0's kept")
	}
	devJob := f.emus["dev"].JobsTagged(map[string]string{"shipline_project": "demo", "shipline_job": "daily_orders"})
	if len(devJob) != 1 || devJob[0].Tags()["shipline_version"] != "v1.2.0" {
		t.Fatalf("dev job after delete: %+v", devJob)
	}

	// The audit tells the same story, step by step, in time order. A refused
	// update is recorded by its workflow in the project's audit (sealed), and
	// shown once, as who tried what.
	checkAudit(t, f.s, []string{
		"alice release v1.2.0 released",
		"alice deploy v1.2.0 succeeded",
		"alice promote v1.2.0 started",
		"carol approve v1.2.0 refused",
		"bob approve v1.2.0 ok",
		"bob link v1.2.0 ok",
		"bob deploy v1.2.0 succeeded",
		"alice approve v1.2.0 refused",
		"carol approve v1.2.0 ok",
		"carol approve v1.2.0 refused",
		"dave approve v1.2.0 ok",
		"carol link v1.2.0 ok",
		"carol deploy v1.2.0 succeeded",
		"alice promote v1.2.0 promoted",
		"alice delete v1.2.0 refused",
		"alice release v1.3.0 released", // its later delete adds a row; it never rewrites this one
		"alice deploy v1.3.0 succeeded",
		"bob delete v1.3.0 refused",
		"alice delete v1.3.0 ok",
	})

	// The Databricks token was used all along (release → deploy → promote → delete)
	// but never entered a workflow history.
	assertNoSecretsInHistory(t, f.s, goodToken)
}

// checkAudit reads `shipline audit --json` and checks that want ("actor action
// version result") appears in order among its records.
func checkAudit(t *testing.T, s *stack, want []string) {
	t.Helper()
	var got []string
	for attempt := 0; attempt < 50; attempt++ {
		code, out, _ := s.shipline("audit", "--project", "demo", "--json")
		if code != 0 {
			t.Fatalf("audit: exit %d", code)
		}
		got = nil
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var r struct{ Actor, Action, Version, Result string }
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("audit line %q: %v", line, err)
			}
			got = append(got, strings.Join([]string{r.Actor, r.Action, r.Version, strings.Fields(r.Result + " -")[0]}, " "))
		}
		i := 0
		for _, g := range got {
			if i < len(want) && g == want[i] {
				i++
			}
		}
		if i == len(want) {
			return
		}
		sleep100ms()
	}
	t.Fatalf("audit does not tell the story in order.\nwant (in order):\n  %s\ngot:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
}

// waitFor polls `status ID` until its output contains want.
func waitFor(t *testing.T, s *stack, id, want string) {
	t.Helper()
	var out string
	for i := 0; i < 300; i++ {
		_, out, _ = s.shipline("--output", "json", "status", id)
		if strings.Contains(out, want) {
			return
		}
		sleep100ms()
	}
	var res map[string]any
	_ = json.Unmarshal([]byte(out), &res)
	t.Fatalf("%s never showed %q; last status:\n%s", id, want, out)
}
