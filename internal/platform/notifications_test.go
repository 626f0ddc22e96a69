package platform

import "testing"

func TestNotificationWants(t *testing.T) {
	all := Notification{Events: []string{EventApprovalNeeded, EventPromoted}}
	scoped := Notification{Events: []string{EventApprovalNeeded}, Projects: []string{"demo"}, Stages: []string{"prod"}}
	for _, c := range []struct {
		n                     Notification
		event, project, stage string
		want                  bool
	}{
		{all, EventApprovalNeeded, "demo", "qa", true},
		{all, EventParked, "demo", "qa", false},
		{scoped, EventApprovalNeeded, "demo", "prod", true},
		{scoped, EventApprovalNeeded, "demo", "qa", false},
		{scoped, EventApprovalNeeded, "other", "prod", false},
		// An event of no stage (a deploy outside promotions) is not one of its stages.
		{scoped, EventApprovalNeeded, "demo", "", false},
		{all, EventApprovalNeeded, "demo", "", true},
	} {
		if got := c.n.Wants(c.event, c.project, c.stage); got != c.want {
			t.Errorf("%+v.Wants(%s, %s, %s) = %v, want %v", c.n, c.event, c.project, c.stage, got, c.want)
		}
	}
}
