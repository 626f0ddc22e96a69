package cli

import (
	"context"
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/shipline/shipline/workflows"
)

// windowFlags are --override-window and --reason of deploy, promote and
// approve: enter a stage while it is closed (outside its change windows or in
// a freeze). Only the owner team of the stage's fabrics may; the override is
// part of the signed request and shows in `shipline audit`.
type windowFlags struct {
	override bool
	reason   string
}

func (w *windowFlags) flags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.BoolFlag{Name: "override-window", Usage: "go ahead while the stage is closed (outside its change windows or in a freeze); owner team of the stage only, with --reason; audited", Destination: &w.override},
		&ucli.StringFlag{Name: "reason", Usage: "why the change cannot wait for the window (required with --override-window; recorded)", Destination: &w.reason},
	}
}

// request is the override to send (nil without --override-window); bad usage exits 2.
func (w windowFlags) request() (*workflows.WindowOverride, error) {
	reason := strings.TrimSpace(w.reason)
	switch {
	case !w.override && reason != "":
		return nil, invalid("--reason goes with --override-window")
	case !w.override:
		return nil, nil
	case reason == "":
		return nil, invalid("--override-window needs --reason: say why the change cannot wait for the window (it is recorded in the audit), e.g. --reason \"hotfix for INC-42\"")
	}
	return &workflows.WindowOverride{Reason: reason}, nil
}

// recheckWindowCommand wakes a deploy or promotion waiting for a change
// window, so it reads the windows again now (after platform.yaml changed and
// the worker restarted) instead of at its next wake.
func recheckWindowCommand(g *globals) *ucli.Command {
	return &ucli.Command{
		Name:      "recheck-window",
		Usage:     "make a deploy or promotion waiting for a stage's change window read the windows again now",
		ArgsUsage: "ID",
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return invalid("recheck-window takes one deployment or promotion ID, e.g. `shipline recheck-window promote/demo/v1.2.0`")
			}
			return runRecheckWindow(c.Context, g, c.Args().First())
		},
	}
}

func runRecheckWindow(ctx context.Context, g *globals, id string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	desc, err := c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return notFound(id, err)
	}
	if t := desc.WorkflowType.Name; t != workflows.DeployWorkflow && t != workflows.PromoteWorkflow {
		return invalid("%s is a %s workflow: only a deployment or a promotion waits for change windows", id, t)
	}
	if desc.WorkflowCloseTime != nil && !desc.WorkflowCloseTime.IsZero() {
		return failed(fmt.Errorf("%s has ended: nothing waits for a window", id))
	}
	if err := c.SignalWorkflow(ctx, id, "", workflows.RecheckWindowSignal, nil); err != nil {
		return failed(fmt.Errorf("signal %s: %s", id, cleanWorkflowError(err)))
	}
	if !g.json() {
		fmt.Fprintf(g.stdout, "%s reads its change windows again (within a minute: a workflow reads them at most once a minute); `shipline status %s` shows whether it goes on\n", id, id)
	}
	return nil
}

// windowOverrideLine is what approve --override-window prints.
func windowOverrideLine(st workflows.StageState) string {
	reason := ""
	if st.Override != nil {
		reason = st.Override.Reason
	}
	if st.Status == workflows.StageClosed {
		return fmt.Sprintf("%s: window override recorded (%s): the stage goes ahead while closed", st.Name, reason)
	}
	return fmt.Sprintf("%s: window override recorded (%s): if the stage is closed when it deploys, it goes ahead", st.Name, reason)
}

// stageWindowLine says how a stage of a promotion met a closed window when
// the stage line alone does not: entered by whose override and why, or the
// override refused while it waits ("" otherwise).
func stageWindowLine(st workflows.StageState) string {
	if w := st.Window; w != nil && (w.Override != nil || w.Refused != "") {
		return w.Text()
	}
	return ""
}
