package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/platform"
)

// notifyParked tells the notification targets that the deployment parked:
// where, why, and the command that resumes it. A deployment of a promotion
// links to the promotion's page.
func (d *deployment) notifyParked(ctx workflow.Context, p Parked) {
	if d.settings == nil || d.settings.Notify == nil {
		return
	}
	e := activities.NotifyEvent{Event: platform.EventParked, Project: d.in.Project, Version: d.in.Version, Stage: d.in.Stage,
		Actor: d.in.Actor, Reason: p.Reason, Summary: d.state.DeploymentID + " " + d.state.Summary}
	if d.in.Stage != "" {
		e.URL = activities.PromotionURL(d.settings.Notify.WebURL, d.in.Project, d.in.Version)
	}
	d.notices.send(ctx, d.settings.Notify, e)
}
