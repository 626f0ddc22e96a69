package test

import (
	"context"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

// assertNoSecretsInHistory scans every event of every workflow history in the
// namespace (all runs) for the given secret values.
func assertNoSecretsInHistory(t *testing.T, s *stack, secrets ...string) {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.address})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var token []byte
	workflowsScanned, events := 0, 0
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{NextPageToken: token, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range resp.Executions {
			workflowsScanned++
			it := c.GetWorkflowHistory(ctx, ex.Execution.WorkflowId, ex.Execution.RunId, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					t.Fatal(err)
				}
				events++
				data, _ := protojson.Marshal(ev)
				for _, secret := range secrets {
					if strings.Contains(string(data), secret) {
						t.Errorf("secret found in history of %s (event %d %s)", ex.Execution.WorkflowId, ev.EventId, ev.EventType)
					}
				}
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	if workflowsScanned < 5 || events < 100 {
		t.Fatalf("scanned only %d workflows / %d events", workflowsScanned, events)
	}
	t.Logf("no secret in %d events of %d workflow runs", events, workflowsScanned)
}
