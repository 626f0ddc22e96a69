package dbemu

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// DBFS API 2.0: put (≤ 1 MB inline), the streaming create / add-block / close
// handles, get-status, mkdirs, read, list, move, delete. Paths are accepted as
// /x or dbfs:/x. A file created through a handle is visible (and growing) from
// create on, as on the real service, so readers can see partial uploads.

const dbfsMaxBlock = 1 << 20

type dbfsHandle struct {
	path string
}

func normDBFS(p string) string {
	return cleanPath(strings.TrimPrefix(p, "dbfs:"))
}

func dbfsPathOK(w http.ResponseWriter, raw string) (string, bool) {
	if !strings.HasPrefix(strings.TrimPrefix(raw, "dbfs:"), "/") {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Path must be absolute: %s", raw))
		return "", false
	}
	return normDBFS(raw), true
}

// dbfsPrepare checks p can be written and creates its parents; it answers on failure.
func (e *Emulator) dbfsPrepare(w http.ResponseWriter, p string, overwrite bool) bool {
	if _, isDir := e.dbfsDirs[p]; isDir {
		apiError(w, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", fmt.Sprintf("A directory already exists at the input path %s.", p))
		return false
	}
	if _, exists := e.dbfs[p]; exists && !overwrite {
		apiError(w, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", fmt.Sprintf("A file or directory already exists at the input path %s.", p))
		return false
	}
	if f := e.dbfsMkdirsLocked(parentOf(p)); f != "" {
		apiError(w, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", fmt.Sprintf("A file already exists at %s, a parent of %s.", f, p))
		return false
	}
	return true
}

func (e *Emulator) dbfsMkdirsLocked(p string) string {
	for d := p; ; d = parentOf(d) {
		if _, isFile := e.dbfs[d]; isFile {
			return d
		}
		if d == "/" {
			break
		}
	}
	now := e.now()
	for d := p; ; d = parentOf(d) {
		if _, ok := e.dbfsDirs[d]; !ok {
			e.dbfsDirs[d] = now
		}
		if d == "/" {
			break
		}
	}
	return ""
}

func (e *Emulator) dbfsPut(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path      string `json:"path"`
		Contents  string `json:"contents"`
		Overwrite bool   `json:"overwrite"`
	}
	var data []byte
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		if err := r.ParseMultipartForm(64 << 20); err != nil {
			apiError(w, http.StatusBadRequest, "MALFORMED_REQUEST", "Could not parse multipart form: "+err.Error())
			return
		}
		req.Path = r.FormValue("path")
		req.Overwrite, _ = strconv.ParseBool(r.FormValue("overwrite"))
		if f, _, err := r.FormFile("contents"); err == nil {
			data, _ = io.ReadAll(f)
			f.Close()
		}
	} else {
		if !decodeJSON(w, r, &req) {
			return
		}
		var err error
		if data, err = base64.StdEncoding.DecodeString(req.Contents); err != nil {
			apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "contents must be base64 encoded: "+err.Error())
			return
		}
		if len(data) > dbfsMaxBlock {
			apiError(w, http.StatusBadRequest, "MAX_BLOCK_SIZE_EXCEEDED", "File uploads via put are limited to 1 MB of contents; use create, add-block and close.")
			return
		}
	}
	p, ok := dbfsPathOK(w, req.Path)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.dbfsPrepare(w, p, req.Overwrite) {
		return
	}
	e.dbfs[p] = &blob{data: data, modified: e.now()}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (e *Emulator) dbfsCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path      string `json:"path"`
		Overwrite bool   `json:"overwrite"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	p, ok := dbfsPathOK(w, req.Path)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.dbfsPrepare(w, p, req.Overwrite) {
		return
	}
	e.dbfs[p] = &blob{modified: e.now()}
	e.nextHandle += 1 + e.rng.Int63n(100)
	e.handles[e.nextHandle] = &dbfsHandle{path: p}
	writeJSON(w, http.StatusOK, map[string]any{"handle": e.nextHandle})
}

func (e *Emulator) dbfsAddBlock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Handle int64  `json:"handle"`
		Data   string `json:"data"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	data, err := base64.StdEncoding.DecodeString(req.Data)
	if err != nil {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "data must be base64 encoded: "+err.Error())
		return
	}
	if len(data) > dbfsMaxBlock {
		apiError(w, http.StatusBadRequest, "MAX_BLOCK_SIZE_EXCEEDED", "The block of data exceeds the maximum of 1 MB.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	h, ok := e.handles[req.Handle]
	if !ok {
		apiError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Handle %d does not exist.", req.Handle))
		return
	}
	b, ok := e.dbfs[h.path]
	if !ok { // deleted while open
		b = &blob{}
		e.dbfs[h.path] = b
	}
	b.data = append(b.data, data...)
	b.modified = e.now()
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (e *Emulator) dbfsClose(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Handle int64 `json:"handle"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.handles[req.Handle]; !ok {
		apiError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Handle %d does not exist.", req.Handle))
		return
	}
	delete(e.handles, req.Handle)
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (e *Emulator) dbfsInfo(p string) (map[string]any, bool) {
	if b, ok := e.dbfs[p]; ok {
		return map[string]any{"path": p, "is_dir": false, "file_size": len(b.data), "modification_time": b.modified.UnixMilli()}, true
	}
	if t, ok := e.dbfsDirs[p]; ok {
		return map[string]any{"path": p, "is_dir": true, "file_size": 0, "modification_time": t.UnixMilli()}, true
	}
	return nil, false
}

func (e *Emulator) dbfsGetStatus(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("path")
	p, ok := dbfsPathOK(w, raw)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	info, ok := e.dbfsInfo(p)
	if !ok {
		apiError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("No file or directory exists on path %s.", p))
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (e *Emulator) dbfsMkdirs(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path string `json:"path"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	p, ok := dbfsPathOK(w, req.Path)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if f := e.dbfsMkdirsLocked(p); f != "" {
		apiError(w, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", fmt.Sprintf("A file already exists at %s.", f))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (e *Emulator) dbfsRead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, ok := dbfsPathOK(w, q.Get("path"))
	if !ok {
		return
	}
	offset, _ := strconv.ParseInt(q.Get("offset"), 10, 64)
	length := int64(512 << 10)
	if l := q.Get("length"); l != "" {
		length, _ = strconv.ParseInt(l, 10, 64)
	}
	if length > dbfsMaxBlock {
		apiError(w, http.StatusBadRequest, "MAX_READ_SIZE_EXCEEDED", "Cannot read more than 1 MB at a time.")
		return
	}
	if offset < 0 || length < 0 {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "offset and length must not be negative.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, isDir := e.dbfsDirs[p]; isDir {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("%s is a directory.", p))
		return
	}
	b, ok := e.dbfs[p]
	if !ok {
		apiError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("No file or directory exists on path %s.", p))
		return
	}
	lo := min(offset, int64(len(b.data)))
	hi := min(lo+length, int64(len(b.data)))
	writeJSON(w, http.StatusOK, map[string]any{"bytes_read": hi - lo, "data": base64.StdEncoding.EncodeToString(b.data[lo:hi])})
}

func (e *Emulator) dbfsList(w http.ResponseWriter, r *http.Request) {
	p, ok := dbfsPathOK(w, r.URL.Query().Get("path"))
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	info, ok := e.dbfsInfo(p)
	if !ok {
		apiError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("No file or directory exists on path %s.", p))
		return
	}
	if !info["is_dir"].(bool) {
		writeJSON(w, http.StatusOK, map[string]any{"files": []any{info}})
		return
	}
	var names []string
	for f := range e.dbfs {
		if parentOf(f) == p {
			names = append(names, f)
		}
	}
	for d := range e.dbfsDirs {
		if d != "/" && parentOf(d) == p {
			names = append(names, d)
		}
	}
	sort.Strings(names)
	files := make([]any, 0, len(names))
	for _, n := range names {
		i, _ := e.dbfsInfo(n)
		files = append(files, i)
	}
	out := map[string]any{}
	if len(files) > 0 {
		out["files"] = files
	}
	writeJSON(w, http.StatusOK, out)
}

func (e *Emulator) dbfsMove(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Source string `json:"source_path"`
		Dest   string `json:"destination_path"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	src, ok := dbfsPathOK(w, req.Source)
	if !ok {
		return
	}
	dst, ok := dbfsPathOK(w, req.Dest)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.dbfsInfo(src); !ok {
		apiError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("No file or directory exists on path %s.", src))
		return
	}
	if _, exists := e.dbfsInfo(dst); exists {
		apiError(w, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", fmt.Sprintf("A file or directory already exists at the input path %s.", dst))
		return
	}
	if f := e.dbfsMkdirsLocked(parentOf(dst)); f != "" {
		apiError(w, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", fmt.Sprintf("A file already exists at %s.", f))
		return
	}
	for f, b := range e.dbfs {
		if f == src || strings.HasPrefix(f, src+"/") {
			delete(e.dbfs, f)
			e.dbfs[dst+strings.TrimPrefix(f, src)] = b
		}
	}
	for d, t := range e.dbfsDirs {
		if d == src || strings.HasPrefix(d, src+"/") {
			delete(e.dbfsDirs, d)
			e.dbfsDirs[dst+strings.TrimPrefix(d, src)] = t
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (e *Emulator) dbfsDelete(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path      string `json:"path"`
		Recursive bool   `json:"recursive"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	p, ok := dbfsPathOK(w, req.Path)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, isDir := e.dbfsDirs[p]; isDir && !req.Recursive {
		for f := range e.dbfs {
			if strings.HasPrefix(f, p+"/") {
				apiError(w, http.StatusBadRequest, "IO_ERROR", fmt.Sprintf("Directory %s is not empty; use recursive delete.", p))
				return
			}
		}
	}
	for f := range e.dbfs {
		if f == p || strings.HasPrefix(f, p+"/") {
			delete(e.dbfs, f)
		}
	}
	for d := range e.dbfsDirs {
		if d != "/" && (d == p || strings.HasPrefix(d, p+"/")) {
			delete(e.dbfsDirs, d)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}
