package devserver

import (
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// serverLogger is the zap logger handed to the Temporal services: named
// "temporal", at level (which Stop raises), and without the lines that only
// say a client went away (a worker stopping cancels its long polls, which the
// frontend and persistence layers log as errors).
func serverLogger(base *zap.Logger, level zap.AtomicLevel) *zap.Logger {
	return base.Named("temporal").WithOptions(
		zap.IncreaseLevel(level),
		zap.WrapCore(func(c zapcore.Core) zapcore.Core { return quietCore{c} }),
	)
}

// quietCore drops entries whose error is a context cancellation.
type quietCore struct{ zapcore.Core }

func (c quietCore) With(fields []zapcore.Field) zapcore.Core {
	return quietCore{c.Core.With(fields)}
}

func (c quietCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c quietCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	for _, f := range fields {
		if f.Key == "error" && strings.Contains(fieldText(f), "context canceled") {
			return nil
		}
	}
	return c.Core.Write(ent, fields)
}

func fieldText(f zapcore.Field) string {
	if f.String != "" {
		return f.String
	}
	if err, ok := f.Interface.(error); ok {
		return err.Error()
	}
	return ""
}
