package workerapp

import (
	"context"
	"crypto/ed25519"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/web"
)

// dashboard is what the worker needs to serve the dashboard, checked before
// anything starts.
type dashboard struct {
	addr     string
	key      ed25519.PrivateKey
	delegate string
	cfg      *platform.Config
}

// prepareDashboard checks --web-addr against web.auth (dev: loopback only)
// and finds the dashboard's key, registering it as the delegate in the dev
// platform; nil when the dashboard is not served.
func prepareDashboard(opts Options) (*dashboard, error) {
	if opts.WebAddr == "" {
		return nil, nil
	}
	auth := platform.WebAuthDev
	if opts.Config.Web != nil {
		auth = opts.Config.Web.Auth
	}
	if err := web.CheckAddr(auth, opts.WebAddr); err != nil {
		return nil, err
	}
	key, delegate, err := web.DashboardKey(opts.Config, opts.Dev)
	if err != nil {
		return nil, err
	}
	return &dashboard{addr: opts.WebAddr, key: key, delegate: delegate, cfg: opts.Config}, nil
}

// serve starts the dashboard on the worker's client.
func (d *dashboard) serve(ctx context.Context, c client.Client, info Info, logger *zap.Logger) (string, func(), error) {
	srv, err := web.New(web.Options{Config: d.cfg, Client: c, TaskQueue: info.TaskQueue, UIURL: info.UIURL, Namespace: info.Namespace,
		Key: d.key, Delegate: d.delegate, Logger: logger.Named("web")})
	if err != nil {
		return "", nil, err
	}
	return srv.Serve(ctx, d.addr)
}
