package metrics

import (
	"context"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/workflows"
)

// NewInterceptor returns the worker interceptor that records Shipline's
// metrics, so that neither workflows nor activities deal with metrics:
//
//   - from activity results: a build (Build.Pipeline) counts a cache hit or
//     miss and, when it ran, its time in build tools; an upload (Deploy.Upload)
//     its duration; job upserts (Deploy.UpsertJobs, Deploy.UpsertJob) each
//     job's action. Only attempts that returned are counted, so a retried
//     activity counts once, with the result of the attempt that succeeded
//     (jobs done by a failed attempt come back "unchanged").
//   - from the Deploy workflow: each move into "parked" (seen as the memo
//     upsert that publishes it) and the outcome it ends with (its returned
//     DeployState, or failed/cancelled from its error). Workflow code is
//     replayed, so these are recorded only when workflow.IsReplaying is false:
//     once per execution, not again when a worker rebuilds the workflow from
//     history. (A workflow task that completed the workflow but whose
//     completion did not reach the server runs again and may count twice; a
//     deployment terminated or timed out from outside is not seen at all.)
//
// cfg gives the fabric kinds; s may be nil (nothing is recorded).
func NewInterceptor(s *Shipline, cfg *platform.Config) interceptor.WorkerInterceptor {
	return &workerInterceptor{s: s, cfg: cfg}
}

type workerInterceptor struct {
	interceptor.WorkerInterceptorBase
	s   *Shipline
	cfg *platform.Config
}

func (w *workerInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, w: w}
}

func (w *workerInterceptor) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	if workflow.GetInfo(ctx).WorkflowType.Name != workflows.DeployWorkflow {
		return next
	}
	return &deployInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, s: w.s}
}

// fabricKind is the kind of the named fabric, "unknown" when it is not configured.
func (w *workerInterceptor) fabricKind(name string) string {
	if w.cfg != nil {
		if f, ok := w.cfg.Fabrics[name]; ok && f.Kind != "" {
			return string(f.Kind)
		}
	}
	return "unknown"
}

type activityInbound struct {
	interceptor.ActivityInboundInterceptorBase
	w *workerInterceptor
}

func (a *activityInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	start := time.Now()
	res, err := a.Next.ExecuteActivity(ctx, in)
	if err == nil && len(in.Args) > 0 {
		a.w.recordActivity(in.Args[0], res, time.Since(start))
	}
	return res, err
}

// recordActivity records what a successful activity did, by its input and result types.
func (w *workerInterceptor) recordActivity(arg, res any, took time.Duration) {
	switch out := res.(type) {
	case activities.BuildOutput:
		if in, ok := arg.(activities.BuildInput); ok {
			w.s.Build(string(in.Pipeline.Language), out.Cached, out.Seconds)
		}
	case activities.UploadOutput:
		if in, ok := arg.(activities.UploadInput); ok {
			w.s.Upload(w.fabricKind(in.Fabric), took)
		}
	case activities.UpsertJobsOutput:
		if in, ok := arg.(activities.UpsertJobsInput); ok {
			kind := w.fabricKind(in.Fabric)
			for _, r := range out.Results {
				w.s.JobUpsert(kind, r.Action)
			}
			for range out.Failed {
				w.s.JobUpsert(kind, "failed")
			}
		}
	case activities.UpsertJobOutput:
		if in, ok := arg.(activities.UpsertJobInput); ok {
			w.s.JobUpsert(w.fabricKind(in.Job.Fabric), out.Action)
		}
	}
}

// deployInbound records a Deploy workflow's parks and its outcome.
type deployInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	s *Shipline
}

func (d *deployInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	return d.Next.Init(&deployOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: outbound}, s: d.s})
}

func (d *deployInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	res, err := d.Next.ExecuteWorkflow(ctx, in)
	if !workflow.IsReplaying(ctx) {
		if outcome := deployOutcome(res, err); outcome != "" {
			d.s.Deploy(outcome)
		}
	}
	return res, err
}

// deployOutcome is the outcome of a Deploy that returned res and err, "" when
// it did not end (continued as new).
func deployOutcome(res any, err error) string {
	if workflow.IsContinueAsNewError(err) {
		return ""
	}
	var status workflows.Status
	switch s := res.(type) {
	case workflows.DeployState:
		status = s.Status
	case *workflows.DeployState:
		if s != nil {
			status = s.Status
		}
	}
	switch status {
	case workflows.StatusSucceeded, workflows.StatusRefused, workflows.StatusCancelled, workflows.StatusFailed, workflows.StatusSuperseded:
		return string(status)
	}
	switch {
	case err == nil: // ended without saying how: take it as done
		return string(workflows.StatusSucceeded)
	case temporal.IsCanceledError(err):
		return string(workflows.StatusCancelled)
	default:
		return string(workflows.StatusFailed)
	}
}

// deployOutbound sees the Deploy workflow publish its status in its memo.
type deployOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	s    *Shipline
	last string // the status last published, so a park counts once
}

func (d *deployOutbound) UpsertMemo(ctx workflow.Context, memo map[string]any) error {
	err := d.Next.UpsertMemo(ctx, memo)
	if status, ok := memo[workflows.MemoStatus].(string); ok && err == nil {
		if status == string(workflows.StatusParked) && d.last != status && !workflow.IsReplaying(ctx) {
			d.s.Deploy(status)
		}
		d.last = status
	}
	return err
}
