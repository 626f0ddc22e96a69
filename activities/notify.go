package activities

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/platform"
)

// Headers of a notification post.
const (
	// SignatureHeader carries "sha256=<hex>": HMAC-SHA256 of the raw body
	// with the target's secret (webhook targets only).
	SignatureHeader = "X-Shipline-Signature"
	// DeliveryHeader carries a delivery's stable ID: a retried delivery
	// carries the same, so a receiver can drop duplicates.
	DeliveryHeader = "X-Shipline-Delivery"
	// EventHeader carries the event's name.
	EventHeader = "X-Shipline-Event"
)

// notifyTimeout bounds one post; the activity's retries do the rest.
const notifyTimeout = 15 * time.Second

// NotifySettings are the notification targets of platform.yaml (names of
// environment variables, never their values) and the dashboard's address
// for links; workflows decide from them which targets an event goes to and
// when reminders and escalations are due.
type NotifySettings struct {
	Targets []platform.Notification `json:"targets"`
	// WebURL is the dashboard's base URL ("" without one: no links).
	WebURL string `json:"web_url,omitempty"`
}

// notifySettings returns the targets that may take events of the project
// (targets it names for escalation included); nil when there are none.
func notifySettings(cfg *platform.Config, project string) *NotifySettings {
	var out NotifySettings
	for _, n := range cfg.Notifications {
		if len(n.Projects) == 0 || slices.Contains(n.Projects, project) ||
			slices.ContainsFunc(cfg.Notifications, func(o platform.Notification) bool { return o.EscalateTo == n.Name }) {
			out.Targets = append(out.Targets, n)
		}
	}
	if len(out.Targets) == 0 {
		return nil
	}
	out.WebURL = webURL(cfg)
	return &out
}

