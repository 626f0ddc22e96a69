package dbemu

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Workspace API 2.0: import (JSON with base64 content, or multipart as the
// SDK's Workspace.Upload sends it), get-status, mkdirs, export, list, delete.
// Paths are accepted with or without the /Workspace prefix.

type wsObject struct {
	Type     string // DIRECTORY, FILE, NOTEBOOK
	Language string
	ID       int64
	Created  time.Time
	Modified time.Time
	data     []byte
}

func normWS(p string) string {
	p = cleanPath(p)
	if p == "/Workspace" {
		return "/"
	}
	if rest, ok := strings.CutPrefix(p, "/Workspace/"); ok {
		return "/" + rest
	}
	return p
}

// mkdirsLocked creates p and its parents; it returns the path of a file in the
// way, if any.
func (e *Emulator) mkdirsLocked(p string) string {
	var chain []string
	for d := p; ; d = parentOf(d) {
		chain = append(chain, d)
		if d == "/" {
			break
		}
	}
	for _, d := range chain {
		if o, ok := e.ws[d]; ok && o.Type != "DIRECTORY" {
			return d
		}
	}
	now := e.now()
	for _, d := range chain {
		if _, ok := e.ws[d]; !ok {
			e.nextObject++
			e.ws[d] = &wsObject{Type: "DIRECTORY", ID: e.nextObject, Created: now, Modified: now}
		}
	}
	return ""
}

type importRequest struct {
	Path      string `json:"path"`
	Format    string `json:"format"`
	Language  string `json:"language"`
	Content   string `json:"content"`
	Overwrite bool   `json:"overwrite"`
	data      []byte
}

func (e *Emulator) wsImport(w http.ResponseWriter, r *http.Request) {
	var req importRequest
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		if err := r.ParseMultipartForm(64 << 20); err != nil {
			apiError(w, http.StatusBadRequest, "MALFORMED_REQUEST", "Could not parse multipart form: "+err.Error())
			return
		}
		req.Path, req.Format, req.Language = r.FormValue("path"), r.FormValue("format"), r.FormValue("language")
		req.Overwrite, _ = strconv.ParseBool(r.FormValue("overwrite"))
		f, _, err := r.FormFile("content")
		if err == nil {
			req.data, _ = io.ReadAll(f)
			f.Close()
		}
	} else {
		if !decodeJSON(w, r, &req) {
			return
		}
		data, err := base64.StdEncoding.DecodeString(req.Content)
		if err != nil {
			apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "The content must be base64 encoded: "+err.Error())
			return
		}
		req.data = data
	}
	if !strings.HasPrefix(req.Path, "/") {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Path (%s) must be absolute.", req.Path))
		return
	}
	if req.Format == "" {
		req.Format = "SOURCE"
	}
	p := normWS(req.Path)
	obj := &wsObject{data: req.data}
	switch req.Format {
	case "AUTO":
		obj.Type = "FILE"
		if lang, name, ok := detectNotebook(p, req.data); ok {
			obj.Type, obj.Language, p = "NOTEBOOK", lang, name
		}
	case "RAW":
		obj.Type = "FILE"
	case "SOURCE":
		if req.Language == "" {
			apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "The language field is required when importing in SOURCE format.")
			return
		}
		obj.Type, obj.Language = "NOTEBOOK", req.Language
	case "JUPYTER", "DBC", "HTML", "R_MARKDOWN":
		obj.Type, obj.Language = "NOTEBOOK", "PYTHON"
		p = strings.TrimSuffix(p, ".ipynb")
	default:
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Unsupported import format %q.", req.Format))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	parent, ok := e.ws[parentOf(p)]
	if !ok || parent.Type != "DIRECTORY" {
		apiError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("The parent folder (%s) does not exist.", parentOf(p)))
		return
	}
	now := e.now()
	if old, exists := e.ws[p]; exists {
		if old.Type == "DIRECTORY" || !req.Overwrite {
			apiError(w, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", fmt.Sprintf("Path (%s) already exists.", p))
			return
		}
		obj.ID, obj.Created = old.ID, old.Created
	} else {
		e.nextObject++
		obj.ID, obj.Created = e.nextObject, now
	}
	obj.Modified = now
	e.ws[p] = obj
	writeJSON(w, http.StatusOK, map[string]any{})
}

