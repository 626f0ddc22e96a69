package pkgindex_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/pkgindex/pkgindextest"
	"github.com/shipline/shipline/internal/storage"
)

// debianPython is the Python whose pip judges the index (CI installs
// python3-pip, .ci/run).
const debianPython = "/usr/bin/python3"

// pip runs `python3 -m pip args...` in a clean environment (no user
// configuration, no cache, no network beyond the index given) and returns
// its output.
func pip(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if err := exec.Command(debianPython, "-m", "pip", "--version").Run(); err != nil {
		t.Skipf("pip, the judge of this test, is missing (%s -m pip: %v): apt-get install python3-pip", debianPython, err)
	}
	home := t.TempDir()
	cmd := exec.Command(debianPython, append([]string{"-m", "pip"}, args...)...)
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "PIP_CONFIG_FILE=/dev/null", "PIP_NO_CACHE_DIR=1",
		"PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1", "PIP_DEFAULT_TIMEOUT=10", "PIP_RETRIES=0", "PYTHONDONTWRITEBYTECODE=1"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pip resolves and installs what Shipline published to a simple index, read
// as a directory (file://) and over HTTP, by a name spelled another way.
func TestPipResolvesFromSimpleIndex(t *testing.T) {
	idx, dir := simpleIndex(t)
	src := t.TempDir()
	old := pkgindextest.Wheel(t, src, "Common_Lib", "1.0.0", pkgindextest.WheelOptions{Code: "VERSION = 'one'"})
	publish(t, idx, "Common_Lib", "1.0.0", old)
	cur := pkgindextest.Wheel(t, src, "Common_Lib", "1.1.0", pkgindextest.WheelOptions{Code: "VERSION = 'one-one'", RequiresPython: ">=3"})
	publish(t, idx, "Common_Lib", "1.1.0", cur)
	// A version for a Python that does not exist: pip must skip it through
	// the page's data-requires-python.
	future := pkgindextest.Wheel(t, src, "Common_Lib", "2.0.0", pkgindextest.WheelOptions{Code: "VERSION = 'two'", RequiresPython: ">=99"})
	publish(t, idx, "Common_Lib", "2.0.0", future)

	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	for _, index := range []string{storage.FileURL(dir), srv.URL + "/"} {
		t.Run(strings.SplitN(index, ":", 2)[0], func(t *testing.T) {
			dl := t.TempDir()
			out, err := pip(t, "download", "--no-deps", "--index-url", index, "--dest", dl, "common.lib==1.0.0")
			if err != nil {
				t.Fatalf("pip download: %v\n%s", err, out)
			}
			if got := sha256File(t, filepath.Join(dl, filepath.Base(old))); got != sha256File(t, old) {
				t.Errorf("pip downloaded other bytes")
			}

			target := t.TempDir()
			out, err = pip(t, "install", "--no-deps", "--index-url", index, "--target", target, "COMMON-lib")
			if err != nil {
				t.Fatalf("pip install: %v\n%s", err, out)
			}
			code, err := os.ReadFile(filepath.Join(target, "common_lib", "__init__.py"))
			if err != nil {
				t.Fatalf("pip installed no common_lib: %v\n%s", err, out)
			}
			if !strings.Contains(string(code), "'one-one'") {
				t.Errorf("pip installed %q, want 1.1.0 (2.0.0 requires Python >=99)", code)
			}
		})
	}
}
