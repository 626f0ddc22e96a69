package platform

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
)

// Notification is one target of notifications (platform.yaml notifications:):
// where Shipline posts the events it names. Its URL, and a webhook's signing
// secret, are read from the worker's environment: a webhook URL carries a
// token, so it never is in this file.
type Notification struct {
	Name string           `json:"name"`
	Kind NotificationKind `json:"kind"`
	// URLEnv names the environment variable holding the URL to post to.
	URLEnv string `json:"url_env"`
	// SecretEnv names the environment variable holding a webhook's HMAC key.
	SecretEnv string `json:"secret_env,omitempty"`
	// Events are the events posted to the target (Events below).
	Events []string `json:"events"`
	// RemindEvery repeats the reminder of an open approval gate (event reminder).
	RemindEvery time.Duration `json:"remind_every,omitempty"`
	// EscalateAfter tells EscalateTo, once, about a gate still open this long.
	EscalateAfter time.Duration `json:"escalate_after,omitempty"`
	EscalateTo    string        `json:"escalate_to,omitempty"`
	// Projects and Stages, when set, limit the events to those of these
	// projects and stages.
	Projects []string `json:"projects,omitempty"`
	Stages   []string `json:"stages,omitempty"`
}

// NotificationKind is how a target is posted to.
type NotificationKind string

const (
	// NotifySlack posts Slack's incoming-webhook JSON (text and blocks).
	NotifySlack NotificationKind = "slack"
	// NotifyWebhook posts the event as JSON, signed with HMAC-SHA256.
	NotifyWebhook NotificationKind = "webhook"
)

// Notification events: the names written in a target's events list and sent
// as the event of a webhook's JSON.
const (
	// EventApprovalNeeded: a promotion gate opened; it names who may approve.
	EventApprovalNeeded = "approval_needed"
	// EventReminder: a gate is still open, every remind_every.
	EventReminder = "reminder"
	// EventEscalation: a gate is still open escalate_after after it opened;
	// sent once to the escalate_to target (which needs not list it).
	EventEscalation = "escalation"
	// EventParked: a deployment parked and waits for resume or cancel.
	EventParked = "parked"
	// EventVerificationFailed: a stage's verification failed.
	EventVerificationFailed = "verification_failed"
	// EventRollback: a rollback started, finished or failed.
	EventRollback = "rollback"
	// EventPromoted: a promotion reached its target stage.
	EventPromoted = "promoted"
)

// NotificationEvents are the events a target may list.
var NotificationEvents = []string{EventApprovalNeeded, EventReminder, EventParked, EventVerificationFailed, EventRollback, EventPromoted}

var notificationKeys = []string{"name", "kind", "url_env", "url", "secret_env", "events", "remind_every", "escalate_after", "escalate_to", "projects", "stages"}

// Wants tells whether the target takes the event of a project (and stage,
// "" for none): it lists the event, and its projects and stages filters, when
// set, name them (a target with stages takes no event of a deployment outside
// a promotion).
func (n Notification) Wants(event, project, stage string) bool {
	if !slices.Contains(n.Events, event) {
		return false
	}
	if len(n.Projects) > 0 && !slices.Contains(n.Projects, project) {
		return false
	}
	return len(n.Stages) == 0 || slices.Contains(n.Stages, stage)
}

// notifications decodes notifications: a list of targets. Projects and
// stages are read before it.
func (p *parser) notifications(k, v *yaml.Node) {
	if yamlnode.IsNull(v) {
		p.Errorf(k, "list targets, e.g. - {name: team, kind: slack, url_env: SLACK_URL, events: [approval_needed]}, or remove notifications:",
			"notifications is empty")
		return
	}
	if yamlnode.Resolve(v).Kind != yaml.SequenceNode {
		p.Errorf(v, "write notifications as a YAML list: - {name: team, kind: slack, url_env: SLACK_URL, events: [approval_needed]}",
			"notifications must be a list, not %s", yamlnode.KindName(yamlnode.Resolve(v)))
		return
	}
	lines := map[string]int{}           // target → line
	escalations := map[int]*yaml.Node{} // index → escalate_to node
	for i, item := range yamlnode.Resolve(v).Content {
		n, escNode, ok := p.notification(i, yamlnode.Resolve(item))
		if !ok {
			continue
		}
		if line, dup := lines[n.Name]; dup && n.Name != "" {
			p.Errorf(valueOf(item, "name"), "give every notification target its own name",
				"notification target %q is defined twice (first at line %d)", n.Name, line)
		} else if n.Name != "" {
			lines[n.Name] = valueOf(item, "name").Line
		}
		if escNode != nil {
			escalations[len(p.c.Notifications)] = escNode
		}
		p.c.Notifications = append(p.c.Notifications, n)
	}
	for i, n := range p.c.Notifications {
		at := escalations[i]
		switch {
		case at == nil:
		case n.EscalateTo == n.Name:
			p.Errorf(at, "name another target (e.g. the leads' channel) to tell when a gate stays open",
				"notification target %s escalates to itself", n.Name)
		case lines[n.EscalateTo] == 0:
			p.Errorf(at, "name a target defined under notifications:"+knownTargets(p.c.Notifications),
				"notification target %s: escalate_to %q is not a notification target", n.Name, n.EscalateTo)
		}
	}
}

