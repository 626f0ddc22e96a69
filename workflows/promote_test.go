package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/signing"
)

func owners(team string, members ...string) activities.FabricInfo {
	return activities.FabricInfo{Kind: "databricks", Owner: team, Members: members}
}

// stages is DESIGN.md's dev → qa → prod.
func stages() activities.PromotionSettings {
	dev := []string{"alice", "bob"}
	prod := []string{"carol", "dave", "erin"}
	return activities.PromotionSettings{Stages: []activities.StageSettings{
		{Name: "dev", Fabrics: []string{"dev"}, Owners: map[string]activities.FabricInfo{"dev": owners("developers", dev...)}},
		{Name: "qa", Fabrics: []string{"qa"}, Team: "developers", Members: dev, Required: 1, SelfApproval: true,
			Owners: map[string]activities.FabricInfo{"qa": owners("developers", dev...)}},
		{Name: "prod", Fabrics: []string{"prod"}, Team: "prod_support", Members: prod, Required: 2, SelfApproval: false,
			Timeout: 72 * time.Hour, Soak: time.Hour, Owners: map[string]activities.FabricInfo{"prod": owners("prod_support", prod...)}},
	}}
}

type promoteEnv struct {
	*testsuite.TestWorkflowEnvironment
	t       *testing.T
	deploys []DeployInput
	links   []LinkRequest
	// verified are the stages the promotion recorded as verified on the release.
	verified []VerifiedRequest
	// run plays the Run workflow a verification starts.
	run    func(workflow.Context, RunInput) (RunOutcome, error)
	policy signing.Policy
	audit  *projectAudit
	// plans plays the plans of gated stages (promote_plan_test.go).
	plans *planPlayer
	votes int
	// deployHook, when set, plays how a stage's deployment ends (nil: it
	// succeeds); deployIDs are the deployments' workflow IDs.
	deployHook func(workflow.Context, DeployInput) error
	deployIDs  []string
}

func newPromoteEnv(t *testing.T, settings activities.PromotionSettings, rel ReleaseState) *promoteEnv {
	var s testsuite.WorkflowTestSuite
	e := &promoteEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment(), t: t}
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: PromoteID("demo", "v1.2.0")})
	e.RegisterWorkflowWithOptions(Promote, workflow.RegisterOptions{Name: PromoteWorkflow})
	e.RegisterWorkflowWithOptions(Deploy, workflow.RegisterOptions{Name: DeployWorkflow})
	e.RegisterWorkflowWithOptions(Rollback, workflow.RegisterOptions{Name: RollbackWorkflow})
	e.RegisterWorkflowWithOptions(Verify, workflow.RegisterOptions{Name: VerifyWorkflow})
	e.RegisterWorkflowWithOptions(Notify, workflow.RegisterOptions{Name: NotifyWorkflow}) // notify_test.go
	// A stage's verification runs its jobs as child Run workflows; tests that
	// verify set e.run (verify_test.go).
	e.RegisterWorkflowWithOptions(func(ctx workflow.Context, in RunInput) (RunOutcome, error) {
		if e.run == nil {
			t.Errorf("unexpected verification run of %s on %s", in.Job, in.Fabric)
			return RunOutcome{}, errors.New("no runs in this test")
		}
		return e.run(ctx, in)
	}, workflow.RegisterOptions{Name: RunWorkflow})
	e.RegisterActivity(&activities.Config{})
	e.RegisterActivity(&activities.Messages{})
	e.audit = installProjectAudit(e.TestWorkflowEnvironment)
	e.installPlans()
	e.OnActivity(configActs.Promotion, mock.Anything, mock.Anything).Return(settings, nil)
	e.OnActivity(configActs.Signatures, mock.Anything).Return(func(context.Context) (signing.Policy, error) { return e.policy, nil })
	// Stage entities: what promotions recorded, holds included.
	e.OnActivity(messageActs.Query, mock.Anything, mock.MatchedBy(func(in activities.QueryInput) bool { return strings.HasPrefix(in.WorkflowID, "stage/") })).
		Return(func(_ context.Context, in activities.QueryInput) (activities.QueryOutput, error) {
			raw, err := json.Marshal(e.audit.stage(in.WorkflowID).state)
			return activities.QueryOutput{Result: raw}, err
		}).Maybe()
	relJSON, _ := json.Marshal(rel)
	e.OnActivity(messageActs.Query, mock.Anything, activities.QueryInput{WorkflowID: ReleaseID("demo", "v1.2.0"), Query: StateQuery}).
		Return(activities.QueryOutput{Result: relJSON}, nil)
	e.OnActivity(messageActs.Update, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UpdateInput) (activities.UpdateOutput, error) {
		switch in.Update {
		case LinkUpdate:
			var l LinkRequest
			_ = json.Unmarshal(in.Arg, &l)
			e.links = append(e.links, l)
		case VerifiedUpdate:
			var v VerifiedRequest
			_ = json.Unmarshal(in.Arg, &v)
			e.verified = append(e.verified, v)
		}
		return activities.UpdateOutput{}, nil
	})
	e.OnWorkflow(DeployWorkflow, mock.Anything, mock.Anything).Return(func(ctx workflow.Context, in DeployInput) (DeployState, error) {
		e.deploys = append(e.deploys, in)
		e.deployIDs = append(e.deployIDs, workflow.GetInfo(ctx).WorkflowExecution.ID)
		if e.deployHook != nil {
			if err := e.deployHook(ctx, in); err != nil {
				return DeployState{}, err
			}
		}
		return DeployState{Progress: Progress{Status: StatusSucceeded, Summary: "deployed to " + in.Stage},
			Builds: map[string]PipelineBuild{"ingest": {SHA256: "sha-ingest"}}}, nil
	})
	return e
}

