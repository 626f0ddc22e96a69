package test

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/starter/cli"
)

// exampleKeyFile matches the users' key files examples/platform.yaml lists
// (examples/demo.sh creates them).
var exampleKeyFile = regexp.MustCompile(`\.shipline/keys/([a-z0-9_-]+)\.pub`)

// exampleCopy copies examples/ (without its state) into a new directory and
// creates the users' key pairs where examples/demo.sh would. It returns the
// copied platform file and project directory.
func exampleCopy(t *testing.T) (cfgPath, project string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "examples")
	copyTree(t, filepath.Join("..", "examples"), dir)
	cfgPath = filepath.Join(dir, "platform.yaml")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, ".shipline", "keys")
	mkdirs(t, keys)
	for _, m := range exampleKeyFile.FindAllStringSubmatch(string(data), -1) {
		_, pub, _ := writeKey(t, keys, m[1])
		if err := os.WriteFile(filepath.Join(keys, m[1]+".pub"), []byte(pub+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cfgPath, filepath.Join(dir, "demo")
}

// TestExampleRunsOffline: examples/platform.yaml and examples/demo are valid
// together, and every fabric of every stage works without a network or
// credentials (local folders, or Airflow on a local dags folder without a REST
// API), so the README's first command never meets a workspace it cannot reach.
// Every team member has a key, since the example requires signed requests.
func TestExampleRunsOffline(t *testing.T) {
	cfgPath, project := exampleCopy(t)
	var out, errOut bytes.Buffer
	if code := cli.Main([]string{"shipline", "validate", project, "--platform", cfgPath}, &out, &errOut); code != 0 {
		t.Fatalf("shipline validate examples/demo --platform examples/platform.yaml: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "is valid") {
		t.Errorf("validate printed %q", out.String())
	}

	cfg, diags := platform.Load(cfgPath)
	if len(diags) > 0 {
		t.Fatalf("examples/platform.yaml: %v", diags)
	}
	var offline func(name string) string // "" when the fabric works offline, else why not
	offline = func(name string) string {
		f := cfg.Fabrics[name]
		switch {
		case f.Kind == fabric.KindLocal:
			return ""
		case f.Kind == fabric.KindAirflow:
			s := f.Settings.(fabric.AirflowSettings)
			if s.AirflowURL == "" && (s.ArtifactFabric == "" || offline(s.ArtifactFabric) == "") {
				return ""
			}
		}
		return "kind " + string(f.Kind) + " needs a reachable service and credentials"
	}
	if len(cfg.Promotion.Stages) < 3 {
		t.Errorf("the example promotes through %d stages; the demo shows dev → qa → prod", len(cfg.Promotion.Stages))
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Fabrics)) {
		if why := offline(name); why != "" {
			t.Errorf("fabric %s does not work offline: %s", name, why)
		}
	}
	if !cfg.RequireSignatures {
		t.Error("the example should show signed requests (require_signatures: true)")
	}
	for team, members := range cfg.Teams {
		for _, m := range members.Members {
			if len(cfg.Users[m].Keys) == 0 {
				t.Errorf("%s (team %s) has no key: the demo cannot act as them", m, team)
			}
		}
	}
}

// TestDemoScript runs the README's first command, examples/demo.sh, in a copy
// of the repository: it must end with the release promoted to prod through
// both approval gates, each stage's fabric running it, and the audit.
func TestDemoScript(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: builds the binaries and runs the embedded stack")
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("the demo creates its keys with ssh-keygen (Debian: openssh-client)")
	}
	repo := filepath.Join(t.TempDir(), "shipline")
	copyRepo(t, "..", repo)
	cmd := exec.Command("bash", "examples/demo.sh")
	cmd.Dir = repo
	// Every mutating command of the demo names its --key, so ~/.ssh plays no part.
	cmd.Env = append(os.Environ(), "TEMPORAL_PORT="+itoa(freePort(t)), "UI_PORT="+itoa(freePort(t)), "WEB_ADDR=127.0.0.1:"+itoa(freePort(t)), "KEEP=0", "VERSION=v1.0.0")
	out, err := cmd.CombinedOutput()
	t.Logf("examples/demo.sh:\n%s", out)
	if err != nil {
		t.Fatalf("examples/demo.sh: %v", err)
	}
	text := string(out)
	for _, want := range []string{
		"examples/demo is valid",
		", dashboard http://127.0.0.1:", // the worker serves the dashboard with --dev
		"released v1.0.0 of demo",
		"deployed v1.0.0 of demo to local-dev (2 jobs)",
		"qa: 1 of 1 approvals",
		"bob may not vote on prod",
		"prod: 2 of 2 approvals",
		"promoted v1.0.0 of demo to prod",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	// A stage without verify counts its successful deployment as verified.
	if !regexp.MustCompile(`verified\s+prod\s+deployed v1\.0\.0 of demo to local-prod`).MatchString(text) {
		t.Error("the promotion's status does not show prod deployed to local-prod and verified")
	}
	// deployments per stage: each fabric runs both jobs at v1.0.0.
	for _, fabric := range []string{"local-dev", "local-qa", "local-prod"} {
		if n := len(regexp.MustCompile(`(?m)^`+fabric+`\s+(daily_orders|orders_dag)\s+v1\.0\.0\s`).FindAllString(text, -1)); n != 2 {
			t.Errorf("deployments on %s: %d jobs at v1.0.0 in the output, want 2", fabric, n)
		}
	}
	// the audit ends the story: the prod deployment by an approver.
	if !regexp.MustCompile(`(?m)^.*\bdave\b.*\bdeploy\b.*\bv1\.0\.0\b.*\blocal-prod\b`).MatchString(text) {
		t.Error("the audit lacks dave's deployment to local-prod")
	}
	for _, f := range []string{"jobs/demo__daily_orders.json", "dags/demo__orders_dag.py"} {
		if _, err := os.Stat(filepath.Join(repo, "examples", ".shipline", "fabrics", "prod", f)); err != nil {
			t.Errorf("the prod fabric: %v", err)
		}
	}
}

// copyRepo copies the source tree at src to dst, keeping file modes and
// leaving out git data, built binaries and state directories.
func copyRepo(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		switch name := d.Name(); {
		case d.IsDir() && path != src && (name == ".git" || name == "bin" || name == ".shipline" || name == "__pycache__"):
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case !d.Type().IsRegular() || name == ".git":
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