// detectNotebook applies AUTO format rules: source files with the notebook
// header and .ipynb files become notebooks without their extension.
func detectNotebook(p string, data []byte) (lang, name string, ok bool) {
	headers := map[string][2]string{
		".py":    {"# Databricks notebook source", "PYTHON"},
		".scala": {"// Databricks notebook source", "SCALA"},
		".sql":   {"-- Databricks notebook source", "SQL"},
		".r":     {"# Databricks notebook source", "R"},
	}
	for ext, h := range headers {
		if strings.HasSuffix(strings.ToLower(p), ext) && bytes.HasPrefix(data, []byte(h[0])) {
			return h[1], p[:len(p)-len(ext)], true
		}
	}
	if strings.HasSuffix(p, ".ipynb") {
		return "PYTHON", strings.TrimSuffix(p, ".ipynb"), true
	}
	return "", "", false
}

func (o *wsObject) info(p string) map[string]any {
	m := map[string]any{
		"object_type": o.Type,
		"path":        p,
		"object_id":   o.ID,
		"resource_id": strconv.FormatInt(o.ID, 10),
		"created_at":  o.Created.UnixMilli(),
		"modified_at": o.Modified.UnixMilli(),
	}
	if o.Language != "" {
		m["language"] = o.Language
	}
	if o.Type == "FILE" {
		m["size"] = len(o.data)
	}
	return m
}

func (e *Emulator) wsGetStatus(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("path")
	p := normWS(raw)
	e.mu.Lock()
	defer e.mu.Unlock()
	o, ok := e.ws[p]
	if !ok || raw == "" {
		apiError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Path (%s) doesn't exist.", raw))
		return
	}
	writeJSON(w, http.StatusOK, o.info(p))
}

func (e *Emulator) wsMkdirs(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path string `json:"path"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	if !strings.HasPrefix(req.Path, "/") {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Path (%s) must be absolute.", req.Path))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if f := e.mkdirsLocked(normWS(req.Path)); f != "" {
		apiError(w, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", fmt.Sprintf("Cannot create directory %s: a file or notebook exists at %s.", req.Path, f))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (e *Emulator) wsExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	raw := q.Get("path")
	e.mu.Lock()
	o, ok := e.ws[normWS(raw)]
	var data []byte
	if ok {
		data = append([]byte(nil), o.data...)
	}
	e.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Path (%s) doesn't exist.", raw))
		return
	}
	if o.Type == "DIRECTORY" {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Path (%s) is a directory; export it in DBC format.", raw))
		return
	}
	if q.Get("direct_download") == "true" {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(data)
		return
	}
	ft := strings.ToLower(o.Language)
	if o.Type == "FILE" {
		ft = strings.TrimPrefix(baseOf(raw)[strings.LastIndex(baseOf(raw), ".")+1:], ".")
	}
	writeJSON(w, http.StatusOK, map[string]any{"content": base64.StdEncoding.EncodeToString(data), "file_type": ft})
}

func (e *Emulator) wsList(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("path")
	p := normWS(raw)
	e.mu.Lock()
	defer e.mu.Unlock()
	o, ok := e.ws[p]
	if !ok {
		apiError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Path (%s) doesn't exist.", raw))
		return
	}
	if o.Type != "DIRECTORY" {
		writeJSON(w, http.StatusOK, map[string]any{"objects": []any{o.info(p)}})
		return
	}
	var names []string
	for c := range e.ws {
		if c != "/" && c != p && parentOf(c) == p {
			names = append(names, c)
		}
	}
	sort.Strings(names)
	objs := make([]any, 0, len(names))
	for _, c := range names {
		objs = append(objs, e.ws[c].info(c))
	}
	out := map[string]any{}
	if len(objs) > 0 {
		out["objects"] = objs
	}
	writeJSON(w, http.StatusOK, out)
}

func (e *Emulator) wsDelete(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path      string `json:"path"`
		Recursive bool   `json:"recursive"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	p := normWS(req.Path)
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.ws[p]; !ok {
		apiError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Path (%s) doesn't exist.", req.Path))
		return
	}
	var children []string
	for c := range e.ws {
		if strings.HasPrefix(c, p+"/") || (p == "/" && c != "/") {
			children = append(children, c)
		}
	}
	if len(children) > 0 && !req.Recursive {
		apiError(w, http.StatusBadRequest, "DIRECTORY_NOT_EMPTY", fmt.Sprintf("Folder (%s) is not empty.", req.Path))
		return
	}
	for _, c := range children {
		delete(e.ws, c)
	}
	delete(e.ws, p)
	writeJSON(w, http.StatusOK, map[string]any{})
}

// base64Len is the decoded length of a base64 string (for the request log).
func base64Len(s string) int {
	return base64.StdEncoding.DecodedLen(len(s)) - strings.Count(s[max(0, len(s)-2):], "=")
}
