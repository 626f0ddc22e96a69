package workerapp

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/platform"
)

// A worker whose internal_auth names a secret it cannot read does not start:
// it says which setting to fix, before starting anything.
func TestRunRefusesMissingInternalSecret(t *testing.T) {
	t.Setenv("SHIPLINE_TEST_INTERNAL_SECRET", "")
	cfg := &platform.Config{StateDir: filepath.Join(t.TempDir(), "state"),
		InternalAuth: &platform.InternalAuth{SecretEnv: "SHIPLINE_TEST_INTERNAL_SECRET"}}
	err := Run(context.Background(), Options{Config: cfg, Dev: true, UIPort: -1})
	if err == nil || !strings.Contains(err.Error(), "internal_auth.secret_env names SHIPLINE_TEST_INTERNAL_SECRET, which is not set") {
		t.Fatalf("Run = %v", err)
	}
}
