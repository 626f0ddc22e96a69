package web

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/shipline/shipline/internal/views"
)

// auditFilter is the audit page's filter: each field narrows the records
// (empty: any). Actor matches the actor or "actor via delegate".
type auditFilter struct {
	Actor, Action, Stage, Version, Result string
	Since, Until                          string
	since, until                          time.Time
}

// parseAuditFilter reads the filter from the query string.
func parseAuditFilter(q url.Values) (auditFilter, error) {
	f := auditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Stage: q.Get("stage"), Version: q.Get("version"),
		Result: q.Get("result"), Since: q.Get("since"), Until: q.Get("until")}
	var err error
	if f.since, err = parseTime(f.Since); err != nil {
		return f, fmt.Errorf("since: %w", err)
	}
	if f.until, err = parseTime(f.Until); err != nil {
		return f, fmt.Errorf("until: %w", err)
	}
	return f, nil
}

// parseTime reads a time of the filter: RFC 3339, a date and time (UTC;
// what an <input type=datetime-local> sends), or a date.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2026-11-22T10:00, 2026-11-22)", s)
}

func (f auditFilter) keep(r views.AuditRecord) bool {
	switch {
	case f.Actor != "" && r.Actor != f.Actor && r.Who() != f.Actor:
		return false
	case f.Action != "" && r.Action != f.Action:
		return false
	case f.Stage != "" && r.Stage != f.Stage:
		return false
	case f.Version != "" && r.Version != f.Version:
		return false
	case f.Result != "" && r.Result != f.Result:
		return false
	case !f.since.IsZero() && r.Time.Before(f.since):
		return false
	case !f.until.IsZero() && r.Time.After(f.until):
		return false
	}
	return true
}

// Query is the filter as a query string, for the download link: encoded
// here (url.Values), so the template takes it as it is instead of escaping
// its = and & again, which would lose the filter.
func (f auditFilter) Query() template.URL {
	q := url.Values{}
	for k, v := range map[string]string{"actor": f.Actor, "action": f.Action, "stage": f.Stage, "version": f.Version, "result": f.Result, "since": f.Since, "until": f.Until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return template.URL(q.Encode()) // url.Values.Encode escapes every key and value
}

// auditData is the audit page: the records kept, the filter, and the values
// each filter may take.
type auditData struct {
	Filter                  auditFilter
	Records                 []views.AuditRecord
	Total                   int
	Actors, Actions, Stages []string
}

// audit reads the project's audit and applies the request's filter.
func (s *Server) audit(r *http.Request, project string) (auditData, error) {
	f, err := parseAuditFilter(r.URL.Query())
	d := auditData{Filter: f}
	if err != nil {
		return d, err
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	all, err := views.Audit(ctx, s.opts.Client, project)
	if err != nil {
		return d, err
	}
	d.Total = len(all)
	seen := map[string]bool{}
	add := func(list *[]string, kind, v string) {
		if v != "" && !seen[kind+v] {
			seen[kind+v] = true
			*list = append(*list, v)
		}
	}
	for _, rec := range all {
		add(&d.Actors, "a", rec.Who())
		add(&d.Actions, "c", rec.Action)
		add(&d.Stages, "s", rec.Stage)
		if f.keep(rec) {
			d.Records = append(d.Records, rec)
		}
	}
	return d, nil
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, v *visit) {
	d, err := s.audit(r, v.Project)
	if err != nil {
		s.renderStatus(w, r, http.StatusBadRequest, "audit", v, d, func(p *page) { p.Error = err.Error() })
		return
	}
	s.render(w, r, "audit", v, d)
}

// auditJSONL downloads the filtered audit as JSON lines: the same objects as
// `shipline audit --json`.
func (s *Server) auditJSONL(w http.ResponseWriter, r *http.Request, v *visit) {
	d, err := s.audit(r, v.Project)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/jsonl; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "audit-"+strings.ReplaceAll(v.Project, `"`, "")+".jsonl"))
	enc := json.NewEncoder(w)
	for _, rec := range d.Records {
		if err := enc.Encode(rec); err != nil {
			return
		}
	}
}
