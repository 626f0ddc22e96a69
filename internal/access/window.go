package access

import (
	"errors"
	"strings"
)

// OverrideWindow checks that actor may deploy into a stage while it is
// closed (outside its change windows, or in a freeze): a member of the owner
// team of every fabric of the stage, who says why.
func OverrideWindow(stage string, owners []Owner, actor, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return errors.New("--override-window needs --reason: say why the change cannot wait (it is recorded in the audit)")
	}
	return stageOwner("override the change windows of", stage, owners, actor,
		"only the owner team of the stage's fabrics may deploy into it while it is closed (outside its windows or in a freeze)")
}