func released() ReleaseState {
	return ReleaseState{Progress: Progress{Status: StatusReleased}, Actor: "alice"}
}

// vote sends an approve/reject at a delay, naming the plan the stage's gate
// shows then, as the CLI does (planHash); want is "" for accepted, else a
// fragment of the refusal.
func (e *promoteEnv) vote(at time.Duration, update string, v Vote, want string) {
	e.votes++
	id := fmt.Sprintf("%s-%s-%s-%v-%d", update, v.Actor, v.Stage, at, e.votes)
	e.RegisterDelayedCallback(func() {
		v := v
		v.PlanHash = e.planHash(v)
		e.UpdateWorkflow(update, id, &testsuite.TestUpdateCallback{
			// A refusal is the update's recorded outcome (not a validator's).
			OnReject: func(err error) { e.t.Errorf("%s by %s on %s rejected unrecorded: %v", update, v.Actor, v.Stage, err) },
			OnAccept: func() {},
			OnComplete: func(_ any, err error) {
				switch {
				case err != nil && (want == "" || !strings.Contains(err.Error(), want)):
					e.t.Errorf("%s by %s on %s refused: %v (want %q)", update, v.Actor, v.Stage, err, want)
				case err == nil && want != "":
					e.t.Errorf("%s by %s on %s accepted, want refusal %q", update, v.Actor, v.Stage, want)
				}
			},
		}, v)
	}, at)
}

func (e *promoteEnv) state() PromoteState {
	v, err := e.QueryWorkflow(StateQuery)
	if err != nil {
		e.t.Fatal(err)
	}
	var s PromoteState
	if err := v.Get(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func TestPromoteThroughStagesWithApprovals(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "carol"}, "stage prod is not waiting for approval")
	e.vote(2*time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "carol"}, "only members of developers")
	e.vote(3*time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	e.vote(4*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "carol", Comment: "LGTM"}, "")
	e.vote(5*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "carol"}, "carol already approved prod")
	e.vote(6*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "alice"}, "only members of prod_support")
	e.vote(7*time.Minute, RejectUpdate, Vote{Stage: "prod", Actor: "dave"}, "a rejection needs a reason")
	var pending string
	e.RegisterDelayedCallback(func() { pending = e.state().Pending }, 8*time.Minute)
	e.vote(9*time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "dave"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})

	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusPromoted || len(e.deploys) != 3 {
		t.Fatalf("status %s, deploys %+v", s.Status, e.deploys)
	}
	who := []string{e.deploys[0].Actor, e.deploys[1].Actor, e.deploys[2].Actor}
	if strings.Join(who, ",") != "alice,bob,carol" {
		t.Fatalf("deployers = %v, want the requester for dev, then the first approver of each stage", who)
	}
	if e.deploys[2].Expect["ingest"] != "sha-ingest" || e.deploys[1].Expect["ingest"] != "sha-ingest" {
		t.Fatalf("later stages must pin dev's artifacts: %+v", e.deploys)
	}
	if len(e.links) != 2 || e.links[0].Stage != "qa" || e.links[1].Stage != "prod" {
		t.Fatalf("links = %+v, want qa and prod", e.links)
	}
	want := "prod: 1 of 2 approvals from prod_support (carol approved"
	if !strings.HasPrefix(pending, want) || !strings.Contains(pending, "dave, erin may approve; expires ") {
		t.Fatalf("pending = %q", pending)
	}
	prod := s.Stages[2]
	if prod.DeployedAt.Sub(s.Stages[1].DeployedAt) < time.Hour {
		t.Fatalf("prod deployed %v after qa, want at least the 1h soak", prod.DeployedAt.Sub(s.Stages[1].DeployedAt))
	}
}

