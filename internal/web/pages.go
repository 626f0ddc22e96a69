package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/signing"
	"github.com/shipline/shipline/internal/views"
	"github.com/shipline/shipline/workflows"
)

// pages holds one template set per page: the layout plus the page's own file.
type pages struct {
	sets map[string]*template.Template
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"join":  func(s []string) string { return strings.Join(s, ", ") },
	"short": func(h string) string { return shortHash(h) },
	"short12": func(h string) string {
		if len(h) > 12 {
			return h[:12]
		}
		return h
	},
	"dash": func(s string) string {
		if s == "" {
			return "—"
		}
		return s
	},
	"who": func(actor, delegate string) string { return signing.Via(actor, &signing.Auth{Delegate: delegate}) },
	// path escapes a path segment ("/" too); a query value needs no
	// function: html/template escapes it (escaping it first would escape it twice).
	"path": func(s string) string { return url.PathEscape(s) },
	"dur": func(d time.Duration) string {
		if d == 0 {
			return "—"
		}
		return d.String()
	},
	"lower":   strings.ToLower,
	"first":   firstLine,
	"failure": views.IsFailure,
}

func loadPages() (*pages, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{sets: map[string]*template.Template{}}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", n, err)
		}
		p.sets[name] = t
	}
	return p, nil
}

// page is what every template receives.
type page struct {
	V       *visit
	Project string
	Tab     string
	Title   string
	Data    any
	// Poll is how often (milliseconds) the page's live parts refresh.
	Poll int64
	// Flash is a message about what the user just did; Error one about what failed.
	Flash, Error string
	Delegate     string
}

// render writes a page; with ?part=live only its live part (the fragment the
// page's script swaps in, so running work updates without a reload).
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, v *visit, data any, opts ...func(*page)) {
	s.renderStatus(w, r, http.StatusOK, name, v, data, opts...)
}

