package test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/shipline/shipline/workflows"
)

// startLikeUI starts a Release with the raw StartWorkflowExecution request the
// Temporal UI's "Start Workflow" sends: type, task queue and one JSON payload.
// It then waits for the release and checks the search attributes and details.
func startLikeUI(t *testing.T, s *stack, id, input string) {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.address, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if !json.Valid([]byte(input)) {
		t.Fatalf("bad test input %s", input)
	}
	_, err = c.WorkflowService().StartWorkflowExecution(ctx, &workflowservice.StartWorkflowExecutionRequest{
		Namespace:    "default",
		WorkflowId:   id,
		WorkflowType: &commonpb.WorkflowType{Name: workflows.ReleaseWorkflow},
		TaskQueue:    &taskqueuepb.TaskQueue{Name: s.cfg.Temporal.TaskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		Input: &commonpb.Payloads{Payloads: []*commonpb.Payload{{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingJSON)},
			Data:     []byte(input),
		}}},
		RequestId: id,
	})
	if err != nil {
		t.Fatalf("start like the UI: %v", err)
	}
	code, out, _ := s.shipline("status", id)
	for i := 0; i < 100 && !strings.Contains(out, "released"); i++ {
		sleep100ms()
		code, out, _ = s.shipline("status", id)
	}
	if code != 0 || !strings.Contains(out, "released") {
		t.Fatalf("release started from the UI did not complete:\n%s", out)
	}
	desc, err := c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	sa := desc.TypedSearchAttributes
	for key, want := range map[string]string{"ShiplineProject": "demo", "ShiplineVersion": "v1.2.0", "ShiplineActor": "alice"} {
		var got string
		for k, v := range sa.GetUntypedValues() {
			if k.GetName() == key {
				got, _ = v.(string)
			}
		}
		if got != want {
			t.Errorf("search attribute %s = %q, want %q", key, got, want)
		}
	}
	// The UI shows the workflow's current details from the built-in metadata query.
	v, err := c.QueryWorkflow(ctx, id, "", "__temporal_workflow_metadata")
	if err != nil {
		t.Fatalf("metadata query: %v", err)
	}
	var meta sdkpb.WorkflowMetadata
	if err := v.Get(&meta); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(meta.GetCurrentDetails(), "released v1.2.0 of demo") {
		t.Errorf("current details = %q", meta.GetCurrentDetails())
	}
	if !strings.Contains(out, "released v1.2.0 of demo") {
		t.Errorf("status summary: %s", out)
	}
}
