// Package web is Shipline's dashboard, served by the worker (shipline-worker
// --web-addr): the team's view of its projects — the stage view, releases,
// deployments per fabric, the history of every deployment with its logs, the
// promotions with their gates and Approve / Reject buttons, and the audit.
//
// Pages read the same entities the CLI reads, through internal/views, and are
// rendered on the server with html/template (every string a user wrote — a
// release message, a comment, a job name — is escaped). A small embedded script
// refreshes the parts of a page that show running work.
//
// Who is asking comes from the organisation's authenticating proxy (web.auth
// proxy: the user header, accepted only from web.trusted_proxies) or, for a
// developer on their own machine, from a user picker (web.auth dev, loopback
// only). What a user does here is signed with the dashboard's own ed25519 key,
// registered in platform.yaml as a delegate, so the workflows verify it like
// any signed request and record it as "carol via web"; the access rules are the
// CLI's, for the user named.
package web

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/platform"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Options configures the dashboard.
type Options struct {
	// Config is the platform.yaml the worker runs with; its web block (nil:
	// auth dev) says how users are identified.
	Config *platform.Config
	// Client reads Temporal and sends the users' requests.
	Client client.Client
	// TaskQueue is the worker's task queue (reads start the project entity there).
	TaskQueue string
	// UIURL is the Temporal UI, for links to workflows ("" when unknown);
	// Namespace is the Temporal namespace.
	UIURL, Namespace string
	// Key signs the users' requests as the delegate Delegate.
	Key      ed25519.PrivateKey
	Delegate string
	// Logger receives the dashboard's logs (nil: none).
	Logger *zap.Logger
	// PollInterval is how often a page with running work refreshes it (0: 2s).
	PollInterval time.Duration
}

// Server serves the dashboard.
type Server struct {
	opts    Options
	web     platform.Web
	proxies []netip.Prefix
	secret  []byte // keys the CSRF tokens and session cookies of this server
	pages   *pages
	log     *zap.Logger
	drift   driftCache
}

// New checks the options and prepares the dashboard.
func New(opts Options) (*Server, error) {
	if opts.Config == nil || opts.Client == nil {
		return nil, errors.New("the dashboard needs the platform config and a Temporal client")
	}
	if opts.Key == nil {
		return nil, errors.New("the dashboard needs its signing key (web.key_file in platform.yaml)")
	}
	s := &Server{opts: opts, log: opts.Logger, secret: make([]byte, 32)}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if opts.Config.Web != nil {
		s.web = *opts.Config.Web
	} else {
		s.web = platform.Web{Auth: platform.WebAuthDev, Delegate: platform.DefaultDelegate}
	}
	if s.web.Auth == "" {
		s.web.Auth = platform.WebAuthDev // as the picker in user() does
	}
	if s.opts.Delegate == "" {
		s.opts.Delegate = s.web.Delegate
	}
	if s.opts.PollInterval <= 0 {
		s.opts.PollInterval = 2 * time.Second
	}
	for _, p := range s.web.TrustedProxies {
		prefix, err := platform.ParseTrustedProxy(p)
		if err != nil {
			return nil, fmt.Errorf("web.trusted_proxies: %w", err)
		}
		s.proxies = append(s.proxies, prefix)
	}
	if _, err := rand.Read(s.secret); err != nil {
		return nil, err
	}
	var err error
	if s.pages, err = loadPages(); err != nil {
		return nil, err
	}
	return s, nil
}

// CheckAddr refuses to listen where the configured auth would be unsafe:
// auth dev (anyone picks any user) listens on loopback only.
func (s *Server) CheckAddr(addr string) error {
	return CheckAddr(s.web.Auth, addr)
}

// CheckAddr refuses a listen address for an auth mode where it would be
// unsafe: auth dev (a user picker) only on a loopback address.
func CheckAddr(auth, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--web-addr %q: want HOST:PORT, e.g. 127.0.0.1:8080", addr)
	}
	if auth != platform.WebAuthDev {
		return nil
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if host == "localhost" || (err == nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("--web-addr %s: the dashboard's web.auth is dev (a user picker: anyone who reaches it acts as any user), so it listens on loopback only (127.0.0.1, ::1); "+
		"put it behind your authenticating proxy with web: {auth: proxy, user_header: X-Forwarded-User, trusted_proxies: [...]} in platform.yaml to serve it elsewhere", addr)
}

// Serve listens on addr and serves until ctx ends; ready receives the URL.
// It returns once the listener is up (errors after that are logged); stop
// shuts the server down and waits.
func (s *Server) Serve(ctx context.Context, addr string) (url string, stop func(), err error) {
	if err := s.CheckAddr(addr); err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("dashboard: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("dashboard stopped", zap.Error(err))
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		_ = srv.Shutdown(sctx)
	}()
	url = "http://" + ln.Addr().String()
	s.log.Info("serving the dashboard", zap.String("url", url), zap.String("auth", s.web.Auth))
	return url, func() { cancel(); <-done }, nil
}

// Handler is the dashboard's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.FileServerFS(assets))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /{$}", s.user(s.projectsPage))
	mux.HandleFunc("GET /p/{project}", s.user(s.project(s.stagesPage)))
	mux.HandleFunc("GET /p/{project}/releases", s.user(s.project(s.releasesPage)))
	mux.HandleFunc("GET /p/{project}/deployments", s.user(s.project(s.deploymentsPage)))
	mux.HandleFunc("GET /p/{project}/history", s.user(s.project(s.historyPage)))
	mux.HandleFunc("GET /p/{project}/logs", s.user(s.project(s.logsPage)))
	mux.HandleFunc("GET /p/{project}/promotions/{version}", s.user(s.project(s.promotionPage)))
	mux.HandleFunc("POST /p/{project}/promotions/{version}/vote", s.user(s.project(s.vote)))
	mux.HandleFunc("GET /p/{project}/audit", s.user(s.project(s.auditPage)))
	mux.HandleFunc("GET /p/{project}/audit.jsonl", s.user(s.project(s.auditJSONL)))
	if s.web.Auth == platform.WebAuthDev {
		return securityHeaders(loopbackHost(mux))
	}
	return securityHeaders(mux)
}

// securityHeaders: no framing, no sniffing, scripts only from the dashboard.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}
