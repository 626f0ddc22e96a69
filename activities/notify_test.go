package activities

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/platform"
)

// receiver is a real HTTP receiver that records what it was posted.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	posts []post
	// answer is the status of each post in turn (200 once they run out).
	answer []int
}

type post struct {
	Path   string
	Header http.Header
	Body   []byte
}

func newReceiver(t *testing.T, answer ...int) *receiver {
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.posts = append(r.posts, post{Path: req.URL.Path, Header: req.Header.Clone(), Body: body})
		code := http.StatusOK
		if len(r.answer) > 0 {
			code, r.answer = r.answer[0], r.answer[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		if code >= 400 {
			_, _ = io.WriteString(w, "no_service\n")
		} else {
			_, _ = io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []post {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]post(nil), r.posts...)
}

func notifier(targets ...platform.Notification) *Notifier {
	return &Notifier{Platform: &platform.Config{Notifications: targets}}
}

func gateEvent() NotifyEvent {
	return NotifyEvent{Event: platform.EventApprovalNeeded, Project: "demo", Version: "v1.2.0", Stage: "prod", Actor: "alice",
		Approvers: []string{"carol", "dave"}, Summary: "prod: 0 of 2 approvals from prod_support; note <script>alert(1)</script> & <!channel>",
		URL: "https://shipline.example.com/p/demo/promotions/v1.2.0", Time: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), ID: "promote/demo/v1.2.0/1a2b3c4d/1"}
}

func TestNotifySlackMessage(t *testing.T) {
	r := newReceiver(t)
	t.Setenv("TEST_SLACK_URL", r.URL+"/services/T000/B000/token123")
	n := notifier(platform.Notification{Name: "team", Kind: platform.NotifySlack, URLEnv: "TEST_SLACK_URL", Events: []string{platform.EventApprovalNeeded}})
	out, err := n.Send(context.Background(), NotifyInput{Target: "team", Event: gateEvent()})
	if err != nil || out.Status != http.StatusOK {
		t.Fatalf("send: %v, %+v", err, out)
	}
	posts := r.got()
	if len(posts) != 1 || posts[0].Path != "/services/T000/B000/token123" {
		t.Fatalf("posts = %+v", posts)
	}
	p := posts[0]
	if p.Header.Get("Content-Type") != "application/json" || p.Header.Get(DeliveryHeader) != "promote/demo/v1.2.0/1a2b3c4d/1/team" ||
		p.Header.Get(EventHeader) != "approval_needed" || p.Header.Get(SignatureHeader) != "" {
		t.Errorf("headers = %v", p.Header)
	}
	// Slack's incoming-webhook shape: text, and blocks with a section and a link button.
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
			Elements []struct {
				Type string `json:"type"`
				Text struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"text"`
				URL string `json:"url"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(p.Body, &msg); err != nil {
		t.Fatalf("%v: %s", err, p.Body)
	}
	if !strings.HasPrefix(msg.Text, "Approval needed: v1.2.0 of demo at prod: prod: 0 of 2 approvals") {
		t.Errorf("text = %q", msg.Text)
	}
	if len(msg.Blocks) != 2 || msg.Blocks[0].Type != "section" || msg.Blocks[0].Text == nil || msg.Blocks[0].Text.Type != "mrkdwn" {
		t.Fatalf("blocks = %s", p.Body)
	}
	section := msg.Blocks[0].Text.Text
	for _, want := range []string{"*Approval needed: v1.2.0 of demo at prod*", "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;!channel&gt;", "*May approve:* carol, dave"} {
		if !strings.Contains(section, want) {
			t.Errorf("section %q lacks %q", section, want)
		}
	}
	if strings.Contains(section, "<script>") || strings.Contains(section, "<!channel>") {
		t.Errorf("section is not escaped: %q", section)
	}
	act := msg.Blocks[1]
	if act.Type != "actions" || len(act.Elements) != 1 || act.Elements[0].Type != "button" || act.Elements[0].Text.Type != "plain_text" ||
		act.Elements[0].URL != "https://shipline.example.com/p/demo/promotions/v1.2.0" {
		t.Errorf("button = %+v", act)
	}
}

func TestNotifySlackWithoutDashboardHasNoButton(t *testing.T) {
	e := gateEvent()
	e.URL = ""
	blocks := slackMessage(e)["blocks"].([]any)
	if len(blocks) != 1 {
		t.Errorf("blocks = %v, want the section only", blocks)
	}
}

// TestNotifyWebhookSigned verifies the signature as a receiver would: HMAC-SHA256
// of the raw body with the shared secret, compared in constant time.
func TestNotifyWebhookSigned(t *testing.T) {
	r := newReceiver(t)
	const secret = "s3cret-shared-with-the-receiver"
	t.Setenv("TEST_HOOK_URL", r.URL+"/hooks/shipline?token=abc")
	t.Setenv("TEST_HOOK_SECRET", secret)
	n := notifier(platform.Notification{Name: "audit", Kind: platform.NotifyWebhook, URLEnv: "TEST_HOOK_URL", SecretEnv: "TEST_HOOK_SECRET", Events: []string{platform.EventApprovalNeeded}})
	for range 2 { // a retried delivery carries the same delivery ID and the same bytes
		if _, err := n.Send(context.Background(), NotifyInput{Target: "audit", Event: gateEvent()}); err != nil {
			t.Fatal(err)
		}
	}
	posts := r.got()
	if len(posts) != 2 {
		t.Fatalf("posts = %d", len(posts))
	}
	for _, p := range posts {
		sig, ok := strings.CutPrefix(p.Header.Get(SignatureHeader), "sha256=")
		got, err := hex.DecodeString(sig)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(p.Body)
		if !ok || err != nil || !hmac.Equal(got, mac.Sum(nil)) {
			t.Errorf("signature %q does not verify with the secret", p.Header.Get(SignatureHeader))
		}
		mac = hmac.New(sha256.New, []byte("another secret"))
		mac.Write(p.Body)
		if hmac.Equal(got, mac.Sum(nil)) {
			t.Error("the signature verifies with another secret")
		}
		if p.Header.Get(DeliveryHeader) != "promote/demo/v1.2.0/1a2b3c4d/1/audit" {
			t.Errorf("delivery = %q", p.Header.Get(DeliveryHeader))
		}
	}
	if string(posts[0].Body) != string(posts[1].Body) {
		t.Error("a retried delivery has other bytes")
	}
	var e map[string]any
	if err := json.Unmarshal(posts[0].Body, &e); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"event": "approval_needed", "project": "demo", "version": "v1.2.0", "stage": "prod", "actor": "alice",
		"url": "https://shipline.example.com/p/demo/promotions/v1.2.0", "time": "2026-11-27T10:00:00Z", "id": "promote/demo/v1.2.0/1a2b3c4d/1"} {
		if e[k] != want {
			t.Errorf("%s = %v, want %v", k, e[k], want)
		}
	}
	if a, _ := e["approvers"].([]any); len(a) != 2 || a[0] != "carol" {
		t.Errorf("approvers = %v", e["approvers"])
	}
}

func TestNotifyAnswers(t *testing.T) {
	t.Setenv("TEST_HOOK_SECRET", "k")
	target := platform.Notification{Name: "audit", Kind: platform.NotifyWebhook, URLEnv: "TEST_HOOK_URL", SecretEnv: "TEST_HOOK_SECRET"}
	for _, c := range []struct {
		status    int
		typ       string
		retryable bool
	}{
		{http.StatusInternalServerError, apperr.NotificationUnavailable, true},
		{http.StatusServiceUnavailable, apperr.NotificationUnavailable, true},
		{http.StatusTooManyRequests, apperr.NotificationUnavailable, true},
		{http.StatusNotFound, apperr.NotificationRefused, false},
		{http.StatusUnauthorized, apperr.NotificationRefused, false},
		{http.StatusMovedPermanently, apperr.NotificationRefused, false},
	} {
		r := newReceiver(t, c.status)
		t.Setenv("TEST_HOOK_URL", r.URL+"/hook/token-xyz")
		_, err := notifier(target).Send(context.Background(), NotifyInput{Target: "audit", Event: gateEvent()})
		checkNotifyError(t, err, c.typ, c.retryable)
		if err != nil && c.status == http.StatusNotFound && !strings.Contains(err.Error(), "404 Not Found: no_service; check the URL in TEST_HOOK_URL") {
			t.Errorf("404: %v", err)
		}
	}
}

func TestNotifyReceiverDownOrMisconfigured(t *testing.T) {
	r := newReceiver(t)
	addr := r.URL
	r.Close() // nothing listens there any more
	target := platform.Notification{Name: "team", Kind: platform.NotifySlack, URLEnv: "TEST_SLACK_URL"}
	t.Setenv("TEST_SLACK_URL", addr+"/services/T0/B0/token-xyz")
	_, err := notifier(target).Send(context.Background(), NotifyInput{Target: "team", Event: gateEvent()})
	checkNotifyError(t, err, apperr.NotificationUnavailable, true)

	t.Setenv("TEST_SLACK_URL", "")
	_, err = notifier(target).Send(context.Background(), NotifyInput{Target: "team", Event: gateEvent()})
	checkNotifyError(t, err, apperr.NotificationConfig, false)
	if err != nil && !strings.Contains(err.Error(), "TEST_SLACK_URL is not set in the worker's environment") {
		t.Errorf("unset: %v", err)
	}
	t.Setenv("TEST_SLACK_URL", "hooks.slack.com/token-xyz")
	_, err = notifier(target).Send(context.Background(), NotifyInput{Target: "team", Event: gateEvent()})
	checkNotifyError(t, err, apperr.NotificationConfig, false)

	_, err = notifier(target).Send(context.Background(), NotifyInput{Target: "gone", Event: gateEvent()})
	checkNotifyError(t, err, apperr.NotificationConfig, false)

	hook := platform.Notification{Name: "audit", Kind: platform.NotifyWebhook, URLEnv: "TEST_SLACK_URL", SecretEnv: "TEST_UNSET_SECRET"}
	t.Setenv("TEST_SLACK_URL", "http://127.0.0.1:1/token-xyz")
	_, err = notifier(hook).Send(context.Background(), NotifyInput{Target: "audit", Event: gateEvent()})
	checkNotifyError(t, err, apperr.NotificationConfig, false)
}

// checkNotifyError checks a failure's type and whether Temporal retries it,
// and that its message never holds the URL's token.
func checkNotifyError(t *testing.T, err error, typ string, retryable bool) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Errorf("err = %v, want an application error %s", err, typ)
		return
	}
	if app.Type() != typ || app.NonRetryable() == retryable {
		t.Errorf("err %q: type %s (non-retryable %v), want %s (retryable %v)", err, app.Type(), app.NonRetryable(), typ, retryable)
	}
	if strings.Contains(err.Error(), "token-xyz") {
		t.Errorf("the message holds the URL's token: %v", err)
	}
}

