package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest"
)

// libActs names the library activities (see gitActs).
var libActs *activities.Libraries

// A release of a project with libraries (shipline.yaml's libraries:):
//
//  1. validate: the libraries join the pipelines, each described as a build
//     at the release's version (v1.2.0 → 1.2.0);
//  2. build and test: they are built and tested with the pipelines; a failing
//     test ends the release untagged;
//  3. publish libraries: the pipelines' pinned dependencies on the libraries
//     must be published, or published by this release (else the release is
//     refused, naming the pipeline's file:line); then each library is
//     published to its package index. The same version with the same bytes is
//     a no-op; other bytes end the release untagged (published versions are
//     immutable); an index that refuses the credentials or is unreachable
//     parks the release until `resume`;
//  4. tag and push, as any release.
//
// Libraries are never uploaded to fabrics: a deployment ships pipelines only.

// addLibraries makes the manifest's libraries part of the release (step
// validate). Releases of projects without libraries, and releases that began
// before libraries were published, are left as they were.
func (r *release) addLibraries(ctx workflow.Context, libs []manifest.Library) error {
	if len(libs) == 0 || !r.buildsFirst || changeVersion(ctx, ChangeReleaseLibraries) < 1 {
		return nil
	}
	var bad []string
	for _, l := range libs {
		p, err := l.AsPipeline(r.in.Version)
		if err != nil {
			bad = append(bad, fmt.Sprintf("library %s: %v", l.Name, err))
			continue
		}
		r.libraries = append(r.libraries, l)
		r.pipelines = append(r.pipelines, p)
	}
	if len(bad) > 0 {
		return r.refuse(ctx, StepValidate, apperr.InvalidInput, strings.Join(bad, "\n"))
	}
	// The step goes before the tag, in the order `status` shows.
	steps := make([]Step, 0, len(r.state.Steps)+1)
	for _, s := range r.state.Steps {
		if s.Name == StepTag {
			steps = append(steps, Step{Name: StepPublishLibraries, Status: StepPending})
		}
		steps = append(steps, s)
	}
	r.state.Steps = steps
	return nil
}

// MemoLibraries is the memo field in which a Release lists the libraries it
// published, as "<name> <version> on <index>" in name order; `shipline
// releases` reads it. Absent for releases without libraries.
const MemoLibraries = "libraries"

// librariesMemo renders r.state.Libraries for MemoLibraries.
func (r *release) librariesMemo() []string {
	var out []string
	for _, name := range sortedNames(r.state.Libraries) {
		l := r.state.Libraries[name]
		out = append(out, fmt.Sprintf("%s %s on %s", l.Name, l.Version, l.Index))
	}
	return out
}

// isLibrary reports whether a build of the release is a library's.
func (r *release) isLibrary(name string) bool {
	for _, l := range r.libraries {
		if l.Name == name {
			return true
		}
	}
	return false
}

// publishLibraries checks the pipelines' dependencies on the libraries, then
// publishes each library built by step build and test, in name order. It
// reads r.libraries and r.state.Builds and records r.state.Libraries;
// libraries published before a resume are not published again.
func (r *release) publishLibraries(ctx workflow.Context) error {
	if len(r.libraries) == 0 {
		return nil
	}
	r.begin(ctx, StepPublishLibraries)
	if err := r.checkLibraryDeps(ctx); err != nil {
		return err
	}
	if r.state.Libraries == nil {
		r.state.Libraries = map[string]PublishedLibrary{}
	}
	var uploaded, already int
	for _, l := range r.libraries {
		if _, done := r.state.Libraries[l.Name]; done {
			continue
		}
		b := r.state.Builds[l.Name]
		in := activities.PublishLibraryInput{Project: r.in.Project, Release: r.in.Version, Library: l,
			File: b.File, Object: b.Object, SHA256: b.SHA256, Size: b.Size}
		var out PublishedLibrary
		if err := workflow.ExecuteActivity(publishActivity(ctx), libActs.Publish, in).Get(ctx, &out); err != nil {
			return r.publishFailed(ctx, l, err)
		}
		r.state.Libraries[l.Name] = out
	}
	for _, name := range sortedNames(r.state.Libraries) {
		if r.state.Libraries[name].AlreadyPublished {
			already++
		} else {
			uploaded++
		}
	}
	detail := fmt.Sprintf("%d %s published", uploaded, plural(uploaded, "library", "libraries"))
	if already > 0 {
		detail += fmt.Sprintf(", %d already on the index with the same bytes", already)
	}
	r.done(ctx, StepPublishLibraries, detail)
	return r.publish(ctx)
}

// checkLibraryDeps refuses the release when a pipeline depends on a library
// version that is neither published nor published by this release.
func (r *release) checkLibraryDeps(ctx workflow.Context) error {
	var out activities.LibraryDepsOutput
	in := activities.LibraryDepsInput{Project: r.in.Project, Commit: r.state.Commit, Release: r.in.Version}
	if err := workflow.ExecuteActivity(publishActivity(ctx), libActs.CheckDependencies, in).Get(ctx, &out); err != nil {
		if temporal.IsCanceledError(err) {
			return err
		}
		if c := apperr.ClassOf(errorType(err)); c == apperr.Refused || c == apperr.Fails {
			return r.fail(ctx, StepPublishLibraries, err)
		}
		return &parkable{step: StepPublishLibraries, reason: "checking the pipelines' dependencies on the libraries: " + userMessage(err)}
	}
	if !out.Diagnostics.HasErrors() {
		return nil
	}
	msg := fmt.Sprintf("%s; so %s was not tagged (pipelines at %s (%s) depend on library versions that are not published):\n%s",
		firstDiagnostic(out.Diagnostics), r.in.Version, short(r.state.Commit), r.state.Ref, out.Diagnostics.Error())
	return r.refuse(ctx, StepPublishLibraries, apperr.DependencyNotPublished, msg)
}

// firstDiagnostic is the first error as a one-line summary, file:line first,
// counting the others, for the line `status` and --wait show.
func firstDiagnostic(l diag.List) string {
	var errs []diag.Diagnostic
	for _, d := range l {
		if d.Severity == "" || d.Severity == diag.Error {
			errs = append(errs, d)
		}
	}
	if len(errs) == 0 {
		return ""
	}
	line := errs[0].Summary
	if w := errs[0].Where(); w != "" {
		line = w + ": " + line
	}
	if len(errs) > 1 {
		line += fmt.Sprintf(" (and %d more below)", len(errs)-1)
	}
	return line
}

// publishFailed ends the release untagged when the library cannot be
// published as built (other bytes under its version, an invalid file), and
// parks it when the index needs fixing (credentials, configuration, an
// outage that outlasted the retries).
func (r *release) publishFailed(ctx workflow.Context, l manifest.Library, err error) error {
	if temporal.IsCanceledError(err) {
		return err
	}
	msg := fmt.Sprintf("library %s could not be published to package index %s: %s", l.Name, l.Index, userMessage(err))
	switch apperr.ClassOf(errorType(err)) {
	case apperr.Refused, apperr.Fails:
		return r.end(ctx, StepPublishLibraries, errorType(err), fmt.Sprintf("%s\nso %s was not tagged", msg, r.in.Version))
	}
	return &parkable{step: StepPublishLibraries, reason: msg}
}

// publishActivity: package indexes are retried with backoff for up to 15
// minutes (uploads of large jars included), then the release parks.
func publishActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    10 * time.Minute,
		ScheduleToCloseTimeout: 15 * time.Minute,
		HeartbeatTimeout:       heartbeatTimeout,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
	})
}
