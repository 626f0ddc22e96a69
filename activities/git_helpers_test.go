package activities

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/platform"
)

// runGit runs the git CLI with a clean, test-local configuration.
func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+t.TempDir(), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Alice", "GIT_AUTHOR_EMAIL=alice@example.com",
		"GIT_COMMITTER_NAME=Alice", "GIT_COMMITTER_EMAIL=alice@example.com",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// testRemote is a bare remote plus a work tree pushing to it.
type testRemote struct{ bare, work string }

func newTestRemote(t *testing.T) *testRemote {
	t.Helper()
	root := t.TempDir()
	r := &testRemote{bare: filepath.Join(root, "remote.git"), work: filepath.Join(root, "work")}
	runGit(t, root, "init", "-q", "--bare", "-b", "main", r.bare)
	runGit(t, root, "init", "-q", "-b", "main", r.work)
	runGit(t, r.work, "remote", "add", "origin", r.bare)
	return r
}

// commit replaces the work tree's files with files, commits and pushes main.
func (r *testRemote) commit(t *testing.T, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(r.work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runGit(t, r.work, "add", "-A")
	runGit(t, r.work, "commit", "-q", "--allow-empty", "-m", "change")
	runGit(t, r.work, "push", "-q", "origin", "main")
	return runGit(t, r.work, "rev-parse", "HEAD")
}

// gitActivities returns Git activities for project "demo" at repo.
func gitActivities(t *testing.T, repo string, env map[string]string) *Git {
	t.Helper()
	return &Git{
		Platform: &platform.Config{
			StateDir: t.TempDir(),
			Projects: map[string]platform.Project{
				"demo": {Name: "demo", Repo: repo, GitTokenEnv: "DEMO_GIT_TOKEN", Admins: []string{"alice"}},
			},
			Teams:   map[string]platform.Team{"developers": {Members: []string{"alice"}}},
			Fabrics: map[string]platform.Fabric{"dev": {Name: "dev", Kind: fabric.KindDatabricks, Owner: "developers"}},
		},
		Getenv: func(k string) string { return env[k] },
	}
}
