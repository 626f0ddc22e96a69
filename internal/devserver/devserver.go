// Package devserver runs a real Temporal server inside the Shipline worker
// process for development: SQLite persistence in one file, all four services
// (frontend, history, matching, worker) on loopback, and the Temporal UI.
// It is what `shipline-worker --dev` starts, and what the end-to-end tests use.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	uiserver "github.com/temporalio/ui-server/v2/server"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/shipline/shipline/internal/freeport"
)

// Defaults applied by Start to zero-valued Options fields.
const (
	DefaultIP        = "127.0.0.1"
	DefaultPort      = 7233
	DefaultUIPort    = 8233
	DefaultNamespace = "default"
)

// Options configures the embedded server. Zero values take the defaults above.
type Options struct {
	// DBFile is the SQLite database file (required); its directory and the
	// schema are created when the file does not exist yet, and its data
	// survives restarts.
	DBFile string
	// IP is the address every service binds to (default 127.0.0.1).
	IP string
	// Port is the frontend gRPC port clients dial (default 7233).
	Port int
	// UIPort is the Temporal UI's HTTP port (default 8233); -1 disables the UI.
	UIPort int
	// Namespace is created if missing (default "default").
	Namespace string
	// SearchAttributes are registered with the namespace when it is created.
	// For a namespace that already exists, register them through the
	// OperatorService after Start (see workerapp.EnsureSearchAttributes).
	SearchAttributes map[string]enumspb.IndexedValueType
	// Logger receives the server's logs; nil discards them.
	Logger *zap.Logger
	// LogLevel is the lowest level of server log lines passed on: debug,
	// info, warn or error. Empty means warn: the server is chatty.
	LogLevel string
	// DynamicConfig overrides server dynamic config keys, e.g.
	// "limit.historyCount.suggestContinueAsNew" (tests use it to make
	// long-lived workflows continue as new early).
	DynamicConfig map[string]any
	// CodecEndpoint, when set, is the payload codec endpoint the UI decodes
	// encrypted payloads through (the browser calls it: it must allow the
	// UI's origin).
	CodecEndpoint string
	// TLS serves the frontend over TLS (mTLS with TLS.ClientCAFile); nil:
	// plain text. The UI then dials the frontend with TLS too.
	TLS *TLS
	// APIKeys, when set, makes the frontend refuse requests that do not
	// carry one of these keys (as SDK clients send an API key). The UI must
	// be disabled (UIPort -1); the server's own calls go to an internal
	// frontend on a free loopback port.
	APIKeys []string
}

// Server is a running embedded Temporal server (and UI).
type Server struct {
	opts     Options
	server   temporal.Server
	ui       *uiserver.Server
	logger   *zap.Logger
	logLevel zap.AtomicLevel
	stopOnce sync.Once
}

// Start prepares the database, starts the Temporal services and the UI, and
// returns once the frontend accepts connections and the UI serves HTTP. ctx
// bounds the wait for the UI; the server itself runs until Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts, level, err := withDefaults(opts)
	if err != nil {
		return nil, err
	}
	// The server's log level can only be raised above the caller's; Stop
	// raises it further to silence the shutdown noise of the services.
	logLevel := zap.NewAtomicLevelAt(max(level, opts.Logger.Level()))
	logger := serverLogger(opts.Logger, logLevel)

	// Fail early, with a clear message, when a port is taken: the UI server
	// otherwise exits the whole process from its own goroutine.
	if err := checkPortFree(opts.IP, opts.Port); err != nil {
		return nil, fmt.Errorf("temporal frontend port: %w", err)
	}
	if opts.UIPort > 0 {
		if err := checkPortFree(opts.IP, opts.UIPort); err != nil {
			return nil, fmt.Errorf("temporal UI port: %w (use another --ui-port, or -1 to disable the UI)", err)
		}
	}

	sqlConf, err := prepareDatabase(opts)
	if err != nil {
		return nil, err
	}
	server, err := newTemporalServer(opts, sqlConf, logger)
	if err != nil {
		return nil, err
	}
	if err := server.Start(); err != nil {
		return nil, fmt.Errorf("start temporal server: %w", err)
	}
	s := &Server{opts: opts, server: server, logger: logger, logLevel: logLevel}

	if opts.UIPort > 0 {
		s.ui = newUIServer(opts)
		go func() {
			if err := s.ui.Start(); err != nil {
				opts.Logger.Error("temporal UI stopped", zap.Error(err))
			}
		}()
		if err := waitForHTTP(ctx, s.UIURL()); err != nil {
			s.Stop()
			return nil, fmt.Errorf("temporal UI did not come up at %s: %w", s.UIURL(), err)
		}
	}
	return s, nil
}

// Address is the frontend's host:port for SDK clients.
func (s *Server) Address() string {
	return net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.Port))
}

// Namespace is the namespace Start created (or found).
func (s *Server) Namespace() string { return s.opts.Namespace }

// UIURL is the Temporal UI's base URL, or "" when the UI is disabled.
func (s *Server) UIURL() string {
	if s.opts.UIPort <= 0 {
		return ""
	}
	return "http://" + net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.UIPort))
}

// Stop stops the UI and the server and releases the database file. It is safe
// to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		// While stopping, the services log every poll and RPC that the
		// shutdown cancels; none of it is news to the user.
		s.logLevel.SetLevel(zapcore.FatalLevel)
		if s.ui != nil {
			s.ui.Stop()
		}
		if err := s.server.Stop(); err != nil {
			s.opts.Logger.Warn("stop temporal server", zap.Error(err))
		}
	})
}

// withDefaults fills zero-valued options and parses the log level.
func withDefaults(opts Options) (Options, zapcore.Level, error) {
	if opts.DBFile == "" {
		return opts, 0, errors.New("dev server needs a database file")
	}
	if opts.IP == "" {
		opts.IP = DefaultIP
	}
	if net.ParseIP(opts.IP) == nil {
		return opts, 0, fmt.Errorf("dev server IP %q is not an IP address", opts.IP)
	}
	if opts.Port == 0 {
		opts.Port = DefaultPort
	}
	if opts.UIPort == 0 {
		opts.UIPort = DefaultUIPort
	}
	if opts.Port < 0 || opts.Port > 65535 || opts.UIPort > 65535 {
		return opts, 0, fmt.Errorf("dev server ports %d/%d out of range", opts.Port, opts.UIPort)
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if err := checkSecurity(opts); err != nil {
		return opts, 0, err
	}
	level := zapcore.WarnLevel
	if opts.LogLevel != "" {
		var err error
		if level, err = zapcore.ParseLevel(opts.LogLevel); err != nil {
			return opts, 0, fmt.Errorf("dev server log level: %w", err)
		}
	}
	return opts, level, nil
}

// checkPortFree reports an error when ip:port cannot be bound.
func checkPortFree(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return fmt.Errorf("%s is not free: %w", net.JoinHostPort(ip, strconv.Itoa(port)), opErr.Err)
		}
		return err
	}
	return l.Close()
}

// freePort is freeport.Get.
func freePort(ip string) (int, error) { return freeport.Get(ip) }
