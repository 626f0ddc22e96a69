package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	ucli "github.com/urfave/cli/v2"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/shipline/shipline/internal/version"
	"github.com/shipline/shipline/workflows"
)

type releasesOptions struct {
	project string
	refresh bool
}

func releasesCommand(g *globals) *ucli.Command {
	var o releasesOptions
	return &ucli.Command{
		Name:  "releases",
		Usage: "list a project's releases: version, commit, who, when, source, latest",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &o.project},
			&ucli.BoolFlag{Name: "refresh", Usage: "fetch tags from the remote, so tags created outside Shipline show too", Destination: &o.refresh},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 0 {
				return invalid("releases takes no arguments")
			}
			return runReleases(c.Context, g, o)
		},
	}
}

// releaseRow is one line of `shipline releases`.
type releaseRow struct {
	Version    string    `json:"version"`
	Commit     string    `json:"commit"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	Source     string    `json:"source"` // shipline or external
	Latest     bool      `json:"latest"`
	Status     string    `json:"status"` // released, releasing, or tagged (seen on the remote only)
	WorkflowID string    `json:"workflow_id,omitempty"`
	// Stages reached through promotion; Linked releases can no longer be deleted.
	Stages  []string `json:"stages,omitempty"`
	Fabrics []string `json:"fabrics,omitempty"`
	Linked  bool     `json:"linked"`
}

func runReleases(ctx context.Context, g *globals, o releasesOptions) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	rows, err := shiplineReleases(ctx, c, o.project)
	if err != nil {
		return failed(fmt.Errorf("list releases of %s: %w", o.project, err))
	}
	if o.refresh {
		tags, err := remoteTags(ctx, g, c, o.project)
		if err != nil {
			return err
		}
		rows = mergeTags(o.project, rows, tags)
	}
	markLatest(rows)
	if g.json() {
		if rows == nil {
			rows = []releaseRow{}
		}
		return printJSON(g, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(g.stdout, "no releases of %s yet%s\n", o.project, map[bool]string{false: " (--refresh also lists tags made outside Shipline)", true: ""}[o.refresh])
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tCOMMIT\tCREATED BY\tCREATED AT\tSOURCE\tSTATUS\tREACHED\t")
	for _, r := range rows {
		v := r.Version
		if r.Latest {
			v += " (latest)"
		}
		if r.Linked {
			v += " [linked]"
		}
		reached := strings.Join(r.Stages, ",")
		if reached == "" {
			reached = strings.Join(r.Fabrics, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", v, shortHash(r.Commit), r.CreatedBy, r.CreatedAt.Local().Format("2006-01-02 15:04"), r.Source, r.Status, reached)
	}
	return tw.Flush()
}

// shiplineReleases lists the project's Release entities from visibility.
func shiplineReleases(ctx context.Context, c client.Client, project string) ([]releaseRow, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", workflows.ReleaseWorkflow, workflows.ProjectKey.GetName(), project)
	byVersion := map[string]releaseRow{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 500})
		if err != nil {
			return nil, err
		}
		for _, ex := range resp.Executions {
			row, ok := releaseFromExecution(project, ex.GetExecution().GetWorkflowId(), ex.GetStatus(), ex.GetMemo())
			if !ok {
				continue
			}
			if prev, seen := byVersion[row.Version]; !seen || prev.Status != "released" {
				byVersion[row.Version] = row
			}
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			break
		}
	}
	rows := make([]releaseRow, 0, len(byVersion))
	for _, r := range byVersion {
		rows = append(rows, r)
	}
	return rows, nil
}

// releaseFromExecution reads a release row from an execution's memo. Refused and
// failed attempts made no tag, so they are not releases.
func releaseFromExecution(project, id string, status enumspb.WorkflowExecutionStatus, memo *commonpb.Memo) (releaseRow, bool) {
	_, v, ok := workflows.ParseReleaseID(id)
	if !ok {
		return releaseRow{}, false
	}
	var m struct {
		status, commit, by string
		at                 time.Time
		stages, fabrics    []string
		linked             bool
	}
	fields := memo.GetFields()
	dc := converter.GetDefaultDataConverter()
	_ = dc.FromPayload(fields[workflows.MemoStages], &m.stages)
	_ = dc.FromPayload(fields[workflows.MemoFabrics], &m.fabrics)
	_ = dc.FromPayload(fields[workflows.MemoLinked], &m.linked)
	_ = dc.FromPayload(fields[workflows.MemoStatus], &m.status)
	_ = dc.FromPayload(fields[workflows.MemoCommit], &m.commit)
	_ = dc.FromPayload(fields[workflows.MemoCreatedBy], &m.by)
	_ = dc.FromPayload(fields[workflows.MemoCreatedAt], &m.at)
	switch {
	case m.status == string(workflows.StatusReleased):
	case m.status == string(workflows.StatusRunning) && status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		m.status = "releasing"
	default:
		return releaseRow{}, false
	}
	return releaseRow{Version: v, Commit: m.commit, CreatedBy: m.by, CreatedAt: m.at, Source: "shipline", Status: m.status, WorkflowID: id,
		Stages: m.stages, Fabrics: m.fabrics, Linked: m.linked}, true
}

// remoteTags runs ListReleases on the worker, which fetches the remote's tags.
func remoteTags(ctx context.Context, g *globals, c client.Client, project string) ([]workflows.RemoteTag, error) {
	id := workflows.ListReleasesID(project, uuid.NewString())
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: g.taskQueue, WorkflowExecutionTimeout: 5 * time.Minute},
		workflows.ListReleasesWorkflow, workflows.ListReleasesInput{Project: project})
	if err != nil {
		return nil, failed(fmt.Errorf("start %s: %w", id, err))
	}
	var out workflows.ListReleasesOutput
	if err := run.Get(ctx, &out); err != nil {
		return nil, failed(fmt.Errorf("refresh tags of %s: %s", project, cleanWorkflowError(err)))
	}
	return out.Tags, nil
}

// mergeTags adds tags seen on the remote that no Release entity records.
func mergeTags(project string, rows []releaseRow, tags []workflows.RemoteTag) []releaseRow {
	have := map[string]int{}
	for i, r := range rows {
		have[r.Version] = i
	}
	for _, t := range tags {
		if i, ok := have[t.Version]; ok {
			if rows[i].Commit == "" {
				rows[i].Commit = t.Commit
			}
			continue
		}
		src := "external"
		if t.Shipline {
			src = "shipline"
		}
		rows = append(rows, releaseRow{Version: t.Version, Commit: t.Commit, CreatedBy: t.Creator, CreatedAt: t.Created, Source: src, Status: "tagged"})
	}
	return rows
}

// markLatest sorts newest version first and marks the latest release.
func markLatest(rows []releaseRow) {
	sort.SliceStable(rows, func(i, j int) bool { return version.Compare(rows[i].Version, rows[j].Version) > 0 })
	vs := make([]string, 0, len(rows))
	for _, r := range rows {
		if r.Status != "releasing" {
			vs = append(vs, r.Version)
		}
	}
	latest := version.Latest(vs)
	for i := range rows {
		rows[i].Latest = rows[i].Version == latest
	}
}

func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}
