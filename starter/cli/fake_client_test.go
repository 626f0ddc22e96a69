package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shipline/shipline/internal/codec"
	"github.com/shipline/shipline/workflows"
)

// The CLI's tests render from fixed states through fakeClient, a Temporal
// client that plays scripted workflows: no server, no worker, no clock.

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// t0 is the fixed start of every fake workflow.
var t0 = time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC)

// fakeWF is one scripted workflow.
type fakeWF struct {
	typ    string
	queue  string
	status enumspb.WorkflowExecutionStatus
	// states answer StateQuery in turn; the last one repeats.
	states []any
	asked  int
	// accept answers AcceptUpdate when the workflow is started with it.
	accept workflows.Acceptance
	// acceptErr is how a worker that does not know AcceptUpdate answers it.
	acceptErr error
	// acceptHang: the answer does not come (a step before authorize runs long).
	acceptHang bool
	// updates answer other updates by name: a result, or an error (a refusal).
	updates map[string]any
	// after moves the workflow on once an update of that name was accepted.
	after map[string][]any
	// neverRan: no worker ever completed a task of it.
	neverRan bool
	// failure is the close failure of a failed workflow.
	failure string
	// history, when set, is the workflow's full history (as audit reads it).
	history []*historypb.HistoryEvent
	// updateArgs are the arguments of the updates sent to it, in order.
	updateArgs []any
	// pending are its pending activities (DescribeWorkflowExecution).
	pending []*workflowpb.PendingActivityInfo
	// result is what a completed workflow returned (GetWorkflow).
	result any
}

// fakeClient embeds client.Client (nil): a call the tests did not script panics.
type fakeClient struct {
	client.Client
	mu      sync.Mutex
	wfs     map[string]*fakeWF
	onStart map[string]*fakeWF // by workflow type: what a start creates
	pollers map[string]int     // task queue → pollers (absent: 1)
	// encrypting marks the pollers' identities as a worker's that encrypts payloads.
	encrypting bool
	calls      []string         // mutating calls, in order
	reads      map[string]any   // answers of the project entity's read updates, by update name
	readArgs   map[string][]any // the arguments of the reads sent, by update name
	// listed answers ListWorkflow by the workflow type its query names.
	listed map[string][]*workflowpb.WorkflowExecutionInfo
}

func newFake() *fakeClient {
	return &fakeClient{wfs: map[string]*fakeWF{}, onStart: map[string]*fakeWF{}, pollers: map[string]int{}, reads: map[string]any{},
		readArgs: map[string][]any{}, listed: map[string][]*workflowpb.WorkflowExecutionInfo{}}
}

func (f *fakeClient) add(id string, w *fakeWF) *fakeWF {
	if w.status == 0 {
		w.status = enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	}
	if w.queue == "" {
		w.queue = workflows.DefaultTaskQueue
	}
	f.wfs[id] = w
	return w
}

func (f *fakeClient) wf(id string) (*fakeWF, error) {
	w, ok := f.wfs[id]
	if !ok {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + id)
	}
	return w, nil
}

func (f *fakeClient) Close() {}

// listedType is the workflow type a visibility query names.
var listedType = regexp.MustCompile(`WorkflowType = '([^']+)'`)

func (f *fakeClient) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := listedType.FindStringSubmatch(req.Query)
	if m != nil {
		return &workflowservice.ListWorkflowExecutionsResponse{Executions: f.listed[m[1]]}, nil
	}
	// A query of every type (audit): all rows, types in name order.
	var all []*workflowpb.WorkflowExecutionInfo
	for _, typ := range sortedKeys(f.listed) {
		all = append(all, f.listed[typ]...)
	}
	return &workflowservice.ListWorkflowExecutionsResponse{Executions: all}, nil
}

// listExec is a visibility row of a workflow of type typ: closed unless
// status is running, with its memo and search attributes.
func (f *fakeClient) listExec(typ, id string, status enumspb.WorkflowExecutionStatus, start time.Time, memo, attrs map[string]any) {
	dc := converter.GetDefaultDataConverter()
	ex := &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: "run-1"},
		Type: &commonpb.WorkflowType{Name: typ}, Status: status, StartTime: timestamppb.New(start),
		Memo: &commonpb.Memo{Fields: map[string]*commonpb.Payload{}}, SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{}}}
	if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		ex.CloseTime = timestamppb.New(start.Add(5 * time.Minute))
	}
	for k, v := range memo {
		ex.Memo.Fields[k], _ = dc.ToPayload(v)
	}
	for k, v := range attrs {
		ex.SearchAttributes.IndexedFields[k], _ = dc.ToPayload(v)
	}
	f.listed[typ] = append(f.listed[typ], ex)
}

func (f *fakeClient) DescribeTaskQueue(_ context.Context, q string, _ enumspb.TaskQueueType) (*workflowservice.DescribeTaskQueueResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.pollers[q]
	if !ok {
		n = 1
	}
	resp := &workflowservice.DescribeTaskQueueResponse{}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("worker-%d", i)
		if f.encrypting {
			id += " " + codec.WorkerMark
		}
		resp.Pollers = append(resp.Pollers, &taskqueuepb.PollerInfo{Identity: id})
	}
	return resp, nil
}

