package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/workflows"
)

func logsCommand(g *globals) *ucli.Command {
	return &ucli.Command{
		Name:      "logs",
		Usage:     "print a deployment's build logs, a failed build's first (a release ID shows its deployment's, or the release's own builds and tests when they failed before the tag)",
		ArgsUsage: "ID",
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return invalid("logs takes one deployment or release ID, e.g. `shipline logs deploy/demo/v1.0.0/release`")
			}
			return runLogs(c.Context, g, c.Args().First())
		},
	}
}

// buildLog is one pipeline's build log as `logs` prints it.
type buildLog struct {
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

// logsResult is the JSON form of `logs`.
type logsResult struct {
	DeploymentID string     `json:"deployment_id"`
	Status       string     `json:"status,omitempty"`
	Logs         []buildLog `json:"logs"`
	// Problems lists what could not be read from the deployment's state.
	Problems []string `json:"problems,omitempty"`
}

func runLogs(ctx context.Context, g *globals, id string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	depID := id
	if _, _, ok := workflows.ParseReleaseID(id); ok {
		var rel json.RawMessage
		ok, _, err := g.follower(c, id, "").next(ctx, &rel)
		if err != nil {
			return err
		}
		if !ok {
			return failed(fmt.Errorf("%s did not answer with its state; try `shipline status %s`", id, id))
		}
		if depID = releaseDeployment(rel); depID == "" {
			// A release whose builds failed before its tag has no deployment:
			// its own builds (step build and test) are the logs.
			if res := readBuilds(id, rel); len(res.Logs) > 0 {
				return printBuildLogs(ctx, g, c, id, rel, res)
			}
			if g.json() {
				return printJSON(g, logsResult{Logs: []buildLog{}, Problems: []string{id + " has no deployment yet"}})
			}
			fmt.Fprintf(g.stdout, "%s has no deployment yet: deploy it with `shipline deploy`\n", id)
			return nil
		}
	}
	var raw json.RawMessage
	ok, _, err := g.follower(c, depID, "").next(ctx, &raw)
	if err != nil {
		return err
	}
	if !ok {
		return failed(fmt.Errorf("%s did not answer with its state; try `shipline status %s`", depID, depID))
	}
	return printBuildLogs(ctx, g, c, depID, raw, readBuilds(depID, raw))
}

// printBuildLogs reads the log files of res's builds from the worker and
// prints them; id and raw are the deployment (or release) and its state.
func printBuildLogs(ctx context.Context, g *globals, c client.Client, id string, raw json.RawMessage, res logsResult) error {
	var paths []string
	for _, l := range res.Logs {
		if l.Path != "" {
			paths = append(paths, l.Path)
		}
	}
	if len(paths) > 0 {
		var out workflows.ReadLogsOutput
		if err := readProject(ctx, g, c, deploymentProject(id, raw), workflows.ReadLogsUpdate, workflows.ReadLogsInput{Paths: paths}, &out); err != nil {
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
	if g.json() {
		return printJSON(g, res)
	}
	printLogs(g, res)
	return nil
}

// releaseDeployment reads the deployment of a release's state: its auto_deploy
// deployment, else its latest deployment to any fabric.
func releaseDeployment(raw json.RawMessage) string {
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

// readBuilds reads the builds of a deployment's state, failed ones first. What
// it cannot decode is listed in Problems; the rest is still shown.
func readBuilds(id string, raw json.RawMessage) logsResult {
	res := logsResult{DeploymentID: id, Logs: []buildLog{}}
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
		l := buildLog{Pipeline: name, Status: buildWord(b), Path: b.LogPath, tail: b.LogTail}
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

// buildWord says what happened to a pipeline's build.
func buildWord(b workflows.PipelineBuild) string {
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

func printLogs(g *globals, res logsResult) {
	for _, p := range res.Problems {
		fmt.Fprintf(g.stdout, "[%s]\n", p)
	}
	if len(res.Logs) == 0 {
		status := res.Status
		if status == "" {
			status = "unknown"
		}
		fmt.Fprintf(g.stdout, "%s has no build logs yet (status %s)\n", res.DeploymentID, status)
		return
	}
	for _, l := range res.Logs {
		where := l.Path
		if where == "" {
			where = "no log file"
		}
		fmt.Fprintf(g.stdout, "==> %s (%s): %s <==\n", l.Pipeline, l.Status, where)
		if l.Truncated {
			fmt.Fprintln(g.stdout, "[… earlier output cut; the full log is in the workers' shared storage at "+l.Path+"]")
		}
		if l.Error != "" {
			fmt.Fprintf(g.stdout, "[cannot read: %s]\n", l.Error)
		}
		if c := strings.TrimRight(l.Content, "\n"); c != "" {
			fmt.Fprintln(g.stdout, c)
		}
	}
}
