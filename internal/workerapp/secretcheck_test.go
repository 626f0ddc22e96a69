package workerapp

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shipline/shipline/internal/codec"
	"github.com/shipline/shipline/internal/devserver"
	"github.com/shipline/shipline/internal/msgauth"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/temporalconn"
)

// pollersClient lists fixed pollers per task queue type.
type pollersClient struct {
	client.Client
	pollers map[enumspb.TaskQueueType][]*taskqueuepb.PollerInfo
}

func (p pollersClient) DescribeTaskQueue(_ context.Context, _ string, typ enumspb.TaskQueueType) (*workflowservice.DescribeTaskQueueResponse, error) {
	return &workflowservice.DescribeTaskQueueResponse{Pollers: p.pollers[typ]}, nil
}

func TestCheckPeerSecrets(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	own := []byte(strings.Repeat("o", 32))
	other := []byte(strings.Repeat("x", 32))
	// Identities as workers make them, encryption mark included.
	plain, enc := &codec.Codec{}, mustCodec(t)
	poller := func(identity string, ago time.Duration) *taskqueuepb.PollerInfo {
		return &taskqueuepb.PollerInfo{Identity: identity, LastAccessTime: timestamppb.New(now.Add(-ago))}
	}
	for _, tc := range []struct {
		name    string
		pollers map[enumspb.TaskQueueType][]*taskqueuepb.PollerInfo
		refused string // identity named in the error, "" when the worker may start
	}{
		{name: "no pollers"},
		{name: "same secret", pollers: map[enumspb.TaskQueueType][]*taskqueuepb.PollerInfo{
			enumspb.TASK_QUEUE_TYPE_WORKFLOW: {poller(plain.WorkerIdentity(msgauth.IdentityMark(own)), time.Second)},
			enumspb.TASK_QUEUE_TYPE_ACTIVITY: {poller(enc.WorkerIdentity(msgauth.IdentityMark(own)), time.Second)},
		}},
		{name: "no fingerprint advertised", pollers: map[enumspb.TaskQueueType][]*taskqueuepb.PollerInfo{
			enumspb.TASK_QUEUE_TYPE_WORKFLOW: {poller("7@old-worker@", time.Second)},
		}},
		{name: "other secret, stopped long ago", pollers: map[enumspb.TaskQueueType][]*taskqueuepb.PollerInfo{
			enumspb.TASK_QUEUE_TYPE_WORKFLOW: {poller("7@gone@ "+msgauth.IdentityMark(other), 10*time.Minute)},
		}},
		{name: "other secret on workflow queue", pollers: map[enumspb.TaskQueueType][]*taskqueuepb.PollerInfo{
			enumspb.TASK_QUEUE_TYPE_WORKFLOW: {poller("7@peer@ "+msgauth.IdentityMark(other), 30*time.Second)},
		}, refused: "7@peer@"},
		{name: "other secret on activity queue, encrypting", pollers: map[enumspb.TaskQueueType][]*taskqueuepb.PollerInfo{
			enumspb.TASK_QUEUE_TYPE_ACTIVITY: {poller(enc.WorkerIdentity(msgauth.IdentityMark(other)), 30*time.Second)},
		}, refused: enc.WorkerIdentity(msgauth.IdentityMark(other))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPeerSecrets(context.Background(), pollersClient{pollers: tc.pollers}, "shipline", own, now)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("started next to a worker with another secret")
			}
			for _, want := range []string{"another worker (identity \"" + tc.refused,
				"polls task queue shipline with a different internal-message secret: set internal_auth (secret_env or secret_file) in platform.yaml to the same secret on every worker",
				msgauth.Fingerprint(other)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), string(other)) || strings.Contains(err.Error(), string(own)) {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

func mustCodec(t *testing.T) *codec.Codec {
	t.Helper()
	t.Setenv("SHIPLINE_TEST_PEER_KEYS", "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	c, err := payloadCodec(&platform.Config{Temporal: platform.Temporal{Encryption: &platform.Encryption{KeysEnv: "SHIPLINE_TEST_PEER_KEYS"}}}, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Enabled() {
		t.Fatal("codec does not encrypt")
	}
	return c
}

// Two workers that share only Temporal (separate state_dirs, no
// internal_auth) generate different secrets: the second refuses to start at
// once instead of running and leaving releases waiting forever. A worker
// that shares the first one's secret runs beside it.
func TestSecondWorkerWithOtherSecretRefusesToStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Temporal server")
	}
	srv := startSecureServer(t, devserver.Options{})
	first := secureConfig(t, srv, nil, "")
	first.Temporal.TaskQueue = "shipline"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: first, Env: temporalconn.EnvMap{"TEMPORAL_CONFIG_FILE": emptyFile(t)}, Logger: zap.NewNop(), Ready: func(i Info) { ready <- i }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("first worker: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("first worker not ready after 60s")
	}

	second := secureConfig(t, srv, nil, "") // its own state_dir, so its own secret
	second.Temporal.TaskQueue = "shipline"
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	err := Run(rctx, Options{Config: second, Env: temporalconn.EnvMap{"TEMPORAL_CONFIG_FILE": emptyFile(t)}, Logger: zap.NewNop(), Ready: func(Info) { t.Error("second worker became ready") }})
	rcancel()
	if err == nil || errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "polls task queue shipline with a different internal-message secret: set internal_auth (secret_env or secret_file) in platform.yaml to the same secret on every worker") {
		t.Fatalf("second worker with another secret: Run = %v", err)
	}

	// The same secret, named by internal_auth: both run.
	secretFile := filepath.Join(first.StateDir, msgauth.GeneratedFile)
	third := secureConfig(t, srv, nil, "")
	third.Temporal.TaskQueue = "shipline"
	third.InternalAuth = &platform.InternalAuth{SecretFile: secretFile}
	runUntilReady(t, third, temporalconn.EnvMap{"TEMPORAL_CONFIG_FILE": emptyFile(t)})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("first worker after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("first worker did not stop")
	}
}

// Without internal_auth, a worker on shared storage warns, and the warning
// names the fix the refusal names.
func TestSharedStorageWithoutInternalAuthWarnsWithFix(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	cfg := &platform.Config{StateDir: t.TempDir(), Storage: "s3://bucket"}
	if _, err := internalSecret(cfg, zap.New(core)); err != nil {
		t.Fatal(err)
	}
	warnings := logs.All()
	if len(warnings) != 1 || !strings.Contains(warnings[0].Message, "set internal_auth (secret_env or secret_file) in platform.yaml to the same secret on every worker") {
		t.Fatalf("warnings = %+v", warnings)
	}
}
