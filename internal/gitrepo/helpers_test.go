package gitrepo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitCmd runs the git CLI with a clean, test-local configuration.
func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Alice Author", "GIT_AUTHOR_EMAIL=alice@example.com",
		"GIT_COMMITTER_NAME=Carol Committer", "GIT_COMMITTER_EMAIL=carol@example.com",
		"GIT_AUTHOR_DATE=2024-03-01T10:00:00Z", "GIT_COMMITTER_DATE=2024-03-01T10:00:00Z",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// fixture is a bare remote plus a work tree that pushes to it.
type fixture struct {
	bare string // path of the bare remote
	work string
}

// newFixture makes a bare remote whose main branch has one commit holding files.
func newFixture(t *testing.T, files map[string]string) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{bare: filepath.Join(root, "remote.git"), work: filepath.Join(root, "work")}
	gitCmd(t, root, "init", "-q", "--bare", "-b", "main", f.bare)
	gitCmd(t, root, "init", "-q", "-b", "main", f.work)
	gitCmd(t, f.work, "remote", "add", "origin", f.bare)
	f.commit(t, "first", files)
	return f
}

// commit writes files (a value starting with "->" makes a symlink) and pushes main.
func (f *fixture) commit(t *testing.T, msg string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(f.work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(p)
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	gitCmd(t, f.work, "add", "-A")
	gitCmd(t, f.work, "commit", "-q", "--allow-empty", "-m", msg)
	gitCmd(t, f.work, "push", "-q", "origin", "main")
	return gitCmd(t, f.work, "rev-parse", "HEAD")
}

func (f *fixture) remoteGit(t *testing.T, args ...string) string {
	t.Helper()
	return gitCmd(t, f.bare, args...)
}

func (f *fixture) mirror(t *testing.T, url string) *Mirror {
	t.Helper()
	s := &Store{Dir: filepath.Join(t.TempDir(), "git"), Getenv: func(string) string { return "" }}
	m, err := s.Mirror(Remote{Project: "demo", URL: url})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
