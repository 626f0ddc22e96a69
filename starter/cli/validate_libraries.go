package cli

import (
	"context"
	"fmt"
	"io/fs"
	"os"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
)

// checkLibraryDeps checks that the pipelines' pinned dependencies on the
// project's libraries are published on the libraries' package indexes (the
// check a release makes before it tags). It needs the platform config (where
// the indexes are) and reachable indexes; otherwise a warning says the check
// was skipped and why. platformFile is the --platform file as given (empty
// without it); cfg is nil when it is missing or invalid.
func checkLibraryDeps(ctx context.Context, fsys fs.FS, m *manifest.Manifest, cfg *platform.Config, platformFile string) diag.List {
	if m == nil {
		return nil
	}
	var pinned []manifest.LibraryDep
	for _, d := range m.LibraryDeps(fsys) {
		if d.Version != "" {
			pinned = append(pinned, d)
		}
	}
	if len(pinned) == 0 {
		return nil
	}
	skipped := func(why, fix string) diag.List {
		return diag.List{{Severity: diag.Warning, File: manifest.FileName,
			Summary: fmt.Sprintf("the pipelines' dependencies on libraries (%d pinned, e.g. %s at %s) were not checked against the package indexes: %s",
				len(pinned), pinned[0].Spec, pinned[0].Where(), why),
			Fix: fix}}
	}
	if cfg == nil && platformFile != "" {
		return skipped(platformFile+" is invalid (see its errors above)", "fix "+platformFile+" and validate again")
	}
	if cfg == nil {
		return skipped("no platform config", "pass --platform platform.yaml to check them (a release checks them before it tags)")
	}
	diags, err := m.CheckLibraryDeps(pinned, "", activities.PublishedIn(ctx, cfg, os.Getenv))
	if err != nil {
		return skipped(err.Error(), "check the index is reachable from here and its credential variables are set, or rely on the release's check")
	}
	return diags
}
