package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"github.com/shipline/shipline/workflows"
)

// recordRefusal signals-with-start the project's Audit entity; a failure is a
// warning on stderr only (the caller still reports the refusal itself).
func TestRecordRefusal(t *testing.T) {
	var stderr bytes.Buffer
	g := &globals{taskQueue: "q", stderr: &stderr}
	c := &mocks.Client{}
	ref := workflows.Refusal{Actor: "mallory", Action: workflows.ApproveUpdate, Target: workflows.PromoteID("demo", "v1.0.0"), Stage: "prod", Reason: "not in team"}
	c.On("SignalWithStartWorkflow", mock.Anything, workflows.AuditID("demo"), workflows.RefusalSignal,
		mock.MatchedBy(func(r workflows.Refusal) bool { return r.Actor == "mallory" && r.Stage == "prod" && !r.At.IsZero() }),
		mock.MatchedBy(func(o client.StartWorkflowOptions) bool {
			p, ok := o.TypedSearchAttributes.GetKeyword(workflows.ProjectKey)
			return o.ID == workflows.AuditID("demo") && o.TaskQueue == "q" && ok && p == "demo"
		}),
		workflows.AuditWorkflow, workflows.AuditInput{Project: "demo"},
	).Return(nil, nil).Once()
	recordRefusal(context.Background(), g, c, "demo", ref)
	c.AssertExpectations(t)
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q", stderr.String())
	}

	c = &mocks.Client{}
	c.On("SignalWithStartWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(nil, errors.New("unavailable")).Once()
	recordRefusal(context.Background(), g, c, "demo", ref)
	if !strings.Contains(stderr.String(), "could not record the refusal in audit/demo: unavailable") {
		t.Errorf("stderr = %q", stderr.String())
	}
}
