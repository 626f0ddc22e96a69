// Package workerapp is the body of the shipline-worker process, shared by
// worker/main.go and the end-to-end tests: optionally start the embedded
// Temporal dev server, dial Temporal, make sure Shipline's search attributes
// exist, register workflows and activities, and poll until the context ends.
package workerapp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/devserver"
	"github.com/shipline/shipline/internal/metrics"
	"github.com/shipline/shipline/internal/msgauth"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/storage"
	"github.com/shipline/shipline/internal/temporalconn"
	"github.com/shipline/shipline/workflows"
)

// DevDBFile is the dev server's SQLite file, inside state_dir.
const DevDBFile = "temporal.db"

// Options configures Run.
type Options struct {
	// Config is the loaded platform.yaml (required). Its temporal block is
	// resolved with Env and a Temporal config profile by internal/temporalconn
	// (TEMPORAL_* variables override the file, which overrides the profile).
	Config *platform.Config
	// Env is the environment the connection settings are read from (nil:
	// the process's).
	Env envconfig.EnvLookup
	// Dev starts the embedded Temporal server (database in
	// <StateDir>/temporal.db, UI) instead of dialing Config.Temporal.Address.
	Dev bool
	// TemporalPort is the dev server's frontend port (0 means 7233).
	TemporalPort int
	// UIPort is the dev server's UI port (0 means 8233, -1 disables the UI).
	UIPort int
	// Logger receives the worker's, the SDK's and the dev server's logs; nil discards them.
	Logger *zap.Logger
	// Ready, if set, is called once, when the worker is polling.
	Ready func(Info)
	// BuildParallelism bounds the pipeline builds running at once (0 means the number of CPUs).
	BuildParallelism int
	// DevDynamicConfig overrides the embedded server's dynamic config (tests).
	DevDynamicConfig map[string]any
	// MetricsAddr, when set (host:port, port 0 picks a free one), serves the
	// worker's Prometheus metrics on http://MetricsAddr/metrics: the Temporal
	// SDK's and Shipline's (see internal/metrics). Empty: no metrics.
	MetricsAddr string
	// CodecAddr, when set (host:port), serves the payload codec endpoint
	// (POST /encode, /decode) for the Temporal UI and the temporal CLI; it
	// needs temporal.encryption. Empty: none, except with Dev and encryption
	// on, where it is served on a free loopback port and the embedded UI uses it.
	CodecAddr string
	// WebAddr, when set (host:port), serves the dashboard (internal/web) there.
	WebAddr string
}

// Info says where a running worker is connected.
type Info struct {
	Address   string // Temporal frontend host:port
	Namespace string
	TaskQueue string
	UIURL     string // the dev server's UI, "" when there is none
	// MetricsURL is where the Prometheus metrics are served, "" when they are not.
	MetricsURL string
	// CodecURL is the payload codec endpoint, "" when it is not served.
	CodecURL string
	// WebURL is the dashboard, "" when it is not served.
	WebURL string
}

