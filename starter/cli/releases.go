package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/internal/views"
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

func runReleases(ctx context.Context, g *globals, o releasesOptions) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	var tags []workflows.RemoteTag
	if o.refresh {
		if tags, err = remoteTags(ctx, g, c, o.project); err != nil {
			return err
		}
		tags = nonNilTags(tags)
	}
	rows, err := views.Releases(ctx, c, o.project, tags)
	if err != nil {
		return failed(err)
	}
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

// remoteTags asks the project's entity to list its remote's tags (the worker fetches them).
func remoteTags(ctx context.Context, g *globals, c client.Client, project string) ([]workflows.RemoteTag, error) {
	var out workflows.ListReleasesOutput
	if err := readProject(ctx, g, c, project, workflows.ListReleasesUpdate, workflows.ListReleasesInput{Project: project}, &out); err != nil {
		return nil, err
	}
	return out.Tags, nil
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

// releaseRow is one line of `shipline releases`.
type releaseRow = views.Release

// nonNilTags makes "the remote has no tags" differ from "the remote was not asked".
func nonNilTags(tags []workflows.RemoteTag) []workflows.RemoteTag {
	if tags == nil {
		return []workflows.RemoteTag{}
	}
	return tags
}
