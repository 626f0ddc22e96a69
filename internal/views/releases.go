package views

import (
	"context"
	"fmt"
	"sort"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/shipline/shipline/internal/version"
	"github.com/shipline/shipline/workflows"
)

// Release is one release of a project: a line of `shipline releases`, a row of the dashboard's releases page.
type Release struct {
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

// Releases lists the project's releases, newest first, the latest marked:
// its Release entities with how their builds went, plus tags (from the
// project's remote, when given) that no Release entity records.
func Releases(ctx context.Context, c client.Client, project string, tags []workflows.RemoteTag) ([]Release, error) {
	rows, err := ShiplineReleases(ctx, c, project)
	if err != nil {
		return nil, fmt.Errorf("list releases of %s: %w", project, err)
	}
	builds, err := ReleaseBuilds(ctx, c, project)
	if err != nil {
		return nil, fmt.Errorf("list deployments of %s: %w", project, err)
	}
	for i := range rows {
		rows[i].Builds = WorseBuilds(rows[i].Builds, builds[rows[i].Version])
	}
	if tags != nil {
		rows = MergeTags(project, rows, tags)
	}
	MarkLatest(rows)
	return rows, nil
}

// ReleaseBuilds reads, per version, how the builds of its deployments went
// (their MemoBuilds): passed when any deployment built and tested every
// pipeline (or succeeded, for deployments that predate the memo field), else
// the failure seen (tests failed before build failed).
func ReleaseBuilds(ctx context.Context, c client.Client, project string) (map[string]string, error) {
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
			out[v] = WorseBuilds(out[v], builds)
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return out, nil
		}
	}
}

// WorseBuilds combines two deployments' build outcomes of one release: any
// pass wins (the same commit built and tested once), then tests failed, then
// build failed.
func WorseBuilds(a, b string) string {
	for _, o := range []string{workflows.BuildsPassed, workflows.TestsFailed, workflows.BuildsFailed} {
		if a == o || b == o {
			return o
		}
	}
	return ""
}

// ShiplineReleases lists the project's Release entities from visibility.
func ShiplineReleases(ctx context.Context, c client.Client, project string) ([]Release, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", workflows.ReleaseWorkflow, workflows.ProjectKey.GetName(), project)
	byVersion := map[string]Release{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 500})
		if err != nil {
			return nil, err
		}
		for _, ex := range resp.Executions {
			row, ok := ReleaseFromExecution(project, ex.GetExecution().GetWorkflowId(), ex.GetStatus(), ex.GetMemo())
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
	rows := make([]Release, 0, len(byVersion))
	for _, r := range byVersion {
		rows = append(rows, r)
	}
	return rows, nil
}

// ReleaseFromExecution reads a release row from an execution's memo. Refused and
// failed attempts made no tag, so they are not releases.
func ReleaseFromExecution(project, id string, status enumspb.WorkflowExecutionStatus, memo *commonpb.Memo) (Release, bool) {
	_, v, ok := workflows.ParseReleaseID(id)
	if !ok {
		return Release{}, false
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
		return Release{}, false
	}
	source := "shipline"
	if m.adopted {
		source = "adopted"
	}
	return Release{Version: v, Commit: m.commit, CreatedBy: m.by, CreatedAt: m.at, Source: source, Status: m.status, WorkflowID: id,
		Stages: m.stages, Fabrics: m.fabrics, Linked: m.linked, Builds: m.builds, Libraries: m.libraries}, true
}

// MergeTags adds tags seen on the remote that no Release entity records.
func MergeTags(project string, rows []Release, tags []workflows.RemoteTag) []Release {
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
		rows = append(rows, Release{Version: t.Version, Commit: t.Commit, CreatedBy: t.Creator, CreatedAt: t.Created, Source: src, Status: "tagged"})
	}
	return rows
}

// MarkLatest sorts newest version first and marks the latest release: the
// highest release of Shipline (not a tag pushed by hand) whose builds and
// tests passed.
func MarkLatest(rows []Release) {
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
