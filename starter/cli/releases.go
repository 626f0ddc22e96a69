package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

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
	Version   string    `json:"version"`
	Commit    string    `json:"commit"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	Source    string    `json:"source"` // shipline, adopted (a tag pushed by hand, then released) or external
	Latest    bool      `json:"latest"`
	Status    string    `json:"status"` // released, releasing, or tagged (seen on the remote only)
	// Builds says how its builds and tests went — at release, before the tag
	// was pushed, or in its deployments: passed, tests failed, build failed,
	// or "" when nothing has built it yet. Only a release whose builds and
	// tests passed can be the latest.
	Builds     string `json:"builds"`
	WorkflowID string `json:"workflow_id,omitempty"`
	// Libraries the release published to package indexes ("common 1.2.0 on internal").
	Libraries []string `json:"libraries,omitempty"`
	// Stages reached through promotion; Fabrics it is deployed to. Linked
	// releases can no longer be deleted.
	Stages  []string `json:"stages"`
	Fabrics []string `json:"fabrics"`
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
	builds, err := releaseBuilds(ctx, c, o.project)
	if err != nil {
		return failed(fmt.Errorf("list deployments of %s: %w", o.project, err))
	}
	for i := range rows {
		rows[i].Builds = worseBuilds(rows[i].Builds, builds[rows[i].Version])
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
		for i := range rows {
			rows[i].Stages, rows[i].Fabrics = nonNil(rows[i].Stages), nonNil(rows[i].Fabrics)
		}
		return printJSON(g, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(g.stdout, "no releases of %s yet%s\n", o.project, map[bool]string{false: " (--refresh also lists tags made outside Shipline)", true: ""}[o.refresh])
		return nil
	}
	if err := printReleases(g, rows); err != nil {
		return err
	}
	printReleaseLibraries(g, rows)
	return printStages(ctx, g, c, o.project)
}

// printReleases prints the table of `shipline releases`.
func printReleases(g *globals, rows []releaseRow) error {
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tCOMMIT\tCREATED BY\tCREATED AT\tSOURCE\tSTATUS\tBUILDS\tSTAGES\tFABRICS\t")
	for _, r := range rows {
		v := r.Version
		if r.Latest {
			v += " (latest)"
		}
		if r.Linked {
			v += " [linked]"
		}
		builds := r.Builds
		if builds == "" && r.Source != "external" {
			builds = "not built yet"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", v, shortHash(r.Commit), r.CreatedBy, r.CreatedAt.Local().Format("2006-01-02 15:04"),
			r.Source, r.Status, orDash(builds), orDash(strings.Join(r.Stages, ",")), orDash(strings.Join(r.Fabrics, ",")))
	}
	return tw.Flush()
}

// releaseBuilds reads, per version, how the builds of its deployments went
// (their MemoBuilds): passed when any deployment built and tested every
// pipeline (or succeeded, for deployments that predate the memo field), else
// the failure seen (tests failed before build failed).
func releaseBuilds(ctx context.Context, c client.Client, project string) (map[string]string, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", workflows.DeployWorkflow, workflows.ProjectKey.GetName(), project)
	dc := converter.GetDefaultDataConverter()
	out := map[string]string{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 500})
		if err != nil {
			return nil, err
		}
		for _, ex := range resp.Executions {
			var v, builds, status string
			_ = dc.FromPayload(ex.GetSearchAttributes().GetIndexedFields()[workflows.VersionKey.GetName()], &v)
			fields := ex.GetMemo().GetFields()
			_ = dc.FromPayload(fields[workflows.MemoBuilds], &builds)
			_ = dc.FromPayload(fields[workflows.MemoStatus], &status)
			if builds == "" && status == string(workflows.StatusSucceeded) {
				builds = workflows.BuildsPassed
			}
			out[v] = worseBuilds(out[v], builds)
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return out, nil
		}
	}
}

// worseBuilds combines two deployments' build outcomes of one release: any
// pass wins (the same commit built and tested once), then tests failed, then
// build failed.
func worseBuilds(a, b string) string {
	for _, o := range []string{workflows.BuildsPassed, workflows.TestsFailed, workflows.BuildsFailed} {
		if a == o || b == o {
			return o
		}
	}
	return ""
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
		builds             string
		libraries          []string
		at                 time.Time
		stages, fabrics    []string
		linked, adopted    bool
	}
	fields := memo.GetFields()
	dc := converter.GetDefaultDataConverter()
	_ = dc.FromPayload(fields[workflows.MemoStages], &m.stages)
	_ = dc.FromPayload(fields[workflows.MemoFabrics], &m.fabrics)
	_ = dc.FromPayload(fields[workflows.MemoLinked], &m.linked)
	_ = dc.FromPayload(fields[workflows.MemoAdopted], &m.adopted)
	_ = dc.FromPayload(fields[workflows.MemoStatus], &m.status)
	_ = dc.FromPayload(fields[workflows.MemoCommit], &m.commit)
	_ = dc.FromPayload(fields[workflows.MemoCreatedBy], &m.by)
	_ = dc.FromPayload(fields[workflows.MemoCreatedAt], &m.at)
	_ = dc.FromPayload(fields[workflows.MemoBuilds], &m.builds)
	_ = dc.FromPayload(fields[workflows.MemoLibraries], &m.libraries)
	switch {
	case m.status == string(workflows.StatusReleased):
	case m.status == string(workflows.StatusRunning) && status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		m.status = "releasing"
	default:
		return releaseRow{}, false
	}
	source := "shipline"
	if m.adopted {
		source = "adopted"
	}
	return releaseRow{Version: v, Commit: m.commit, CreatedBy: m.by, CreatedAt: m.at, Source: source, Status: m.status, WorkflowID: id,
		Stages: m.stages, Fabrics: m.fabrics, Linked: m.linked, Builds: m.builds, Libraries: m.libraries}, true
}

// remoteTags asks the project's entity to list its remote's tags (the worker fetches them).
func remoteTags(ctx context.Context, g *globals, c client.Client, project string) ([]workflows.RemoteTag, error) {
	var out workflows.ListReleasesOutput
	if err := readProject(ctx, g, c, project, workflows.ListReleasesUpdate, workflows.ListReleasesInput{Project: project}, &out); err != nil {
		return nil, err
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
			if !t.Shipline && rows[i].Source == "shipline" {
				rows[i].Source = "adopted" // a release of a tag pushed by hand
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

// markLatest sorts newest version first and marks the latest release: the
// highest release of Shipline (not a tag pushed by hand) whose builds and
// tests passed.
func markLatest(rows []releaseRow) {
	sort.SliceStable(rows, func(i, j int) bool { return version.Compare(rows[i].Version, rows[j].Version) > 0 })
	vs := make([]string, 0, len(rows))
	for _, r := range rows {
		if r.Status == string(workflows.StatusReleased) && r.Source != "external" && r.Builds == workflows.BuildsPassed {
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

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
