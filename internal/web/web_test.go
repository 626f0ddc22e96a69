package web

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/internal/platform"
)

// testServer is a dashboard over a platform with one project whose name
// needs escaping nowhere, and a Temporal client that is never dialled (the
// tests here stop before any read).
func testServer(t *testing.T, w *platform.Web) *Server {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := &platform.Config{
		Teams:    map[string]platform.Team{"developers": {Members: []string{"alice", "bob"}}},
		Projects: map[string]platform.Project{"demo": {Repo: "https://git.example.com/<b>demo</b>.git", Admins: []string{"alice"}}},
		Web:      w,
	}
	s, err := New(Options{Config: cfg, Client: c, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var proxyWeb = &platform.Web{Auth: platform.WebAuthProxy, UserHeader: "X-Forwarded-User", TrustedProxies: []string{"10.0.0.0/8", "127.0.0.1/32"}, Delegate: "web"}

func do(t *testing.T, h http.Handler, method, target, remote string, header http.Header, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	req.RemoteAddr = remote
	req.Host = "127.0.0.1:8080"
	for k, vs := range header {
		if k == "Host" {
			req.Host = vs[0]
			continue
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// The user header is believed only from a trusted proxy's address (the
// connection's peer, not X-Forwarded-For); without it there is no user.
func TestProxyAuth(t *testing.T) {
	h := testServer(t, proxyWeb).Handler()
	user := func(name string) http.Header { return http.Header{"X-Forwarded-User": {name}} }
	for _, tc := range []struct {
		name   string
		remote string
		header http.Header
		status int
		body   string
	}{
		{"trusted proxy names carol", "10.1.2.3:5555", user("carol"), 200, `signed in as <b id="user">carol</b>`},
		{"loopback proxy", "127.0.0.1:5555", user("bob"), 200, "bob"},
		{"trusted address, no header", "10.1.2.3:5555", nil, 401, "not signed in"},
		{"trusted address, empty header", "10.1.2.3:5555", user(""), 401, "not signed in"},
		{"forged header from outside", "192.168.1.9:5555", user("carol"), 403, "not one of the dashboard's trusted proxies"},
		{"forged header, spoofed X-Forwarded-For", "192.168.1.9:5555", http.Header{"X-Forwarded-User": {"carol"}, "X-Forwarded-For": {"127.0.0.1"}}, 403, "not trusted"},
		{"outside, no header", "192.168.1.9:5555", nil, 401, "sign-in proxy"},
		{"127.0.0.2 is not 127.0.0.1/32", "127.0.0.2:5555", user("carol"), 403, "not trusted"},
		{"two headers", "10.1.2.3:5555", http.Header{"X-Forwarded-User": {"carol", "alice"}}, 401, "no single"},
		{"not a user name", "10.1.2.3:5555", user("carol/../alice"), 400, "does not hold a user name"},
	} {
		res, body := do(t, h, "GET", "/", tc.remote, tc.header, nil)
		if res.StatusCode != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %q; want %d with %q", tc.name, res.StatusCode, body, tc.status, tc.body)
		}
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// Every form carries a CSRF token bound to the session and user; a POST
// without it, with another session's, or with a wrong one is refused (403)
// before anything is sent. Cookies are HttpOnly and SameSite=Strict.
func TestCSRF(t *testing.T) {
	s := testServer(t, &platform.Web{Auth: platform.WebAuthDev, Delegate: "web"})
	h := s.Handler()
	// The picker's own form.
	res, body := do(t, h, "GET", "/login", "127.0.0.1:1", nil, nil)
	m := csrfRE.FindStringSubmatch(body)
	if res.StatusCode != 200 || m == nil {
		t.Fatalf("login page %d:\n%s", res.StatusCode, body)
	}
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v", session)
	}
	cookie := func(cs ...*http.Cookie) http.Header {
		var parts []string
		for _, c := range cs {
			parts = append(parts, c.Name+"="+c.Value)
		}
		return http.Header{"Cookie": {strings.Join(parts, "; ")}}
	}
	if res, _ := do(t, h, "POST", "/login", "127.0.0.1:1", cookie(session), url.Values{"user": {"bob"}}); res.StatusCode != 403 {
		t.Errorf("login without a token: %d", res.StatusCode)
	}
	res, _ = do(t, h, "POST", "/login", "127.0.0.1:1", cookie(session), url.Values{"user": {"bob"}, "csrf": {m[1]}})
	var picked *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == userCookie {
			picked = c
		}
	}
	if res.StatusCode != http.StatusSeeOther || picked == nil || !picked.HttpOnly || picked.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %d, cookie %+v", res.StatusCode, picked)
	}
	// Signed in as bob: the page's forms carry bob's token.
	res, body = do(t, h, "GET", "/", "127.0.0.1:1", cookie(session, picked), nil)
	m = csrfRE.FindStringSubmatch(body)
	if res.StatusCode != 200 || m == nil || !strings.Contains(body, `id="user">bob<`) {
		t.Fatalf("projects page as bob: %d\n%s", res.StatusCode, body)
	}
	vote := "/p/demo/promotions/v1.0.0/vote"
	form := func(token string) url.Values {
		v := url.Values{"stage": {"qa"}, "decision": {"neither"}}
		if token != "" {
			v.Set("csrf", token)
		}
		return v
	}
	for name, tc := range map[string]struct {
		header http.Header
		token  string
	}{
		"no token":          {cookie(session, picked), ""},
		"wrong token":       {cookie(session, picked), m[1][:len(m[1])-2] + "xx"},
		"another session's": {cookie(&http.Cookie{Name: sessionCookie, Value: strings.Repeat("ab", 16)}, picked), m[1]},
		"the login's token": {cookie(session, picked), s.csrfToken(session.Value, "")},
		"another user's":    {cookie(session, picked), s.csrfToken(session.Value, "alice")},
	} {
		res, body := do(t, h, "POST", vote, "127.0.0.1:1", tc.header, form(tc.token))
		if name == "another session's" {
			// The user cookie is bound to its session: no user at all.
			if res.StatusCode != 401 {
				t.Errorf("%s: %d %s", name, res.StatusCode, body)
			}
			continue
		}
		if res.StatusCode != 403 || !strings.Contains(body, "CSRF") {
			t.Errorf("%s: %d %s", name, res.StatusCode, body)
		}
	}
	// With the right token the request goes on (and is refused for its decision, not its token).
	res, body = do(t, h, "POST", vote, "127.0.0.1:1", cookie(session, picked), form(m[1]))
	if res.StatusCode != 400 || !strings.Contains(body, "decision must be approve or reject") {
		t.Errorf("with the token: %d %s", res.StatusCode, body)
	}
}

// auth dev is a user picker: it listens on loopback only.
func TestDevAuthLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:8080": true, "0.0.0.0:8080": false, ":8080": false, "192.168.1.2:80": false} {
		err := CheckAddr(platform.WebAuthDev, addr)
		if (err == nil) != ok {
			t.Errorf("dev on %s: %v", addr, err)
		}
		if err != nil && !strings.Contains(err.Error(), "loopback only") {
			t.Errorf("dev on %s: unclear error %v", addr, err)
		}
		if err := CheckAddr(platform.WebAuthProxy, addr); err != nil {
			t.Errorf("proxy on %s: %v", addr, err)
		}
	}
	// Without a picked user a page sends to the picker; a POST is refused.
	h := testServer(t, nil).Handler()
	if res, _ := do(t, h, "GET", "/p/demo", "127.0.0.1:1", nil, nil); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Errorf("no user: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := do(t, h, "POST", "/p/demo/promotions/v1.0.0/vote", "127.0.0.1:1", nil, url.Values{}); res.StatusCode != 401 {
		t.Errorf("POST with no user: %d", res.StatusCode)
	}
}

// Strings from platform.yaml and from users are escaped, and the pages allow
// scripts only from the dashboard itself.
func TestEscapingAndHeaders(t *testing.T) {
	h := testServer(t, proxyWeb).Handler()
	res, body := do(t, h, "GET", "/", "127.0.0.1:1", http.Header{"X-Forwarded-User": {"<i>carol<i>"}}, nil)
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	if strings.Contains(body, "<i>carol") || strings.Contains(body, "<b>demo</b>") {
		t.Errorf("unescaped user input:\n%s", body)
	}
	if !strings.Contains(body, "&lt;i&gt;carol&lt;i&gt;") || !strings.Contains(body, "&lt;b&gt;demo&lt;/b&gt;") {
		t.Errorf("escaped text missing:\n%s", body)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if res, _ := do(t, h, "GET", "/p/nope", "127.0.0.1:1", http.Header{"X-Forwarded-User": {"bob"}}, nil); res.StatusCode != 404 {
		t.Errorf("unknown project: %d", res.StatusCode)
	}
	if safeNext("//evil.example.com/x") != "/" || safeNext("https://evil.example.com") != "/" || safeNext("/p/demo") != "/p/demo" {
		t.Error("safeNext lets a redirect leave the dashboard")
	}
}