func (f *fakeClient) DescribeWorkflow(_ context.Context, id, _ string) (*client.WorkflowExecutionDescription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, err := f.wf(id)
	if err != nil {
		return nil, err
	}
	d := &client.WorkflowExecutionDescription{WorkflowExecutionMetadata: client.WorkflowExecutionMetadata{
		WorkflowExecution: workflow.Execution{ID: id, RunID: "run-1"}, WorkflowType: workflow.Type{Name: w.typ},
		TaskQueueName: w.queue, Status: w.status, WorkflowStartTime: t0,
	}}
	if w.status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		closed := t0.Add(5 * time.Minute)
		d.WorkflowCloseTime = &closed
	}
	return d, nil
}

func (f *fakeClient) DescribeWorkflowExecution(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, err := f.wf(id)
	if err != nil {
		return nil, err
	}
	resp := &workflowservice.DescribeWorkflowExecutionResponse{
		ExecutionConfig:       &workflowpb.WorkflowExecutionConfig{TaskQueue: &taskqueuepb.TaskQueue{Name: w.queue}},
		WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Status: w.status},
	}
	if w.neverRan {
		resp.PendingWorkflowTask = &workflowpb.PendingWorkflowTaskInfo{State: enumspb.PENDING_WORKFLOW_TASK_STATE_SCHEDULED, ScheduledTime: timestamppb.New(t0)}
	}
	resp.PendingActivities = w.pending
	return resp, nil
}

func (f *fakeClient) GetWorkflow(_ context.Context, id, _ string) client.WorkflowRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	var result any
	if w, err := f.wf(id); err == nil {
		result = w.result
	}
	return fakeRun{id: id, result: result}
}

// fakeValue is a query or update answer.
type fakeValue struct{ v any }

func (v fakeValue) HasValue() bool { return v.v != nil }
func (v fakeValue) Get(ptr any) error {
	if s, ok := v.v.(string); ok && strings.HasPrefix(s, "{") {
		return json.Unmarshal([]byte(s), ptr)
	}
	data, err := json.Marshal(v.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, ptr)
}

func (f *fakeClient) QueryWorkflow(ctx context.Context, id, _ string, query string, _ ...any) (converter.EncodedValue, error) {
	f.mu.Lock()
	w, err := f.wf(id)
	if err == nil && (w.neverRan || len(w.states) == 0) {
		f.mu.Unlock()
		<-ctx.Done() // as a server does: the query waits for a worker
		return nil, ctx.Err()
	}
	defer f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if query != workflows.StateQuery {
		return nil, fmt.Errorf("unexpected query %q", query)
	}
	s := w.states[min(w.asked, len(w.states)-1)]
	w.asked++
	return fakeValue{s}, nil
}

// fakeStartOp is a start operation of update-with-start.
type fakeStartOp struct {
	opts client.StartWorkflowOptions
	typ  string
	args []any
}

func (o *fakeStartOp) Get(context.Context) (client.WorkflowRun, error) {
	return fakeRun{id: o.opts.ID}, nil
}

func (f *fakeClient) NewWithStartWorkflowOperation(opts client.StartWorkflowOptions, wf any, args ...any) client.WithStartWorkflowOperation {
	return &fakeStartOp{opts: opts, typ: fmt.Sprint(wf), args: args}
}

func (f *fakeClient) UpdateWithStartWorkflow(ctx context.Context, o client.UpdateWithStartWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	op := o.StartWorkflowOperation.(*fakeStartOp)
	f.mu.Lock()
	defer f.mu.Unlock()
	id := op.opts.ID
	if op.typ == workflows.ProjectWorkflow {
		res, ok := f.reads[o.UpdateOptions.UpdateName]
		if !ok {
			return nil, fmt.Errorf("unexpected read %q of %s", o.UpdateOptions.UpdateName, id)
		}
		f.readArgs[o.UpdateOptions.UpdateName] = append(f.readArgs[o.UpdateOptions.UpdateName], o.UpdateOptions.Args...)
		return fakeHandle{id: id, v: res}, nil
	}
	if w, ok := f.wfs[id]; ok && w.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return nil, fmt.Errorf("failed workflow start: %w", serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", "run-0"))
	}
	tmpl, ok := f.onStart[op.typ]
	if !ok {
		return nil, fmt.Errorf("unexpected start of %s %s", op.typ, id)
	}
	w := *tmpl
	f.add(id, &w)
	in, _ := json.Marshal(op.args[0])
	f.calls = append(f.calls, fmt.Sprintf("start %s %s on %s: %s", op.typ, id, op.opts.TaskQueue, in))
	return fakeHandle{id: id, v: w.accept, err: w.acceptErr, hang: w.acceptHang}, nil
}

