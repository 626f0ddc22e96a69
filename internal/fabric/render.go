package fabric

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/templating"
)

// RenderInput is everything needed to render one job's definition for one fabric.
type RenderInput struct {
	Project string       `json:"project"`
	Version string       `json:"version"` // the release tag, e.g. v1.2.0
	Commit  string       `json:"commit"`  // the full commit hash the tag points at
	Fabric  string       `json:"fabric"`
	Job     manifest.Job `json:"job"`
	// Definition is the job's definition file as read from the release's commit.
	Definition []byte `json:"definition"`
	// ArtifactPaths maps a pipeline to its artifact's path on the target fabric
	// (Fabric.ArtifactPath / Upload.Path).
	ArtifactPaths map[string]string `json:"artifact_paths"`
	// Variables are the job's variables on the fabric, see MergeVariables.
	Variables map[string]string `json:"variables"`
	// Paused is the pause state forced on the job, nil to keep the
	// definition's own; see PausedFor.
	Paused *bool `json:"paused,omitempty"`
}

// RenderJob fills the placeholders of a job's definition: Databricks job
// payloads (JSON) with values escaped for JSON strings, Airflow DAGs as plain
// text. Every placeholder must name something the job has: ${artifact.X} one of
// the job's pipelines with a path in ArtifactPaths, ${var.X} one of Variables.
//
// It returns the rendered definition and the pause state forced on the job
// (nil: the definition's own): in.Paused for Airflow DAGs, and for
// Databricks payloads only when the payload has something to pause
// (schedule, trigger or continuous).
//
// Errors are permanent *apperr.Error values of type InvalidDefinition wrapping a
// diag.List whose entries name the definition's file:line:col.
func RenderJob(in RenderInput) ([]byte, *bool, error) {
	out, paused, _, err := renderJob(in)
	return out, paused, err
}

// RenderJobSpec renders a job (see RenderJob) into the spec a fabric
// upserts, with the map of its lines to the definition's source.
func RenderJobSpec(in RenderInput, deploymentID string) (JobSpec, error) {
	out, paused, lines, err := renderJob(in)
	if err != nil {
		return JobSpec{}, err
	}
	return JobSpec{Project: in.Project, Job: in.Job.Name, Definition: out, Paused: paused,
		Version: in.Version, DeploymentID: deploymentID, Source: in.Job.Definition, SourceLines: lines}, nil
}

func renderJob(in RenderInput) ([]byte, *bool, []templating.Line, error) {
	file := in.Job.Definition
	if file == "" {
		file = in.Job.Name + " definition"
	}
	isJSON := isJSONDefinition(in.Job)
	values, known := renderValues(in)

	var (
		refs  []templating.Ref
		diags diag.List
	)
	if isJSON {
		refs, diags = templating.ScanJSON(file, in.Definition)
	} else {
		refs, diags = templating.Scan(file, in.Definition)
	}
	diags = append(diags, templating.CheckRefs(file, refs, known)...)
	if diags.HasErrors() {
		return nil, nil, nil, renderError(in, diags)
	}

	var (
		out   []byte
		lines []templating.Line
		err   error
	)
	if isJSON {
		out, err = templating.RenderJSON(file, in.Definition, values)
	} else {
		out, lines, err = templating.RenderLines(file, in.Definition, values)
	}
	if err != nil {
		var l diag.List
		if errors.As(err, &l) {
			return nil, nil, nil, renderError(in, l)
		}
		return nil, nil, nil, err
	}
	if !isJSON {
		return out, in.Paused, lines, nil
	}
	payload, bad := decodeJobPayload(file, out)
	if bad != nil {
		return nil, nil, nil, renderError(in, bad)
	}
	if !hasSchedule(payload) {
		return out, nil, nil, nil
	}
	return out, in.Paused, nil, nil
}

// isJSONDefinition tells whether a job's definition is a Databricks payload:
// by its scheduler, else (scheduler unset) by the file's extension.
func isJSONDefinition(j manifest.Job) bool {
	switch j.Scheduler {
	case manifest.Databricks:
		return true
	case manifest.Airflow:
		return false
	}
	return strings.HasSuffix(strings.ToLower(j.Definition), ".json")
}

// renderValues builds the placeholder values and what CheckRefs may accept.
func renderValues(in RenderInput) (map[string]string, templating.Known) {
	values := map[string]string{
		templating.ReleaseVersion: in.Version,
		templating.ReleaseCommit:  in.Commit,
		templating.ProjectName:    in.Project,
		templating.FabricName:     in.Fabric,
	}
	known := templating.Known{Vars: map[string]bool{}, VarsComplete: true, Fabric: in.Fabric}
	for _, p := range in.Job.Pipelines {
		if path, ok := in.ArtifactPaths[p]; ok {
			values[templating.ArtifactPrefix+p] = path
			known.Pipelines = append(known.Pipelines, p)
		}
	}
	for k, v := range in.Variables {
		values[templating.VarPrefix+k] = v
		known.Vars[k] = true
	}
	return values, known
}

