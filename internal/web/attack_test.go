package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// devLogin signs bob in on a dev dashboard and returns the session cookies.
func devSession(t *testing.T, h http.Handler, host string) (*http.Response, string) {
	t.Helper()
	return do(t, h, "GET", "/login", "127.0.0.1:1", http.Header{"Host": {host}}, nil)
}

// A browser drops tabs and newlines from a URL before reading it, so a
// `next` of "/\t/evil.example.com" is "//evil.example.com" to it: another
// host. The redirect after signing in stays on the dashboard whatever next holds.
func TestLoginRedirectStaysOnDashboard(t *testing.T) {
	s := testServer(t, nil)
	h := s.Handler()
	for _, next := range []string{"/\t/evil.example.com", "/\n/evil.example.com", "/\r\n/evil.example.com", "\t//evil.example.com", "/%09/evil.example.com"} {
		res, body := do(t, h, "GET", "/login?next="+url.QueryEscape(next), "127.0.0.1:1", nil, nil)
		m := csrfRE.FindStringSubmatch(body)
		if res.StatusCode != 200 || m == nil {
			t.Fatalf("login page %d:\n%s", res.StatusCode, body)
		}
		var session string
		for _, c := range res.Cookies() {
			if c.Name == sessionCookie {
				session = c.Value
			}
		}
		res, _ = do(t, h, "POST", "/login", "127.0.0.1:1", http.Header{"Cookie": {sessionCookie + "=" + session}},
			url.Values{"user": {"bob"}, "csrf": {m[1]}, "next": {next}})
		loc := res.Header.Get("Location")
		// What a browser makes of it (WHATWG URL: ASCII tab and newline removed).
		seen := strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(loc)
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(seen, "/") || strings.HasPrefix(seen, "//") || strings.HasPrefix(seen, `/\`) {
			t.Errorf("next %q: %d Location %q leaves the dashboard", next, res.StatusCode, loc)
		}
	}
	for next, want := range map[string]string{"/p/demo?tab=x": "/p/demo?tab=x", "/\t/evil.example.com": "/", "/p/demo\x7f": "/"} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

// auth dev listens on loopback only, but a page on another site can have its
// own host name resolve to 127.0.0.1 (DNS rebinding) and then read the picker
// and post to it as the same origin: the dev dashboard answers only requests
// addressed to a loopback host name.
func TestDevAuthRefusesForeignHost(t *testing.T) {
	h := testServer(t, nil).Handler()
	for host, ok := range map[string]bool{"127.0.0.1:8080": true, "localhost:8080": true, "[::1]:8080": true, "localhost": true,
		"evil.example.com:8080": false, "evil.example.com": false, "127.0.0.1.evil.example.com:8080": false, "localhost.evil.example.com": false} {
		res, body := devSession(t, h, host)
		if ok && (res.StatusCode != 200 || csrfRE.FindStringSubmatch(body) == nil) {
			t.Errorf("Host %s: %d %s", host, res.StatusCode, body)
		}
		if !ok && (res.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(body, "loopback")) {
			t.Errorf("Host %s: %d, want 421 saying loopback; %s", host, res.StatusCode, body)
		}
		if !ok {
			if res, _ := do(t, h, "GET", "/p/demo", "127.0.0.1:1", http.Header{"Host": {host}}, nil); res.StatusCode != http.StatusMisdirectedRequest {
				t.Errorf("Host %s, /p/demo: %d", host, res.StatusCode)
			}
		}
	}
	// Behind a proxy the host name is the proxy's business.
	hp := testServer(t, proxyWeb).Handler()
	if res, body := do(t, hp, "GET", "/", "10.0.0.1:1", http.Header{"Host": {"shipline.example.com"}, "X-Forwarded-User": {"bob"}}, nil); res.StatusCode != 200 {
		t.Errorf("proxy: %d %s", res.StatusCode, body)
	}
}

// The promotion page's "You approved qa" comes only from the redirect after
// the user's own vote: a link carrying ?voted=approve&stage=prod, or the
// query of another session or user, shows nothing.
func TestVotedMessageOnlyAfterOwnVote(t *testing.T) {
	s := testServer(t, nil)
	bob := &visit{User: "bob", Session: strings.Repeat("ab", 16), Project: "demo"}
	q, err := url.ParseQuery(s.votedQuery(bob, "v1.0.0", "approve", "qa"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.votedFlash(q, bob, "v1.0.0"); !strings.Contains(got, "You approved qa") {
		t.Errorf("own vote: %q", got)
	}
	alice := &visit{User: "alice", Session: bob.Session, Project: "demo"}
	other := &visit{User: "bob", Session: strings.Repeat("cd", 16), Project: "demo"}
	forged := url.Values{"voted": {"approve"}, "stage": {"prod"}}
	moved := url.Values{"voted": {"approve"}, "stage": {"prod"}, "m": {q.Get("m")}}
	for name, tc := range map[string]struct {
		q   url.Values
		v   *visit
		ver string
	}{
		"a crafted link":  {forged, bob, "v1.0.0"},
		"another stage":   {moved, bob, "v1.0.0"},
		"another version": {q, bob, "v2.0.0"},
		"another user":    {q, alice, "v1.0.0"},
		"another session": {q, other, "v1.0.0"},
	} {
		if got := s.votedFlash(tc.q, tc.v, tc.ver); got != "" {
			t.Errorf("%s: %q", name, got)
		}
	}
}
