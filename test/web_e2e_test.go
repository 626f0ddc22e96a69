package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/internal/signing"
	"github.com/shipline/shipline/internal/views"
	"github.com/shipline/shipline/test/testkit"
	"github.com/shipline/shipline/workflows"
)

// TestDashboardInBrowser drives the dashboard in headless Chromium (Debian's
// package) with chromedp: behind a proxy that names the user, bob opens the
// stage view, sees a release whose message holds a <script> as text, and
// approves the qa gate with the button; the promotion page then moves on by
// itself (a live update, no reload). A request without the proxy header, and
// one with a forged header from outside the trusted proxies, are refused. The
// vote is signed by the dashboard's delegate key, verified by the workflow,
// and audited as "bob via web"; a forged delegate claim sent straight through
// the Temporal SDK is refused. Screenshots of each page are saved for review
// (in $SHIPLINE_SCREENSHOTS, else test/out/screenshots).
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	br := newBrowser(t, "")

	// The demo project on local fabrics, with signatures required: alice
	// signs with her key; the dashboard with its own, registered as delegate web.
	cfgPath, _, _ := demoProject(t)
	root := filepath.Dir(cfgPath)
	t.Setenv("HOME", root)
	t.Setenv("SHIPLINE_KEY", "")
	aliceKey, alicePub, alicePriv := writeKey(t, root, "alice")
	webKey, webPub, _ := writeKey(t, root, "web")
	_, _, malloryPriv := writeKey(t, root, "mallory")
	extra := fmt.Sprintf(`
require_signatures: true
users:
  alice: {keys: [%q]}
delegates:
  web: {keys: [%q]}
web: {auth: proxy, user_header: X-Forwarded-User, trusted_proxies: ["127.0.0.1/32"], key_file: %s}
`, alicePub, webPub, webKey)
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
	f.Close()
	kit := testkit.Start(t, cfgPath, testkit.Options{WebAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t))})
	s := &stack{t: t, kit: kit, cfg: kit.Config, cfgPath: cfgPath, address: kit.Address, uiURL: kit.UIURL, tempPort: kit.TemporalPort}
	if kit.WebURL == "" {
		t.Fatal("the worker serves no dashboard")
	}
	base := kit.WebURL

	const message = `<script>alert("x")</script> first <b>release</b>`
	if code, _, _ := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--key", aliceKey, "--message", message, "--wait"); code != 0 {
		t.Fatal("release failed")
	}
	if code, _, _ := s.shipline("promote", "v1.0.0", "--project", "demo", "--as", "alice", "--key", aliceKey); code != 0 {
		t.Fatal("promote failed")
	}

	// 1. No proxy header: refused (401), nothing of the project shown.
	br.do("open without the proxy header", chromedp.Navigate(base+"/p/demo"))
	body := br.text("body")
	br.shot("refused-no-header")
	if !strings.Contains(body, "not signed in") || strings.Contains(body, "local-dev") {
		t.Errorf("without the header: %q", body)
	}
	// 2. A forged header from outside the trusted proxies (a hop from
	// 127.0.0.2, which 127.0.0.1/32 does not cover): refused (403).
	outside := forwardFrom(t, "127.0.0.2", strings.TrimPrefix(base, "http://"))
	br.asUser("carol")
	br.do("forged header from outside", chromedp.Navigate("http://"+outside+"/p/demo"))
	body = br.text("body")
	br.shot("refused-untrusted-proxy")
	if !strings.Contains(body, "not one of the dashboard's trusted proxies") || strings.Contains(body, "local-dev") {
		t.Errorf("forged header from outside: %q", body)
	}

	// 3. Through the trusted proxy as bob: the stage view.
	br.asUser("bob")
	br.do("stage view", chromedp.Navigate(base+"/p/demo"), chromedp.WaitVisible(chromedp.CSS(`#stage-dev`)))
	body = br.text("#stage-dev")
	br.shot("stages")
	if !strings.Contains(body, "local-dev") || !strings.Contains(body, "v1.0.0") || !strings.Contains(body, "alice") {
		t.Errorf("dev stage: %q", body)
	}
	if user := br.text("#user"); user != "bob" {
		t.Errorf("signed in as %q", user)
	}

	// 4. Releases: the <script> of the message is text, and no element.
	br.do("releases", chromedp.Navigate(base+"/p/demo/releases"), chromedp.WaitVisible(chromedp.CSS(`#releases`)))
	msg := br.text("#releases .message")
	br.shot("releases")
	if msg != message {
		t.Errorf("release message shown as %q, want the text %q", msg, message)
	}
	if n := br.count(`document.querySelectorAll("main script, main b").length`); n != 0 {
		t.Errorf("the release message became %d elements", n)
	}

	// 5. Deployments, history and a deployment's logs.
	br.do("deployments", chromedp.Navigate(base+"/p/demo/deployments"), chromedp.WaitVisible(chromedp.CSS(`#fabric-local-dev`)))
	body = br.text("#fabric-local-dev")
	br.shot("deployments")
	if !strings.Contains(body, "v1.0.0") || !strings.Contains(body, "in sync") {
		t.Errorf("deployments: %q", body)
	}
	br.do("history", chromedp.Navigate(base+"/p/demo/history"), chromedp.WaitVisible(chromedp.CSS(`#history`)))
	body = br.text("#history")
	br.shot("history")
	if !strings.Contains(body, "deploy/demo/v1.0.0/release") || !strings.Contains(body, "succeeded") {
		t.Errorf("history: %q", body)
	}
	if href := br.text(`#history a[href*="logs"]`); href != "logs" {
		t.Errorf("history's logs link reads %q", href)
	}
	// Following the history's link (not a URL made here) opens the logs.
	br.do("logs", chromedp.Click(chromedp.CSS(`#history a[href*="logs"]`)), chromedp.WaitVisible(chromedp.CSS(`section.log`)))
	body = br.text("main")
	br.shot("logs")
	if !strings.Contains(body, "ingest_orders") {
		t.Errorf("logs: %q", body)
	}

	// 6. The promotion: qa waits for one approval from developers; bob
	// approves with the button, with a comment that tries to inject markup.
	promo := base + "/p/demo/promotions/v1.0.0"
	const comment = `ship it <img src=x onerror=alert(2)>`
	br.do("promotion waits at qa, with its plan", chromedp.Navigate(promo), chromedp.WaitVisible(chromedp.CSS(`#stage-qa[data-status="approval"] button.approve`)),
		chromedp.WaitVisible(chromedp.CSS(`#stage-qa .plan-changes`)))
	if plan := br.text("#stage-qa .plan-changes"); !strings.Contains(plan, "local-qa") || !strings.Contains(plan, "create v1.0.0") {
		t.Errorf("qa's plan: %q", plan)
	}
	br.shot("promotion-waiting")
	if body = br.text("#pending"); !strings.Contains(body, "qa") {
		t.Errorf("why it waits: %q", body)
	}
	br.do("approve qa", chromedp.SendKeys(chromedp.CSS(`#stage-qa input.comment`), comment),
		chromedp.Click(chromedp.CSS(`#stage-qa button.approve`)), chromedp.WaitVisible(chromedp.CSS(`#flash`)))
	if body = br.text("#flash"); !strings.Contains(body, "approved qa") || !strings.Contains(body, "bob via web") {
		t.Errorf("after approving: %q", body)
	}
	// From here the page is not reloaded: a marker set now survives only
	// if the stages change through the live update.
	if _, err := chromedp.Run(br.ctx, chromedp.Evaluate[string](`window.__noReload = "still here"`)); err != nil {
		t.Fatal(err)
	}
	br.do("watch the promotion move on", chromedp.WaitVisible(chromedp.CSS(`#stage-prod[data-status="approval"]`)))
	marker, err := chromedp.Run(br.ctx, chromedp.Evaluate[string](`window.__noReload || "reloaded"`))
	if err != nil || marker != "still here" {
		t.Errorf("the page reloaded (%q, %v); the live update should have moved it", marker, err)
	}
	body = br.text("#stage-qa")
	br.shot("promotion-moved-on")
	if updates, err := chromedp.Run(br.ctx, chromedp.AttributeValue(chromedp.CSS(`#live`), "data-updated")); err != nil || updates.Value == "" || updates.Value == "0" {
		t.Errorf("no live update recorded (data-updated %+v, %v)", updates, err)
	}
	if !strings.Contains(body, "approved by bob via web") || !strings.Contains(body, comment) {
		t.Errorf("qa after the vote: %q", body)
	}
	if n := br.count(`document.querySelectorAll("main img").length`); n != 0 {
		t.Errorf("the comment's markup became %d elements", n)
	}

	// The CLI's rules hold for the user named: bob is not in prod_support,
	// so his vote on prod is refused by the workflow and the page says why.
	br.do("bob votes on prod", chromedp.Click(chromedp.CSS(`#stage-prod button.approve`)), chromedp.WaitVisible(chromedp.CSS(`#error`)))
	br.shot("promotion-refused")
	if body := br.text("#error"); !strings.Contains(body, "bob may not vote on prod") || !strings.Contains(body, "prod_support") {
		t.Errorf("bob's vote on prod: %q", body)
	}

	// 7. The audit: the vote reads "bob via web"; filters and the JSON lines.
	br.do("audit", chromedp.Navigate(base+"/p/demo/audit?actor=bob+via+web"), chromedp.WaitVisible(chromedp.CSS(`#audit`)))
	body = br.text("#audit")
	br.shot("audit-filtered")
	if !strings.Contains(body, "bob via web") || !strings.Contains(body, "approve") || strings.Contains(body, "release") {
		t.Errorf("audit filtered on bob via web: %q", body)
	}
	br.do("audit unfiltered", chromedp.Navigate(base+"/p/demo/audit"), chromedp.WaitVisible(chromedp.CSS(`#audit`)))
	br.shot("audit")
	br.do("projects", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`table`)))
	br.shot("projects")
	records := auditLines(t, base+"/p/demo/audit.jsonl?action=approve", "bob")
	if len(records) != 2 || records[0].Actor != "bob" || records[0].Delegate != "web" || records[0].Stage != "qa" || records[0].Result != "ok" ||
		records[1].Stage != "prod" || records[1].Result != "refused" || records[1].Via != workflows.ViaSigned+" by delegate web" {
		t.Errorf("audit JSON lines for approve: %+v", records)
	}

	// 8. A forged delegate claim sent straight through the Temporal SDK:
	// dave (prod_support) "via web", signed by another key, or by alice's own.
	c, err := client.Dial(client.Options{HostPort: s.address})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := workflows.PromoteID("demo", "v1.0.0")
	for name, key := range map[string][]byte{"mallory's key": malloryPriv, "alice's own key": alicePriv} {
		vote := workflows.Vote{Stage: "prod", Actor: "dave", Comment: "forged"}
		args, _ := signing.Canonical(workflows.SignedArgs(vote))
		a := signing.Sign(key, signing.Request{WorkflowID: id, Action: workflows.ApproveUpdate, Actor: "dave", Args: args,
			RequestID: name, Time: time.Now().UTC(), Delegate: "web"})
		vote.Auth = &a
		uctx, ucancel := context.WithTimeout(context.Background(), time.Minute)
		h, err := c.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.ApproveUpdate, Args: []any{vote}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			err = h.Get(uctx, nil)
		}
		ucancel()
		if err == nil || !strings.Contains(err.Error(), "delegate web") {
			t.Errorf("forged delegate vote with %s: %v", name, err)
		}
	}
	var st workflows.PromoteState
	if _, err := views.QueryState(context.Background(), c, id, "", &st); err != nil {
		t.Fatal(err)
	}
	for _, stage := range st.Stages {
		if stage.Name == "prod" && len(stage.Approvals) != 0 {
			t.Errorf("a forged vote counted: %+v", stage.Approvals)
		}
	}
	br.noDialogs()
}

