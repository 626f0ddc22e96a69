package logging

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestTemporalLoggerKeyvalsBecomeFields(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	var l log.Logger = NewTemporalLogger(zap.New(core))

	l = l.(log.WithLogger).With("WorkflowID", "release/customer360/v1.2.3", "RunID", "run-1")
	l = l.(log.WithSkipCallers).WithCallerSkip(1)
	l.Info("tag pushed", "ActivityType", "PushTag", "Attempt", 2, "Error", errors.New("boom"), "dangling")

	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("got %d log entries, want 1", len(entries))
	}
	e := entries[0]
	if e.Message != "tag pushed" || e.Level != zapcore.InfoLevel {
		t.Errorf("entry = %q at %v, want %q at info", e.Message, e.Level, "tag pushed")
	}
	got := e.ContextMap()
	want := map[string]any{
		"WorkflowID":   "release/customer360/v1.2.3",
		"RunID":        "run-1",
		"ActivityType": "PushTag",
		"Attempt":      int64(2),
		"Error":        "boom",
		"!BADKEY":      "dangling",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("field %s = %#v, want %#v (all fields: %v)", k, got[k], v, got)
		}
	}
}

func TestTemporalLoggerLevels(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := NewTemporalLogger(zap.New(core))
	l.Debug("d")
	l.Info("i")
	l.Warn("w")
	l.Error("e")
	want := []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel, zapcore.WarnLevel, zapcore.ErrorLevel}
	entries := logs.All()
	if len(entries) != len(want) {
		t.Fatalf("got %d entries, want %d", len(entries), len(want))
	}
	for i, e := range entries {
		if e.Level != want[i] {
			t.Errorf("entry %d level = %v, want %v", i, e.Level, want[i])
		}
	}
}

func TestWithDoesNotMutateParent(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	parent := NewTemporalLogger(zap.New(core))
	_ = parent.With("WorkflowID", "x")
	parent.Info("plain")
	if n := len(logs.All()[0].Context); n != 0 {
		t.Errorf("parent logger gained %d fields from a child's With", n)
	}
}

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	z, err := New(Options{Level: "warn", Format: "json", Output: zapcore.AddSync(&buf)})
	if err != nil {
		t.Fatal(err)
	}
	z.Info("hidden")
	z.Warn("shown", zap.String("Project", "customer360"))
	out := buf.String()
	if strings.Contains(out, "hidden") || !strings.Contains(out, `"Project":"customer360"`) {
		t.Errorf("json warn-level output = %q", out)
	}

	if _, err := New(Options{Level: "loud"}); err == nil || !strings.Contains(err.Error(), "debug, info, warn or error") {
		t.Errorf("bad level error = %v", err)
	}
	if _, err := New(Options{Format: "xml"}); err == nil || !strings.Contains(err.Error(), "console or json") {
		t.Errorf("bad format error = %v", err)
	}
}