// Run runs the worker until ctx ends, then stops the worker, closes the
// client and stops the dev server (in that order) and returns nil. It returns
// an error when it cannot start, or when the worker stops on a fatal error
// (for example its namespace was deleted).
func Run(ctx context.Context, opts Options) error {
	if opts.Config == nil {
		return errors.New("worker needs a platform config")
	}
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	info := Info{TaskQueue: orDefault(opts.Config.Temporal.TaskQueue, workflows.DefaultTaskQueue)}
	// The embedded dev server is plain text on loopback: only the namespace
	// of the settings applies to it.
	var conn *temporalconn.Conn
	if opts.Dev {
		info.Namespace = temporalconn.DevNamespace(&opts.Config.Temporal, opts.Env)
	} else {
		var err error
		conn, err = temporalconn.Resolve(temporalconn.Request{
			Platform: &opts.Config.Temporal, PlatformFile: platformFile(opts.Config), Env: opts.Env,
		})
		if err != nil {
			return err
		}
		info.Address, info.Namespace = conn.Address, conn.Namespace
	}

	secret, err := internalSecret(opts.Config, logger)
	if err != nil {
		return err
	}
	payloads, err := payloadCodec(opts.Config, os.Getenv)
	if err != nil {
		return err
	}
	codecAt, err := codecAddr(opts)
	if err != nil {
		return err
	}
	dash, err := prepareDashboard(opts)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, opts.Config, logger)
	if err != nil {
		return err
	}
	defer store.Close()

	// The metrics endpoint comes first, so that a taken port fails at once;
	// it stops last, after the worker.
	var (
		metricsHandler client.MetricsHandler
		interceptors   []interceptor.WorkerInterceptor
	)
	if opts.MetricsAddr != "" {
		m, url, stop, err := serveMetrics(ctx, opts, logger)
		if err != nil {
			return err
		}
		defer stop()
		info.MetricsURL = url
		metricsHandler = m.SDKHandler()
		interceptors = append(interceptors, metrics.NewInterceptor(m.Shipline, opts.Config))
	}

	if codecAt != "" {
		url, stop, err := serveCodec(ctx, opts, codecAt, payloads, os.Getenv, logger)
		if err != nil {
			return err
		}
		defer stop()
		info.CodecURL = url
	}

	if opts.Dev {
		srv, err := startDevServer(ctx, opts, info.Namespace, info.CodecURL, logger)
		if err != nil {
			return err
		}
		defer srv.Stop()
		info.Address, info.UIURL = srv.Address(), srv.UIURL()
		conn = temporalconn.Plain(info.Address, info.Namespace)
	}

	clientOpts := conn.Options
	clientOpts.MetricsHandler = metricsHandler
	clientOpts.DataConverter, clientOpts.FailureConverter = payloads.DataConverter(), payloads.FailureConverter()
	// A CLI without keys tells from this identity, among the task queue's
	// pollers, that it must not send plain text; other workers tell whether
	// they hold the same internal message secret.
	clientOpts.Identity = payloads.WorkerIdentity(msgauth.IdentityMark(secret))
	c, err := dial(ctx, conn, clientOpts, logger)
	if err != nil {
		return err
	}
	defer c.Close()

	if err := EnsureSearchAttributes(ctx, c, info.Namespace, logger); err != nil {
		return err
	}
	if err := checkPeerSecrets(ctx, c, info.TaskQueue, secret, time.Now()); err != nil {
		return err
	}

	fatal := make(chan error, 1)
	w := worker.New(c, info.TaskQueue, worker.Options{
		// Give running activities a moment to finish on shutdown; anything
		// longer is retried by Temporal on the next worker.
		WorkerStopTimeout: 10 * time.Second,
		Interceptors:      interceptors,
		OnFatalError: func(err error) {
			select {
			case fatal <- err:
			default:
			}
		},
	})
	servers := buildServers(logger)
	defer servers.Close()
	register(w, Deps{Config: opts.Config, Logger: logger, Client: c, BuildParallelism: opts.BuildParallelism, InternalSecret: secret, Store: store, BuildServers: servers})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %s: %w", info.TaskQueue, err)
	}
	if dash != nil {
		url, stop, err := dash.serve(ctx, c, info, logger)
		if err != nil {
			w.Stop()
			return err
		}
		defer stop()
		info.WebURL = url
	}
	logger.Info("worker polling",
		zap.String("address", info.Address), zap.String("namespace", info.Namespace),
		zap.String("task_queue", info.TaskQueue), zap.String("ui", info.UIURL), zap.String("metrics", info.MetricsURL),
		zap.String("codec", info.CodecURL), zap.String("web", info.WebURL), zap.Bool("encrypted", payloads.Enabled()))
	if opts.Ready != nil {
		opts.Ready(info)
	}

	select {
	case <-ctx.Done():
		logger.Info("stopping worker")
		w.Stop()
		return nil
	case err := <-fatal:
		w.Stop()
		return fmt.Errorf("worker on task queue %s stopped: %w", info.TaskQueue, err)
	}
}

