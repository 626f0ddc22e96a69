package dbemu

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Jobs API 2.2. Settings are stored as the JSON objects clients sent (unknown
// fields kept) plus the defaults the real service adds (format, timeouts,
// notification objects, pause_status, run_if), with tasks sorted by task_key as
// jobs/get returns them.

const (
	maxJobTags   = 25
	arrayPage    = 100 // jobs/get and list?expand_tasks page tasks, job_clusters, parameters, environments by 100
	defaultLimit = 20
	maxLimit     = 100
)

// paged are the settings arrays the 2.2 API pages.
var paged = []string{"tasks", "job_clusters", "parameters", "environments"}

// keyOf names the identifying key of elements of a settings array.
var keyOf = map[string]string{"tasks": "task_key", "job_clusters": "job_cluster_key", "environments": "environment_key", "parameters": "name"}

type job struct {
	id       int64
	created  int64
	creator  string
	settings map[string]any
}

// Job is a job as the emulator holds it.
type Job struct {
	ID              int64
	CreatorUserName string
	CreatedTime     int64 // epoch milliseconds
	// Settings are the full stored settings, server defaults included.
	Settings json.RawMessage
}

// Tags returns the job's settings.tags.
func (j Job) Tags() map[string]string {
	var s struct {
		Tags map[string]string `json:"tags"`
	}
	_ = json.Unmarshal(j.Settings, &s)
	return s.Tags
}

// Name returns the job's settings.name.
func (j Job) Name() string {
	var s struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(j.Settings, &s)
	return s.Name
}

// Jobs returns every job, oldest first.
func (e *Emulator) Jobs() []Job {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := e.sortedJobIDs()
	out := make([]Job, 0, len(ids))
	for _, id := range ids {
		out = append(out, e.jobs[id].public())
	}
	return out
}

// JobsTagged returns the jobs whose tags include every pair of tags.
func (e *Emulator) JobsTagged(tags map[string]string) []Job {
	var out []Job
	for _, j := range e.Jobs() {
		t := j.Tags()
		ok := true
		for k, v := range tags {
			ok = ok && t[k] == v
		}
		if ok {
			out = append(out, j)
		}
	}
	return out
}

// DeleteJob deletes a job as a user would by hand; false if it did not exist.
func (e *Emulator) DeleteJob(id int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.jobs[id]
	delete(e.jobs, id)
	return ok
}

func (j *job) public() Job {
	raw, _ := json.Marshal(j.settings)
	return Job{ID: j.id, CreatorUserName: j.creator, CreatedTime: j.created, Settings: raw}
}

func (e *Emulator) sortedJobIDs() []int64 {
	ids := make([]int64, 0, len(e.jobs))
	for id := range e.jobs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	return ids
}

func (e *Emulator) jobsCreate(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	if !decodeJSON(w, r, &req) {
		return
	}
	if acl, ok := req["access_control_list"]; ok {
		if _, isList := acl.([]any); !isList {
			apiError(w, http.StatusBadRequest, "MALFORMED_REQUEST", "Could not parse request object: access_control_list must be an array")
			return
		}
		delete(req, "access_control_list")
	}
	if msg := validateSettings(req); msg != "" {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", msg)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	id := e.nextJobID
	e.nextJobID += 1 + e.rng.Int63n(1000)
	e.jobs[id] = &job{id: id, created: e.now().UnixMilli(), creator: e.user, settings: withDefaults(req)}
	writeJSON(w, http.StatusOK, map[string]any{"job_id": id})
}

func (e *Emulator) jobsReset(w http.ResponseWriter, r *http.Request) {
	var req struct {
		JobID       json.Number    `json:"job_id"`
		NewSettings map[string]any `json:"new_settings"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j, ok := e.lookupJob(w, req.JobID)
	if !ok {
		return
	}
	if req.NewSettings == nil {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Missing required field: new_settings")
		return
	}
	if msg := validateSettings(req.NewSettings); msg != "" {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", msg)
		return
	}
	j.settings = withDefaults(req.NewSettings)
	writeJSON(w, http.StatusOK, map[string]any{})
}

// jobsUpdate is a partial update: top-level fields of new_settings replace the
// stored ones, except the keyed arrays (tasks, job_clusters, ...) which are
// merged by key; fields_to_remove drops top-level fields or "tasks/<key>".
func (e *Emulator) jobsUpdate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		JobID          json.Number    `json:"job_id"`
		NewSettings    map[string]any `json:"new_settings"`
		FieldsToRemove []string       `json:"fields_to_remove"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j, ok := e.lookupJob(w, req.JobID)
	if !ok {
		return
	}
	s := clone(j.settings).(map[string]any)
	for k, v := range req.NewSettings {
		key, keyed := keyOf[k]
		old, hasOld := s[k].([]any)
		add, isList := v.([]any)
		if !keyed || !hasOld || !isList {
			s[k] = v
			continue
		}
		for _, el := range add {
			idx := indexByKey(old, key, el)
			if idx < 0 {
				old = append(old, el)
			} else {
				old[idx] = el
			}
		}
		s[k] = old
	}
	for _, f := range req.FieldsToRemove {
		arr, elKey, isElem := strings.Cut(f, "/")
		if !isElem {
			delete(s, f)
			continue
		}
		old, _ := s[arr].([]any)
		idx := indexByKey(old, keyOf[arr], map[string]any{keyOf[arr]: elKey})
		if idx >= 0 {
			s[arr] = append(old[:idx], old[idx+1:]...)
		}
	}
	if msg := validateSettings(s); msg != "" {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", msg)
		return
	}
	j.settings = withDefaults(s)
	writeJSON(w, http.StatusOK, map[string]any{})
}

func indexByKey(list []any, key string, el any) int {
	m, _ := el.(map[string]any)
	for i, o := range list {
		om, _ := o.(map[string]any)
		if om != nil && m != nil && om[key] == m[key] {
			return i
		}
	}
	return -1
}

func (e *Emulator) jobsDelete(w http.ResponseWriter, r *http.Request) {
	var req struct {
		JobID json.Number `json:"job_id"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j, ok := e.lookupJob(w, req.JobID)
	if !ok {
		return
	}
	delete(e.jobs, j.id)
	writeJSON(w, http.StatusOK, map[string]any{})
}

// lookupJob resolves a job_id; the real service answers a missing job with
// 400 INVALID_PARAMETER_VALUE "Job <id> does not exist." (the SDK maps that to
// ErrResourceDoesNotExist for jobs/get).
func (e *Emulator) lookupJob(w http.ResponseWriter, raw json.Number) (*job, bool) {
	if raw == "" {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Missing required field: job_id")
		return nil, false
	}
	id, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid job_id %q: must be an integer", raw))
		return nil, false
	}
	j, ok := e.jobs[id]
	if !ok {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Job %d does not exist.", id))
		return nil, false
	}
	return j, true
}

func (e *Emulator) jobsGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page := 0
	if t := q.Get("page_token"); t != "" {
		n, err := decodeToken(t, "get")
		if err != nil {
			apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Invalid page_token.")
			return
		}
		page = int(n)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j, ok := e.lookupJob(w, json.Number(q.Get("job_id")))
	if !ok {
		return
	}
	settings, more := pageArrays(j.settings, page)
	out := map[string]any{
		"job_id":            j.id,
		"creator_user_name": j.creator,
		"run_as_user_name":  j.creator,
		"created_time":      j.created,
		"settings":          settings,
	}
	if more {
		out["has_more"] = true
		out["next_page_token"] = encodeToken("get", int64(page+1))
	}
	writeJSON(w, http.StatusOK, out)
}

// pageArrays returns a copy of settings with the paged arrays cut to page.
func pageArrays(settings map[string]any, page int) (map[string]any, bool) {
	s := clone(settings).(map[string]any)
	more := false
	for _, k := range paged {
		list, ok := s[k].([]any)
		if !ok {
			continue
		}
		lo, hi := min(page*arrayPage, len(list)), min((page+1)*arrayPage, len(list))
		more = more || hi < len(list)
		if lo == hi {
			delete(s, k)
			continue
		}
		s[k] = list[lo:hi]
	}
	return s, more
}

func (e *Emulator) jobsList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxLimit {
			apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid limit %s: limit must be between 1 and %d.", l, maxLimit))
			return
		}
		limit = n
	}
	offset, _ := strconv.Atoi(q.Get("offset"))
	after := int64(-1)
	if t := q.Get("page_token"); t != "" {
		n, err := decodeToken(t, "list")
		if err != nil {
			apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Invalid page_token.")
			return
		}
		after = n
	}
	expand := q.Get("expand_tasks") == "true"
	name := q.Get("name")

	e.mu.Lock()
	defer e.mu.Unlock()
	var matched []*job
	for _, id := range e.sortedJobIDs() {
		j := e.jobs[id]
		if name != "" && !strings.EqualFold(fmt.Sprint(j.settings["name"]), name) {
			continue
		}
		if id <= after {
			continue
		}
		matched = append(matched, j)
	}
	if offset > 0 {
		matched = matched[min(offset, len(matched)):]
	}
	out := map[string]any{"has_more": len(matched) > limit}
	if len(matched) > limit {
		matched = matched[:limit]
		out["next_page_token"] = encodeToken("list", matched[len(matched)-1].id)
	}
	jobs := make([]map[string]any, 0, len(matched))
	for _, j := range matched {
		base := map[string]any{"job_id": j.id, "creator_user_name": j.creator, "created_time": j.created}
		settings, more := pageArrays(j.settings, 0)
		if !expand {
			for _, k := range paged {
				delete(settings, k)
			}
			more = false
		}
		base["settings"] = settings
		if more {
			base["has_more"] = true
		}
		jobs = append(jobs, base)
	}
	if len(jobs) > 0 {
		out["jobs"] = jobs
	}
	writeJSON(w, http.StatusOK, out)
}

func encodeToken(kind string, n int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatInt(n, 10)))
}

func decodeToken(t, kind string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil {
		return 0, err
	}
	k, n, ok := strings.Cut(string(b), ":")
	if !ok || k != kind {
		return 0, fmt.Errorf("bad token")
	}
	return strconv.ParseInt(n, 10, 64)
}

// validateSettings checks what the real service rejects with
// INVALID_PARAMETER_VALUE; it returns the message or "".
func validateSettings(s map[string]any) string {
	if n, ok := s["name"]; ok {
		if _, isStr := n.(string); !isStr {
			return "Invalid value for name: expected a string."
		}
	}
	if t, ok := s["tags"]; ok {
		tags, isObj := t.(map[string]any)
		if !isObj {
			return "Invalid value for tags: expected an object."
		}
		if len(tags) > maxJobTags {
			return fmt.Sprintf("The number of tags (%d) exceeds the limit of %d tags per job.", len(tags), maxJobTags)
		}
		for k, v := range tags {
			if _, isStr := v.(string); !isStr {
				return fmt.Sprintf("Invalid value for tag %q: tag values must be strings.", k)
			}
		}
	}
	for arr, key := range keyOf {
		v, ok := s[arr]
		if !ok {
			continue
		}
		list, isList := v.([]any)
		if !isList {
			return fmt.Sprintf("Invalid value for %s: expected an array.", arr)
		}
		seen := map[string]bool{}
		for _, el := range list {
			m, isObj := el.(map[string]any)
			if !isObj {
				return fmt.Sprintf("Invalid element in %s: expected an object.", arr)
			}
			k, _ := m[key].(string)
			if k == "" {
				return fmt.Sprintf("Missing required field %s in %s.", key, arr)
			}
			if seen[k] {
				return fmt.Sprintf("%s must be unique: %q is used more than once.", key, k)
			}
			seen[k] = true
		}
	}
	if sch, ok := s["schedule"]; ok {
		m, isObj := sch.(map[string]any)
		if !isObj {
			return "Invalid value for schedule: expected an object."
		}
		if c, _ := m["quartz_cron_expression"].(string); c == "" {
			return "Missing required field: schedule.quartz_cron_expression"
		}
		if tz, _ := m["timezone_id"].(string); tz == "" {
			return "Missing required field: schedule.timezone_id"
		}
	}
	for _, k := range []string{"schedule", "continuous", "trigger"} {
		m, _ := s[k].(map[string]any)
		if ps, ok := m["pause_status"]; ok && ps != "PAUSED" && ps != "UNPAUSED" {
			return fmt.Sprintf("Invalid value for %s.pause_status: %v (expected PAUSED or UNPAUSED).", k, ps)
		}
	}
	return ""
}

// withDefaults returns a copy of settings with the fields the real service fills in.
func withDefaults(in map[string]any) map[string]any {
	s := clone(in).(map[string]any)
	setDefault(s, "name", "Untitled")
	setDefault(s, "format", "MULTI_TASK")
	setDefault(s, "max_concurrent_runs", json.Number("1"))
	setDefault(s, "timeout_seconds", json.Number("0"))
	setDefault(s, "email_notifications", map[string]any{})
	setDefault(s, "webhook_notifications", map[string]any{})
	for _, k := range []string{"schedule", "continuous", "trigger"} {
		if m, ok := s[k].(map[string]any); ok {
			setDefault(m, "pause_status", "UNPAUSED")
		}
	}
	if tasks, ok := s["tasks"].([]any); ok {
		for _, t := range tasks {
			m := t.(map[string]any)
			setDefault(m, "timeout_seconds", json.Number("0"))
			setDefault(m, "email_notifications", map[string]any{})
			setDefault(m, "run_if", "ALL_SUCCESS")
		}
		sort.SliceStable(tasks, func(a, b int) bool {
			return tasks[a].(map[string]any)["task_key"].(string) < tasks[b].(map[string]any)["task_key"].(string)
		})
	}
	return s
}

func setDefault(m map[string]any, k string, v any) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

// clone deep-copies decoded JSON.
func clone(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = clone(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = clone(x)
		}
		return out
	default:
		return v
	}
}
