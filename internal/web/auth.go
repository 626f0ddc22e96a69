package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/platform"
)

// Cookies of the dashboard: both HttpOnly and SameSite=Strict.
const (
	sessionCookie = "shipline_session"
	userCookie    = "shipline_user" // auth dev: the picked user, bound to the session
	csrfField     = "csrf"
)

// userRE is what a user name may hold (as in platform.yaml: no spaces, slashes or colons).
var userRE = regexp.MustCompile(`^[^\s/\\:]{1,128}$`)

// visit is one request's identity: the user and the session's CSRF token.
type visit struct {
	User    string
	Session string
	CSRF    string
	Auth    string // proxy or dev
	Project string
}

// user wraps a handler with the identity check: who is asking (proxy header
// from a trusted proxy, or the dev picker's cookie), and, on POST, the CSRF token.
func (s *Server) user(h func(http.ResponseWriter, *http.Request, *visit)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		session := s.session(w, r)
		v := &visit{Session: session, Auth: s.web.Auth}
		switch s.web.Auth {
		case platform.WebAuthProxy:
			user, status, msg := s.proxyUser(r)
			if status != 0 {
				s.log.Warn("dashboard request refused", zap.String("remote", r.RemoteAddr), zap.Int("status", status), zap.String("why", msg))
				http.Error(w, msg, status)
				return
			}
			v.User = user
		default:
			v.User = s.pickedUser(r, session)
			if v.User == "" {
				if r.Method == http.MethodGet {
					http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
					return
				}
				http.Error(w, "pick a user first: open /login", http.StatusUnauthorized)
				return
			}
		}
		v.CSRF = s.csrfToken(session, v.User)
		if r.Method == http.MethodPost && !s.checkCSRF(r, v) {
			http.Error(w, "refused: the form's CSRF token is missing or wrong; reload the page and try again", http.StatusForbidden)
			return
		}
		h(w, r, v)
	}
}

// proxyUser reads the user the authenticating proxy names. The header is
// believed only from web.trusted_proxies (the request's own peer address,
// never X-Forwarded-For, which anyone can write); from elsewhere a request
// carrying it is refused, and one without it has no user.
func (s *Server) proxyUser(r *http.Request) (user string, status int, msg string) {
	header := s.web.UserHeader
	if header == "" {
		header = platform.DefaultUserHeader
	}
	values := r.Header.Values(header)
	ip := peerAddr(r)
	trusted := ip.IsValid() && slices.ContainsFunc(s.proxies, func(p netip.Prefix) bool { return p.Contains(ip) })
	switch {
	case !trusted && len(values) > 0:
		return "", http.StatusForbidden, fmt.Sprintf("refused: the %s header came from %s, which is not one of the dashboard's trusted proxies (web.trusted_proxies in platform.yaml); it is not trusted", header, ip)
	case !trusted:
		return "", http.StatusUnauthorized, "not signed in: open the dashboard through your organisation's sign-in proxy"
	case len(values) != 1 || values[0] == "":
		return "", http.StatusUnauthorized, fmt.Sprintf("not signed in: the proxy sent no single %s header", header)
	case !userRE.MatchString(values[0]):
		return "", http.StatusBadRequest, fmt.Sprintf("the %s header does not hold a user name (no spaces, slashes or colons)", header)
	}
	return values[0], 0, ""
}

// peerAddr is the request's peer IP (RemoteAddr), unmapped.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

// session returns the visitor's session ID, setting a new cookie when there is
// none (the CSRF tokens and the dev user are bound to it).
func (s *Server) session(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(sessionCookie); err == nil && len(c.Value) == 32 {
		if _, err := hex.DecodeString(c.Value); err == nil {
			return c.Value
		}
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || strings.HasPrefix(s.web.URL, "https://")})
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: id})
	return id
}

func (s *Server) mac(parts ...string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfToken is the form token of a session and user: an HMAC, so nothing is stored.
func (s *Server) csrfToken(session, user string) string { return s.mac("csrf", session, user) }

func (s *Server) checkCSRF(r *http.Request, v *visit) bool {
	got := r.PostFormValue(csrfField)
	return got != "" && hmac.Equal([]byte(got), []byte(v.CSRF))
}

// pickedUser reads the dev picker's cookie: user.mac, bound to the session.
func (s *Server) pickedUser(r *http.Request, session string) string {
	c, err := r.Cookie(userCookie)
	if err != nil {
		return ""
	}
	user, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.mac("user", session, user))) || !slices.Contains(s.knownUsers(), user) {
		return ""
	}
	return user
}

// knownUsers are the users the dev picker offers: every team member and
// every user with a key, sorted.
func (s *Server) knownUsers() []string {
	seen := map[string]bool{}
	for _, t := range s.opts.Config.Teams {
		for _, m := range t.Members {
			seen[m] = true
		}
	}
	for u := range s.opts.Config.Users {
		seen[u] = true
	}
	for p := range s.opts.Config.Projects {
		for _, a := range s.opts.Config.Projects[p].Admins {
			seen[a] = true
		}
	}
	out := make([]string, 0, len(seen))
	for u := range seen {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// loginPage is the dev picker (auth dev only).
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.web.Auth != platform.WebAuthDev {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	session := s.session(w, r)
	s.render(w, r, "login", &visit{Session: session, CSRF: s.csrfToken(session, ""), Auth: s.web.Auth}, map[string]any{
		"Users": s.knownUsers(), "Next": safeNext(r.URL.Query().Get("next")),
	})
}

// login sets the picked user (auth dev only), checking the form's token.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.web.Auth != platform.WebAuthDev {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	session := s.session(w, r)
	if got := r.PostFormValue(csrfField); got == "" || !hmac.Equal([]byte(got), []byte(s.csrfToken(session, ""))) {
		http.Error(w, "refused: the form's CSRF token is missing or wrong; reload the page and try again", http.StatusForbidden)
		return
	}
	user := r.PostFormValue("user")
	if !slices.Contains(s.knownUsers(), user) {
		http.Error(w, fmt.Sprintf("%q is not a user of this platform", user), http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: userCookie, Value: user + "." + s.mac("user", session, user), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// logout forgets the picked user.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	session := s.session(w, r)
	user := s.pickedUser(r, session)
	if got := r.PostFormValue(csrfField); got == "" || !hmac.Equal([]byte(got), []byte(s.csrfToken(session, user))) {
		http.Error(w, "refused: the form's CSRF token is missing or wrong", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: userCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a redirect on the dashboard: a path, never another host.
// Control characters are refused too: a browser drops tabs and newlines from
// a URL, so "/\t/evil.example.com" would be "//evil.example.com" to it.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "/"
	}
	return next
}

// loopbackHost wraps the dev dashboard: it answers only requests addressed
// to a loopback host name. Listening on loopback is not enough: a page on
// another site can make its own name resolve to 127.0.0.1 (DNS rebinding),
// then read the picker and post to it as the same origin.
func loopbackHost(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
		if !strings.EqualFold(host, "localhost") && (err != nil || !ip.IsLoopback()) {
			http.Error(w, fmt.Sprintf("refused: this dashboard runs with web.auth dev (a user picker) and answers only at a loopback address (127.0.0.1, ::1, localhost), not at %q", r.Host), http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}
