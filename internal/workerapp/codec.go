package workerapp

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/codec"
	"github.com/shipline/shipline/internal/devserver"
	"github.com/shipline/shipline/internal/platform"
)

// minCodecToken is the shortest bearer token the codec endpoint accepts.
const minCodecToken = 16

// payloadCodec is the codec of platform.yaml's temporal.encryption, its keys
// read from the environment (getenv). Without encryption it is a codec
// without keys: nothing is encrypted, and an encrypted payload met in a
// history is reported as needing temporal.encryption.
func payloadCodec(cfg *platform.Config, getenv func(string) string) (*codec.Codec, error) {
	e := cfg.Temporal.Encryption
	if e == nil {
		return codec.None(""), nil
	}
	return codec.Require(e.KeysEnv, "platform.yaml temporal.encryption.keys_env", getenv)
}

// codecAddr is where the codec endpoint is served: opts.CodecAddr, or with
// --dev and encryption on, a free loopback port; "" for nowhere.
func codecAddr(opts Options) (string, error) {
	enc := opts.Config.Temporal.Encryption
	switch {
	case opts.CodecAddr != "" && enc == nil:
		return "", fmt.Errorf("--codec-addr %s: there is nothing to decode: platform.yaml has no temporal.encryption", opts.CodecAddr)
	case opts.CodecAddr != "":
		return opts.CodecAddr, nil
	case opts.Dev && enc != nil:
		return net.JoinHostPort(devserver.DefaultIP, "0"), nil
	}
	return "", nil
}

// serveCodec serves the codec endpoint (POST /encode, /decode) for the
// Temporal UI and the temporal CLI at addr until ctx ends or stop is called:
// CORS admits temporal.encryption.ui_origin and, with --dev, the embedded UI;
// requests carry the bearer token of codec_token_env or come from loopback.
func serveCodec(ctx context.Context, opts Options, addr string, c *codec.Codec, getenv func(string) string, logger *zap.Logger) (url string, stop func(), err error) {
	enc := opts.Config.Temporal.Encryption
	access := codec.Access{}
	if enc.CodecTokenEnv != "" {
		access.Token = strings.TrimSpace(getenv(enc.CodecTokenEnv))
		if len(access.Token) < minCodecToken {
			return "", nil, fmt.Errorf("platform.yaml temporal.encryption.codec_token_env names %s, which is not set or shorter than %d characters: set it to a random token, e.g. $(openssl rand -hex 32)",
				enc.CodecTokenEnv, minCodecToken)
		}
	}
	if enc.UIOrigin != "" {
		access.Origins = append(access.Origins, enc.UIOrigin)
	}
	if opts.Dev {
		access.Origins = append(access.Origins, devUIOrigins(opts.UIPort)...)
	}
	if opts.Dev && access.Token != "" && opts.UIPort >= 0 {
		logger.Warn("the embedded Temporal UI cannot send the codec endpoint's bearer token: it will show encrypted payloads; "+
			"remove temporal.encryption.codec_token_env for --dev (loopback requests only)", zap.String("codec_token_env", enc.CodecTokenEnv))
	}
	srv, err := codec.Listen(addr, c.Handler(access))
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ctx); err != nil {
			logger.Error("codec endpoint stopped", zap.Error(err))
		}
	}()
	logger.Info("serving the payload codec", zap.String("url", srv.URL()), zap.String("key", c.Current()),
		zap.Bool("token", access.Token != ""), zap.Strings("origins", access.Origins))
	return srv.URL(), func() { cancel(); <-served }, nil
}

// devUIOrigins are the origins a browser gives the embedded UI on uiPort.
func devUIOrigins(uiPort int) []string {
	if uiPort < 0 {
		return nil
	}
	if uiPort == 0 {
		uiPort = devserver.DefaultUIPort
	}
	p := strconv.Itoa(uiPort)
	return []string{"http://" + net.JoinHostPort(devserver.DefaultIP, p), "http://localhost:" + p}
}
