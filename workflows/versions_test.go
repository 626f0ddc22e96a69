package workflows

import (
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
)

// versionsAsked runs a successful Deploy whose GetVersion calls answer
// baseline for ChangeVersionBaseline and 1 for every other change, and
// returns the change IDs it asked for, in order, without repeats.
func versionsAsked(t *testing.T, baseline workflow.Version) []string {
	e := newDeployEnv(t)
	var mu sync.Mutex
	var asked []string
	e.OnGetVersion(mock.Anything, workflow.DefaultVersion, 1).Run(func(args mock.Arguments) {
		mu.Lock()
		defer mu.Unlock()
		if id := args.String(0); !slices.Contains(asked, id) {
			asked = append(asked, id)
		}
	}).Return(func(id string, _, _ workflow.Version) workflow.Version {
		if id == ChangeVersionBaseline {
			return baseline
		}
		return 1
	})
	e.okResolve()
	e.okBuilds()
	e.okUpload()
	e.onJobs(func(activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		return activities.UpsertJobOutput{ID: "1000000000000001", Action: "created"}, nil
	})
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	if s := e.result(); s.Status != StatusSucceeded {
		t.Fatalf("deploy: %s (%s)", s.Status, s.Summary)
	}
	return asked
}

// changesAfterBaseline are the changes a Deploy made after the version
// baseline: each has a marker of its own.
var changesAfterBaseline = []string{ChangeWindows}

// A new Deploy records one version marker for the changes of the baseline
// (one visibility write), not one per change.
func TestDeployRecordsOnlyTheVersionBaseline(t *testing.T) {
	want := append([]string{ChangeVersionBaseline}, changesAfterBaseline...)
	if asked := versionsAsked(t, 1); !slices.Equal(asked, want) {
		t.Fatalf("a new Deploy asked for versions %v, want only %v", asked, want)
	}
}

// A Deploy that began before the baseline (no marker) asks for each change as before.
func TestDeployWithoutBaselineAsksEachChange(t *testing.T) {
	asked := versionsAsked(t, workflow.DefaultVersion)
	for _, want := range []string{ChangeVersionBaseline, ChangeParkReleasesFabric, ChangeInternalAuth, ChangeCheckJobs, ChangeBatchedJobs} {
		if !slices.Contains(asked, want) {
			t.Errorf("a Deploy without the baseline did not ask for %s (asked %v)", want, asked)
		}
	}
	if asked[0] != ChangeVersionBaseline {
		t.Errorf("the baseline must be asked first (before any command), asked %v", asked)
	}
}
