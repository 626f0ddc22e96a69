package views

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/shipline/shipline/workflows"
)

// BuildLog is one pipeline's build log as `shipline logs` and the dashboard show it.
type BuildLog struct {
	Pipeline  string `json:"pipeline"`
	Status    string `json:"status"`
	Path      string `json:"path,omitempty"`
	Content   string `json:"content,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	// Error says why the log could not be read (its tail from the state is shown instead).
	Error string `json:"error,omitempty"`
	// tail is the end of the log kept in the deployment's state.
	tail string
}

// LogsResult is the JSON form of `logs`.
type LogsResult struct {
	DeploymentID string     `json:"deployment_id"`
	Status       string     `json:"status,omitempty"`
	Logs         []BuildLog `json:"logs"`
	// Problems lists what could not be read from the deployment's state.
	Problems []string `json:"problems,omitempty"`
}

// LogReader reads build log files from the workers' shared store (the
// project entity's ReadLogsUpdate, through ReadProject).
type LogReader func(ctx context.Context, in workflows.ReadLogsInput) (workflows.ReadLogsOutput, error)

// FillLogs reads the log files of res's builds; a build whose file cannot be
// read keeps the tail its deployment's state holds.
func FillLogs(ctx context.Context, res LogsResult, read LogReader) LogsResult {
	var paths []string
	for _, l := range res.Logs {
		if l.Path != "" {
			paths = append(paths, l.Path)
		}
	}
	if len(paths) > 0 {
		out, err := read(ctx, workflows.ReadLogsInput{Paths: paths})
		if err != nil {
			res.Problems = append(res.Problems, "could not read the log files: "+err.Error())
		}
		byPath := map[string]int{}
		for i, f := range out.Logs {
			byPath[f.Path] = i
		}
		for i, l := range res.Logs {
			if j, found := byPath[l.Path]; found && l.Path != "" && j < len(out.Logs) {
				f := out.Logs[j]
				if f.Error != "" {
					res.Logs[i].Error, res.Logs[i].Content = f.Error, l.tail
					continue
				}
				res.Logs[i].Content, res.Logs[i].Truncated = f.Content, f.Truncated
			}
		}
	}
	return res
}

// ReleaseDeployment reads the deployment of a release's state: its auto_deploy
// deployment, else its latest deployment to any fabric.
func ReleaseDeployment(raw json.RawMessage) string {
	var rel struct {
		DeployID string `json:"deploy_id"`
		Fabrics  map[string]workflows.FabricReach
	}
	_ = json.Unmarshal(raw, &rel)
	if rel.DeployID != "" {
		return rel.DeployID
	}
	latest := workflows.FabricReach{}
	for _, name := range sortedKeys(rel.Fabrics) {
		if r := rel.Fabrics[name]; r.At.After(latest.At) {
			latest = r
		}
	}
	return latest.DeploymentID
}

// ReadBuilds reads the builds of a deployment's state, failed ones first. What
// it cannot decode is listed in Problems; the rest is still shown.
func ReadBuilds(id string, raw json.RawMessage) LogsResult {
	res := LogsResult{DeploymentID: id, Logs: []BuildLog{}}
	var s struct {
		Status string                     `json:"status"`
		Builds map[string]json.RawMessage `json:"builds"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		res.Problems = append(res.Problems, fmt.Sprintf("could not read the state of %s: %v", id, err))
		// Builds may still be readable one by one.
		var loose map[string]json.RawMessage
		if json.Unmarshal(raw, &loose) == nil {
			_ = json.Unmarshal(loose["builds"], &s.Builds)
			_ = json.Unmarshal(loose["status"], &s.Status)
		}
	}
	res.Status = s.Status
	for _, name := range sortedKeys(s.Builds) {
		var b workflows.PipelineBuild
		if err := json.Unmarshal(s.Builds[name], &b); err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("could not read the build of %s: %v", name, err))
			continue
		}
		if b.Status == workflows.StepPending {
			continue
		}
		l := BuildLog{Pipeline: name, Status: BuildWord(b), Path: b.LogPath, tail: b.LogTail}
		if l.Path == "" && b.LogTail != "" {
			l.Content = b.LogTail
		}
		if l.Path == "" && b.LogTail == "" && b.Error != "" {
			l.Content = b.Error
		}
		res.Logs = append(res.Logs, l)
	}
	sort.SliceStable(res.Logs, func(i, j int) bool {
		return res.Logs[i].Status == "failed" && res.Logs[j].Status != "failed"
	})
	return res
}

// BuildWord says what happened to a pipeline's build.
func BuildWord(b workflows.PipelineBuild) string {
	switch {
	case b.Status == workflows.StepFailed:
		return "failed"
	case b.Status == workflows.StepDone && b.Cached:
		return "cached"
	case b.Status == workflows.StepDone:
		return "built"
	default:
		return string(b.Status)
	}
}