func renderError(in RenderInput, l diag.List) error {
	return &apperr.Error{
		Type:  apperr.InvalidDefinition,
		Msg:   fmt.Sprintf("render job %q for fabric %q:\n%s", in.Job.Name, in.Fabric, l.Error()),
		Cause: l,
	}
}

// decodeJobPayload parses a rendered Databricks payload, which must be a JSON
// object. Large numbers are kept as json.Number.
func decodeJobPayload(file string, data []byte) (map[string]any, diag.List) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil && dec.More() {
		err = fmt.Errorf("unexpected data after the JSON object")
	}
	if err != nil {
		line, col := offsetPos(data, dec.InputOffset())
		if se, ok := err.(*json.SyntaxError); ok {
			line, col = offsetPos(data, max(se.Offset-1, 0)) // Offset is just past the bad byte
		}
		return nil, diag.List{diag.Errorf(file, line, col,
			"fix the JSON: a job definition is a Jobs API 2.2 create payload",
			"the rendered job definition is not valid JSON (position after rendering): %v", err)}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, diag.List{diag.Errorf(file, 1, 1,
			"write a JSON object: a Jobs API 2.2 create payload such as {\"name\": ..., \"tasks\": [...]}",
			"the job definition is not a JSON object")}
	}
	return obj, nil
}

// offsetPos turns a byte offset into a 1-based line and column (in characters).
func offsetPos(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col := 1, 1
	for _, r := range string(data[:off]) {
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// pausable lists the Jobs API settings that carry a pause_status.
var pausable = []string{"schedule", "trigger", "continuous"}

func hasSchedule(payload map[string]any) bool {
	for _, k := range pausable {
		if _, ok := payload[k].(map[string]any); ok {
			return true
		}
	}
	return false
}

// applyPause sets pause_status on the payload's schedule, trigger and
// continuous: paused when set, else the definition's own value, else
// UNPAUSED (the API's default, written out so that a job paused by an
// earlier deploy is unpaused and a comparison with the live job sees it).
func applyPause(payload map[string]any, paused *bool) {
	for _, k := range pausable {
		m, ok := payload[k].(map[string]any)
		if !ok {
			continue
		}
		switch {
		case paused != nil && *paused:
			m["pause_status"] = "PAUSED"
		case paused != nil:
			m["pause_status"] = "UNPAUSED"
		case m["pause_status"] == nil:
			m["pause_status"] = "UNPAUSED"
		}
	}
}

// MergeVariables returns the variables a job has on a fabric. Precedence, from
// lowest to highest:
//
//  1. shipline.yaml `variables` (the project's defaults);
//  2. platform.yaml `fabrics.<fabric>.variables` (set by the platform admins);
//  3. shipline.yaml `fabrics.<fabric>.variables` (the project's per-fabric overrides).
//
// The project's explicit per-fabric overrides win over the platform's values,
// which win over the project's defaults. cfg may be nil.
func MergeVariables(man *manifest.Manifest, cfg *platform.Config, fabric string) map[string]string {
	out := map[string]string{}
	put := func(m map[string]string) {
		for k, v := range m {
			out[k] = v
		}
	}
	if man != nil {
		put(man.Variables)
	}
	if cfg != nil {
		put(cfg.Fabrics[fabric].Variables)
	}
	if man != nil {
		put(man.Fabrics[fabric].Variables)
	}
	return out
}

// PausedFor returns the pause state forced on a job's schedule on a fabric,
// or nil when the definition's own setting stands. Precedence, from highest
// to lowest:
//
//  1. shipline.yaml `fabrics.<fabric>.jobs.<job>.paused` (true or false): the
//     project's explicit choice for this one job on this one fabric;
//  2. platform.yaml `fabrics.<fabric>.pause_schedules: true`: every schedule
//     on the fabric is deployed paused (a dev or qa workspace);
//  3. the definition: a Databricks payload's `pause_status` on schedule,
//     trigger or continuous (absent: UNPAUSED), an Airflow DAG's
//     `is_paused_upon_creation` (absent: unpaused).
//
// The most specific statement wins: a per-job override names the job and the
// fabric, pause_schedules names only the fabric, and the definition is the
// same on every fabric. cfg may be nil.
func PausedFor(man *manifest.Manifest, cfg *platform.Config, fabric, job string) *bool {
	if man != nil {
		if o := man.Fabrics[fabric].Jobs[job].Paused; o != nil {
			v := *o
			return &v
		}
	}
	if cfg != nil && cfg.Fabrics[fabric].PauseSchedules {
		v := true
		return &v
	}
	return nil
}
