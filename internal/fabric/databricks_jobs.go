package fabric

// The databricks fabric's job store: Jobs API 2.2 jobs found by Shipline's
// tags (see databricks.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/shipline/shipline/internal/apperr"
)

// --- jobs ---

// UpsertJob creates the job, resets it, or leaves it unchanged (see the file
// comment). Two jobs with the job's tags are a permanent DuplicateJobs error.
func (d *databricksFabric) UpsertJob(ctx context.Context, j JobSpec) (JobResult, error) {
	want, acl, err := desiredSettings(j)
	if err != nil {
		return JobResult{}, err
	}
	ids, err := d.findJobs(ctx, j, want)
	if err != nil {
		return JobResult{}, err
	}
	if len(ids) > 1 {
		return JobResult{}, d.duplicates(j, ids)
	}
	if len(ids) == 1 {
		live, found, err := d.getSettings(ctx, ids[0])
		if err != nil {
			return JobResult{}, err
		}
		if found {
			id := strconv.FormatInt(ids[0], 10)
			if diffSubset("", want, live) == "" {
				return JobResult{ID: id, Action: JobUnchanged}, nil
			}
			err := d.postJSON(ctx, "/api/2.2/jobs/reset", map[string]any{"job_id": ids[0], "new_settings": want}, nil)
			if !isMissingJob(err) {
				if err != nil {
					return JobResult{}, d.fail(fmt.Sprintf("reset of job %d (%s/%s)", ids[0], j.Project, j.Job), err)
				}
				return JobResult{ID: id, Action: JobUpdated}, nil
			}
		}
		// Deleted between the list and now: create it again.
	}
	payload := want
	if acl != nil {
		payload = cloneMap(want)
		payload["access_control_list"] = acl
	}
	id, err := d.createJob(ctx, j, want, payload)
	if err != nil {
		return JobResult{}, err
	}
	return JobResult{ID: id, Action: JobCreated}, nil
}

// createJob sends jobs/create once per try (sendOnce) and returns the new
// job's ID. A try whose outcome is unknown may have created the job: it is
// looked up by its tags before the next try, so a lost answer never leaves a
// second job. Tries go on for retryTimeout; then the error is transient and
// the activity's retry starts again from the same lookup (UpsertJob).
func (d *databricksFabric) createJob(ctx context.Context, j JobSpec, want, payload map[string]any) (string, error) {
	op := fmt.Sprintf("create of job %s/%s", j.Project, j.Job)
	deadline := time.Now().Add(d.retryTimeout)
	for attempt := 1; ; attempt++ {
		var resp struct {
			JobID json.Number `json:"job_id"`
		}
		err := d.sendOnce(ctx, "/api/2.2/jobs/create", payload, &resp)
		if err == nil {
			return resp.JobID.String(), nil
		}
		if !outcomeUnknown(ctx, err) {
			return "", d.fail(op, err)
		}
		// Wait first: a create the server is still working on (its caller
		// gave up) has time to land before the lookup.
		if err := backoffSleep(ctx, attempt); err != nil {
			return "", err
		}
		ids, lerr := d.findJobs(ctx, j, want)
		switch {
		case lerr != nil:
			return "", lerr
		case len(ids) == 1:
			return strconv.FormatInt(ids[0], 10), nil // the lost create made it
		case len(ids) > 1:
			return "", d.duplicates(j, ids)
		case time.Now().After(deadline):
			return "", d.fail(op, err)
		}
	}
}

// InspectJob compares the live job with the spec: Drift when a field Shipline
// sends differs live (fields the service adds are ignored).
func (d *databricksFabric) InspectJob(ctx context.Context, j JobSpec) (LiveJob, error) {
	want, _, err := desiredSettings(j)
	if err != nil {
		return LiveJob{}, err
	}
	ids, err := d.findJobs(ctx, j, want)
	if err != nil || len(ids) == 0 {
		return LiveJob{}, err
	}
	if len(ids) > 1 {
		return LiveJob{Exists: true, ID: strconv.FormatInt(ids[0], 10), Drift: true, DriftDetail: d.duplicates(j, ids).Msg}, nil
	}
	live, found, err := d.getSettings(ctx, ids[0])
	if err != nil || !found {
		return LiveJob{}, err
	}
	out := LiveJob{Exists: true, ID: strconv.FormatInt(ids[0], 10)}
	if tags, ok := live["tags"].(map[string]any); ok {
		out.Version, _ = tags[TagVersion].(string)
	}
	out.DriftDetail = diffSubset("", want, live)
	out.Drift = out.DriftDetail != ""
	return out, nil
}

func (d *databricksFabric) duplicates(j JobSpec, ids []int64) *apperr.Error {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return &apperr.Error{Type: apperr.DuplicateJobs,
		Msg: fmt.Sprintf("databricks fabric %q (%s): jobs %s all carry tags %s=%s and %s=%s; delete all but one of them in the workspace, then resume",
			d.name, d.where(), strings.Join(s, ", "), TagProject, j.Project, TagJob, j.Job)}
}

