package test

import (
	"errors"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitServer serves bare repositories over smart HTTP (git http-backend) on a
// fixed loopback port, and can go down and come back on the same port.
type gitServer struct {
	t    *testing.T
	root string
	addr string
	srv  *http.Server
}

func newGitServer(t *testing.T, root string) *gitServer {
	t.Helper()
	g := &gitServer{t: t, root: root, addr: "127.0.0.1:" + itoa(freePort(t))}
	g.up()
	t.Cleanup(g.down)
	return g
}

func (g *gitServer) up() {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		g.t.Fatal(err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + g.root, "GIT_HTTP_EXPORT_ALL=1"}}
	var l net.Listener
	for i := 0; i < 50; i++ { // the port may linger briefly after down()
		if l, err = net.Listen("tcp", g.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		g.t.Fatal(err)
	}
	g.srv = &http.Server{Handler: h}
	go func() {
		if err := g.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.t.Error(err)
		}
	}()
}

func (g *gitServer) down() {
	if g.srv != nil {
		_ = g.srv.Close()
		g.srv = nil
	}
}

// TestReleaseParksWhileRemoteIsDown stops the git server during a release: the
// release retries for the project's git_retry window, parks with the reason, and
// finishes after the server is back and `resume` is sent.
func TestReleaseParksWhileRemoteIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	cfgPath, remote, _ := demoProject(t)
	git(t, remote, "config", "http.receivepack", "true")
	srv := newGitServer(t, filepath.Dir(remote))
	url := "http://" + srv.addr + "/" + filepath.Base(remote)
	data, _ := os.ReadFile(cfgPath)
	cfg := strings.Replace(string(data), "repo: "+remote, "repo: "+url+"\n    git_retry: 3s", 1)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, cfgPath, 0)

	srv.down()
	code, out, errOut := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--no-deploy", "--wait")
	if code != 1 || !strings.Contains(errOut, "is parked at resolve ref") {
		t.Fatalf("release with the remote down: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = s.shipline("status", "release/demo/v1.0.0")
	if code != 0 || !strings.Contains(out, "parked at resolve ref") || !strings.Contains(out, "shipline resume release/demo/v1.0.0") {
		t.Fatalf("status of the parked release:\n%s", out)
	}
	if code, _, errOut := s.shipline("resume", "release/demo/v1.0.0", "--as", "bob"); code != 1 || !strings.Contains(errOut, "only the releaser") {
		t.Fatalf("bob resuming: exit %d %q", code, errOut)
	}

	srv.up()
	if code, out, errOut := s.shipline("resume", "release/demo/v1.0.0", "--as", "alice"); code != 0 {
		t.Fatalf("resume: exit %d\n%s%s", code, out, errOut)
	}
	waitFor(t, s, "release/demo/v1.0.0", "released v1.0.0 of demo")
	if got := git(t, remote, "tag", "-l", "v1.0.0"); got != "v1.0.0" {
		t.Fatalf("tag after resume: %q", got)
	}
}
