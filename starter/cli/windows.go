package cli

import (
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
