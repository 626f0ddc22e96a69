package web

import (
	"html"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/views"
	"github.com/shipline/shipline/workflows"
)

// Every page renders with full data, and what users wrote is escaped
// everywhere it shows: job names, release messages, comments, reasons, plans.
func TestPagesRenderAndEscape(t *testing.T) {
	s := testServer(t, proxyWeb)
	v := &visit{User: "carol", CSRF: "tok", Auth: platform.WebAuthProxy, Project: "demo"}
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	evil := `<script>alert(1)</script>`
	job := views.DeploymentRow{JobRecord: workflows.JobRecord{Fabric: "dev", Job: "job" + evil, Version: "v1.0.0", Actor: "alice", At: at, DeploymentID: "deploy/demo/v1.0.0/x"}, Drift: "drifted: " + evil}
	fabric := views.FabricView{Fabric: "dev", Jobs: []views.DeploymentRow{job}, Queue: []workflows.QueueEntry{{DeploymentID: "deploy/demo/v1.1.0/y"}},
		Parked: []workflows.ParkedDeployment{{DeploymentID: "deploy/demo/v0.9.0/z", Version: "v0.9.0", Step: "upload", Reason: evil}}}
	state := workflows.PromoteState{Project: "demo", Version: "v1.0.0", Actor: "alice", Target: "prod", Pending: "qa waits " + evil,
		Stages: []workflows.StageState{
			{Name: "dev", Status: workflows.StageVerified, Fabrics: []string{"dev"}},
			{Name: "qa", Status: workflows.StageApproval, Team: "developers", Required: 2, Eligible: []string{"bob"},
				Approvals: []workflows.Vote{{Stage: "qa", Actor: "carol", Comment: evil, At: at, Delegate: "web", PlanHash: "abcdef0123456789"}},
				Plan: &workflows.StagePlan{Hash: "abcdef0123456789ff", Changes: []activities.PlanChange{{Fabric: "qa", Job: "daily" + evil, Action: "update", From: "v0.9.0", To: "v1.0.0", Drift: evil}},
					Artifacts: []activities.PlanArtifact{{Fabric: "qa", Pipeline: "p", Path: "/x/p.whl", SHA256: "0123456789abcdef"}}},
				Reopened: []workflows.GateReopen{{At: at, Reason: "the plan changed " + evil, Changes: []string{evil}}}},
			{Name: "prod", Status: workflows.StageRejected, Rejection: &workflows.Vote{Actor: "dave", Comment: evil}},
		}}
	for name, data := range map[string]any{
		"projects":    []projectRow{{Name: "demo", Repo: evil}},
		"stages":      stagesData{Stages: []stageRow{{Name: "dev", Fabrics: []stageCell{{Fabric: "dev", View: &fabric}}, Verified: map[string]bool{"v1.0.0": true}, Held: evil}}, Promotions: []views.Promotion{{Version: "v1.0.0", Actor: evil}}},
		"releases":    []releaseRow{{Release: views.Release{Version: "v1.0.0", Latest: true, Linked: true, Stages: []string{"qa"}, WorkflowID: "release/demo/v1.0.0"}, Message: evil}},
		"deployments": []views.FabricView{fabric},
		"history":     historyData{Rows: []views.HistoryRow{{ID: "deploy/demo/v1.0.0/x", Status: "failed", Reason: evil, UIURL: "javascript:alert(1)"}}},
		"logs":        logsData{ID: "deploy/demo/v1.0.0/x", Logs: views.LogsResult{Logs: []views.BuildLog{{Pipeline: "p", Status: "failed", Content: evil}}, Problems: []string{evil}}},
		"promotion": &promotionData{ID: "promote/demo/v1.0.0", Version: "v1.0.0", State: &state, Notifications: []views.NoticeStatus{
			{Notice: workflows.Notice{Event: "approval_needed", Stage: "qa", At: at}, Deliveries: []views.Delivery{
				{Target: "team", State: views.DeliveryRetrying, Attempt: 3, Detail: "answered 503 " + evil}, {Target: "leads", State: views.DeliveryDelivered}}}}},
		"audit": auditData{Records: []views.AuditRecord{{Time: at, Actor: "carol", Delegate: "web", Action: "approve", Detail: evil}}, Actors: []string{evil}},
		"login": map[string]any{"Users": []string{evil}, "Next": "/"},
	} {
		rec := httptest.NewRecorder()
		s.render(rec, httptest.NewRequest("GET", "/", nil), name, v, data)
		body := rec.Body.String()
		if rec.Code != 200 {
			t.Errorf("%s: %d %s", name, rec.Code, body)
			continue
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "javascript:alert") {
			t.Errorf("%s: unescaped user input:\n%s", name, body)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") && name != "history" {
			t.Errorf("%s: the user's text is missing:\n%s", name, body)
		}
		switch name {
		case "promotion":
			for _, want := range []string{"carol via web", `name="decision" value="approve"`, `name="csrf" value="tok"`, `name="plan_hash" value="abcdef0123456789ff"`, "update v0.9.0 → v1.0.0", "daily&lt;script&gt;", "rejected by <b>dave</b>", "abcdef012345", "reopened",
				`<span class="delivery warn">team: retrying (attempt 3): answered 503 &lt;script&gt;`, `<span class="delivery">leads: delivered</span>`} {
				if !strings.Contains(body, want) {
					t.Errorf("promotion lacks %q:\n%s", want, body)
				}
			}
			if strings.Count(body, `class="vote-form"`) != 1 {
				t.Errorf("vote forms: only the stage waiting for approval has one:\n%s", body)
			}
		case "audit":
			if !strings.Contains(body, "carol via web") {
				t.Errorf("audit lacks carol via web")
			}
		}
	}
	// The live part alone, for the page's refresh.
	rec := httptest.NewRecorder()
	s.render(rec, httptest.NewRequest("GET", "/p/demo/promotions/v1.0.0?part=live", nil), "promotion", v, &promotionData{Version: "v1.0.0", State: &state})
	if b := rec.Body.String(); strings.Contains(b, "<html") || !strings.Contains(b, `id="stage-qa"`) {
		t.Errorf("live part:\n%s", b)
	}
}