// auditLines downloads the audit's JSON lines as user (through the trusted proxy).
func auditLines(t *testing.T, url, user string) []views.AuditRecord {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Forwarded-User", user)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Disposition"), "audit-demo.jsonl") {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("download: %d %v %s", res.StatusCode, res.Header, b)
	}
	var out []views.AuditRecord
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		var r views.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// forwardFrom listens on a free loopback port and forwards each connection to
// target from the local address from: a hop the dashboard sees as coming from
// that address. It returns its host:port.
func forwardFrom(t *testing.T, from, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := dialer.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in) }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestDashboardDevPicker is the newcomer's path (`make demo`'s platform has no
// web block): the worker started like --dev serves the dashboard with the
// user picker on loopback and a dashboard key it generated and registered
// itself; picking bob and pressing Approve moves the promotion on.
func TestDashboardDevPicker(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	br := newBrowser(t, "dev")
	cfgPath, _, _ := demoProject(t)
	kit := testkit.Start(t, cfgPath, testkit.Options{WebAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t))})
	s := &stack{t: t, kit: kit, cfg: kit.Config, cfgPath: cfgPath, address: kit.Address, uiURL: kit.UIURL, tempPort: kit.TemporalPort}
	if kit.Config.Web != nil || len(kit.Config.Delegates["web"].Keys) != 1 {
		t.Fatalf("the dev platform's delegate: %+v", kit.Config.Delegates)
	}
	if code, _, _ := s.shipline("release", "v1.0.0", "--project", "demo", "--as", "alice", "--wait"); code != 0 {
		t.Fatal("release failed")
	}
	if code, _, _ := s.shipline("promote", "v1.0.0", "--project", "demo", "--as", "alice"); code != 0 {
		t.Fatal("promote failed")
	}
	base := kit.WebURL
	br.do("the picker first", chromedp.Navigate(base+"/p/demo/promotions/v1.0.0"), chromedp.WaitVisible(chromedp.CSS(`#pick`)))
	br.shot("login")
	br.do("pick bob", chromedp.SetValue(chromedp.CSS(`#pick`), "bob"), chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`#stage-qa[data-status="approval"] button.approve`)), chromedp.WaitVisible(chromedp.CSS(`#stage-qa .plan-changes`)))
	if user := br.text("#user"); user != "bob" {
		t.Fatalf("signed in as %q", user)
	}
	br.do("approve qa", chromedp.Click(chromedp.CSS(`#stage-qa button.approve`)), chromedp.WaitVisible(chromedp.CSS(`#flash`)),
		chromedp.WaitVisible(chromedp.CSS(`#stage-prod[data-status="approval"]`)))
	br.shot("promotion")
	if body := br.text("#stage-qa"); !strings.Contains(body, "approved by bob via web") {
		t.Errorf("qa: %q", body)
	}
	br.noDialogs()
}
