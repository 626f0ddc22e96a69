package workflows

import "github.com/shipline/shipline/internal/apperr"

// MemoBuilds is the memo field in which a Release (step build and test) and
// each Deploy say how the release's builds (and their tests) went: one of the
// Builds* values, absent until known. `shipline releases` reads it: `latest`
// is the highest release whose builds and tests passed, and a release whose
// tests failed is marked so.
const MemoBuilds = "builds"

// Build outcomes of a deployment (MemoBuilds).
const (
	BuildsPassed = "passed"       // every pipeline built and its tests passed
	TestsFailed  = "tests failed" // a pipeline's tests failed
	BuildsFailed = "build failed" // a pipeline did not build
)

// buildsOutcome sums up the pipelines' builds: a failed test first, then a
// failed build, then passed once every one of n pipelines is built; "" while
// unknown.
func buildsOutcome(builds map[string]PipelineBuild, n int) string {
	done, outcome := 0, ""
	for _, name := range sortedNames(builds) {
		switch b := builds[name]; {
		case b.Status == StepFailed && b.Failure == apperr.TestsFailed:
			return TestsFailed
		case b.Status == StepFailed:
			outcome = BuildsFailed
		case b.Status == StepDone:
			done++
		}
	}
	if outcome == "" && n > 0 && done == n {
		return BuildsPassed
	}
	return outcome
}
