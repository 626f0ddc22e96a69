package activities

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/build"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
)

// A Python pipeline (src layout, one passing test) and another pipeline beside it.
var buildRepoFiles = map[string]string{
	"shipline.yaml": "name: demo\n",
	"pipelines/orders/pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "orders"
version = "1.0.0"

[tool.setuptools.packages.find]
where = ["src"]
`,
	"pipelines/orders/src/orders/__init__.py": "def total(xs):\n    return sum(xs)\n",
	"pipelines/orders/tests/test_total.py":    "from orders import total\n\ndef test_total():\n    assert total([1, 2]) == 3\n",
	"pipelines/other/README":                  "another pipeline\n",
	"pipelines/hello/src/main/java/demo/Hello.java": `package demo;

public class Hello {
    public static void main(String[] args) { System.out.println("hello"); }
}
`,
}

var (
	ordersPipeline = manifest.Pipeline{Name: "orders", Path: "pipelines/orders", Language: manifest.Python}
	helloPipeline  = manifest.Pipeline{Name: "hello", Path: "pipelines/hello", Language: manifest.Java}
)

// buildActivities returns Build activities for project "demo" at repo, with the
// Python interpreter the build package would pick.
func buildActivities(t *testing.T, repo string) *Build {
	t.Helper()
	return &Build{
		Platform: &platform.Config{
			StateDir: t.TempDir(),
			Projects: map[string]platform.Project{"demo": {Name: "demo", Repo: repo, Admins: []string{"alice"}}},
		},
	}
}

func needPythonBuild(t *testing.T) {
	t.Helper()
	py := os.Getenv(build.PythonEnv)
	if py == "" {
		py = build.DebianPython
	}
	if err := exec.Command(py, "-c", "import build, setuptools, pytest").Run(); err != nil {
		t.Skipf("%s lacks build/setuptools/pytest: %v", py, err)
	}
}

// buildEnv runs activities of b in a test activity environment.
type buildEnv struct {
	t   *testing.T
	b   *Build
	env *testsuite.TestActivityEnvironment
}

func newBuildEnv(t *testing.T, b *Build) *buildEnv {
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(b)
	return &buildEnv{t: t, b: b, env: env}
}

func (e *buildEnv) pipeline(commit string, p manifest.Pipeline) (BuildOutput, error) {
	val, err := e.env.ExecuteActivity(e.b.Pipeline, BuildInput{Project: "demo", Commit: commit, Pipeline: p})
	if err != nil {
		return BuildOutput{}, err
	}
	var out BuildOutput
	if err := val.Get(&out); err != nil {
		e.t.Fatal(err)
	}
	return out, nil
}

// file is where the default store (state_dir) keeps key.
func (e *buildEnv) file(key string) string {
	return filepath.Join(e.b.Platform.StateDir, filepath.FromSlash(key))
}

func (e *buildEnv) mustPipeline(commit string, p manifest.Pipeline) BuildOutput {
	e.t.Helper()
	out, err := e.pipeline(commit, p)
	if err != nil {
		e.t.Fatalf("Pipeline(%s): %v", p.Name, err)
	}
	return out
}

func (e *buildEnv) cacheKey(commit string, p manifest.Pipeline) CacheKeyOutput {
	e.t.Helper()
	val, err := e.env.ExecuteActivity(e.b.CacheKey, BuildInput{Project: "demo", Commit: commit, Pipeline: p})
	if err != nil {
		e.t.Fatalf("CacheKey(%s): %v", p.Name, err)
	}
	var out CacheKeyOutput
	if err := val.Get(&out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func fileSum(t *testing.T, path string) (string, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), data
}

func TestBuildPythonPipelineAndCache(t *testing.T) {
	needPythonBuild(t)
	remote := newTestRemote(t)
	first := remote.commit(t, buildRepoFiles)
	e := newBuildEnv(t, buildActivities(t, "file://"+remote.bare))

	before := e.cacheKey(first, ordersPipeline)
	if before.Cached || before.Key == "" || before.TreeHash != runGit(t, remote.work, "rev-parse", first+":pipelines/orders") {
		t.Fatalf("CacheKey before any build = %+v", before)
	}

	out := e.mustPipeline(first, ordersPipeline)
	t.Logf("wheel %s built in %.2fs inside build tools", out.File, out.Seconds)
	label := build.ContentLabel(before.TreeHash)
	if out.Cached || out.File != "orders-1.0.0+"+label+"-py3-none-any.whl" || out.CacheKey != before.Key || out.TreeHash != before.TreeHash {
		t.Fatalf("first build = %+v", out)
	}
	sum, wheel := fileSum(t, e.file(out.Object))
	if sum != out.SHA256 || int64(len(wheel)) != out.Size {
		t.Fatalf("file sha256 %s size %d, output says %s %d", sum, len(wheel), out.SHA256, out.Size)
	}
	zr, err := zip.NewReader(bytes.NewReader(wheel), int64(len(wheel)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zr.Open("orders/__init__.py"); err != nil {
		t.Errorf("wheel lacks the package: %v", err)
	}
	if log, err := os.ReadFile(e.file(out.LogPath)); err != nil || !strings.Contains(string(log), "1 passed") {
		t.Errorf("build log %s (%v) does not show the test run:\n%s", out.LogPath, err, log)
	}

	// The same commit again: a cache hit with the same bytes, no build.
	again := e.mustPipeline(first, ordersPipeline)
	if !again.Cached || again.Seconds != 0 || again.SHA256 != out.SHA256 || again.Object != out.Object {
		t.Fatalf("second build = %+v, want a cache hit", again)
	}
	if _, data := fileSum(t, e.file(again.Object)); !bytes.Equal(data, wheel) {
		t.Fatal("cached bytes differ")
	}

	// A change in another pipeline's directory keeps this pipeline's key.
	second := remote.commit(t, map[string]string{"pipelines/other/README": "changed\n", "shipline.yaml": "name: demo\n# x\n"})
	if k := e.cacheKey(second, ordersPipeline); k.Key != before.Key || !k.Cached {
		t.Fatalf("CacheKey after a change elsewhere = %+v, want key %s cached", k, before.Key)
	}
	if hit := e.mustPipeline(second, ordersPipeline); !hit.Cached || hit.SHA256 != out.SHA256 {
		t.Fatalf("build after a change elsewhere = %+v, want the cached wheel", hit)
	}

	// A change in its own directory makes a new key and a new build.
	third := remote.commit(t, map[string]string{"pipelines/orders/src/orders/__init__.py": "def total(xs):\n    return sum(xs) + 0\n"})
	k := e.cacheKey(third, ordersPipeline)
	if k.Key == before.Key || k.Cached {
		t.Fatalf("CacheKey after a change inside = %+v, want a new uncached key", k)
	}
	if rebuilt := e.mustPipeline(third, ordersPipeline); rebuilt.Cached || rebuilt.CacheKey != k.Key ||
		rebuilt.File != "orders-1.0.0+"+build.ContentLabel(k.TreeHash)+"-py3-none-any.whl" || rebuilt.File == out.File {
		t.Fatalf("build after a change inside = %+v", rebuilt)
	}
	// The repository itself is never changed by a build (the version is set in the exported copy).
	if st := runGit(t, remote.work, "status", "--porcelain"); st != "" {
		t.Errorf("work tree changed: %s", st)
	}
}

func TestBuildFailingPytest(t *testing.T) {
	needPythonBuild(t)
	remote := newTestRemote(t)
	remote.commit(t, buildRepoFiles)
	bad := remote.commit(t, map[string]string{
		"pipelines/orders/tests/test_total.py": "from orders import total\n\ndef test_total():\n    assert total([1, 2]) == 4, 'totals are off'\n",
	})
	e := newBuildEnv(t, buildActivities(t, "file://"+remote.bare))
	_, err := e.pipeline(bad, ordersPipeline)
	ae := appError(t, err, apperr.TestsFailed)
	if !strings.Contains(ae.Error(), "totals are off") || !strings.Contains(ae.Error(), "pipeline orders") {
		t.Errorf("error lacks the assertion or the pipeline: %v", ae)
	}
	var details BuildFailureDetails
	if err := ae.Details(&details); err != nil {
		t.Fatal(err)
	}
	if details.Pipeline != "orders" || !strings.Contains(details.LogTail, "totals are off") {
		t.Errorf("details = %+v", details)
	}
	if log, err := os.ReadFile(e.file(details.LogPath)); err != nil || !strings.Contains(string(log), "totals are off") {
		t.Errorf("log %s (%v) lacks the test output", details.LogPath, err)
	}
}

func TestBuildJavaAndCustomPipelines(t *testing.T) {
	for _, tool := range []string{"javac", "jar", "java"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	remote := newTestRemote(t)
	commit := remote.commit(t, buildRepoFiles)
	e := newBuildEnv(t, buildActivities(t, "file://"+remote.bare))

	out := e.mustPipeline(commit, helloPipeline)
	_, data := fileSum(t, e.file(out.Object))
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zr.Open("demo/Hello.class"); err != nil || out.File != "hello-"+build.ContentLabel(out.TreeHash)+".jar" {
		t.Errorf("jar %s lacks demo/Hello.class: %v", out.File, err)
	}

	custom := manifest.Pipeline{Name: "packed", Path: "pipelines/hello", Language: manifest.Java,
		Build: "mkdir -p target && jar --create --file target/packed-1.0.jar -C src/main/java .", Artifact: "target/*.jar"}
	if out := e.mustPipeline(commit, custom); out.File != "packed-1.0-"+build.ContentLabel(out.TreeHash)+".jar" || out.Cached {
		t.Errorf("custom build = %+v", out)
	}

	custom.Artifact = "build/libs/*.jar"
	_, err = e.pipeline(commit, custom)
	if ae := appError(t, err, apperr.ArtifactNotFound); !strings.Contains(ae.Error(), "build/libs/*.jar") {
		t.Errorf("error does not name the glob: %v", ae)
	}
}

func TestBuildBadInput(t *testing.T) {
	remote := newTestRemote(t)
	commit := remote.commit(t, buildRepoFiles)
	e := newBuildEnv(t, buildActivities(t, "file://"+remote.bare))

	_, err := e.env.ExecuteActivity(e.b.Pipeline, BuildInput{Project: "nope", Commit: commit, Pipeline: ordersPipeline})
	appError(t, err, apperr.UnknownProject)
	missing := manifest.Pipeline{Name: "gone", Path: "pipelines/gone", Language: manifest.Python}
	_, err = e.pipeline(commit, missing)
	if ae := appError(t, err, apperr.InvalidInput); !strings.Contains(ae.Error(), "pipelines/gone does not exist") {
		t.Errorf("error: %v", ae)
	}
	scala := manifest.Pipeline{Name: "s", Path: "pipelines/other", Language: manifest.Scala}
	_, err = e.pipeline(commit, scala)
	appError(t, err, apperr.InvalidInput)
}
