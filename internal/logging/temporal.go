package logging

import (
	"fmt"

	"go.temporal.io/sdk/log"
	"go.uber.org/zap"
)

// TemporalLogger adapts a zap logger to the Temporal SDK's log.Logger,
// log.WithLogger and log.WithSkipCallers interfaces. The SDK's keyvals
// (alternating key, value) become zap fields.
type TemporalLogger struct {
	z *zap.Logger
}

var (
	_ log.Logger          = TemporalLogger{}
	_ log.WithLogger      = TemporalLogger{}
	_ log.WithSkipCallers = TemporalLogger{}
)

// NewTemporalLogger wraps z for use as client.Options.Logger. Caller
// information points at the code that called the SDK logger, not at this adapter.
func NewTemporalLogger(z *zap.Logger) TemporalLogger {
	return TemporalLogger{z: z.WithOptions(zap.AddCallerSkip(1))}
}

// Debug logs at debug level.
func (l TemporalLogger) Debug(msg string, keyvals ...any) { l.z.Debug(msg, fields(keyvals)...) }

// Info logs at info level.
func (l TemporalLogger) Info(msg string, keyvals ...any) { l.z.Info(msg, fields(keyvals)...) }

// Warn logs at warn level.
func (l TemporalLogger) Warn(msg string, keyvals ...any) { l.z.Warn(msg, fields(keyvals)...) }

// Error logs at error level.
func (l TemporalLogger) Error(msg string, keyvals ...any) { l.z.Error(msg, fields(keyvals)...) }

// With returns a logger that adds keyvals to every line; l is unchanged.
func (l TemporalLogger) With(keyvals ...any) log.Logger {
	return TemporalLogger{z: l.z.With(fields(keyvals)...)}
}

// WithCallerSkip returns a logger that skips depth more stack frames when
// reporting the caller; l is unchanged.
func (l TemporalLogger) WithCallerSkip(depth int) log.Logger {
	return TemporalLogger{z: l.z.WithOptions(zap.AddCallerSkip(depth))}
}

// fields turns alternating key, value pairs into zap fields. A key that is not
// a string is formatted with %v; a trailing key without a value is kept under
// "!BADKEY" rather than dropped, so nothing the caller logged is lost.
func fields(keyvals []any) []zap.Field {
	if len(keyvals) == 0 {
		return nil
	}
	out := make([]zap.Field, 0, (len(keyvals)+1)/2)
	for i := 0; i < len(keyvals); i += 2 {
		if i+1 == len(keyvals) {
			out = append(out, zap.Any("!BADKEY", keyvals[i]))
			break
		}
		key, ok := keyvals[i].(string)
		if !ok {
			key = fmt.Sprint(keyvals[i])
		}
		if err, isErr := keyvals[i+1].(error); isErr {
			out = append(out, zap.NamedError(key, err))
			continue
		}
		out = append(out, zap.Any(key, keyvals[i+1]))
	}
	return out
}
