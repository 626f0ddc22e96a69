package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/pkgindex"
	"github.com/shipline/shipline/internal/pkgindex/pkgindextest"
)

// validate checks the pipelines' pinned dependencies on the project's
// libraries against the package index of --platform: common 1.2.0 is
// published, 1.3.0 is not and is refused at its file:line. Without
// --platform, with an index that cannot be read, or with an invalid
// platform file, it says the check was skipped and why.
func TestGoldenValidateLibraries(t *testing.T) {
	dir := t.TempDir()
	index := filepath.Join(dir, "pypi")
	ix, err := pkgindex.Open(context.Background(), pkgindex.Config{Name: "internal", Kind: "simple", URL: "file://" + filepath.ToSlash(index)})
	if err != nil {
		t.Fatal(err)
	}
	wheel := pkgindextest.Wheel(t, t.TempDir(), "common", "1.2.0", pkgindextest.WheelOptions{Code: "X = 1\n"})
	if _, err := ix.Publish(context.Background(), pkgindex.File{Name: "common", Version: "1.2.0", Path: wheel}); err != nil {
		t.Fatal(err)
	}
	platformYAML := func(name, url string) string {
		p := filepath.Join(dir, name)
		data := fmt.Sprintf("teams: {dev: {members: [alice]}}\nprojects: {demo: {repo: file:///srv/demo.git, admins: [alice]}}\npackage_indexes:\n  internal: {kind: simple, url: %q}\n", url)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := platformYAML("platform.yaml", "file://./pypi")
	// An index that cannot be read: its directory lies below a regular file.
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := platformYAML("unreadable.yaml", "file://./file/pypi")
	// An invalid platform file: the check is skipped because of it, not
	// for want of --platform.
	invalid := platformYAML("invalid.yaml", "ftp://./pypi")

	var got strings.Builder
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"validate", "testdata/validate/libraries", "--platform", good}, ExitInvalid},
		{[]string{"validate", "testdata/validate/libraries"}, ExitOK},
		{[]string{"validate", "testdata/validate/libraries", "--platform", bad}, ExitOK},
		{[]string{"validate", "testdata/validate/libraries", "--platform", invalid}, ExitInvalid},
	} {
		code, out, errOut := shipline(t, newFake(), c.args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s%s", c.args, code, c.code, out, errOut)
		}
		fmt.Fprintf(&got, "$ shipline %s\nexit %d\n--- stdout\n%s--- stderr\n%s\n", strings.Join(c.args, " "), code, out, errOut)
	}
	text := strings.ReplaceAll(got.String(), dir, "<DIR>")
	path := filepath.Join("testdata", "golden", "validate_libraries.golden")
	if *update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if text != string(want) {
		t.Errorf("output differs from %s (rerun with -update if intended):\n--- got\n%s--- want\n%s", path, text, want)
	}
}
