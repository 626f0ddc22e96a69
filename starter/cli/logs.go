package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/shipline/shipline/internal/views"
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
type buildLog = views.BuildLog

// logsResult is the JSON form of `logs`.
type logsResult = views.LogsResult

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
		if depID = views.ReleaseDeployment(rel); depID == "" {
			// A release whose builds failed before its tag has no deployment:
			// its own builds (step build and test) are the logs.
			if res := views.ReadBuilds(id, rel); len(res.Logs) > 0 {
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
	return printBuildLogs(ctx, g, c, depID, raw, views.ReadBuilds(depID, raw))
}

// printBuildLogs reads the log files of res's builds from the worker and
// prints them; id and raw are the deployment (or release) and its state.
func printBuildLogs(ctx context.Context, g *globals, c client.Client, id string, raw json.RawMessage, res logsResult) error {
	res = views.FillLogs(ctx, res, func(ctx context.Context, in workflows.ReadLogsInput) (workflows.ReadLogsOutput, error) {
		var out workflows.ReadLogsOutput
		err := readProject(ctx, g, c, deploymentProject(id, raw), workflows.ReadLogsUpdate, in, &out)
		return out, err
	})
	if g.json() {
		return printJSON(g, res)
	}
	printLogs(g, res)
	return nil
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