func TestPromotionURL(t *testing.T) {
	if got := PromotionURL("https://shipline.example.com/", "demo", "v1.2.0"); got != "https://shipline.example.com/p/demo/promotions/v1.2.0" {
		t.Errorf("got %q", got)
	}
	if got := PromotionURL("", "demo", "v1.2.0"); got != "" {
		t.Errorf("without a dashboard: %q", got)
	}
}

func TestNotifySettingsOfAProject(t *testing.T) {
	cfg := &platform.Config{Notifications: []platform.Notification{
		{Name: "team", EscalateTo: "leads"},
		{Name: "other", Projects: []string{"other"}},
		{Name: "leads", Projects: []string{"other"}}, // named by team's escalate_to: kept
	}}
	s := notifySettings(cfg, "demo")
	var names []string
	for _, n := range s.Targets {
		names = append(names, n.Name)
	}
	if strings.Join(names, ",") != "team,leads" {
		t.Errorf("targets = %v", names)
	}
	if notifySettings(&platform.Config{}, "demo") != nil {
		t.Error("no targets: want nil")
	}
	if s.WebURL != "" {
		t.Errorf("no web block: WebURL = %q, want none", s.WebURL)
	}
	cfg.Web = &platform.Web{URL: "https://shipline.example.com"}
	if got := notifySettings(cfg, "demo").WebURL; got != "https://shipline.example.com" {
		t.Errorf("WebURL = %q, want platform.yaml's web.url", got)
	}
}