func (f *fakeClient) UpdateWorkflow(_ context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, err := f.wf(o.WorkflowID)
	if err != nil {
		return nil, err
	}
	res, ok := w.updates[o.UpdateName]
	if !ok {
		return nil, fmt.Errorf("unexpected update %q of %s", o.UpdateName, o.WorkflowID)
	}
	f.calls = append(f.calls, fmt.Sprintf("update %s %s", o.UpdateName, o.WorkflowID))
	w.updateArgs = append(w.updateArgs, o.Args...)
	if e, isErr := res.(error); isErr {
		return fakeHandle{id: o.WorkflowID, err: e}, nil
	}
	if next, ok := w.after[o.UpdateName]; ok {
		w.states, w.asked = next, 0
	}
	return fakeHandle{id: o.WorkflowID, v: res}, nil
}

type fakeHandle struct {
	id   string
	v    any
	err  error
	hang bool
}

func (h fakeHandle) WorkflowID() string { return h.id }
func (h fakeHandle) RunID() string      { return "run-1" }
func (h fakeHandle) UpdateID() string   { return "update-1" }
func (h fakeHandle) Get(ctx context.Context, ptr any) error {
	if h.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if h.err != nil {
		return h.err
	}
	return fakeValue{h.v}.Get(ptr)
}

type fakeRun struct {
	id     string
	result any
}

func (r fakeRun) GetID() string                  { return r.id }
func (r fakeRun) GetRunID() string               { return "run-1" }
func (r fakeRun) GetFirstExecutionRunID() string { return "run-1" }
func (r fakeRun) Get(_ context.Context, ptr any) error {
	return fakeValue{r.result}.Get(ptr)
}
func (r fakeRun) GetWithOptions(ctx context.Context, ptr any, _ client.WorkflowRunGetOptions) error {
	return r.Get(ctx, ptr)
}

// fakeHistory serves a workflow's history: a completed workflow task once a
// worker ran it, and its close event.
type fakeHistory struct{ events []*historypb.HistoryEvent }

func (h *fakeHistory) HasNext() bool { return len(h.events) > 0 }
func (h *fakeHistory) Next() (*historypb.HistoryEvent, error) {
	ev := h.events[0]
	h.events = h.events[1:]
	return ev, nil
}

func (f *fakeClient) GetWorkflowHistory(_ context.Context, id, _ string, _ bool, filter enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := &fakeHistory{}
	w, err := f.wf(id)
	if err != nil {
		return h
	}
	if w.history != nil && filter == enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT {
		h.events = append(h.events, w.history...)
		return h
	}
	if filter != enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT && !w.neverRan {
		h.events = append(h.events, &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED})
	}
	if w.failure != "" {
		h.events = append(h.events, &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
			Attributes: &historypb.HistoryEvent_WorkflowExecutionFailedEventAttributes{WorkflowExecutionFailedEventAttributes: &historypb.WorkflowExecutionFailedEventAttributes{}}})
	}
	return h
}

func (f *fakeClient) TerminateWorkflow(_ context.Context, id, _ string, reason string, _ ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, err := f.wf(id)
	if err != nil {
		return err
	}
	w.status = enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED
	f.calls = append(f.calls, fmt.Sprintf("terminate %s: %s", id, reason))
	return nil
}

func (f *fakeClient) CancelWorkflow(_ context.Context, id, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, err := f.wf(id)
	if err != nil {
		return err
	}
	w.status = enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED
	f.calls = append(f.calls, "cancel "+id)
	return nil
}

func (f *fakeClient) SignalWithStartWorkflow(_ context.Context, id, signal string, arg any, _ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, _ := arg.(workflows.Refusal)
	f.calls = append(f.calls, fmt.Sprintf("signal %s %s: %s %s refused: %s", signal, id, r.Actor, r.Action, r.Reason))
	return fakeRun{id: id}, nil
}

// shipline runs the CLI against f as alice, with fixed IDs and UTC times.
func shipline(t *testing.T, f *fakeClient, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("HOME", t.TempDir()) // no signing key of the machine's user
	var out, errb bytes.Buffer
	g := &globals{stdout: &out, stderr: &errb, pollEvery: time.Millisecond, grace: 20 * time.Millisecond, acceptEvery: 50 * time.Millisecond, loc: time.UTC,
		requestID: func() string { return "20261122-101500-ab12" },
		dial:      func(*globals) (client.Client, error) { return f, nil }}
	full := append([]string{"shipline", "--ui-url", "http://ui.test", "--as", "alice"}, args...)
	code = run(newAppWith(g), full, &errb)
	return code, out.String(), errb.String()
}

// golden compares a command's exit code and output with testdata/golden/NAME
// (go test -run TestGolden -update rewrites them).
func golden(t *testing.T, name string, f *fakeClient, args ...string) (int, string, string) {
	t.Helper()
	code, out, errOut := shipline(t, f, args...)
	got := fmt.Sprintf("$ shipline %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out, errOut)
	if len(f.calls) > 0 {
		got += "--- calls\n" + strings.Join(f.calls, "\n") + "\n"
	}
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return code, out, errOut
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./starter/cli -run %s -update` to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (rerun with -update if the change is intended):\n--- got\n%s--- want\n%s", name, path, got, want)
	}
	return code, out, errOut
}