// serveMetrics creates the worker's metrics and serves them on
// opts.MetricsAddr until ctx ends or stop is called (stop waits for the
// server to close).
func serveMetrics(ctx context.Context, opts Options, logger *zap.Logger) (m *metrics.Metrics, url string, stop func(), err error) {
	m, err = metrics.New()
	if err != nil {
		return nil, "", nil, err
	}
	srv, err := metrics.Listen(opts.MetricsAddr, m.HTTPHandler(zap.NewStdLog(logger.Named("metrics"))))
	if err != nil {
		return nil, "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ctx); err != nil {
			logger.Error("metrics server stopped", zap.Error(err))
		}
	}()
	logger.Info("serving metrics", zap.String("url", srv.URL()))
	return m, srv.URL(), func() { cancel(); <-served }, nil
}

// startDevServer starts the embedded Temporal server with its database in
// the state directory, which it creates; its UI decodes payloads through
// codecURL when set.
func startDevServer(ctx context.Context, opts Options, namespace, codecURL string, logger *zap.Logger) (*devserver.Server, error) {
	stateDir := orDefault(opts.Config.StateDir, platform.DefaultStateDir)
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create state_dir: %w", err)
	}
	start := time.Now()
	srv, err := devserver.Start(ctx, devserver.Options{
		DBFile:           filepath.Join(stateDir, DevDBFile),
		Port:             opts.TemporalPort,
		UIPort:           opts.UIPort,
		Namespace:        namespace,
		SearchAttributes: SearchAttributes(),
		Logger:           logger,
		DynamicConfig:    opts.DevDynamicConfig,
		CodecEndpoint:    codecURL,
	})
	if err != nil {
		return nil, fmt.Errorf("start the embedded temporal dev server: %w", err)
	}
	logger.Info("temporal dev server started", zap.String("address", srv.Address()),
		zap.String("ui", srv.UIURL()), zap.Duration("took", time.Since(start)))
	return srv, nil
}

// internalSecret reads the secret that authenticates messages between
// Shipline's workflows (platform.yaml's internal_auth), or generates one under
// state_dir when none is named: workers that share state_dir share it; workers
// on other machines need internal_auth.
func internalSecret(cfg *platform.Config, logger *zap.Logger) ([]byte, error) {
	var env, file string
	if ia := cfg.InternalAuth; ia != nil {
		env, file = ia.SecretEnv, ia.SecretFile
	}
	secret, source, err := msgauth.LoadSecret(env, file, orDefault(cfg.StateDir, platform.DefaultStateDir))
	if err != nil {
		return nil, err
	}
	logger.Info("internal messages authenticated", zap.String("secret", source))
	if cfg.InternalAuth == nil && cfg.Storage != "" {
		// The store is shared, the generated secret is not: it stays in this
		// worker's state_dir, so that reading the store never lets anyone seal
		// internal messages.
		logger.Warn("platform.yaml names a shared storage but no internal_auth: the internal message secret is generated in this worker's state_dir, so workers that do not share state_dir refuse each other's messages (a second worker with another secret refuses to start); "+
			"set internal_auth (secret_env or secret_file) in platform.yaml to the same secret on every worker",
			zap.String("secret", source))
	}
	return secret, nil
}

// platformFile names the platform config in messages.
func platformFile(cfg *platform.Config) string {
	if cfg.Path == "" {
		return "platform.yaml"
	}
	return filepath.Base(cfg.Path)
}

// openStore opens the store workers share (platform.yaml's storage, else
// state_dir) and checks it can be reached, so a wrong bucket or missing
// credentials stop the worker at start rather than fail its first build.
func openStore(ctx context.Context, cfg *platform.Config, logger *zap.Logger) (*storage.Store, error) {
	st, err := storage.Open(ctx, cfg.StorageURL())
	if err != nil {
		return nil, fmt.Errorf("%s storage: %w", platformFile(cfg), err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if ok, err := st.Bucket().IsAccessible(ctx); err != nil || !ok {
		st.Close()
		if err == nil {
			err = errors.New("the bucket does not exist")
		}
		return nil, fmt.Errorf("%s storage %s cannot be reached: %w; check the URL and the credentials in the worker's environment", platformFile(cfg), st, err)
	}
	logger.Info("shared storage", zap.String("url", st.String()))
	return st, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
