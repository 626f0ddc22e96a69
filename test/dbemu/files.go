package dbemu

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Files API (/api/2.0/fs/files and /api/2.0/fs/directories) over Unity
// Catalog volumes. Only /Volumes/<catalog>/<schema>/<volume>/... paths of
// volumes the emulator was given exist; anything else is 404 like the real API.

// volumeRoot checks p is inside an existing volume and returns the volume
// root; on failure it has answered.
func (e *Emulator) volumeRoot(w http.ResponseWriter, p string, needChild bool) (string, bool) {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(parts) < 4 || parts[0] != "Volumes" || (needChild && len(parts) < 5) {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE",
			fmt.Sprintf("Invalid path %q: paths must have the form /Volumes/<catalog>/<schema>/<volume>/<path>.", p))
		return "", false
	}
	root := "/" + strings.Join(parts[:4], "/")
	if !e.volumes[root] {
		apiError(w, http.StatusNotFound, "NOT_FOUND",
			fmt.Sprintf("Volume '%s.%s.%s' does not exist.", parts[1], parts[2], parts[3]))
		return "", false
	}
	return root, true
}

func (e *Emulator) filesPut(w http.ResponseWriter, r *http.Request) {
	p := cleanPath(r.PathValue("path"))
	overwrite := true // "If true or unspecified, an existing file will be overwritten."
	if o := r.URL.Query().Get("overwrite"); o != "" {
		b, err := strconv.ParseBool(o)
		if err != nil {
			apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("Invalid value for overwrite: %q", o))
			return
		}
		overwrite = b
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Could not read the request body: "+err.Error())
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	root, ok := e.volumeRoot(w, p, true)
	if !ok {
		return
	}
	if _, isDir := e.vdirs[p]; isDir {
		apiError(w, http.StatusConflict, "ALREADY_EXISTS", fmt.Sprintf("A directory already exists at %s.", p))
		return
	}
	for d := parentOf(p); d != root && len(d) > len(root); d = parentOf(d) {
		if _, isFile := e.vfiles[d]; isFile {
			apiError(w, http.StatusConflict, "ALREADY_EXISTS", fmt.Sprintf("A file already exists at %s, a parent of %s.", d, p))
			return
		}
	}
	if _, exists := e.vfiles[p]; exists && !overwrite {
		apiError(w, http.StatusConflict, "ALREADY_EXISTS", "The file being created already exists.")
		return
	}
	now := e.now()
	e.vfiles[p] = &blob{data: data, modified: now}
	for d := parentOf(p); len(d) > len(root); d = parentOf(d) {
		if _, ok := e.vdirs[d]; !ok {
			e.vdirs[d] = now
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// filesGet serves GET (download) and HEAD (metadata).
func (e *Emulator) filesGet(w http.ResponseWriter, r *http.Request) {
	p := cleanPath(r.PathValue("path"))
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.volumeRoot(w, p, true); !ok {
		return
	}
	b, ok := e.vfiles[p]
	if !ok {
		apiError(w, http.StatusNotFound, "NOT_FOUND", "The file being accessed is not found.")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b.data)))
	w.Header().Set("Last-Modified", httpDate(b.modified))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b.data)
	}
}

func (e *Emulator) filesDelete(w http.ResponseWriter, r *http.Request) {
	p := cleanPath(r.PathValue("path"))
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.volumeRoot(w, p, true); !ok {
		return
	}
	if _, ok := e.vfiles[p]; !ok {
		apiError(w, http.StatusNotFound, "NOT_FOUND", "The file being accessed is not found.")
		return
	}
	delete(e.vfiles, p)
	w.WriteHeader(http.StatusNoContent)
}

