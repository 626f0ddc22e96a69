package devserver

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
)

// newUIServer builds the Temporal UI server serving its embedded assets and
// talking to the frontend over gRPC.
func newUIServer(opts Options) *uiserver.Server {
	var tls uiconfig.TLS
	if t := opts.TLS; t != nil {
		tls = uiconfig.TLS{CaFile: t.CAFile, EnableHostVerification: true}
		if t.ClientCAFile != "" {
			tls.CertFile, tls.KeyFile = t.CertFile, t.KeyFile
		}
	}
	return uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		TLS:                 tls,
		Host:                opts.IP,
		Port:                opts.UIPort,
		TemporalGRPCAddress: net.JoinHostPort(opts.IP, strconv.Itoa(opts.Port)),
		EnableUI:            true,
		DefaultNamespace:    opts.Namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true,
		// The browser sends payloads to the codec endpoint itself; the dev UI
		// has no login, so there is no access token or cookie to pass.
		Codec: uiconfig.Codec{Endpoint: opts.CodecEndpoint},
	}))
}

// waitForHTTP polls url until it answers (any status below 500), ctx ends, or
// 20 seconds pass.
func waitForHTTP(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
