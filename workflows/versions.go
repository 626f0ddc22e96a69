package workflows

import (
	"slices"

	"go.temporal.io/sdk/workflow"
)

// Each workflow.GetVersion call of a new run records a marker and upserts the
// TemporalChangeVersion search attribute: one more history event and one more
// visibility write each. A Deploy asked for about eight changes, so every
// deployment paid eight visibility writes for changes its own run can never be
// without (and every new run of a Fabric entity four). A run that begins with the version baseline records one marker
// (ChangeVersionBaseline) and takes every change in baselineChanges as in
// place; runs that began before the baseline replay without it and ask for
// each change as they did.

// baselineChanges are the changes a run with the baseline has in place. A
// change made after the baseline is not listed: it needs its own GetVersion
// (or a new baseline) while runs of the previous shape may be open.
var baselineChanges = []string{
	ChangeBatchedJobs, ChangeSignedRequests, ChangeRebuildMissingArtifacts, ChangeRefusalClasses,
	ChangeReleaseRecordCheck, ChangeParkReleasesFabric, ChangeSupersede, ChangeInternalAuth,
	ChangeCarriedStateCheck, ChangeCheckJobs, ChangeProjectReplayClaims, ChangeSealedClaims, ChangeReleaseBuildsFirst, ChangeActiveRuns,
	changeTellWholeQueue,
}

type baselineKey struct{}

// withVersionBaseline asks, as the first thing a run does, whether the run has
// the version baseline, and remembers the answer in the returned context. Run
// first (before any other command) it is answered from history on replay: a
// run that began before the baseline has no marker and goes on without it.
func withVersionBaseline(ctx workflow.Context) workflow.Context {
	on := workflow.GetVersion(ctx, ChangeVersionBaseline, workflow.DefaultVersion, 1) >= 1
	return workflow.WithValue(ctx, baselineKey{}, on)
}

// changeVersion is workflow.GetVersion(ctx, change, DefaultVersion, 1),
// except in a run with the version baseline, where a change of the baseline
// is in place (version 1) without a marker of its own.
func changeVersion(ctx workflow.Context, change string) workflow.Version {
	if on, _ := ctx.Value(baselineKey{}).(bool); on && slices.Contains(baselineChanges, change) {
		return 1
	}
	return workflow.GetVersion(ctx, change, workflow.DefaultVersion, 1)
}