// desiredSettings parses the payload and adds Shipline's tags and the pause
// status (applyPause); it returns the settings and the create-only
// access_control_list.
func desiredSettings(j JobSpec) (map[string]any, any, error) {
	invalid := func(msg string) error {
		return &apperr.Error{Type: apperr.InvalidDefinition, Msg: fmt.Sprintf("job %s/%s: %s", j.Project, j.Job, msg)}
	}
	if j.Project == "" || j.Job == "" {
		return nil, nil, invalid("project and job names are required")
	}
	dec := json.NewDecoder(bytes.NewReader(j.Definition))
	dec.UseNumber()
	var s map[string]any
	if err := dec.Decode(&s); err != nil {
		return nil, nil, invalid("the definition is not a JSON object (Jobs API 2.2 create payload): " + err.Error())
	}
	if dec.More() {
		return nil, nil, invalid("the definition has data after its JSON object")
	}
	if s == nil {
		return nil, nil, invalid("the definition is null; it must be a Jobs API 2.2 create payload")
	}
	acl := s["access_control_list"]
	delete(s, "access_control_list")
	tags := map[string]any{}
	if t, ok := s["tags"]; ok && t != nil {
		m, isObj := t.(map[string]any)
		if !isObj {
			return nil, nil, invalid("tags must be an object of strings")
		}
		tags = m
	}
	tags[TagProject], tags[TagJob], tags[TagVersion] = j.Project, j.Job, j.Version
	s["tags"] = tags
	applyPause(s, j.Paused)
	return s, acl, nil
}

// findJobs returns the IDs of the jobs tagged with j's project and job: among
// jobs named like the payload first, else among all jobs.
func (d *databricksFabric) findJobs(ctx context.Context, j JobSpec, want map[string]any) ([]int64, error) {
	w, _, err := d.clients()
	if err != nil {
		return nil, err
	}
	list := func(name string) ([]int64, error) {
		all, err := w.Jobs.ListAll(ctx, jobs.ListJobsRequest{Name: name, Limit: 100})
		if err != nil {
			return nil, d.fail(fmt.Sprintf("listing jobs to find %s/%s", j.Project, j.Job), err)
		}
		var ids []int64
		for _, b := range all {
			if b.Settings != nil && b.Settings.Tags[TagProject] == j.Project && b.Settings.Tags[TagJob] == j.Job {
				ids = append(ids, b.JobId)
			}
		}
		sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
		return ids, nil
	}
	if name, _ := want["name"].(string); name != "" {
		ids, err := list(name)
		if err != nil || len(ids) > 0 {
			return ids, err
		}
	}
	return list("")
}

// getSettings reads a job's full settings (all pages of tasks etc.) as JSON;
// found is false when the job no longer exists.
func (d *databricksFabric) getSettings(ctx context.Context, id int64) (map[string]any, bool, error) {
	_, raw, err := d.clients()
	if err != nil {
		return nil, false, err
	}
	var settings map[string]any
	token := ""
	for {
		var body []byte
		q := map[string]any{"job_id": id, "page_token": token}
		err := raw.Do(ctx, http.MethodGet, "/api/2.2/jobs/get", map[string]string{"Accept": "application/json"}, nil, q, &body)
		if isMissingJob(err) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, d.fail(fmt.Sprintf("reading job %d", id), err)
		}
		var page struct {
			Settings      map[string]any `json:"settings"`
			NextPageToken string         `json:"next_page_token"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&page); err != nil {
			return nil, false, &apperr.Error{Type: apperr.FabricUnavailable, Msg: fmt.Sprintf("databricks fabric %q: unreadable jobs/get answer for job %d: %v (will retry)", d.name, id, err)}
		}
		if settings == nil {
			settings = page.Settings
		} else {
			for _, k := range []string{"tasks", "job_clusters", "parameters", "environments"} {
				if more, ok := page.Settings[k].([]any); ok {
					prev, _ := settings[k].([]any)
					settings[k] = append(prev, more...)
				}
			}
		}
		if token = page.NextPageToken; token == "" {
			return settings, settings != nil, nil
		}
	}
}

func (d *databricksFabric) postJSON(ctx context.Context, path string, body any, out any) error {
	_, raw, err := d.clients()
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return &apperr.Error{Type: apperr.InvalidDefinition, Msg: fmt.Sprintf("encode %s request: %v", path, err)}
	}
	var resp []byte
	h := map[string]string{"Content-Type": "application/json", "Accept": "application/json"}
	if err := raw.Do(ctx, http.MethodPost, path, h, nil, b, &resp); err != nil {
		return err
	}
	if out != nil && len(resp) > 0 {
		return json.Unmarshal(resp, out)
	}
	return nil
}

// isMissingJob tells the service's "Job <id> does not exist." (400 on
// reset/delete, mapped to not-found by the SDK on get).
func isMissingJob(err error) bool {
	var ae *apierr.APIError
	return err != nil && (apierr.IsMissing(err) ||
		(errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest && strings.Contains(ae.Message, "does not exist")))
}
