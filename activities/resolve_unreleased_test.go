package activities

import (
	"context"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/apperr"
)

// Resolving a version with no tag on the remote is a refusal (UnknownRelease),
// which ends a deployment or plan at once instead of parking it.
func TestResolveUnreleasedVersionIsRefused(t *testing.T) {
	remote := newTestRemote(t)
	remote.commit(t, map[string]string{"README": "one\n"})
	g := gitActivities(t, "file://"+remote.bare, nil)
	d := &Deploy{Git: g, Platform: g.Platform}
	_, err := d.Resolve(context.Background(), ResolveDeployInput{Project: "demo", Version: "v9.9.9"})
	ae := appError(t, err, apperr.UnknownRelease)
	if !strings.Contains(ae.Error(), "v9.9.9 of demo is not released") || !strings.Contains(ae.Error(), "shipline release v9.9.9 --project demo") {
		t.Fatalf("message: %v", ae)
	}
}

// A refusal never suggests an option the project has turned off: --job only
// where selective_jobs is on.
func TestFabricKindAdviceFollowsSelectiveJobs(t *testing.T) {
	cfg := gitActivities(t, "file:///nowhere", nil).Platform
	for _, selective := range []bool{false, true} {
		err := checkFabricKind(cfg, "orders_dag", "airflow", "dev", true, selective)
		ae := appError(t, err, apperr.FabricMismatch)
		if got := strings.Contains(ae.Error(), "--job"); got != selective {
			t.Errorf("selective_jobs %v: advice %q (mentions --job: %v)", selective, ae.Error(), got)
		}
	}
}
