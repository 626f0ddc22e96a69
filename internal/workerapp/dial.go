package workerapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shipline/shipline/internal/logging"
	"github.com/shipline/shipline/internal/temporalconn"
)

// dialPatience is how long Dial keeps retrying while the server or the
// namespace is not there yet (docker-compose starts the worker alongside
// Temporal, whose schema and namespace setup take a while).
const dialPatience = 90 * time.Second

// Dial connects an SDK client to address and namespace, without TLS or
// credentials (the embedded dev server), logging through logger. It retries
// for a while when the server is unreachable or the namespace does not
// exist yet, and returns the last error when ctx ends or patience runs out.
func Dial(ctx context.Context, address, namespace string, logger *zap.Logger) (client.Client, error) {
	conn := temporalconn.Plain(address, namespace)
	return dial(ctx, conn, conn.Options, logger)
}

// dial connects with opts (conn's options plus the worker's, such as its
// metrics handler), retrying while waiting may help; a failure that no
// retry cures (TLS, refused credentials) ends it at once, explained by conn.
func dial(ctx context.Context, conn *temporalconn.Conn, opts client.Options, logger *zap.Logger) (client.Client, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	ctx, cancel := context.WithTimeout(ctx, dialPatience)
	defer cancel()

	address, namespace := opts.HostPort, opts.Namespace
	opts.Logger = logging.NewTemporalLogger(logger.Named("sdk"))
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		c, err := conn.DialOnce(ctx, opts)
		if err == nil {
			return c, nil
		}
		if !retryable(err) {
			return nil, fmt.Errorf("connect to temporal at %s (namespace %s): %w", address, namespace, conn.Explain(err))
		}
		logger.Info("temporal not ready yet, retrying",
			zap.String("address", address), zap.String("namespace", namespace),
			zap.Int("attempt", attempt), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to temporal at %s (namespace %s): gave up after %d attempts: %w",
				address, namespace, attempt, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// retryable tells whether a dial error may go away by waiting: the server is
// not reachable yet, or its namespace is not created yet. A failed TLS
// handshake or refused credentials are permanent, whatever status code
// carries them.
func retryable(err error) bool {
	if temporalconn.Permanent(err) {
		return false
	}
	var (
		unavailable *serviceerror.Unavailable
		notFound    *serviceerror.NamespaceNotFound
		deadline    *serviceerror.DeadlineExceeded
	)
	if errors.As(err, &unavailable) || errors.As(err, &notFound) || errors.As(err, &deadline) {
		return true
	}
	// The SDK returns some connection failures as plain gRPC status errors.
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.NotFound:
		return true
	}
	return false
}
