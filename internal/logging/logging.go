// Package logging builds Shipline's zap loggers and bridges them to the
// Temporal SDK's logger interface, so workflow and activity log lines carry the
// keyvals the SDK adds (WorkflowID, RunID, ActivityType, ...) as zap fields.
package logging

import (
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Formats accepted by Options.Format.
const (
	FormatConsole = "console"
	FormatJSON    = "json"
)

// Options says how to build a logger. The zero value logs at info level, for
// humans, to stderr.
type Options struct {
	// Level is debug, info, warn or error; empty means info.
	Level string
	// Format is "console" (for humans) or "json" (for log collectors); empty means console.
	Format string
	// Output receives the log lines; nil means stderr.
	Output zapcore.WriteSyncer
}

// New builds a zap logger from opts. It returns an error naming the bad value
// when the level or format is unknown.
func New(opts Options) (*zap.Logger, error) {
	level, err := ParseLevel(opts.Level)
	if err != nil {
		return nil, err
	}
	out := opts.Output
	if out == nil {
		out = zapcore.Lock(os.Stderr)
	}

	var enc zapcore.Encoder
	switch strings.ToLower(opts.Format) {
	case "", FormatConsole:
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		cfg.EncodeLevel = zapcore.CapitalLevelEncoder
		cfg.EncodeCaller = nil // console lines are for people; callers are noise
		cfg.CallerKey = zapcore.OmitKey
		enc = zapcore.NewConsoleEncoder(cfg)
	case FormatJSON:
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	default:
		return nil, fmt.Errorf("unknown log format %q: use console or json", opts.Format)
	}

	core := zapcore.NewCore(enc, out, level)
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel)), nil
}

// ParseLevel turns debug, info, warn or error (case-insensitive; empty means
// info) into a zap level.
func ParseLevel(s string) (zapcore.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return zapcore.InfoLevel, nil
	case "debug":
		return zapcore.DebugLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return zapcore.InfoLevel, fmt.Errorf("unknown log level %q: use debug, info, warn or error", s)
}