func TestNotifyUnsetVariablesAreReported(t *testing.T) {
	t.Setenv("TEST_SET_URL", "https://hooks.example.com/x")
	t.Setenv("TEST_UNSET_URL", "")
	n := notifier(
		platform.Notification{Name: "team", Kind: platform.NotifySlack, URLEnv: "TEST_SET_URL"},
		platform.Notification{Name: "audit", Kind: platform.NotifyWebhook, URLEnv: "TEST_UNSET_URL", SecretEnv: "TEST_SET_URL"},
	)
	got := UnsetNotifyVariables(n.Platform)
	if len(got) != 1 || !strings.HasPrefix(got[0], "notification target audit: TEST_UNSET_URL is not set") {
		t.Errorf("unset = %q", got)
	}
}

func TestNotifyEventTitles(t *testing.T) {
	for _, c := range []struct {
		e    NotifyEvent
		want string
	}{
		{NotifyEvent{Event: platform.EventReminder, Project: "demo", Version: "v1.2.0", Stage: "prod"}, "Reminder: approval needed: v1.2.0 of demo at prod"},
		{NotifyEvent{Event: platform.EventEscalation, Project: "demo", Version: "v1.2.0", Stage: "prod"}, "Escalation: approval still needed: v1.2.0 of demo at prod"},
		{NotifyEvent{Event: platform.EventRollback, Phase: "started", Project: "demo", Version: "v1.0.0", Stage: "qa"}, "Rollback started: v1.0.0 of demo at qa"},
		{NotifyEvent{Event: platform.EventParked, Project: "demo", Version: "v1.0.0"}, "Deployment parked: v1.0.0 of demo"},
		{NotifyEvent{Event: platform.EventPromoted, Project: "demo", Version: "v1.2.0", Stage: "prod"}, "Promoted: v1.2.0 of demo at prod"},
	} {
		if got := eventTitle(c.e); got != c.want {
			t.Errorf("title = %q, want %q", got, c.want)
		}
	}
}
