package workflows

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
)

// acceptAtStart sends AcceptUpdate the way update-with-start does (with the
// start) and returns what it answered.
func acceptAtStart(t *testing.T, env *testsuite.TestWorkflowEnvironment) *Acceptance {
	t.Helper()
	got := &Acceptance{}
	answered := false
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(AcceptUpdate, "accept", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("accept update rejected: %v", err) },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				if err != nil {
					t.Errorf("accept update failed: %v", err)
					return
				}
				answered = true
				*got = v.(Acceptance)
			},
		})
	}, 0)
	t.Cleanup(func() {
		if !answered && !t.Failed() {
			t.Error("the accept update never answered")
		}
	})
	return got
}

func TestAcceptReleaseRefusedAtAuthorize(t *testing.T) {
	e := newReleaseEnv(t, admins())
	got := acceptAtStart(t, e.TestWorkflowEnvironment)
	e.runFailing(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "bob"}, apperr.AccessDenied)
	if got.Accepted || got.Status != StatusRefused || got.Step != StepAuthorize || !strings.Contains(got.Reason, "bob may not release project demo") {
		t.Fatalf("acceptance = %+v", *got)
	}
}

func TestAcceptReleaseAcceptedAfterAuthorize(t *testing.T) {
	e := newReleaseEnv(t, admins())
	e.okGit(true)
	got := acceptAtStart(t, e.TestWorkflowEnvironment)
	e.runOpen(ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice"})
	if !got.Accepted {
		t.Fatalf("acceptance = %+v", *got)
	}
}

// A deploy of a version that was never released is refused at once: the
// accept update reports it, the deployment never parks.
func TestAcceptDeployOfUnreleasedVersionRefused(t *testing.T) {
	e := newDeployEnv(t)
	e.OnActivity(deployActs.Resolve, mock.Anything, mock.Anything).Return(activities.ResolveDeployOutput{},
		temporal.NewNonRetryableApplicationError("v9.9.9 of demo is not released: no tag v9.9.9 on the remote", apperr.UnknownRelease, nil))
	got := acceptAtStart(t, e.TestWorkflowEnvironment)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v9.9.9", Actor: "bob"})
	if got.Accepted || got.Status != StatusRefused || got.Step != StepResolveRelease || !strings.Contains(got.Reason, "not released") {
		t.Fatalf("acceptance = %+v", *got)
	}
}

func TestAcceptDeployRefusedOutsideOwnerTeam(t *testing.T) {
	e := newDeployEnv(t)
	e.okResolve()
	got := acceptAtStart(t, e.TestWorkflowEnvironment)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "mallory"})
	if got.Accepted || got.Status != StatusRefused || got.Step != StepAccess || !strings.Contains(got.Reason, "owned by team developers") {
		t.Fatalf("acceptance = %+v", *got)
	}
}

// Accepted as soon as authorized: the answer does not wait for the fabric's queue.
func TestAcceptDeployBeforeQueue(t *testing.T) {
	e := newDeployEnv(t)
	e.grantOnEnqueue = false
	e.okResolve()
	got := acceptAtStart(t, e.TestWorkflowEnvironment)
	var at DeployState
	e.RegisterDelayedCallback(func() { at = e.query(); e.CancelWorkflow() }, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	if !got.Accepted || at.Status != StatusQueued {
		t.Fatalf("acceptance = %+v while the deployment was %s", *got, at.Status)
	}
}

func TestAcceptPromotionOfUnreleasedRefused(t *testing.T) {
	e := newPromoteEnv(t, stages(), ReleaseState{Progress: Progress{Status: StatusDeleted}})
	got := acceptAtStart(t, e.TestWorkflowEnvironment)
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})
	if got.Accepted || got.Status != StatusRefused || !strings.Contains(got.Reason, "its release is deleted") {
		t.Fatalf("acceptance = %+v", *got)
	}
}

func TestAcceptPromotionAccepted(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	got := acceptAtStart(t, e.TestWorkflowEnvironment)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, time.Hour)
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})
	if !got.Accepted {
		t.Fatalf("acceptance = %+v", *got)
	}
}
