package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
)

// buildAndTest builds and tests every pipeline of the manifest at the release's
// commit, in parallel, with the build activity a Deploy uses: the artifacts
// land in the build cache under the keys the deployment that follows looks
// up, so it builds nothing again. It reads r.pipelines (step validate) and
// records each pipeline's build in r.state.Builds; pipelines already built are
// kept across a resume.
//
// A failure the release cannot get past (a failing test, a build that fails)
// ends it before the tag is pushed: nothing is tagged, and `releases` does not
// list it. A failure a person can fix on the worker (a missing build tool,
// retries that ran out) parks the release until `resume`.
func (r *release) buildAndTest(ctx workflow.Context) error {
	r.begin(ctx, StepBuildTest)
	if r.state.Builds == nil {
		r.state.Builds = map[string]PipelineBuild{}
	}
	for _, p := range r.pipelines {
		if _, ok := r.state.Builds[p.Name]; !ok {
			r.state.Builds[p.Name] = PipelineBuild{Pipeline: p.Name, Status: StepPending, Library: r.isLibrary(p.Name)}
		}
	}
	type pending struct {
		name string
		f    workflow.Future
	}
	var running []pending
	for _, p := range r.pipelines {
		if r.state.Builds[p.Name].Status == StepDone {
			continue
		}
		r.setBuild(p.Name, func(b *PipelineBuild) { b.Status, b.Error, b.Failure = StepRunning, "", "" })
		f := workflow.ExecuteActivity(buildActivity(ctx), buildActs.Pipeline, activities.BuildInput{Project: r.in.Project, Commit: r.state.Commit, Pipeline: p})
		running = append(running, pending{p.Name, f})
	}
	var failures []buildFailed
	for _, p := range running {
		var out activities.BuildOutput
		if err := p.f.Get(ctx, &out); err != nil {
			if temporal.IsCanceledError(err) {
				return err
			}
			f := buildFailed{pipeline: p.name, typ: errorType(err), msg: userMessage(err)}
			logPath, logTail := failedBuildLog(err)
			r.setBuild(p.name, func(b *PipelineBuild) {
				b.Status, b.Error, b.Failure, b.LogPath, b.LogTail = StepFailed, f.msg, f.typ, logPath, logTail
			})
			failures = append(failures, f)
			continue
		}
		r.setBuild(p.name, func(b *PipelineBuild) {
			*b = PipelineBuild{Pipeline: p.name, Status: StepDone, Cached: out.Cached, File: out.File, SHA256: out.SHA256, Size: out.Size,
				Seconds: out.Seconds, LogPath: out.LogPath, LogTail: out.LogTail, Library: b.Library, Object: out.Object}
		})
	}
	if len(failures) > 0 {
		return r.buildsFailed(ctx, failures)
	}
	r.done(ctx, StepBuildTest, r.buildsDetail())
	return r.publish(ctx)
}

// buildFailed is one pipeline whose build failed.
type buildFailed struct {
	pipeline, typ, msg string
}

// buildsFailed decides how failed builds end the step: a failing test first,
// then any failure resume cannot fix, end the release untagged (failed, or
// refused for a request the worker cannot build at all); the rest park it.
func (r *release) buildsFailed(ctx workflow.Context, failures []buildFailed) error {
	worst := failures[0]
	rank := func(f buildFailed) int {
		switch {
		case f.typ == apperr.TestsFailed:
			return 3
		case apperr.ClassOf(f.typ) == apperr.Fails:
			return 2
		case apperr.ClassOf(f.typ) == apperr.Refused:
			return 1
		}
		return 0
	}
	for _, f := range failures[1:] {
		if rank(f) > rank(worst) {
			worst = f
		}
	}
	msgs := make([]string, len(failures))
	for i, f := range failures {
		msgs[i] = f.msg
	}
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	if rank(worst) == 0 {
		return &parkable{step: StepBuildTest, reason: strings.Join(msgs, "\n")}
	}
	kind := "pipeline"
	if r.state.Builds[worst.pipeline].Library {
		kind = "library"
	}
	what := "the build of " + kind + " " + worst.pipeline + " failed"
	if worst.typ == apperr.TestsFailed {
		what = "the tests of " + kind + " " + worst.pipeline + " failed"
	}
	msg := fmt.Sprintf("%s at %s (%s), so %s was not tagged:\n%s\n`shipline logs %s` prints the full build logs; fix it, push, and run `shipline release %s --project %s` again",
		what, short(r.state.Commit), r.state.Ref, r.in.Version, strings.Join(msgs, "\n"), id, r.in.Version, r.in.Project)
	return r.end(ctx, StepBuildTest, worst.typ, msg)
}

// buildsDetail says what the build step did: how many pipelines, how many of
// them the build cache already held.
func (r *release) buildsDetail() string {
	cached, libs := 0, 0
	for _, name := range sortedNames(r.state.Builds) {
		if r.state.Builds[name].Cached {
			cached++
		}
		if r.state.Builds[name].Library {
			libs++
		}
	}
	n := len(r.state.Builds) - libs
	if libs > 0 {
		return fmt.Sprintf("%d %s and %d %s built and tested (%d from cache)", n, plural(n, "pipeline", "pipelines"),
			libs, plural(libs, "library", "libraries"), cached)
	}
	return fmt.Sprintf("%d %s built and tested (%d from cache)", n, plural(n, "pipeline", "pipelines"), cached)
}

func (r *release) setBuild(p string, f func(*PipelineBuild)) {
	b := r.state.Builds[p]
	f(&b)
	r.state.Builds[p] = b
}