// NotifyEvent is what a notification says: the JSON a webhook target
// receives, and what a Slack message is written from.
type NotifyEvent struct {
	// Event is one of platform's Event* names.
	Event   string `json:"event"`
	Project string `json:"project"`
	Version string `json:"version,omitempty"`
	Stage   string `json:"stage,omitempty"`
	// Actor is who the event is about (the requester, the deployer).
	Actor string `json:"actor,omitempty"`
	// Approvers are who may approve an open gate.
	Approvers []string `json:"approvers,omitempty"`
	// Phase of a rollback: started, finished or failed.
	Phase  string `json:"phase,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Summary is the event in one sentence, for people.
	Summary string `json:"summary"`
	// URL is the page to open (the promotion's), when the dashboard is configured.
	URL  string    `json:"url,omitempty"`
	Time time.Time `json:"time"`
	// ID is the event's stable ID (the same in every retry and every target).
	ID string `json:"id"`
	// WorkflowID is the workflow the event comes from (for `shipline status`).
	WorkflowID string `json:"workflow_id,omitempty"`
}

// NotifyInput is one delivery: an event to one target.
type NotifyInput struct {
	Target string      `json:"target"`
	Event  NotifyEvent `json:"event"`
}

// NotifyOutput says how the receiver answered.
type NotifyOutput struct {
	Status int `json:"status"`
}

// Notifier posts notifications. URLs and secrets are read from the worker's
// environment at each post, by the names platform.yaml gives.
type Notifier struct {
	Platform *platform.Config
	// Client posts (nil: a client with a 15s timeout that follows no redirect).
	Client *http.Client
}

// Send posts one event to one target. A receiver that does not answer, or
// answers 5xx, 408 or 429, is a retryable NotificationUnavailable; another
// 4xx or a redirect is a permanent NotificationRefused; a target that cannot
// be posted to as configured is a permanent NotificationConfig. No message
// holds the URL (it carries a token).
func (n *Notifier) Send(ctx context.Context, in NotifyInput) (NotifyOutput, error) {
	i := slices.IndexFunc(n.Platform.Notifications, func(t platform.Notification) bool { return t.Name == in.Target })
	if i < 0 {
		return NotifyOutput{}, apperr.New(apperr.NotificationConfig, fmt.Sprintf("notification target %q is not in %s (any more); nothing was sent", in.Target, platformFile(n.Platform)))
	}
	t := n.Platform.Notifications[i]
	endpoint, err := targetURL(t)
	if err != nil {
		return NotifyOutput{}, err
	}
	var body []byte
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("User-Agent", "Shipline-Notifications")
	header.Set(EventHeader, in.Event.Event)
	header.Set(DeliveryHeader, DeliveryID(in.Event.ID, t.Name))
	switch t.Kind {
	case platform.NotifySlack:
		body, err = json.Marshal(slackMessage(in.Event))
	default:
		body, err = json.Marshal(in.Event)
		if err == nil {
			secret := os.Getenv(t.SecretEnv)
			if secret == "" {
				return NotifyOutput{}, apperr.New(apperr.NotificationConfig, fmt.Sprintf("notification target %s: %s is not set in the worker's environment; set it to the webhook's signing secret and restart the worker", t.Name, t.SecretEnv))
			}
			header.Set(SignatureHeader, Sign([]byte(secret), body))
		}
	}
	if err != nil {
		return NotifyOutput{}, err
	}
	return n.post(ctx, t, endpoint, header, body)
}

// targetURL reads the target's URL from the environment.
func targetURL(t platform.Notification) (string, error) {
	raw := strings.TrimSpace(os.Getenv(t.URLEnv))
	if raw == "" {
		return "", apperr.New(apperr.NotificationConfig, fmt.Sprintf("notification target %s: %s is not set in the worker's environment; set it to the target's URL and restart the worker", t.Name, t.URLEnv))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", apperr.New(apperr.NotificationConfig, fmt.Sprintf("notification target %s: %s does not hold an http(s) URL; set it to the target's URL", t.Name, t.URLEnv))
	}
	return raw, nil
}

func (n *Notifier) post(ctx context.Context, t platform.Notification, endpoint string, header http.Header, body []byte) (NotifyOutput, error) {
	client := n.Client
	if client == nil {
		client = &http.Client{Timeout: notifyTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return NotifyOutput{}, apperr.New(apperr.NotificationConfig, fmt.Sprintf("notification target %s: the URL in %s cannot be posted to", t.Name, t.URLEnv))
	}
	req.Header = header
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its text holds the URL, and so the token
			err = ue.Err
		}
		return NotifyOutput{}, temporal.NewApplicationError(fmt.Sprintf("notification target %s did not answer: %v", t.Name, err), apperr.NotificationUnavailable)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	said := strings.TrimSpace(string(answer))
	if said != "" {
		said = ": " + firstLine(said)
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return NotifyOutput{Status: code}, nil
	case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		return NotifyOutput{}, temporal.NewApplicationError(fmt.Sprintf("notification target %s answered %s%s", t.Name, resp.Status, said), apperr.NotificationUnavailable)
	default:
		check := "the URL in " + t.URLEnv
		if t.SecretEnv != "" {
			check += " and the secret in " + t.SecretEnv
		}
		return NotifyOutput{}, apperr.New(apperr.NotificationRefused, fmt.Sprintf("notification target %s refused the post: %s%s; check %s", t.Name, resp.Status, said, check))
	}
}

// Sign is the X-Shipline-Signature value of a body: "sha256=" and the hex
// HMAC-SHA256 of the raw body with the secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// DeliveryID is the X-Shipline-Delivery value of an event's delivery to a
// target: the same on every retry.
func DeliveryID(eventID, target string) string { return eventID + "/" + target }

// PromotionURL is the dashboard's page of a promotion ("" without a dashboard).
func PromotionURL(base, project, version string) string {
	if base == "" {
		return ""
	}
	return strings.TrimRight(base, "/") + "/p/" + url.PathEscape(project) + "/promotions/" + url.PathEscape(version)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// webURL is the dashboard's base URL, for links to its pages: platform.yaml's
// web.url. Without it no address is known and events carry no link
// (PromotionURL of "").
func webURL(cfg *platform.Config) string {
	if cfg.Web == nil {
		return ""
	}
	return cfg.Web.URL
}

// UnsetNotifyVariables lists, for the worker's start, the targets whose URL
// (or webhook secret) variable is not set in its environment: their
// notifications fail until it is. (A function: every method of Notifier is
// an activity.)
func UnsetNotifyVariables(cfg *platform.Config) []string {
	var out []string
	for _, t := range cfg.Notifications {
		for _, env := range []string{t.URLEnv, t.SecretEnv} {
			if env != "" && os.Getenv(env) == "" {
				out = append(out, fmt.Sprintf("notification target %s: %s is not set in the worker's environment; its notifications fail until it is (set it and restart the worker)", t.Name, env))
			}
		}
	}
	return out
}
