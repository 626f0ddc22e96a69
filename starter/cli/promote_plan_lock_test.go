package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/workflows"
)

// `status` says when the stage's deployment found the plan changed once it
// held the fabrics (and wrote nothing), naming it.
func TestStatusReopenAtLockNamesTheDeployment(t *testing.T) {
	var out bytes.Buffer
	g := &globals{stdout: &out, loc: time.UTC}
	st := workflows.StageState{Name: "qa", Reopened: []workflows.GateReopen{{
		At: time.Date(2026, 11, 27, 17, 0, 0, 0, time.UTC), ApprovedHash: strings.Repeat("a", 64), Hash: strings.Repeat("b", 64),
		Changes: []string{"qa/daily_orders: action create → update; runs v1.1.1 now, was none"}, Dropped: []workflows.Vote{{Actor: "bob"}},
		AtLock: true, DeploymentID: "deploy/demo/v1.2.0/promote-qa-1a2b3c4d",
	}}}
	printReopens(g, "  ", st)
	want := "  reopened 2026-11-27 17:00:00: the plan of qa changed after bob approved plan aaaaaaaaaaaa; the new plan is bbbbbbbbbbbb:\n" +
		"    (found by deployment deploy/demo/v1.2.0/promote-qa-1a2b3c4d once it held the stage's fabrics; it wrote nothing)\n" +
		"    - qa/daily_orders: action create → update; runs v1.1.1 now, was none\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}
