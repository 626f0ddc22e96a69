package devserver

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
)

// TLS serves the frontend over TLS, and with ClientCAFile over mutual TLS.
// The files are PEM.
type TLS struct {
	// CertFile and KeyFile are the server's certificate and private key.
	CertFile, KeyFile string
	// CAFile is the CA certificate that signed CertFile: the server's own
	// clients (its system worker and the UI) trust it.
	CAFile string
	// ClientCAFile, when set, makes the frontend require a client certificate
	// signed by this CA (mTLS). The server's own clients then present
	// CertFile, which must be signed by this CA too and allow client auth.
	ClientCAFile string
}

// checkSecurity refuses incomplete TLS settings and the UI with API keys
// (the UI server cannot present one).
func checkSecurity(opts Options) error {
	if t := opts.TLS; t != nil {
		for _, f := range []struct{ name, path string }{{"CertFile", t.CertFile}, {"KeyFile", t.KeyFile}, {"CAFile", t.CAFile}} {
			if f.path == "" {
				return fmt.Errorf("dev server TLS needs %s", f.name)
			}
		}
		for _, path := range []string{t.CertFile, t.KeyFile, t.CAFile, t.ClientCAFile} {
			if path == "" {
				continue
			}
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("dev server TLS: %w", err)
			}
		}
	}
	for _, k := range opts.APIKeys {
		if k == "" {
			return errors.New("dev server API keys must not be empty")
		}
	}
	if len(opts.APIKeys) > 0 && opts.UIPort > 0 {
		return errors.New("the dev server's UI cannot present an API key: disable the UI (UIPort -1) when the server requires API keys")
	}
	return nil
}

// applyTLS configures TLS on the frontend, and for the server's own clients
// of it (the system worker), in conf.
func applyTLS(conf *config.Config, t *TLS) {
	if t == nil {
		return
	}
	server := config.ServerTLS{CertFile: t.CertFile, KeyFile: t.KeyFile}
	if t.ClientCAFile != "" {
		server.ClientCAFiles = []string{t.ClientCAFile}
		server.RequireClientAuth = true
	}
	client := config.ClientTLS{RootCAFiles: []string{t.CAFile}}
	conf.Global.TLS.Frontend = config.GroupTLS{Server: server, Client: client}
	conf.Global.TLS.SystemWorker = config.WorkerTLS{Client: client}
	if t.ClientCAFile != "" {
		conf.Global.TLS.SystemWorker.CertFile = t.CertFile
		conf.Global.TLS.SystemWorker.KeyFile = t.KeyFile
	}
}

// internalServices lists the services besides the frontend. With API keys
// the server's own calls (its system worker, the operator service's lookups)
// carry no key: they go to an internal frontend on loopback, which trusts
// them, as Temporal's own deployments with an authorizer do.
func internalServices(opts Options) []primitives.ServiceName {
	svcs := []primitives.ServiceName{primitives.HistoryService, primitives.MatchingService, primitives.WorkerService}
	if len(opts.APIKeys) > 0 {
		svcs = append(svcs, primitives.InternalFrontendService)
	}
	return svcs
}

// serviceNames lists the services of ports, for temporal.ForServices.
func serviceNames(ports map[primitives.ServiceName]int) []string {
	var out []string
	for svc := range ports {
		out = append(out, string(svc))
	}
	sort.Strings(out)
	return out
}

// authOptions returns the server's authorizer and claim mapper: none (allow
// all) without API keys; with them, a request is allowed when it carries
// one of the keys, as SDK clients send it (authorization: Bearer KEY), and
// refused (PermissionDenied) otherwise. Health checks stay open, as on any
// Temporal server.
func authOptions(opts Options) []temporal.ServerOption {
	if len(opts.APIKeys) == 0 {
		return []temporal.ServerOption{
			temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
			temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return authorization.NewNoopClaimMapper() }),
		}
	}
	mapper := apiKeyClaimMapper{keys: opts.APIKeys}
	return []temporal.ServerOption{
		temporal.WithAuthorizer(authorization.NewDefaultAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return mapper }),
	}
}

// apiKeyClaimMapper grants the system admin role to requests that carry one
// of keys.
type apiKeyClaimMapper struct{ keys []string }

func (m apiKeyClaimMapper) GetClaims(info *authorization.AuthInfo) (*authorization.Claims, error) {
	token, ok := strings.CutPrefix(info.AuthToken, "Bearer ")
	if !ok || token == "" {
		return nil, errors.New("no API key in the authorization header")
	}
	for _, k := range m.keys {
		if subtle.ConstantTimeCompare([]byte(token), []byte(k)) == 1 {
			return &authorization.Claims{Subject: "api-key", System: authorization.RoleAdmin}, nil
		}
	}
	return nil, errors.New("unknown API key")
}
