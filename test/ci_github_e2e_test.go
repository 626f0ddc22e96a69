package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/starter/cli"
)

// TestCIExamplesRunAgainstLocalStack runs the example GitHub Actions workflows
// of examples/ci/github, step by step (see ghRunner: the runner set-up steps
// are replaced by their local equivalent, every other step runs with bash),
// against the embedded stack serving examples/platform.yaml with a CI service
// identity added: `ci`, a project admin in the developers team, signing with
// the key in its SHIPLINE_PRIVATE_KEY secret.
//
//   - check.yml on a pull request: passes on a good change, fails on a broken
//     one with an annotation on shipline.yaml;
//   - release.yml on a pushed tag v1.0.0: the tag is adopted as the release and
//     deployed to the dev stage; by hand with version v1.1.0: the branch's
//     commit is tagged and released;
//   - promote.yml with v1.0.0 and stage qa: the promotion waits at the qa gate;
//     ci's own approval is refused (a service identity never votes); bob's
//     approval lets it deploy to qa.
func TestCIExamplesRunAgainstLocalStack(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: builds the CLI and runs the embedded stack")
	}
	root := t.TempDir()
	cfgPath, project := exampleCopy(t)
	examples := filepath.Dir(cfgPath)
	keys := filepath.Join(examples, ".shipline", "keys")
	ciKeyFile, ciPub, _ := writeKey(t, keys, "ci")
	if err := os.WriteFile(filepath.Join(keys, "ci.pub"), []byte(ciPub+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	editFile(t, cfgPath,
		"developers:   {members: [alice, bob, carol]}", "developers:   {members: [alice, bob, carol, ci]}",
		"    admins: [alice]\n", "    admins: [alice, ci]\n",
		"  erin:  {key_files: [.shipline/keys/erin.pub]}\n", "  erin:  {key_files: [.shipline/keys/erin.pub]}\n  ci:    {key_files: [.shipline/keys/ci.pub], service: true}\n")

	// The project's repository: a bare remote where examples/platform.yaml
	// expects it, and a developer's clone of it.
	remote := filepath.Join(examples, ".shipline", "remotes", "demo.git")
	mkdirs(t, remote)
	git(t, remote, "init", "--bare", "-q", "-b", "main")
	work := filepath.Join(root, "developer")
	copyTree(t, project, work)
	git(t, work, "init", "-q", "-b", "main")
	git(t, work, "add", ".")
	git(t, work, "commit", "-q", "-m", "demo project")
	git(t, work, "remote", "add", "origin", remote)
	git(t, work, "push", "-q", "origin", "main")
	mainSHA := git(t, work, "rev-parse", "HEAD")

	binDir := filepath.Join(root, "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(binDir, "shipline"), "./starter")
	build.Dir = ".."
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -o bin/shipline ./starter: %v\n%s", err, out)
	}

	// ci in the developers team is valid; validate says it never votes at qa.
	var vout, verr bytes.Buffer
	if code := cli.Main([]string{"shipline", "validate", project, "--platform", cfgPath}, &vout, &verr); code != 0 ||
		!strings.Contains(vout.String(), `warning: stage qa.approval: team "developers" includes service identities (ci): they may not approve or reject`) {
		t.Fatalf("shipline validate --platform: exit %d, want 0 with a warning about ci at the qa gate\n%s%s", code, vout.String(), verr.String())
	}

	s := startStack(t, cfgPath, 0)
	defer s.stop()
	ciKey, err := os.ReadFile(ciKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	runner := func(t *testing.T, github, inputs map[string]string) *ghRunner {
		base := t.TempDir()
		gh := map[string]string{"repository": "data/demo", "server_url": "https://github.com", "run_id": "4242"}
		for k, v := range github {
			gh[k] = v
		}
		return &ghRunner{t: t, workspace: filepath.Join(base, "work"), temp: filepath.Join(base, "temp"), home: filepath.Join(base, "home"),
			remote: remote, shipline: binDir,
			// The secrets a repository sets (TEMPORAL_API_KEY and the mTLS
			// client certificate stay unset: the local stack is plain text).
			secrets: map[string]string{"TEMPORAL_ADDRESS": s.address, "SHIPLINE_PRIVATE_KEY": string(ciKey)},
			vars:    map[string]string{"SHIPLINE_PROJECT": "demo", "SHIPLINE_USER": "ci"},
			github:  gh, inputs: inputs}
	}
	workflow := func(name string) string { return filepath.Join(ciExamples, name) }
	logRun := func(t *testing.T, name string, res ghResult) { t.Logf("%s:\n%s", name, res.Log) }

	t.Run("pull request check", func(t *testing.T) {
		if out, err := exec.Command(filepath.Join(binDir, "shipline"), "check", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "shipline check") {
			t.Skipf("`shipline check` is not in this build yet (shipline check --help: %v): check.yml's steps are not run; re-check once it is merged", err)
		}
		pr := func(branch, file, old, new string) ghResult {
			git(t, work, "checkout", "-q", "-b", branch, mainSHA)
			editFile(t, filepath.Join(work, file), old, new)
			git(t, work, "commit", "-q", "-am", branch)
			git(t, work, "push", "-q", "origin", branch)
			sha := git(t, work, "rev-parse", "HEAD")
			git(t, work, "checkout", "-q", "main")
			res := runner(t, map[string]string{"event_name": "pull_request", "ref": "refs/pull/1/merge", "ref_name": "1/merge", "sha": sha,
				"base_ref": "main", "head_ref": branch}, nil).run(workflow("check.yml"))
			logRun(t, "check.yml on "+branch, res)
			return res
		}
		good := pr("good-change", "pipelines/ingest_orders/src/ingest_orders/main.py", "\n", "\n# Reviewed in the pull request.\n")
		if good.Err != nil {
			t.Errorf("check.yml failed on a good change at step %q: %v", good.Failed, good.Err)
		}
		broken := pr("broken-change", "shipline.yaml", "pipelines: [ingest_orders, score_churn]", "pipelines: [ingest_orders, score_churn, no_such_pipeline]")
		if broken.Err == nil || broken.Failed != "shipline check" {
			t.Errorf("check.yml on a broken change: failed step %q (%v), want `shipline check` to fail", broken.Failed, broken.Err)
		}
		if !strings.Contains(broken.Log, "::error file=shipline.yaml,line=") {
			t.Error("the broken change has no annotation on shipline.yaml")
		}
	})

	released := t.Run("release on a pushed tag", func(t *testing.T) {
		git(t, work, "tag", "-a", "v1.0.0", "-m", "v1.0.0", mainSHA)
		git(t, work, "push", "-q", "origin", "v1.0.0")
		res := runner(t, map[string]string{"event_name": "push", "ref": "refs/tags/v1.0.0", "ref_name": "v1.0.0", "sha": mainSHA}, nil).
			run(workflow("release.yml"))
		logRun(t, "release.yml on tag v1.0.0", res)
		if res.Err != nil {
			t.Fatalf("release.yml failed at step %q: %v", res.Failed, res.Err)
		}
		for _, want := range []string{"adopting it", "released v1.0.0 of demo", "deployed v1.0.0 of demo to local-dev"} {
			if !strings.Contains(res.Log, want) {
				t.Errorf("the release's log lacks %q", want)
			}
		}
		if code, out, _ := s.shipline("status", "release/demo/v1.0.0", "--output", "json"); code != 0 || !strings.Contains(strings.Join(strings.Fields(out), ""), `"actor":"ci"`) {
			t.Errorf("release/demo/v1.0.0 is not a release by ci: exit %d\n%s", code, out)
		}
		fabricHolds(t, filepath.Join(examples, ".shipline", "fabrics", "dev"), "v1.0.0")
	})

	t.Run("release by hand", func(t *testing.T) {
		res := runner(t, map[string]string{"event_name": "workflow_dispatch", "ref": "refs/heads/main", "ref_name": "main", "sha": mainSHA},
			map[string]string{"version": "v1.1.0"}).run(workflow("release.yml"))
		logRun(t, "release.yml by hand, v1.1.0", res)
		if res.Err != nil {
			t.Fatalf("release.yml failed at step %q: %v", res.Failed, res.Err)
		}
		if !strings.Contains(res.Log, "released v1.1.0 of demo") {
			t.Error("the release's log lacks `released v1.1.0 of demo`")
		}
		if got := git(t, work, "ls-remote", "origin", "refs/tags/v1.1.0^{}"); !strings.HasPrefix(got, mainSHA) {
			t.Errorf("tag v1.1.0 on the remote: %q, want it on %s", got, mainSHA)
		}
	})

	t.Run("promote", func(t *testing.T) {
		if !released {
			t.Skip("nothing was released")
		}
		res := runner(t, map[string]string{"event_name": "workflow_dispatch", "ref": "refs/heads/main", "ref_name": "main", "sha": mainSHA},
			map[string]string{"version": "v1.0.0", "stage": "qa"}).run(workflow("promote.yml"))
		logRun(t, "promote.yml v1.0.0 to qa", res)
		if res.Err != nil {
			t.Fatalf("promote.yml failed at step %q: %v", res.Failed, res.Err)
		}
		if !strings.Contains(res.Log, "qa: 0 of 1 approvals from developers") {
			t.Fatal("the promotion does not wait at the qa gate")
		}
		// The CI's own identity cannot approve, even with its valid key.
		approve := exec.Command(filepath.Join(binDir, "shipline"), "approve", "v1.0.0", "--project", "demo", "--stage", "qa")
		approve.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+s.address, "SHIPLINE_USER=ci", "SHIPLINE_PRIVATE_KEY="+string(ciKey), "SHIPLINE_KEY=", "HOME="+t.TempDir())
		out, err := approve.CombinedOutput()
		if code := exitCode(err); code != 1 || !strings.Contains(string(out), "ci is a service identity") {
			t.Fatalf("ci's approval: exit %d, want 1 refusing a service identity:\n%s", code, out)
		}
		if code, out, errOut := s.shipline("approve", "v1.0.0", "--project", "demo", "--stage", "qa", "--as", "bob", "--key", filepath.Join(keys, "bob")); code != 0 {
			t.Fatalf("bob's approval: exit %d\n%s%s", code, out, errOut)
		}
		waitPromoted(t, s, "promote/demo/v1.0.0")
		fabricHolds(t, filepath.Join(examples, ".shipline", "fabrics", "qa"), "v1.0.0")
	})
}

// editFile replaces each old string (pairs of old, new) once; a missing one
// fails the test, naming it.
func editFile(t *testing.T, path string, pairs ...string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("%s no longer contains %q", path, pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fabricHolds checks a local fabric holds both of the demo's jobs at version.
func fabricHolds(t *testing.T, root, version string) {
	t.Helper()
	for _, f := range []string{"jobs/demo__daily_orders.json", "dags/demo__orders_dag.py"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Errorf("fabric %s: %v", filepath.Base(root), err)
			continue
		}
		if !strings.Contains(string(data), version) {
			t.Errorf("fabric %s: %s does not run %s", filepath.Base(root), f, version)
		}
	}
}

// waitPromoted waits (up to 3 minutes) for a promotion to reach its target.
func waitPromoted(t *testing.T, s *stack, id string) {
	t.Helper()
	for range 360 {
		_, out, _ := s.shipline("status", id, "--output", "json")
		compact := strings.Join(strings.Fields(out), "")
		if strings.Contains(compact, `"status":"promoted"`) {
			return
		}
		if strings.Contains(compact, `"status":"failed"`) || strings.Contains(compact, `"status":"refused"`) {
			t.Fatalf("%s ended: %s", id, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s was not promoted in 3 minutes", id)
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
