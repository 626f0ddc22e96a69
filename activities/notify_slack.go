package activities

import (
	"strings"

	"github.com/shipline/shipline/internal/platform"
)

// slackMessage is Slack's incoming-webhook payload of an event: the plain
// text (shown in notifications) and blocks: a section with the event and,
// when the dashboard is configured, a button to its page.
func slackMessage(e NotifyEvent) map[string]any {
	title := eventTitle(e)
	body := "*" + slackEscape(title) + "*\n" + slackEscape(e.Summary)
	if len(e.Approvers) > 0 {
		body += "\n*May approve:* " + slackEscape(strings.Join(e.Approvers, ", "))
	}
	blocks := []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": body}}}
	if e.URL != "" {
		blocks = append(blocks, map[string]any{"type": "actions", "elements": []any{map[string]any{
			"type": "button", "text": map[string]any{"type": "plain_text", "text": "Open promotion"}, "url": e.URL,
		}}})
	}
	return map[string]any{"text": title + ": " + e.Summary, "blocks": blocks}
}

// eventTitle names the event for people: "Approval needed: v1.2.0 of demo at prod".
func eventTitle(e NotifyEvent) string {
	what := map[string]string{
		platform.EventApprovalNeeded:     "Approval needed",
		platform.EventReminder:           "Reminder: approval needed",
		platform.EventEscalation:         "Escalation: approval still needed",
		platform.EventParked:             "Deployment parked",
		platform.EventVerificationFailed: "Verification failed",
		platform.EventRollback:           "Rollback " + e.Phase,
		platform.EventPromoted:           "Promoted",
	}[e.Event]
	if what == "" {
		what = e.Event
	}
	subject := e.Project
	if e.Version != "" {
		subject = e.Version + " of " + e.Project
	}
	if e.Stage != "" {
		subject += " at " + e.Stage
	}
	return what + ": " + subject
}

// slackEscape escapes the characters Slack's mrkdwn gives a meaning to
// (&, <, >), so a user's text cannot turn into a link or a mention.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