func (s *Server) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, v *visit, data any, opts ...func(*page)) {
	t := s.pages.sets[name]
	p := &page{V: v, Project: v.Project, Tab: name, Data: data, Poll: s.opts.PollInterval.Milliseconds(), Delegate: s.opts.Delegate}
	for _, o := range opts {
		o(p)
	}
	root := "layout"
	if r.URL.Query().Get("part") == "live" {
		root = "live"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, root, p); err != nil {
		s.log.Error("render dashboard page", zap.String("page", name), zap.Error(err))
		http.Error(w, "the page could not be rendered: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail shows a read that failed, on the page it was for.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, name string, v *visit, err error) {
	s.log.Warn("dashboard read failed", zap.String("page", name), zap.String("path", r.URL.Path), zap.Error(err))
	s.renderStatus(w, r, http.StatusBadGateway, name, v, nil, func(p *page) { p.Error = err.Error() })
}

// project checks the project is one of platform.yaml's.
func (s *Server) project(h func(http.ResponseWriter, *http.Request, *visit)) func(http.ResponseWriter, *http.Request, *visit) {
	return func(w http.ResponseWriter, r *http.Request, v *visit) {
		name := r.PathValue("project")
		if _, ok := s.opts.Config.Projects[name]; !ok {
			http.Error(w, fmt.Sprintf("no project %q in platform.yaml", name), http.StatusNotFound)
			return
		}
		v.Project = name
		h(w, r, v)
	}
}

func (s *Server) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}

// projectRow is a line of the projects page.
type projectRow struct {
	Name   string
	Repo   string
	Admins []string
}

func (s *Server) projectsPage(w http.ResponseWriter, r *http.Request, v *visit) {
	var rows []projectRow
	for name, p := range s.opts.Config.Projects {
		rows = append(rows, projectRow{Name: name, Repo: p.Repo, Admins: p.Admins})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	s.render(w, r, "projects", v, rows)
}

// stageCell is one fabric of a stage in the stage view.
type stageCell struct {
	Fabric string
	Kind   string
	Owner  string
	View   *views.FabricView
}

// stageRow is one stage of the stage view.
type stageRow struct {
	Name     string
	Approval *platform.Approval
	Soak     time.Duration
	Fabrics  []stageCell
	Ledger   *workflows.StageLedger
	// Verified are the versions the stage verified (newest last).
	Verified map[string]bool
	Held     string
}

// stagesData is the stage view.
type stagesData struct {
	Stages     []stageRow
	Other      []stageCell // fabrics of the project outside every stage
	Promotions []views.Promotion
}

func (s *Server) stagesPage(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	fabrics, err := views.Deployments(ctx, s.opts.Client, v.Project, "", s.inspector(v.Project))
	if err != nil {
		s.fail(w, r, "stages", v, err)
		return
	}
	ledgers, err := views.StageLedgers(ctx, s.opts.Client, v.Project)
	if err != nil {
		s.fail(w, r, "stages", v, err)
		return
	}
	promotions, err := views.Promotions(ctx, s.opts.Client, v.Project)
	if err != nil {
		s.fail(w, r, "stages", v, err)
		return
	}
	byFabric := map[string]*views.FabricView{}
	for i := range fabrics {
		byFabric[fabrics[i].Fabric] = &fabrics[i]
	}
	byStage := map[string]*workflows.StageLedger{}
	for i := range ledgers {
		byStage[ledgers[i].Stage] = &ledgers[i]
	}
	cell := func(name string) stageCell {
		f := s.opts.Config.Fabrics[name]
		return stageCell{Fabric: name, Kind: string(f.Kind), Owner: f.Owner, View: byFabric[name]}
	}
	var data stagesData
	inStage := map[string]bool{}
	for _, st := range s.opts.Config.Promotion.Stages {
		row := stageRow{Name: st.Name, Approval: st.Approval, Soak: st.Soak, Ledger: byStage[st.Name], Verified: map[string]bool{}}
		for _, f := range st.Fabrics {
			inStage[f] = true
			row.Fabrics = append(row.Fabrics, cell(f))
		}
		if l := row.Ledger; l != nil {
			for _, rel := range l.Verified {
				row.Verified[rel.Version] = true
			}
			if l.Hold != nil {
				row.Held = l.Hold.Held(l.Project, l.Stage)
			}
		}
		data.Stages = append(data.Stages, row)
	}
	for _, f := range fabrics {
		if !inStage[f.Fabric] {
			data.Other = append(data.Other, cell(f.Fabric))
		}
	}
	data.Promotions = promotions
	s.render(w, r, "stages", v, data)
}

// inspector compares recorded jobs with the live fabrics, through the
// project's read entity (as `shipline deployments` does). Pages that refresh
// themselves would ask the fabrics every few seconds: an answer for the same
// jobs is reused for inspectTTL.
func (s *Server) inspector(project string) views.Inspector {
	return func(ctx context.Context, in workflows.InspectInput) (workflows.InspectOutput, error) {
		key, _ := json.Marshal(in)
		if out, ok := s.drift.get(project, string(key)); ok {
			return out, nil
		}
		var out workflows.InspectOutput
		if err := views.ReadProject(ctx, s.opts.Client, s.opts.TaskQueue, project, workflows.InspectUpdate, in, &out); err != nil {
			return out, err
		}
		s.drift.put(project, string(key), out)
		return out, nil
	}
}

// inspectTTL is how long a drift answer is reused.
const inspectTTL = 30 * time.Second

// driftCache keeps the last drift answer per project.
type driftCache struct {
	mu      sync.Mutex
	entries map[string]driftEntry
}

type driftEntry struct {
	key string
	at  time.Time
	out workflows.InspectOutput
}

func (c *driftCache) get(project, key string) (workflows.InspectOutput, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[project]
	if !ok || e.key != key || time.Since(e.at) > inspectTTL {
		return workflows.InspectOutput{}, false
	}
	return e.out, true
}

func (c *driftCache) put(project, key string, out workflows.InspectOutput) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]driftEntry{}
	}
	c.entries[project] = driftEntry{key: key, at: time.Now(), out: out}
}

