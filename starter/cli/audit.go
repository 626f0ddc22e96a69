package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/shipline/shipline/internal/views"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"
)

// `shipline audit` prints the project's event log, read by views.Audit from
// workflow histories (see there which event becomes which row).

// auditRecord is one action on a project.
type auditRecord = views.AuditRecord

func auditCommand(g *globals) *ucli.Command {
	var o auditOptions
	return &ucli.Command{
		Name:  "audit",
		Usage: "every action on a project, in time order: who did what, when, on which version and fabric, and the result",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "project", Aliases: []string{"p"}, Required: true, Usage: "project name from platform.yaml", Destination: &o.project},
			&ucli.StringFlag{Name: "since", Usage: "only actions from `T` on: RFC 3339 (2026-11-22T10:00:00Z) or a duration back from now (24h, 90m)", Destination: &o.since},
			&ucli.BoolFlag{Name: "json", Usage: "print JSON lines, one object per action (same as --output json)", Destination: &o.json},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 0 {
				return invalid("audit takes no arguments, e.g. `shipline audit --project demo --since 24h`")
			}
			return runAudit(c.Context, g, o)
		},
	}
}

type auditOptions struct {
	project, since string
	json           bool
}

func parseAuditSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			d = -d
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, invalid("--since %q is neither a time (2026-11-22T10:00:00Z, 2026-11-22) nor a duration (24h, 90m)", s)
}

func runAudit(ctx context.Context, g *globals, o auditOptions) error {
	since, err := parseAuditSince(o.since, time.Now())
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	records, err := views.Audit(ctx, c, o.project)
	if err != nil {
		return failed(err)
	}
	if !since.IsZero() {
		kept := records[:0]
		for _, r := range records {
			if !r.Time.Before(since) {
				kept = append(kept, r)
			}
		}
		records = kept
	}
	if o.json || g.json() {
		enc := json.NewEncoder(g.stdout)
		for _, r := range records {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(records) == 0 {
		if since.IsZero() {
			fmt.Fprintf(g.stdout, "no actions recorded for %s\n", o.project)
		} else {
			fmt.Fprintf(g.stdout, "no actions recorded for %s since %s\n", o.project, since.Local().Format(time.DateTime))
		}
		return nil
	}
	return printAudit(g, records)
}

func printAudit(g *globals, records []auditRecord) error {
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tVERSION\tFABRIC/STAGE\tRESULT\tDETAIL\t")
	for _, r := range records {
		where := r.Fabric
		if r.Stage != "" {
			where = strings.TrimPrefix(where+" stage "+r.Stage, " ")
		}
		detail := firstLine(r.Detail)
		if r.Via != "" {
			detail = "via " + r.Via + "; " + detail
		}
		if r.Trigger != "" && r.Trigger != "cli" {
			detail = strings.TrimSuffix("by "+r.Trigger+"; "+detail, "; ")
		}
		if len(detail) > 100 {
			detail = detail[:97] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Time.Local().Format(time.DateTime), orDash(r.Who()), r.Action, orDash(r.Version), orDash(where), r.Result, detail)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