// The audit filter keeps what matches each field; the JSON lines carry the delegate.
func TestAuditFilter(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	recs := []views.AuditRecord{
		{Time: at, Actor: "alice", Action: "release", Version: "v1.0.0"},
		{Time: at.Add(time.Hour), Actor: "carol", Delegate: "web", Action: "approve", Stage: "prod", Version: "v1.0.0", Result: "ok"},
		{Time: at.Add(2 * time.Hour), Actor: "carol", Action: "reject", Stage: "qa", Version: "v1.1.0", Result: "ok"},
	}
	for q, want := range map[string][]int{
		"":                             {0, 1, 2},
		"actor=carol":                  {1, 2},
		"actor=carol+via+web":          {1},
		"action=approve":               {1},
		"stage=qa":                     {2},
		"version=v1.0.0":               {0, 1},
		"since=2026-11-22T10:30":       {1, 2},
		"until=2026-11-22T11:00:00Z":   {0, 1},
		"since=2026-11-22&result=ok":   {1, 2},
		"actor=alice&since=2026-11-23": nil,
	} {
		vals, _ := url.ParseQuery(q)
		f, err := parseAuditFilter(vals)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var got []int
		for i, r := range recs {
			if f.keep(r) {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q kept %v, want %v", q, got, want)
		}
	}
	if _, err := parseAuditFilter(url.Values{"since": {"yesterday"}}); err == nil || !strings.Contains(err.Error(), "is not a time") {
		t.Errorf("bad since: %v", err)
	}
}

// The audit page's Download link carries the page's filter: the download is
// the records the page shows.
func TestAuditDownloadKeepsFilter(t *testing.T) {
	s := testServer(t, proxyWeb)
	v := &visit{User: "carol", CSRF: "tok", Auth: platform.WebAuthProxy, Project: "demo"}
	f, err := parseAuditFilter(url.Values{"actor": {"carol via web"}, "stage": {"qa"}, "since": {"2026-11-22T10:30"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.render(rec, httptest.NewRequest("GET", "/p/demo/audit", nil), "audit", v, auditData{Filter: f})
	m := regexp.MustCompile(`href="([^"]*)" id="download"`).FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("no download link:\n%s", rec.Body.String())
	}
	u, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseAuditFilter(u.Query())
	if err != nil || u.Path != "/p/demo/audit.jsonl" || got.Actor != f.Actor || got.Stage != f.Stage || got.Since != f.Since {
		t.Errorf("download link %q: filter %+v, %v; want %+v", m[1], got, err, f)
	}
}

// Every page's logs link names its deployment or release: following it opens
// that one's logs (the ID is escaped once, by the template).
func TestLogsLinksNameTheDeployment(t *testing.T) {
	s := testServer(t, proxyWeb)
	v := &visit{User: "carol", CSRF: "tok", Auth: platform.WebAuthProxy, Project: "demo"}
	dep := "deploy/demo/v1.0.0/promote-qa-01a2 x&y=z"
	rel := "release/demo/v1.0.0"
	state := workflows.PromoteState{Project: "demo", Version: "v1.0.0", Stages: []workflows.StageState{{Name: "qa", Status: workflows.StageDeployed, DeploymentID: dep}}}
	linkRE := regexp.MustCompile(`href="(/p/demo/logs\?[^"]*)"`)
	for name, tc := range map[string]struct {
		data any
		want string
	}{
		"deployments": {[]views.FabricView{{Fabric: "dev", Jobs: []views.DeploymentRow{{JobRecord: workflows.JobRecord{Fabric: "dev", Job: "j", Version: "v1.0.0", DeploymentID: dep}}}}}, dep},
		"history":     {historyData{Rows: []views.HistoryRow{{ID: dep, Status: "failed"}}}, dep},
		"promotion":   {&promotionData{ID: "promote/demo/v1.0.0", Version: "v1.0.0", State: &state}, dep},
		"releases":    {[]releaseRow{{Release: views.Release{Version: "v1.0.0", WorkflowID: rel}}}, rel},
	} {
		rec := httptest.NewRecorder()
		s.render(rec, httptest.NewRequest("GET", "/", nil), name, v, tc.data)
		m := linkRE.FindStringSubmatch(rec.Body.String())
		if m == nil {
			t.Errorf("%s: no logs link:\n%s", name, rec.Body.String())
			continue
		}
		u, err := url.Parse(html.UnescapeString(m[1]))
		if err != nil || u.Query().Get("id") != tc.want || !ownedBy(u.Query().Get("id"), "demo") {
			t.Errorf("%s: logs link %q names %q, want %q (%v)", name, m[1], u.Query().Get("id"), tc.want, err)
		}
	}
}