func TestPromoteRejectEnds(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	e.vote(time.Minute, RejectUpdate, Vote{Stage: "qa", Actor: "bob", Comment: "row counts look wrong"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusRejected || s.Stages[1].Status != StageRejected || len(e.deploys) != 1 || !strings.Contains(s.Summary, "row counts look wrong") {
		t.Fatalf("state %+v deploys %d", s, len(e.deploys))
	}
}

func TestPromoteGateExpires(t *testing.T) {
	rel := released()
	rel.Fabrics = map[string]FabricReach{"dev": {At: time.Now()}, "qa": {At: time.Now()}} // dev and qa reached earlier
	rel.Stages = []string{"qa"}
	e := newPromoteEnv(t, stages(), rel)
	e.vote(time.Hour, ApproveUpdate, Vote{Stage: "prod", Actor: "carol"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "bob"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusExpired || s.Stages[2].Status != StageExpired || len(e.deploys) != 0 {
		t.Fatalf("state %+v", s)
	}
	if s.Stages[0].Status != StageReached || s.Stages[1].Status != StageReached || !strings.Contains(s.Summary, "to reopen it") {
		t.Fatalf("stages %+v summary %q", s.Stages, s.Summary)
	}
}

// An approver who is not in the owner team of the stage's fabrics cannot deploy there.
func TestPromoteOwnerTeamEnforced(t *testing.T) {
	st := stages()
	st.Stages[1].Team, st.Stages[1].Members = "reviewers", []string{"rita"}
	e := newPromoteEnv(t, st, released())
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "rita"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})
	err := e.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "nobody among rita may deploy to qa") || len(e.deploys) != 1 || len(e.links) != 0 {
		t.Fatalf("err %v, deploys %d, links %d", err, len(e.deploys), len(e.links))
	}
}

func TestPromoteRefusesUnreleased(t *testing.T) {
	e := newPromoteEnv(t, stages(), ReleaseState{Progress: Progress{Status: StatusDeleted}})
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})
	if err := e.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "its release is deleted") {
		t.Fatalf("err = %v", err)
	}
}

func TestPromoteStopsAtTarget(t *testing.T) {
	e := newPromoteEnv(t, stages(), released())
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "alice"}, "") // self-approval allowed on qa
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})
	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusPromoted || s.Stages[2].Status != StagePending || len(e.deploys) != 2 {
		t.Fatalf("state %+v", s)
	}
}

// A service identity (users.<name>.service, e.g. CI's key) in the approval
// team may request the promotion, but its approvals and rejections are refused
// by the workflow — recorded and audited — and never count: the gate waits for
// a person, who is also the one the stage deploys as.
func TestPromoteServiceIdentityNeverVotes(t *testing.T) {
	st := stages()
	dev := []string{"alice", "bob", "ci"}
	for i := range st.Stages[:2] {
		st.Stages[i].Owners = map[string]activities.FabricInfo{st.Stages[i].Fabrics[0]: owners("developers", dev...)}
	}
	st.Stages[1].Members, st.Stages[1].Services = dev, []string{"ci"}
	e := newPromoteEnv(t, st, released())
	const refusal = "ci may not vote on qa: ci is a service identity"
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "ci"}, refusal)
	e.vote(2*time.Minute, RejectUpdate, Vote{Stage: "qa", Actor: "ci", Comment: "pipeline red"}, refusal)
	var pending string
	e.RegisterDelayedCallback(func() { pending = e.state().Pending }, 3*time.Minute)
	e.vote(4*time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "ci", To: "qa"})

	var s PromoteState
	if err := e.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusPromoted || len(e.deploys) != 2 {
		t.Fatalf("status %s, deploys %d", s.Status, len(e.deploys))
	}
	if got := e.deploys[1].Actor; got != "bob" {
		t.Errorf("qa deployed as %s, want bob (the only approval that counts)", got)
	}
	if qa := s.Stages[1]; len(qa.Approvals) != 1 || qa.Approvals[0].Actor != "bob" || qa.Rejection != nil {
		t.Errorf("qa votes = %+v, rejection %+v; want bob's approval only", qa.Approvals, qa.Rejection)
	}
	if !strings.HasPrefix(pending, "qa: 0 of 1 approvals from developers; alice, bob may approve") {
		t.Errorf("pending = %q: a service identity is never listed as someone who may approve", pending)
	}
	var audited int
	for _, r := range e.audit.refusals() {
		if r.Actor == "ci" && r.Stage == "qa" && strings.Contains(r.Reason, refusal) {
			audited++
		}
	}
	if audited != 2 {
		t.Errorf("%d of ci's 2 refused votes audited: %+v", audited, e.audit.refusals())
	}
}
