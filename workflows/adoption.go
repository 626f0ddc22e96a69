package workflows

import (
	"encoding/json"
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
)

// notAdoptedMessage is what a user reads when they deploy or promote a tag
// made outside Shipline.
func notAdoptedMessage(project, version string) string {
	return fmt.Sprintf("%s was tagged outside Shipline; a project admin adopts it with `shipline release %s --project %s`",
		version, version, project)
}

// releaseRecord reads the Release entity of a version; missing is true when
// there is none (never released through Shipline).
func releaseRecord(ctx workflow.Context, project, version string) (rel ReleaseState, missing bool, err error) {
	var q activities.QueryOutput
	qin := activities.QueryInput{WorkflowID: ReleaseID(project, version), Query: StateQuery}
	if err := workflow.ExecuteActivity(shortActivity(ctx), messageActs.Query, qin).Get(ctx, &q); err != nil {
		return rel, false, err
	}
	if q.Missing {
		return rel, true, nil
	}
	return rel, false, json.Unmarshal(q.Result, &rel)
}

// notReleasedReason says why a version whose tag exists on the remote may not
// be deployed, "" when its Release recorded it. Only a released (not deleted,
// not refused) Release entity makes a tag a release.
func notReleasedReason(project, version string, rel ReleaseState, missing bool) (errType, msg string) {
	switch {
	case missing, rel.Status == StatusRefused, rel.Status == StatusFailed, rel.Status == StatusCancelled:
		return apperr.NotAdopted, notAdoptedMessage(project, version)
	case rel.Status == StatusDeleted:
		return apperr.NotReleased, fmt.Sprintf("%s of %s was deleted; its tag was pushed again outside Shipline: a project admin adopts it with `shipline release %s --project %s`",
			version, project, version, project)
	case rel.Status != StatusReleased:
		return apperr.NotReleased, fmt.Sprintf("the release of %s of %s is %s, not released yet; deploy it once `shipline status %s` says released",
			version, project, rel.Status, ReleaseID(project, version))
	}
	return "", ""
}

// checkReleased refuses a deployment of a tag no Release recorded (run after
// resolve found the tag). Deployments started by the release's own Release or
// Promote workflow are recorded by definition.
func (d *deployment) checkReleased(ctx workflow.Context) error {
	if changeVersion(ctx, ChangeReleaseRecordCheck) == workflow.DefaultVersion {
		return nil
	}
	if parent := workflow.GetInfo(ctx).ParentWorkflowExecution; parent != nil {
		if parent.ID == ReleaseID(d.in.Project, d.in.Version) || parent.ID == PromoteID(d.in.Project, d.in.Version) {
			return nil
		}
	}
	rel, missing, err := releaseRecord(ctx, d.in.Project, d.in.Version)
	if err != nil {
		return err
	}
	if errType, msg := notReleasedReason(d.in.Project, d.in.Version, rel, missing); errType != "" {
		return d.refuse(ctx, StepResolveRelease, errType, msg)
	}
	return nil
}
