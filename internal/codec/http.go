package codec

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"
)

// MaxRequestBytes bounds the body of a codec request.
const MaxRequestBytes = 16 << 20

// Access says who may use the codec endpoint. The endpoint turns ciphertext
// into plaintext, so it is only as safe as this check.
type Access struct {
	// Token, when set, is the bearer token every request must carry
	// (Authorization: Bearer TOKEN). When empty, only requests from a
	// loopback address are served: the embedded UI of `--dev` on the same
	// machine, or an authenticating proxy in front of the worker.
	Token string
	// Origins are the browser origins (the Temporal UI's, e.g.
	// http://127.0.0.1:8233) that CORS allows. A request carrying another
	// Origin is refused; requests without one (the temporal CLI, scripts) are
	// judged by Token or loopback alone.
	Origins []string
}

// Handler serves POST /encode and POST /decode in the shape the Temporal UI
// and the temporal CLI send ({"payloads":[{"metadata":{…},"data":"…"}]}),
// behind the access check: a request that fails it gets 401 (403 for a
// foreign origin) and never reaches the codec.
func (c *Codec) Handler(a Access) http.Handler {
	inner := converter.NewPayloadCodecHTTPHandler(c)
	origins := map[string]bool{}
	for _, o := range a.Origins {
		origins[strings.TrimRight(o, "/")] = true
	}
	var tokenSum [32]byte
	if a.Token != "" {
		tokenSum = sha256.Sum256([]byte(a.Token))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" {
			if !origins[origin] {
				http.Error(w, fmt.Sprintf("codec endpoint: origin %s is not allowed; allowed: %s", origin, originList(a.Origins)), http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions { // CORS preflight: carries no credentials
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if why := a.refuse(r, tokenSum); why != "" {
			if a.Token != "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="shipline codec"`)
			}
			http.Error(w, "codec endpoint: "+why, http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost {
			http.Error(w, "codec endpoint: POST /encode or /decode", http.StatusMethodNotAllowed)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
		inner.ServeHTTP(w, r)
	})
}

// refuse says why r may not use the endpoint, "" when it may.
func (a Access) refuse(r *http.Request, tokenSum [32]byte) string {
	if a.Token != "" {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return "requests need Authorization: Bearer TOKEN (the token the worker reads from temporal.encryption.codec_token_env)"
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if subtle.ConstantTimeCompare(sum[:], tokenSum[:]) != 1 {
			return "the bearer token is not the codec endpoint's"
		}
		return ""
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return "without a token (temporal.encryption.codec_token_env) only requests from this machine are served"
	}
	return ""
}

func originList(origins []string) string {
	if len(origins) == 0 {
		return "none (set temporal.encryption.ui_origin to the Temporal UI's origin)"
	}
	return strings.Join(origins, ", ")
}

// Server serves a codec handler.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen binds addr (host:port; port 0 picks a free one) for h. It fails at
// once when the address is taken.
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("codec endpoint: listen on %s: %w (use another --codec-addr)", addr, err)
	}
	return &Server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// URL is the endpoint's base URL, the one the Temporal UI and the temporal
// CLI are given (they append /encode and /decode).
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Serve serves until ctx ends, then shuts the server down and returns nil;
// or returns the error that stopped it.
func (s *Server) Serve(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(s.ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := s.srv.Shutdown(sctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		return err
	}
}
