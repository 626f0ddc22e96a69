package dbemu_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/shipline/shipline/test/dbemu"
)

const volume = "/Volumes/main/shipline/artifacts"

func start(t *testing.T, tweak ...func(*databricks.Config)) (*dbemu.Emulator, *databricks.WorkspaceClient) {
	t.Helper()
	emu := dbemu.Start(dbemu.Options{Volumes: []string{volume}, Seed: 7})
	t.Cleanup(emu.Close)
	w, err := emu.Client(dbemu.DefaultToken, tweak...)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return emu, w
}

func TestJobsCreateGetListResetDelete(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t)

	var ids []int64
	for i := range 5 {
		name := fmt.Sprintf("job-%d", i)
		if i == 4 {
			name = "job-1" // two jobs may share a name
		}
		resp, err := w.Jobs.Create(ctx, jobs.CreateJob{
			Name: name,
			Tags: map[string]string{"team": "data", "n": fmt.Sprint(i)},
			Tasks: []jobs.Task{
				{TaskKey: "b", NotebookTask: &jobs.NotebookTask{NotebookPath: "/Shared/b"}},
				{TaskKey: "a", NotebookTask: &jobs.NotebookTask{NotebookPath: "/Shared/a"}},
			},
			Schedule: &jobs.CronSchedule{QuartzCronExpression: "0 0 * * * ?", TimezoneId: "UTC"},
		})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if resp.JobId < 1_000_000_000_000_000 {
			t.Errorf("job id %d is not a large int64", resp.JobId)
		}
		ids = append(ids, resp.JobId)
	}

	got, err := w.Jobs.GetByJobId(ctx, ids[0])
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	s := got.Settings
	if s.Name != "job-0" || s.Tags["team"] != "data" || got.CreatorUserName == "" || got.CreatedTime == 0 {
		t.Errorf("get returned %+v", got)
	}
	if len(s.Tasks) != 2 || s.Tasks[0].TaskKey != "a" {
		t.Errorf("tasks should come back sorted by task_key: %+v", s.Tasks)
	}
	if s.Schedule.PauseStatus != jobs.PauseStatusUnpaused || s.MaxConcurrentRuns != 1 || s.Format != jobs.FormatMultiTask {
		t.Errorf("server defaults missing: %+v", s)
	}

	// Paging: limit 2 over 5 jobs.
	all, err := w.Jobs.ListAll(ctx, jobs.ListJobsRequest{Limit: 2})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(all) != 5 {
		t.Fatalf("listed %d jobs, want 5", len(all))
	}
	if len(all[0].Settings.Tasks) != 0 {
		t.Errorf("list without expand_tasks must not return tasks")
	}
	if n := emu.CountRequests("GET", "/api/2.2/jobs/list"); n != 3 {
		t.Errorf("paging made %d list calls, want 3", n)
	}
	expanded, err := w.Jobs.ListAll(ctx, jobs.ListJobsRequest{ExpandTasks: true})
	if err != nil || len(expanded) != 5 || len(expanded[0].Settings.Tasks) != 2 {
		t.Fatalf("list expand_tasks: %v %+v", err, expanded)
	}

	// Name filter is an exact (case-insensitive) match.
	byName, err := w.Jobs.ListAll(ctx, jobs.ListJobsRequest{Name: "JOB-1"})
	if err != nil || len(byName) != 2 {
		t.Fatalf("name filter: %v, %d jobs, want 2", err, len(byName))
	}
	none, err := w.Jobs.ListAll(ctx, jobs.ListJobsRequest{Name: "job"})
	if err != nil || len(none) != 0 {
		t.Fatalf("name filter must be exact: %v %d", err, len(none))
	}

	// Reset replaces every setting.
	err = w.Jobs.Reset(ctx, jobs.ResetJob{JobId: ids[0], NewSettings: jobs.JobSettings{Name: "renamed"}})
	if err != nil {
		t.Fatalf("reset: %v", err)
	}
	got, _ = w.Jobs.GetByJobId(ctx, ids[0])
	if got.Settings.Name != "renamed" || len(got.Settings.Tags) != 0 || got.Settings.Schedule != nil {
		t.Errorf("reset did not replace settings: %+v", got.Settings)
	}

	// Delete, then get → the SDK's not-found error.
	if err := w.Jobs.DeleteByJobId(ctx, ids[1]); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = w.Jobs.GetByJobId(ctx, ids[1])
	if !errors.Is(err, apierr.ErrResourceDoesNotExist) {
		t.Errorf("get deleted job: %v, want ErrResourceDoesNotExist", err)
	}
	err = w.Jobs.Reset(ctx, jobs.ResetJob{JobId: ids[1], NewSettings: jobs.JobSettings{Name: "x"}})
	var apiErr *apierr.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.ErrorCode != "INVALID_PARAMETER_VALUE" {
		t.Errorf("reset deleted job: %v", err)
	}
	if !emu.DeleteJob(ids[2]) || len(emu.Jobs()) != 3 {
		t.Errorf("DeleteJob helper: %d jobs left", len(emu.Jobs()))
	}
}

func TestJobsUnknownFieldsKeptAndValidation(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t)
	raw := map[string]any{"name": "raw", "future_field": map[string]any{"x": 1}, "tags": map[string]string{"a": "b"}}
	var resp jobs.CreateResponse
	err := doRaw(ctx, w, "POST", "/api/2.2/jobs/create", raw, &resp)
	if err != nil {
		t.Fatalf("raw create: %v", err)
	}
	j := emu.Jobs()[0]
	if string(j.Settings) == "" || !contains(string(j.Settings), `"future_field":{"x":1}`) {
		t.Errorf("unknown field not stored: %s", j.Settings)
	}

	tags := map[string]string{}
	for i := range 26 {
		tags[fmt.Sprint("t", i)] = "v"
	}
	_, err = w.Jobs.Create(ctx, jobs.CreateJob{Name: "too many tags", Tags: tags})
	var apiErr *apierr.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != "INVALID_PARAMETER_VALUE" || apiErr.StatusCode != 400 {
		t.Errorf("26 tags: %v", err)
	}
	_, err = w.Jobs.ListAll(ctx, jobs.ListJobsRequest{Limit: 500})
	if !errors.Is(err, apierr.ErrInvalidParameterValue) {
		t.Errorf("limit 500: %v", err)
	}
}

// doRaw sends a JSON request through the SDK's low-level client (keeps fields
// the typed structs do not know).
func doRaw(ctx context.Context, w *databricks.WorkspaceClient, method, path string, req, resp any) error {
	c, err := client.New(w.Config)
	if err != nil {
		return err
	}
	return c.Do(ctx, method, path, map[string]string{"Content-Type": "application/json"}, nil, req, resp)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
