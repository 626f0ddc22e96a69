package gitrepo

import (
	"context"
	"errors"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	goodToken = "tok-3f9c2a-good"
	readToken = "tok-7b1d0e-readonly"
	badToken  = "tok-00dead-wrong"
)

// smartHTTP serves the fixture's bare remote with git http-backend behind Basic
// auth: goodToken may fetch and push, readToken may only fetch.
func smartHTTP(t *testing.T, f *fixture) string {
	t.Helper()
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skipf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Skipf("no git-http-backend: %v", err)
	}
	f.remoteGit(t, "config", "http.receivepack", "true")
	cgiHandler := &cgi.Handler{
		Path: backend,
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(f.bare), "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pass, ok := r.BasicAuth()
		if !ok || (pass != goodToken && pass != readToken) {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		push := strings.HasSuffix(r.URL.Path, "/git-receive-pack") || r.URL.Query().Get("service") == "git-receive-pack"
		if push && pass == readToken {
			http.Error(w, "read-only token", http.StatusForbidden)
			return
		}
		cgiHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(f.bare)
}

func httpMirror(t *testing.T, url, token string) *Mirror {
	t.Helper()
	env := map[string]string{"GIT_TOKEN": token, "GIT_USER": "ci-bot"}
	s := &Store{Dir: t.TempDir(), Getenv: func(k string) string { return env[k] }}
	m, err := s.Mirror(Remote{Project: "demo", URL: url, TokenEnv: "GIT_TOKEN", UserEnv: "GIT_USER"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSmartHTTP(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	commit := gitCmd(t, f.work, "rev-parse", "HEAD")
	url := smartHTTP(t, f)
	ctx := context.Background()

	t.Run("right token", func(t *testing.T) {
		m := httpMirror(t, url, goodToken)
		got, err := m.Resolve(ctx, commit[:7])
		if err != nil || got != commit {
			t.Fatalf("Resolve = %s, %v", got, err)
		}
		res, err := m.CreateTag(ctx, tagReq(commit))
		if err != nil || !res.Created {
			t.Fatalf("CreateTag = %+v, %v", res, err)
		}
		if got := f.remoteGit(t, "rev-parse", "v1.0.0^{commit}"); got != commit {
			t.Errorf("remote v1.0.0 peels to %s", got)
		}
		res, err = httpMirror(t, url, goodToken).CreateTag(ctx, tagReq(commit))
		if err != nil || res.Created {
			t.Fatalf("CreateTag again = %+v, %v", res, err)
		}
	})

	for _, tc := range []struct {
		name, token string
		op          func(m *Mirror) error
		wantMsg     []string
	}{
		{"wrong token on fetch", badToken, func(m *Mirror) error { _, err := m.Resolve(ctx, "main"); return err },
			[]string{"HTTP 401", "$GIT_TOKEN", url}},
		{"wrong token on tag", badToken, func(m *Mirror) error {
			r := tagReq(commit)
			r.Name = "v2.0.0"
			_, err := m.CreateTag(ctx, r)
			return err
		}, []string{"HTTP 401", "$GIT_TOKEN"}},
		{"no token", "", func(m *Mirror) error { _, err := m.Resolve(ctx, "main"); return err },
			[]string{"HTTP 401", "$GIT_TOKEN is empty or unset"}},
		{"read-only token pushing", readToken, func(m *Mirror) error {
			r := tagReq(commit)
			r.Name = "v2.0.0"
			_, err := m.CreateTag(ctx, r)
			return err
		}, []string{"HTTP 403", "push tags"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op(httpMirror(t, url, tc.token))
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
			t.Log(err)
			full := err.Error()
			for c := errors.Unwrap(err); c != nil; c = errors.Unwrap(c) {
				full += " | " + c.Error()
			}
			for _, tok := range []string{goodToken, readToken, badToken} {
				if strings.Contains(full, tok) {
					t.Errorf("error text leaks a token: %s", full)
				}
			}
			for _, want := range tc.wantMsg {
				if !strings.Contains(full, want) {
					t.Errorf("error lacks %q: %s", want, full)
				}
			}
		})
	}
	if tags := f.remoteGit(t, "tag", "-l"); tags != "v1.0.0" {
		t.Errorf("remote tags = %q", tags)
	}
}

func TestDisplayURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:s3cret@git.example.com/a/b.git": "https://git.example.com/a/b.git",
		"https://git.example.com/a/b.git":             "https://git.example.com/a/b.git",
		"ssh://git@host:2222/a/b.git":                 "ssh://host:2222/a/b.git",
		"git@github.com:a/b.git":                      "github.com:a/b.git",
		"file:///srv/git/b.git":                       "file:///srv/git/b.git",
		"/srv/git/b.git":                              "/srv/git/b.git",
	} {
		if got := DisplayURL(in); got != want {
			t.Errorf("DisplayURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// A token embedded in the URL itself is scrubbed from transient errors too.
func TestTokenInURLNotLeaked(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	m, err := s.Mirror(Remote{Project: "demo", URL: "http://bot:" + goodToken + "@127.0.0.1:1/repo.git"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Resolve(context.Background(), "main")
	if err == nil || strings.Contains(err.Error(), goodToken) {
		t.Fatalf("err = %v", err)
	}
}
