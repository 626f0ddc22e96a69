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
