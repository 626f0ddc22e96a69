package cli

import (
	"context"
	"fmt"
	"github.com/shipline/shipline/internal/views"
	"io"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/workflows"
)

// A gate shows its stage's plan (workflows/promote_plan.go): `status`,
// `promote --wait` and `approve` print it, and an approval sends the hash of
// the plan it showed, signed with the vote.

// gatePlan reads the stage as its gate shows it now, from the promotion (or
// rollback) id, when it shows a plan or why it has none; nil otherwise (the
// workflow says why if an approval needs one).
func gatePlan(ctx context.Context, c client.Client, id, stage string) *workflows.StageState {
	var s workflows.PromoteState
	if _, err := views.QueryState(ctx, c, id, "", &s); err != nil {
		return nil
	}
	for _, st := range s.Stages {
		if st.Name == stage && (st.Plan != nil || st.PlanError != "") {
			return &st
		}
	}
	return nil
}

// printPlan prints a stage's plan, e.g.
//
//	plan of prod (sha256 0123456789ab):
//	  prod         daily_orders       update v1.1.0 → v1.2.0 (upgrade from v1.1.0)
//	  prod         ingest_orders      artifact /Volumes/…/ingest_orders-1.2.0-py3-none-any.whl sha256 4f2a…
func printPlan(w io.Writer, indent string, st workflows.StageState) {
	if st.Plan == nil {
		if st.PlanError != "" {
			fmt.Fprintf(w, "%splan of %s: could not be computed: %s\n", indent, st.Name, firstLine(st.PlanError))
		}
		return
	}
	p := st.Plan
	fmt.Fprintf(w, "%splan of %s (sha256 %s):\n", indent, st.Name, shortHash12(p.Hash))
	if len(p.Changes) == 0 {
		fmt.Fprintf(w, "%s  no jobs\n", indent)
	}
	for _, c := range p.Changes {
		fmt.Fprintf(w, "%s  %-12s %-18s %s\n", indent, c.Fabric, c.Job, c.Line())
	}
	for _, a := range p.Artifacts {
		sum := "sha256 " + shortHash12(a.SHA256)
		if a.SHA256 == "" {
			sum = "built by the deployment"
		}
		fmt.Fprintf(w, "%s  %-12s %-18s artifact %s %s\n", indent, a.Fabric, a.Pipeline, a.Path, sum)
	}
}

// printReopens prints why a stage's gate reopened: the difference between
// the approved plan and the new one.
func printReopens(g *globals, indent string, st workflows.StageState) {
	for _, r := range st.Reopened {
		var dropped []string
		for _, v := range r.Dropped {
			dropped = append(dropped, v.Actor)
		}
		fmt.Fprintf(g.stdout, "%sreopened %s: the plan of %s changed after %s approved plan %s; the new plan is %s:\n", indent,
			g.local(r.At).Format(time.DateTime), st.Name, orDash(strings.Join(dropped, ", ")), orDash(shortHash12(r.ApprovedHash)), orDash(shortHash12(r.Hash)))
		if r.AtLock {
			fmt.Fprintf(g.stdout, "%s  (found by deployment %s once it held the stage's fabrics; it wrote nothing)\n", indent, r.DeploymentID)
		}
		for _, c := range r.Changes {
			fmt.Fprintf(g.stdout, "%s  - %s\n", indent, c)
		}
	}
}

// printGatePlans prints the plans of the stages waiting at their gate (or
// between the gate and the deployment), and every reopen.
func printGatePlans(g *globals, indent string, stages []workflows.StageState) {
	for _, st := range stages {
		if st.Status == workflows.StageApproval || st.Status == workflows.StageSoaking {
			printPlan(g.stdout, indent, st)
		}
		printReopens(g, indent, st)
	}
}

// checkReviewedFlag checks approve's --plan: a plan's hash as `status`
// prints it (its first 12 hex characters) or whole.
func checkReviewedFlag(reviewed string) error {
	if reviewed == "" {
		return nil
	}
	if len(reviewed) < 12 || len(reviewed) > 64 || strings.Trim(reviewed, "0123456789abcdef") != "" {
		return invalid("--plan takes the hash of the plan you reviewed as `shipline status` prints it (12 hex characters, or all 64), not %q", reviewed)
	}
	return nil
}

// reviewedPlan is the hash an approval sends when the approver names the plan
// they reviewed (--plan): the whole hash of the plan the gate shows, or of
// one it showed before, that begins with it. Another plan than the one the
// gate shows goes to the promotion, which refuses it saying how the plan
// changed (and audits it). A gate that shows no plan cannot approve a
// reviewed one: refused here.
func reviewedPlan(shown *workflows.StageState, stage, id, reviewed string) (string, error) {
	if shown == nil || shown.Plan == nil {
		why := "it is being computed"
		if shown != nil && shown.PlanError != "" {
			why = "it could not be computed: " + firstLine(shown.PlanError)
		}
		return "", failed(fmt.Errorf("approve refused: you reviewed plan %s, but the %s gate shows no plan (%s); review it with `shipline status %s`", reviewed, stage, why, id))
	}
	hashes := []string{shown.Plan.Hash}
	for _, r := range shown.Reopened {
		hashes = append(hashes, r.ApprovedHash, r.Hash)
	}
	for _, h := range hashes {
		if h != "" && strings.HasPrefix(h, reviewed) {
			return h, nil
		}
	}
	return reviewed, nil
}

func shortHash12(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
