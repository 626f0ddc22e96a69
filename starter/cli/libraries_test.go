package cli

import (
	"testing"
	"time"

	"github.com/shipline/shipline/workflows"
)

// `status` of a release shows the libraries it published (package, version,
// index, file, checksum); `releases` lists them under the table.
func TestGoldenReleaseLibraries(t *testing.T) {
	rel := releaseState(workflows.StatusReleased, "released v1.0.0 of demo at 0123456 by alice",
		step(workflows.StepAuthorize, workflows.StepDone, "alice is an admin of demo"), step(workflows.StepResolve, workflows.StepDone, "main is 0123456"),
		step(workflows.StepValidate, workflows.StepDone, "shipline.yaml is valid"),
		step(workflows.StepBuildTest, workflows.StepDone, "1 pipeline and 2 libraries built and tested (0 from cache)"),
		step(workflows.StepPublishLibraries, workflows.StepDone, "1 library published, 1 already on the index with the same bytes"),
		step(workflows.StepTag, workflows.StepDone, "pushed tag v1.0.0"),
		step(workflows.StepDeploy, workflows.StepSkipped, string(workflows.DeploySkipped)))
	rel.Libraries = map[string]workflows.PublishedLibrary{
		"common": {Library: "common", Index: "internal", Name: "common", Version: "1.0.0", File: "common-1.0.0-py3-none-any.whl",
			SHA256: "4f1c0a9e5b7d2c3e8f6a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e", URL: "file:///srv/pypi/common/common-1.0.0-py3-none-any.whl"},
		"jcommon": {Library: "jcommon", Index: "maven", Name: "com.example:jcommon", Version: "1.0.0", File: "jcommon-1.0.0.jar",
			SHA256: "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", AlreadyPublished: true},
	}
	id := workflows.ReleaseID("demo", "v1.0.0")
	for _, out := range []string{"text", "json"} {
		f := newFake()
		f.add(id, &fakeWF{typ: workflows.ReleaseWorkflow, states: []any{rel}})
		golden(t, "status_release_libraries_"+out, f, "--output", out, "status", id)

		f = newFake()
		f.listExec(workflows.ReleaseWorkflow, id, running, t0, map[string]any{
			workflows.MemoStatus: string(workflows.StatusReleased), workflows.MemoCommit: "0123456789abcdef", workflows.MemoCreatedBy: "alice",
			workflows.MemoCreatedAt: t0, workflows.MemoBuilds: workflows.BuildsPassed,
			workflows.MemoLibraries: []string{"common 1.0.0 on internal", "com.example:jcommon 1.0.0 on maven"}}, nil)
		f.listExec(workflows.ReleaseWorkflow, workflows.ReleaseID("demo", "v0.9.0"), running, t0.Add(-time.Hour), map[string]any{
			workflows.MemoStatus: string(workflows.StatusReleased), workflows.MemoCommit: "89abcdef01234567", workflows.MemoCreatedBy: "bob",
			workflows.MemoCreatedAt: t0.Add(-time.Hour), workflows.MemoBuilds: workflows.BuildsPassed}, nil)
		golden(t, "releases_libraries_"+out, f, "--output", out, "releases", "--project", "demo")
	}
}
