package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/signing"
)

// The fuzz targets decode random JSON into each workflow input, as anyone who
// reaches the namespace can send it, and check what no input may do: panic,
// make a direct start believe carried state, slip a Shipline trailer into a
// tag, or change what a signature covers through carried fields.

// carriedSeeds are inputs a person could copy from a history and edit.
var carriedSeeds = []string{
	`{}`,
	`{"project":"demo","version":"v1.0.0","actor":"alice"}`,
	`{"project":"demo","version":"v1.0.0","actor":"mallory","carried":{"status":"released","admins":["mallory"],"linked":true}}`,
	`{"project":"demo","version":"v1.0.0","actor":"mallory","carried_policy":{"require":false}}`,
	`{"project":"demo","version":"v1.2.0","actor":"mallory","to":"prod","carried":{"stages":[{"name":"prod","status":"deployed"}]},"carried_settings":{"stages":[]}}`,
	`{"project":"demo","fabric":"prod","carried":{"jobs":{"daily":{"job":"daily","version":"v9.9.9","actor":"dave"}},"queue":[{"deployment_id":"x"}]}}`,
	`{"project":"demo","carried":[{"actor":"dave","action":"delete","reason":"deleted v1.0.0"}]}`,
	`{"project":"demo","version":"v1.0.0","actor":"alice","message":"fix\n\nShipline-Release: release/demo/v9.9.9"}`,
	`{"carried":null,"carried_policy":null,"carried_settings":{}}`,
	`{"project":"../x","version":"v1.0.0\u2028","actor":"","carried":{"requests":["a","a"]}}`,
}

// decode reads an input as the worker receives it: decoded from the JSON a
// client sent, after the SDK encoded it (an empty "carried" list, for one, does
// not survive that and carries nothing).
func decode[T any](data []byte, in *T) bool {
	if json.Unmarshal(data, in) != nil {
		return false
	}
	sent, err := json.Marshal(in)
	if err != nil {
		return false
	}
	var got T
	if json.Unmarshal(sent, &got) != nil {
		return false
	}
	*in = got
	return true
}

func addSeeds(f *testing.F) {
	for _, s := range carriedSeeds {
		f.Add([]byte(s))
	}
}

// quietEnv is a workflow test environment that logs nothing and answers the
// audit activity (recording what it was sent).
func quietEnv(id string, audited *[]activities.SignalWithStartInput) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
	env.RegisterActivity(&activities.Messages{})
	env.OnActivity(messageActs.SignalWithStart, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignalWithStartInput) error {
			*audited = append(*audited, in)
			return nil
		})
	return env
}

// auditsTo is how many audit records a refusal on id makes: one, unless no
// project is named anywhere (there is no audit to write to).
func auditsTo(id, project string) int {
	if projectOfID(id) == "" && project == "" {
		return 0
	}
	return 1
}

// refusedCarry fails the test unless a direct start carrying state ended as a
// refusal (its own history is the audit record, so it signals no audit).
func refusedCarry(t *testing.T, err error, audited []activities.SignalWithStartInput) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != apperr.CarriedStateRefused {
		t.Fatalf("a direct start with carried state ended with %v, want %s", err, apperr.CarriedStateRefused)
	}
	if len(audited) != 0 {
		t.Fatalf("audit records = %d, want none", len(audited))
	}
}

// checkCarryRule checks the pure rule on a decoded input: refused when started
// directly, accepted when continued as new.
func checkCarryRule(t *testing.T, carries bool, id string) {
	t.Helper()
	if !carries {
		return
	}
	if checkCarried(runOrigin{WorkflowID: id, Attempt: 1}) == nil {
		t.Fatal("a direct start was allowed to carry state")
	}
	if err := checkCarried(runOrigin{WorkflowID: id, ContinuedFrom: "r", Attempt: 1}); err != nil {
		t.Fatalf("a continued run was refused: %v", err)
	}
}

// checkSigned checks a signature covers the same bytes with or without carried fields.
func checkSigned(t *testing.T, with, without any) {
	t.Helper()
	a, errA := signing.Canonical(SignedArgs(with))
	b, errB := signing.Canonical(SignedArgs(without))
	if (errA == nil) != (errB == nil) || string(a) != string(b) {
		t.Fatalf("carried fields change what is signed: %s vs %s (%v, %v)", a, b, errA, errB)
	}
}

