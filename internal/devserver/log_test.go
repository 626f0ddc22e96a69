package devserver

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestServerLoggerDropsCancellationsAndHonoursLevel(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	level := zap.NewAtomicLevelAt(zapcore.WarnLevel)
	l := serverLogger(zap.New(core), level).With(zap.String("service", "frontend"))

	l.Info("chatty")
	l.Error("poll failed", zap.Error(fmt.Errorf("GetTaskQueue failed. Error: %w", context.Canceled)))
	l.Error("disk full", zap.Error(errors.New("no space left on device")))
	level.SetLevel(zapcore.FatalLevel)
	l.Error("during shutdown")

	entries := logs.All()
	if len(entries) != 1 || entries[0].Message != "disk full" {
		t.Fatalf("logged %v, want only \"disk full\"", entries)
	}
	if entries[0].LoggerName != "temporal" || entries[0].ContextMap()["service"] != "frontend" {
		t.Errorf("entry = %+v, want logger temporal with service field", entries[0])
	}
}
