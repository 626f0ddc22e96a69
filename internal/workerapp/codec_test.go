package workerapp

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/platform"
)

// A worker whose platform.yaml turns encryption on does not start without its
// keys, nor a codec endpoint without its token, nor a codec endpoint with
// nothing to decode: each error names the setting to fix, before anything starts.
func TestRunRefusesIncompleteEncryption(t *testing.T) {
	t.Setenv("SHIPLINE_TEST_CODEC_KEYS", "")
	t.Setenv("SHIPLINE_TEST_CODEC_TOKEN", "short")
	for _, tc := range []struct {
		name string
		enc  *platform.Encryption
		addr string
		want string
	}{
		{"keys unset", &platform.Encryption{KeysEnv: "SHIPLINE_TEST_CODEC_KEYS"}, "",
			"platform.yaml temporal.encryption.keys_env names SHIPLINE_TEST_CODEC_KEYS, which is not set"},
		{"codec endpoint without encryption", nil, "127.0.0.1:0",
			"--codec-addr 127.0.0.1:0: there is nothing to decode: platform.yaml has no temporal.encryption"},
		{"token too short", &platform.Encryption{KeysEnv: "SHIPLINE_TEST_CODEC_KEYS_SET", CodecTokenEnv: "SHIPLINE_TEST_CODEC_TOKEN"}, "",
			"temporal.encryption.codec_token_env names SHIPLINE_TEST_CODEC_TOKEN, which is not set or shorter than 16 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SHIPLINE_TEST_CODEC_KEYS_SET", "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
			cfg := &platform.Config{StateDir: filepath.Join(t.TempDir(), "state"), Temporal: platform.Temporal{Encryption: tc.enc}}
			err := Run(context.Background(), Options{Config: cfg, Dev: true, UIPort: -1, TemporalPort: freePort(t), CodecAddr: tc.addr})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDevUIOrigins(t *testing.T) {
	if got := devUIOrigins(0); strings.Join(got, " ") != "http://127.0.0.1:8233 http://localhost:8233" {
		t.Errorf("devUIOrigins(0) = %v", got)
	}
	if got := devUIOrigins(-1); got != nil {
		t.Errorf("devUIOrigins(-1) = %v", got)
	}
}