func FuzzReleaseInput(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var in ReleaseInput
		if !decode(data, &in) {
			return
		}
		id := ReleaseID(in.Project, in.Version)
		checkCarryRule(t, in.carries(), id)
		bare := in
		bare.Carried, bare.CarriedPolicy = nil, nil
		checkSigned(t, in, bare)
		if (&release{in: in}).checkInput() == nil {
			msg := in.Message
			if msg == "" {
				msg = DefaultTagMessage(in.Project, in.Version)
			}
			tag := TagMessage(msg, in.Project, in.Version)
			n := 0
			for _, line := range messageLines(tag) {
				if trailerLine.MatchString(line) {
					n++
				}
			}
			if n != 1 || !IsShiplineTag(strings.TrimRight(tag, "\n"), in.Project, in.Version) {
				t.Fatalf("accepted message %q makes tag %q with %d trailer lines", in.Message, tag, n)
			}
		}
		if !in.carries() {
			return
		}
		var audited []activities.SignalWithStartInput
		env := quietEnv(id, &audited)
		env.RegisterWorkflow(Release)
		env.ExecuteWorkflow(Release, in)
		refusedCarry(t, env.GetWorkflowError(), audited)
	})
}

func FuzzPromoteInput(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var in PromoteInput
		if !decode(data, &in) {
			return
		}
		id := PromoteID(in.Project, in.Version)
		checkCarryRule(t, in.carries(), id)
		bare := in
		bare.Carried, bare.CarriedSettings, bare.CarriedPolicy = nil, nil, nil
		checkSigned(t, in, bare)
		_ = (&promotion{in: in}).checkInput()
		if !in.carries() {
			return
		}
		var audited []activities.SignalWithStartInput
		env := quietEnv(id, &audited)
		env.RegisterWorkflowWithOptions(Promote, workflow.RegisterOptions{Name: PromoteWorkflow})
		env.ExecuteWorkflow(PromoteWorkflow, in)
		refusedCarry(t, env.GetWorkflowError(), audited)
	})
}

func FuzzFabricInput(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var in FabricInput
		if !decode(data, &in) {
			return
		}
		id := FabricID(in.Project, in.Fabric)
		checkCarryRule(t, in.carries(), id)
		if !in.carries() {
			return
		}
		var audited []activities.SignalWithStartInput
		env := quietEnv(id, &audited)
		env.RegisterWorkflow(Fabric)
		var state FabricState
		env.RegisterDelayedCallback(func() {
			if v, err := env.QueryWorkflow(StateQuery); err == nil {
				_ = v.Get(&state)
			}
			env.CancelWorkflow()
		}, time.Minute)
		env.ExecuteWorkflow(Fabric, in)
		if len(state.Jobs) != 0 || len(state.Queue) != 0 || len(state.History) != 0 || len(audited) != auditsTo(id, in.Project) {
			t.Fatalf("a direct start kept carried fabric state %+v (audit records %d)", state, len(audited))
		}
	})
}

func FuzzAuditInput(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var in AuditInput
		if !decode(data, &in) {
			return
		}
		id := AuditID(in.Project)
		checkCarryRule(t, in.carries(), id)
		if !in.carries() {
			return
		}
		var audited []activities.SignalWithStartInput
		env := quietEnv(id, &audited)
		env.RegisterWorkflowWithOptions(Audit, workflow.RegisterOptions{Name: AuditWorkflow})
		kept := []Refusal{{Reason: "query not answered"}}
		env.RegisterDelayedCallback(func() {
			if v, err := env.QueryWorkflow(StateQuery); err == nil {
				_ = v.Get(&kept)
			}
			env.CancelWorkflow()
		}, time.Minute)
		env.ExecuteWorkflow(AuditWorkflow, in)
		if len(kept) != 0 || len(audited) != auditsTo(id, in.Project) {
			t.Fatalf("a direct start kept carried audit entries %+v (audit records %d)", kept, len(audited))
		}
	})
}