// dirsPut creates a directory and its parents; it succeeds if it exists.
func (e *Emulator) dirsPut(w http.ResponseWriter, r *http.Request) {
	p := cleanPath(r.PathValue("path"))
	e.mu.Lock()
	defer e.mu.Unlock()
	root, ok := e.volumeRoot(w, p, false)
	if !ok {
		return
	}
	for d := p; len(d) > len(root); d = parentOf(d) {
		if _, isFile := e.vfiles[d]; isFile {
			apiError(w, http.StatusConflict, "ALREADY_EXISTS", fmt.Sprintf("A file already exists at %s.", d))
			return
		}
	}
	now := e.now()
	for d := p; len(d) > len(root); d = parentOf(d) {
		if _, ok := e.vdirs[d]; !ok {
			e.vdirs[d] = now
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// dirsGet serves HEAD (exists?) and GET (list contents, paged).
func (e *Emulator) dirsGet(w http.ResponseWriter, r *http.Request) {
	p := cleanPath(r.PathValue("path"))
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.volumeRoot(w, p, false); !ok {
		return
	}
	if _, ok := e.vdirs[p]; !ok {
		apiError(w, http.StatusNotFound, "NOT_FOUND", "The directory being accessed is not found.")
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	type entry struct {
		Path         string `json:"path"`
		IsDirectory  bool   `json:"is_directory,omitempty"`
		FileSize     int64  `json:"file_size,omitempty"`
		LastModified int64  `json:"last_modified,omitempty"`
		Name         string `json:"name"`
	}
	var entries []entry
	for d, t := range e.vdirs {
		if d != p && parentOf(d) == p {
			entries = append(entries, entry{Path: d + "/", IsDirectory: true, LastModified: t.UnixMilli(), Name: baseOf(d)})
		}
	}
	for f, b := range e.vfiles {
		if parentOf(f) == p {
			entries = append(entries, entry{Path: f, FileSize: int64(len(b.data)), LastModified: b.modified.UnixMilli(), Name: baseOf(f)})
		}
	}
	sort.Slice(entries, func(a, b int) bool { return entries[a].Name < entries[b].Name })
	size := 1000
	if s := r.URL.Query().Get("page_size"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 && n < size {
			size = n
		}
	}
	start := 0
	if t := r.URL.Query().Get("page_token"); t != "" {
		n, err := decodeToken(t, "dir")
		if err != nil {
			apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Invalid page_token.")
			return
		}
		start = min(int(n), len(entries))
	}
	out := map[string]any{}
	end := min(start+size, len(entries))
	if end < len(entries) {
		out["next_page_token"] = encodeToken("dir", int64(end))
	}
	if end > start {
		out["contents"] = entries[start:end]
	}
	writeJSON(w, http.StatusOK, out)
}

func (e *Emulator) dirsDelete(w http.ResponseWriter, r *http.Request) {
	p := cleanPath(r.PathValue("path"))
	e.mu.Lock()
	defer e.mu.Unlock()
	root, ok := e.volumeRoot(w, p, true)
	if !ok {
		return
	}
	if _, ok := e.vdirs[p]; !ok || p == root {
		apiErrorReason(w, http.StatusNotFound, "NOT_FOUND", "FILES_API_DIRECTORY_IS_NOT_FOUND", "The directory being accessed is not found.")
		return
	}
	// Like the real API: only empty directories are deleted; a non-empty one is
	// a 400 whose ErrorInfo reason says why (clients walk and delete bottom-up).
	empty := true
	for f := range e.vfiles {
		empty = empty && !strings.HasPrefix(f, p+"/")
	}
	for d := range e.vdirs {
		empty = empty && !strings.HasPrefix(d, p+"/")
	}
	if !empty {
		apiErrorReason(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "FILES_API_DIRECTORY_IS_NOT_EMPTY",
			fmt.Sprintf("The directory %s is not empty. Delete its contents first.", p))
		return
	}
	delete(e.vdirs, p)
	w.WriteHeader(http.StatusNoContent)
}

// apiErrorReason writes a Databricks error body with a google.rpc.ErrorInfo
// detail, as the Files API does (clients match on the reason, not the 400/404).
func apiErrorReason(w http.ResponseWriter, status int, code, reason, msg string) {
	writeJSON(w, status, map[string]any{
		"error_code": code,
		"message":    msg,
		"details": []map[string]any{{
			"@type":  "type.googleapis.com/google.rpc.ErrorInfo",
			"reason": reason,
			"domain": "filesystem.databricks.com",
		}},
	})
}