func (s *Server) releasesPage(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	rows, err := views.Releases(ctx, s.opts.Client, v.Project, nil)
	if err != nil {
		s.fail(w, r, "releases", v, err)
		return
	}
	out := make([]releaseRow, len(rows))
	for i, rel := range rows {
		out[i].Release = rel
		if i < maxMessages && rel.WorkflowID != "" {
			// Best effort: a release that does not answer shows no message.
			var st struct {
				Message string `json:"message"`
			}
			if _, err := views.QueryState(ctx, s.opts.Client, rel.WorkflowID, "", &st); err == nil {
				out[i].Message = st.Message
			}
		}
	}
	s.render(w, r, "releases", v, out)
}

// maxMessages bounds the releases whose tag message the page reads (one query each).
const maxMessages = 25

// releaseRow is a release with its tag message.
type releaseRow struct {
	views.Release
	Message string
}

func (s *Server) deploymentsPage(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	fabrics, err := views.Deployments(ctx, s.opts.Client, v.Project, r.URL.Query().Get("fabric"), s.inspector(v.Project))
	if err != nil {
		s.fail(w, r, "deployments", v, err)
		return
	}
	s.render(w, r, "deployments", v, fabrics)
}

// historyData is the history page: every deployment, and the filter.
type historyData struct {
	Rows   []views.HistoryRow
	Fabric string
	Failed bool
}

func (s *Server) historyPage(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	q := r.URL.Query()
	d := historyData{Fabric: q.Get("fabric"), Failed: q.Get("failed") != ""}
	if d.Fabric != "" && !platform.NameRE.MatchString(d.Fabric) {
		http.Error(w, "fabric: not a fabric name", http.StatusBadRequest)
		return
	}
	rows, err := views.History(ctx, s.opts.Client, v.Project, d.Fabric, d.Failed, s.workflowURL)
	if err != nil {
		s.fail(w, r, "history", v, err)
		return
	}
	d.Rows = rows
	s.render(w, r, "history", v, d)
}

// workflowURL links a workflow in the Temporal UI ("" without one).
func (s *Server) workflowURL(id string) string {
	if s.opts.UIURL == "" {
		return ""
	}
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s", strings.TrimRight(s.opts.UIURL, "/"), url.PathEscape(s.opts.Namespace), url.PathEscape(id))
}

// logsData is a deployment's (or a release's) build logs.
type logsData struct {
	ID   string
	Logs views.LogsResult
	Note string
}

func (s *Server) logsPage(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	id := r.URL.Query().Get("id")
	if !ownedBy(id, v.Project) {
		http.Error(w, fmt.Sprintf("id %q is not a deployment or release of %s", id, v.Project), http.StatusBadRequest)
		return
	}
	var raw json.RawMessage
	if _, err := views.QueryState(ctx, s.opts.Client, id, "", &raw); err != nil {
		s.fail(w, r, "logs", v, fmt.Errorf("query %s: %w", id, err))
		return
	}
	d := logsData{ID: id}
	depID := id
	if _, _, ok := workflows.ParseReleaseID(id); ok {
		if depID = views.ReleaseDeployment(raw); depID == "" {
			d.Logs = views.ReadBuilds(id, raw)
			if len(d.Logs.Logs) == 0 {
				d.Note = id + " has no deployment yet"
			}
		} else if _, err := views.QueryState(ctx, s.opts.Client, depID, "", &raw); err != nil {
			s.fail(w, r, "logs", v, fmt.Errorf("query %s: %w", depID, err))
			return
		}
	}
	if d.Note == "" && len(d.Logs.Logs) == 0 {
		d.Logs = views.ReadBuilds(depID, raw)
	}
	d.Logs = views.FillLogs(ctx, d.Logs, func(ctx context.Context, in workflows.ReadLogsInput) (workflows.ReadLogsOutput, error) {
		var out workflows.ReadLogsOutput
		err := views.ReadProject(ctx, s.opts.Client, s.opts.TaskQueue, v.Project, workflows.ReadLogsUpdate, in, &out)
		return out, err
	})
	s.render(w, r, "logs", v, d)
}

// ownedBy tells a release or deployment ID of the project.
func ownedBy(id, project string) bool {
	for _, prefix := range []string{"release/", "deploy/"} {
		if rest, ok := strings.CutPrefix(id, prefix+project+"/"); ok && rest != "" && !strings.ContainsAny(rest, "\x00") {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
