package workflows

import (
	"encoding/json"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shipline/shipline/activities"
)

// oldNotifyHistory is a Notify to team and leads whose first workflow task
// scheduled one delivery activity per target, with these activity IDs and no
// version marker (the shape before ChangeNotifyTargetIDs).
func oldNotifyHistory(t *testing.T, activityIDs ...string) *historypb.History {
	in, _ := json.Marshal(NotifyInput{Event: activities.NotifyEvent{Event: "promoted", Project: "demo"}, Targets: []string{"team", "leads"}})
	now := timestamppb.New(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	tq := &taskqueuepb.TaskQueue{Name: "shipline", Kind: enumspb.TASK_QUEUE_KIND_NORMAL}
	ev := []*historypb.HistoryEvent{
		{EventId: 1, EventTime: now, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			WorkflowType: &commonpb.WorkflowType{Name: NotifyWorkflow}, TaskQueue: tq,
			Input:              &commonpb.Payloads{Payloads: []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: in}}},
			WorkflowRunTimeout: durationpb.New(0), WorkflowTaskTimeout: durationpb.New(10 * time.Second),
			OriginalExecutionRunId: "run1", FirstExecutionRunId: "run1", Attempt: 1,
		}}},
		{EventId: 2, EventTime: now, EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, Attributes: &historypb.HistoryEvent_WorkflowTaskScheduledEventAttributes{WorkflowTaskScheduledEventAttributes: &historypb.WorkflowTaskScheduledEventAttributes{TaskQueue: tq, StartToCloseTimeout: durationpb.New(10 * time.Second), Attempt: 1}}},
		{EventId: 3, EventTime: now, EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, Attributes: &historypb.HistoryEvent_WorkflowTaskStartedEventAttributes{WorkflowTaskStartedEventAttributes: &historypb.WorkflowTaskStartedEventAttributes{ScheduledEventId: 2}}},
		{EventId: 4, EventTime: now, EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, Attributes: &historypb.HistoryEvent_WorkflowTaskCompletedEventAttributes{WorkflowTaskCompletedEventAttributes: &historypb.WorkflowTaskCompletedEventAttributes{ScheduledEventId: 2, StartedEventId: 3}}},
	}
	for i, id := range activityIDs {
		ev = append(ev, &historypb.HistoryEvent{EventId: int64(5 + i), EventTime: now, EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, Attributes: &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
			ActivityId: id, ActivityType: &commonpb.ActivityType{Name: "Send"}, TaskQueue: tq, WorkflowTaskCompletedEventId: 4,
			ScheduleToCloseTimeout: durationpb.New(time.Hour), StartToCloseTimeout: durationpb.New(time.Minute),
		}}})
	}
	return &historypb.History{Events: ev}
}

// A Notify started before ChangeNotifyTargetIDs replays on this code: its
// deliveries keep the SDK's own activity IDs. Named IDs without the version
// marker do not replay: the guard is what keeps such runs going.
func TestNotifyBeforeTargetIDsReplays(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(Notify, workflow.RegisterOptions{Name: NotifyWorkflow})
	if err := r.ReplayWorkflowHistory(nil, oldNotifyHistory(t, "5", "6")); err != nil {
		t.Errorf("a Notify of the shape before named deliveries does not replay: %v", err)
	}
	if err := r.ReplayWorkflowHistory(nil, oldNotifyHistory(t, NotifyActivityID("team"), NotifyActivityID("leads"))); err == nil {
		t.Error("named delivery IDs without the version marker replayed: the check cannot tell the shapes apart")
	}
}