// notification decodes one target; it returns the escalate_to node, checked
// once every target is read.
func (p *parser) notification(i int, n *yaml.Node) (Notification, *yaml.Node, bool) {
	field := fmt.Sprintf("notifications[%d]", i)
	var t Notification
	var escNode, remindNode, afterNode, secretNode, eventsNode *yaml.Node
	seen := map[string]bool{}
	ok := p.Map(n, field, notificationKeys, func(key string, kk, vv *yaml.Node) {
		seen[key] = true
		switch key {
		case "name":
			if s, ok := p.String(vv, field+".name"); ok {
				t.Name = s
				if p.checkName(vv, s, "notification target name") {
					field = "notification target " + s
				}
			}
		case "kind":
			if s, ok := p.String(vv, field+".kind"); ok {
				t.Kind = NotificationKind(s)
				if t.Kind != NotifySlack && t.Kind != NotifyWebhook {
					p.Errorf(vv, "write kind: slack (Slack's incoming webhooks) or kind: webhook (signed JSON)",
						"%s: unknown kind %q (kinds: slack, webhook)", field, s)
				}
			}
		case "url":
			// Never echo the value: it is likely a URL with its token.
			p.Errorf(kk, "set the URL in an environment variable of the worker (e.g. SLACK_URL=https://hooks.slack.com/...) and write url_env: SLACK_URL; rotate the URL if this file was shared",
				"%s: url is not allowed in platform.yaml: webhook URLs carry tokens", field)
		case "url_env":
			if s, ok := p.String(vv, field+".url_env"); ok && strings.Contains(s, "://") {
				p.Errorf(vv, "set the URL in an environment variable of the worker (e.g. SLACK_URL=https://...) and write that variable's NAME here; rotate the URL if this file was shared",
					"%s.url_env is a URL, not the name of an environment variable: webhook URLs carry tokens", field)
				return
			}
			t.URLEnv, _ = p.env(vv, field+".url_env", "SLACK_URL")
		case "secret_env":
			t.SecretEnv, _ = p.env(vv, field+".secret_env", "SHIPLINE_WEBHOOK_SECRET")
			secretNode = vv
		case "events":
			eventsNode = vv
			list, nodes, _ := p.StringList(vv, field+".events")
			for j, e := range list {
				switch {
				case e == EventEscalation:
					p.Errorf(nodes[j], "remove it: a target receives escalations when another target names it in escalate_to",
						"%s.events: %q is not listed; it goes to escalate_to targets", field, e)
				case !slices.Contains(NotificationEvents, e):
					p.Errorf(nodes[j], "events: "+strings.Join(NotificationEvents, ", "),
						"%s.events: unknown event %q", field, e)
				case slices.Contains(t.Events, e):
					p.Errorf(nodes[j], "list each event once", "%s.events: %q is listed twice", field, e)
				default:
					t.Events = append(t.Events, e)
				}
			}
			if len(list) == 0 && yamlnode.Resolve(vv).Kind == yaml.SequenceNode {
				p.Errorf(vv, "list the events to post, e.g. events: [approval_needed, reminder, promoted]", "%s.events is empty", field)
			}
		case "remind_every":
			t.RemindEvery = p.period(vv, field+".remind_every", "how often to remind while a gate waits, e.g. 4h")
			remindNode = vv
		case "escalate_after":
			t.EscalateAfter = p.period(vv, field+".escalate_after", "how long a gate waits before escalate_to is told, e.g. 24h")
			afterNode = vv
		case "escalate_to":
			if s, ok := p.String(vv, field+".escalate_to"); ok {
				t.EscalateTo, escNode = s, vv
			}
		case "projects":
			list, nodes, _ := p.StringList(vv, field+".projects")
			for j, name := range list {
				if _, ok := p.c.Projects[name]; !ok {
					p.Errorf(nodes[j], "name a project registered under projects:"+known("projects", p.c.Projects),
						"%s.projects: project %q is not registered", field, name)
					continue
				}
				t.Projects = append(t.Projects, name)
			}
		case "stages":
			list, nodes, _ := p.StringList(vv, field+".stages")
			for j, name := range list {
				if !slices.ContainsFunc(p.c.Promotion.Stages, func(s Stage) bool { return s.Name == name }) {
					p.Errorf(nodes[j], "name a stage of promotion.stages"+knownStages(p.c.Promotion.Stages),
						"%s.stages: stage %q is not defined", field, name)
					continue
				}
				t.Stages = append(t.Stages, name)
			}
		}
	})
	if !ok {
		return t, nil, false
	}
	missing := func(key, fix string) {
		if !seen[key] {
			p.Errorf(n, fix, "%s has no %s", field, key)
		}
	}
	missing("name", "add name: <target>, e.g. name: team")
	missing("kind", "add kind: slack or kind: webhook")
	missing("url_env", "add url_env: <VARIABLE> naming the environment variable of the worker that holds the URL")
	missing("events", "add events: [...], e.g. events: ["+strings.Join(NotificationEvents, ", ")+"]")
	switch {
	case t.Kind == NotifyWebhook && !seen["secret_env"]:
		p.Errorf(n, "add secret_env: <VARIABLE> naming the environment variable that holds the signing key (receivers verify X-Shipline-Signature with it)",
			"%s is a webhook without secret_env: its posts must be signed", field)
	case t.Kind == NotifySlack && secretNode != nil:
		p.Errorf(secretNode, "remove secret_env: Slack's incoming webhooks are not signed (the URL is the secret)",
			"%s: secret_env is for kind: webhook", field)
	}
	hasReminder := slices.Contains(t.Events, EventReminder)
	switch {
	case remindNode != nil && !hasReminder && eventsNode != nil:
		p.Errorf(remindNode, "add reminder to events, or remove remind_every", "%s has remind_every but its events do not list reminder", field)
	case remindNode == nil && hasReminder:
		p.Errorf(eventsNode, "add remind_every: 4h (how often to remind while a gate waits)", "%s lists reminder but has no remind_every", field)
	}
	switch {
	case afterNode != nil && escNode == nil && !seen["escalate_to"]:
		p.Errorf(afterNode, "add escalate_to: <target> (who to tell when a gate stays open), or remove escalate_after", "%s has escalate_after but no escalate_to", field)
	case escNode != nil && afterNode == nil && !seen["escalate_after"]:
		p.Errorf(escNode, "add escalate_after: 24h (how long a gate waits before escalate_to is told)", "%s has escalate_to but no escalate_after", field)
	case afterNode != nil && eventsNode != nil && !slices.Contains(t.Events, EventApprovalNeeded):
		p.Errorf(afterNode, "add approval_needed to events: escalation follows the gates this target is told about",
			"%s has escalate_after but its events do not list approval_needed", field)
	}
	return t, escNode, true
}

// period decodes a duration that must be longer than 0.
func (p *parser) period(v *yaml.Node, field, what string) time.Duration {
	d, ok := p.duration(v, field, true)
	if ok && d == 0 {
		p.Errorf(v, "write "+what+", or remove it", "%s must be longer than 0", field)
	}
	return d
}

func knownTargets(ts []Notification) string {
	var names []string
	for _, t := range ts {
		if t.Name != "" && !slices.Contains(names, t.Name) {
			names = append(names, t.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (targets: " + strings.Join(names, ", ") + ")"
}

func knownStages(stages []Stage) string {
	var names []string
	for _, s := range stages {
		names = append(names, s.Name)
	}
	if len(names) == 0 {
		return " (promotion.stages defines none)"
	}
	return " (stages: " + strings.Join(names, ", ") + ")"
}
