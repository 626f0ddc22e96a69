// Package dbemu is an in-process emulator of the subset of the Databricks REST
// API that Shipline uses: Jobs 2.2 (jobs and runs, see runs.go), Workspace, the Files API for /Volumes and
// DBFS. It follows the real API's paths, payloads, status codes and error bodies
// ({"error_code": "...", "message": "..."}) closely enough that tests drive it
// only through databricks-sdk-go. It checks bearer tokens, records every request
// and can inject faults (status codes, latency, dropped connections).
//
// A test starts one with Start and talks to it with a client from Client:
//
//	emu := dbemu.Start(dbemu.Options{Volumes: []string{"/Volumes/main/shipline/artifacts"}})
//	defer emu.Close()
//	w, err := emu.Client(dbemu.DefaultToken)
package dbemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/config"
)

// DefaultToken is the token accepted when Options.Tokens is empty.
const DefaultToken = "dapi-emulator-token"

// Options configure an emulator.
type Options struct {
	// Tokens are the valid personal access tokens; empty means [DefaultToken].
	Tokens []string
	// User is the creator_user_name of jobs; empty means "shipline@example.com".
	User string
	// Volumes are the Unity Catalog volumes that exist, as /Volumes/<catalog>/<schema>/<volume>.
	// Files API calls outside them get 404 like the real API.
	Volumes []string
	// WorkspaceDirs are workspace folders that exist besides /, /Users, /Shared
	// and /Users/<User>.
	WorkspaceDirs []string
	// Seed seeds job IDs and the random-fault mode; 0 picks one from the clock.
	Seed int64
}

// Emulator is a running fake Databricks workspace.
type Emulator struct {
	// URL is the base URL to use as the SDK's Host, e.g. http://127.0.0.1:41234.
	URL string

	srv      *httptest.Server
	mux      *http.ServeMux
	user     string
	mu       sync.Mutex
	tokens   map[string]tokenState
	faults   []*Fault
	random   *randomFaults
	requests []Request
	now      func() time.Time

	jobs      map[int64]*job
	nextJobID int64

	skew      atomic.Int64 // Advance: how far the clock is ahead of time.Now
	runs      map[int64]*run
	runTokens map[string]int64 // idempotency_token → run_id
	nextRunID int64
	behaviors map[string]TaskBehavior

	volumes map[string]bool // "/Volumes/c/s/v"
	vfiles  map[string]*blob
	vdirs   map[string]time.Time

	ws         map[string]*wsObject // normalised path without /Workspace prefix
	nextObject int64

	dbfs       map[string]*blob // normalised "/path"
	dbfsDirs   map[string]time.Time
	handles    map[int64]*dbfsHandle
	nextHandle int64
	rng        *rand.Rand
}

type tokenState int

const (
	tokenValid tokenState = iota + 1
	tokenDenied
)

type blob struct {
	data     []byte
	modified time.Time
}

// New returns an emulator that is not listening yet; use it as an http.Handler
// or call Start/Listen instead.
func New(opts Options) *Emulator {
	seed := opts.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	e := &Emulator{
		user:      opts.User,
		tokens:    map[string]tokenState{},
		jobs:      map[int64]*job{},
		runs:      map[int64]*run{},
		runTokens: map[string]int64{},
		behaviors: map[string]TaskBehavior{},
		volumes:   map[string]bool{},
		vfiles:    map[string]*blob{},
		vdirs:     map[string]time.Time{},
		ws:        map[string]*wsObject{},
		dbfs:      map[string]*blob{},
		dbfsDirs:  map[string]time.Time{"/": time.Now()},
		handles:   map[int64]*dbfsHandle{},
		rng:       rand.New(rand.NewSource(seed)),
	}
	if e.user == "" {
		e.user = "shipline@example.com"
	}
	// Real job IDs are large int64s, well past 2^32.
	e.nextJobID = 1_000_000_000_000_000 + e.rng.Int63n(1_000_000_000_000)
	e.nextObject = 1_000_000_000 + e.rng.Int63n(1_000_000)
	e.nextHandle = 1 + e.rng.Int63n(1_000_000)
	e.nextRunID = 100_000_000_000_000 + e.rng.Int63n(1_000_000_000_000)
	e.now = func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }
	tokens := opts.Tokens
	if len(tokens) == 0 {
		tokens = []string{DefaultToken}
	}
	for _, t := range tokens {
		e.tokens[t] = tokenValid
	}
	for _, v := range opts.Volumes {
		e.AddVolume(v)
	}
	for _, d := range append([]string{"/Users", "/Shared", "/Users/" + e.user}, opts.WorkspaceDirs...) {
		e.mkdirsLocked(normWS(d))
	}
	e.routes()
	return e
}

// Start runs a new emulator on a loopback port (httptest.Server).
func Start(opts Options) *Emulator {
	e := New(opts)
	e.srv = httptest.NewServer(e)
	e.URL = e.srv.URL
	return e
}

// Listen runs a new emulator on addr (e.g. "127.0.0.1:0" or a fixed port for a
// separate process to use).
func Listen(addr string, opts Options) (*Emulator, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dbemu listen %s: %w", addr, err)
	}
	e := New(opts)
	e.srv = httptest.NewUnstartedServer(e)
	e.srv.Listener.Close()
	e.srv.Listener = l
	e.srv.Start()
	e.URL = e.srv.URL
	return e, nil
}

// Close stops the server and closes its connections.
func (e *Emulator) Close() {
	if e.srv != nil {
		e.srv.CloseClientConnections()
		e.srv.Close()
	}
}

// Client returns a databricks-sdk-go workspace client for this emulator,
// authenticating with token (PAT auth, no config file or environment lookups).
// Keep retryTimeout small in tests of failure paths: the SDK retries 429 and
// 503 on its own until it runs out.
func (e *Emulator) Client(token string, tweak ...func(*databricks.Config)) (*databricks.WorkspaceClient, error) {
	cfg := &databricks.Config{
		Host:        e.URL,
		Token:       token,
		AuthType:    "pat",
		Credentials: config.PatCredentials{},
		Loaders:     []config.Loader{noLoader{}},
		// The emulator is local: do not throttle tests at the SDK's default 15 req/s.
		RateLimitPerSecond: 10_000,
	}
	for _, t := range tweak {
		t(cfg)
	}
	return databricks.NewWorkspaceClient(cfg)
}

type noLoader struct{}

func (noLoader) Name() string                   { return "dbemu" }
func (noLoader) Configure(*config.Config) error { return nil }

// AddToken makes token valid (again).
func (e *Emulator) AddToken(token string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokens[token] = tokenValid
}

// RevokeToken makes token invalid: calls with it get 401 UNAUTHENTICATED.
func (e *Emulator) RevokeToken(token string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.tokens, token)
}

// DenyToken keeps token valid for authentication but makes every call with it
// fail with 403 PERMISSION_DENIED, like a token of a user without rights.
func (e *Emulator) DenyToken(token string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokens[token] = tokenDenied
}

// AddVolume makes a Unity Catalog volume exist (/Volumes/<catalog>/<schema>/<volume>).
func (e *Emulator) AddVolume(path string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := strings.TrimSuffix(cleanPath(path), "/")
	e.volumes[p] = true
	e.vdirs[p] = e.now()
}

// Request is one recorded call.
type Request struct {
	Time   time.Time
	Method string
	Path   string // decoded URL path
	Query  string // raw query
	Status int    // 0 when the connection was dropped before a response
	// Fault says which injected fault answered, if any ("status 503", "drop", ...).
	Fault string
	// Fields are the request's top-level scalar JSON fields (job_id, path,
	// overwrite, name...), new_settings.name for resets, and the decoded length
	// of base64 payloads as content_len/contents_len/data_len.
	Fields map[string]string
}

// Requests returns a copy of the request log.
func (e *Emulator) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Request(nil), e.requests...)
}

// CountRequests counts logged calls with this method and path prefix (method "" = any),
// answered with a status below 400.
func (e *Emulator) CountRequests(method, pathPrefix string) int {
	n := 0
	for _, r := range e.Requests() {
		if (method == "" || r.Method == method) && strings.HasPrefix(r.Path, pathPrefix) && r.Status > 0 && r.Status < 400 {
			n++
		}
	}
	return n
}

// ResetRequests clears the request log.
func (e *Emulator) ResetRequests() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = nil
}

// ServeHTTP applies faults, authentication and logging around the API routes.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := readBody(r)
	rec := Request{Time: e.now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Fields: logFields(r, body)}
	f := e.pickFault(r)
	if f != nil && f.Hold != nil {
		if f.Holding != nil {
			select {
			case f.Holding <- r.URL.Path:
			default:
			}
		}
		select {
		case <-f.Hold:
		case <-r.Context().Done():
		}
	}
	if f != nil && f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-r.Context().Done():
		}
	}
	if f != nil && f.Drop == DropBefore {
		rec.Fault = "drop"
		e.log(rec)
		hijackClose(w, f.Reset)
		return
	}
	buf := &bufferedWriter{header: http.Header{}}
	switch {
	case f != nil && f.Status != 0 && !f.After:
		rec.Fault = fmt.Sprintf("status %d", f.Status)
		writeFault(buf, f.Status)
	default:
		if e.authorize(buf, r) {
			e.mux.ServeHTTP(buf, r)
		}
	}
	if buf.status == 0 {
		buf.status = http.StatusOK
	}
	if f != nil && f.Status != 0 && f.After {
		// The call was handled (whatever its own answer was); the client
		// only sees the error.
		rec.Fault = fmt.Sprintf("status %d after handling (answer was %d)", f.Status, buf.status)
		buf = &bufferedWriter{header: http.Header{}}
		writeFault(buf, f.Status)
	}
	rec.Status = buf.status
	if f != nil && f.Drop == DropAfter {
		rec.Fault = "drop after handling"
		rec.Status = 0
		e.log(rec)
		hijackClose(w, f.Reset)
		return
	}
	e.log(rec)
	for k, v := range buf.header {
		w.Header()[k] = v
	}
	w.WriteHeader(buf.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.body.Bytes())
	}
}

func (e *Emulator) log(r Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = append(e.requests, r)
}

func (e *Emulator) authorize(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if h == "" {
		apiError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "No API token found in the request. Please provide a token in the Authorization header.")
		return false
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	e.mu.Lock()
	st := e.tokens[tok]
	e.mu.Unlock()
	switch {
	case !ok || st == 0:
		apiError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Invalid access token.")
		return false
	case st == tokenDenied:
		apiError(w, http.StatusForbidden, "PERMISSION_DENIED", fmt.Sprintf("User %s does not have permission to perform %s %s.", e.user, r.Method, r.URL.Path))
		return false
	}
	return true
}

func (e *Emulator) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /api/2.2/jobs/create", e.jobsCreate)
	m.HandleFunc("POST /api/2.2/jobs/reset", e.jobsReset)
	m.HandleFunc("POST /api/2.2/jobs/update", e.jobsUpdate)
	m.HandleFunc("GET /api/2.2/jobs/get", e.jobsGet)
	m.HandleFunc("GET /api/2.2/jobs/list", e.jobsList)
	m.HandleFunc("POST /api/2.2/jobs/delete", e.jobsDelete)
	m.HandleFunc("POST /api/2.2/jobs/run-now", e.runsRunNow)
	m.HandleFunc("GET /api/2.2/jobs/runs/get", e.runsGet)
	m.HandleFunc("GET /api/2.2/jobs/runs/list", e.runsList)
	m.HandleFunc("POST /api/2.2/jobs/runs/cancel", e.runsCancel)

	m.HandleFunc("POST /api/2.0/workspace/import", e.wsImport)
	m.HandleFunc("GET /api/2.0/workspace/get-status", e.wsGetStatus)
	m.HandleFunc("POST /api/2.0/workspace/mkdirs", e.wsMkdirs)
	m.HandleFunc("GET /api/2.0/workspace/export", e.wsExport)
	m.HandleFunc("GET /api/2.0/workspace/list", e.wsList)
	m.HandleFunc("POST /api/2.0/workspace/delete", e.wsDelete)

	m.HandleFunc("PUT /api/2.0/fs/files/{path...}", e.filesPut)
	m.HandleFunc("GET /api/2.0/fs/files/{path...}", e.filesGet) // GET patterns also match HEAD
	m.HandleFunc("DELETE /api/2.0/fs/files/{path...}", e.filesDelete)
	m.HandleFunc("PUT /api/2.0/fs/directories/{path...}", e.dirsPut)
	m.HandleFunc("GET /api/2.0/fs/directories/{path...}", e.dirsGet)
	m.HandleFunc("DELETE /api/2.0/fs/directories/{path...}", e.dirsDelete)

	m.HandleFunc("POST /api/2.0/dbfs/put", e.dbfsPut)
	m.HandleFunc("POST /api/2.0/dbfs/create", e.dbfsCreate)
	m.HandleFunc("POST /api/2.0/dbfs/add-block", e.dbfsAddBlock)
	m.HandleFunc("POST /api/2.0/dbfs/close", e.dbfsClose)
	m.HandleFunc("GET /api/2.0/dbfs/get-status", e.dbfsGetStatus)
	m.HandleFunc("POST /api/2.0/dbfs/mkdirs", e.dbfsMkdirs)
	m.HandleFunc("GET /api/2.0/dbfs/read", e.dbfsRead)
	m.HandleFunc("GET /api/2.0/dbfs/list", e.dbfsList)
	m.HandleFunc("POST /api/2.0/dbfs/move", e.dbfsMove)
	m.HandleFunc("POST /api/2.0/dbfs/delete", e.dbfsDelete)

	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "ENDPOINT_NOT_FOUND", fmt.Sprintf("No API found for '%s %s'", r.Method, r.URL.Path))
	})
	e.mux = m
}

// File returns the content at path: /Volumes/... (Files API), /Workspace/...
// (workspace files and notebooks) or dbfs:/... (DBFS).
func (e *Emulator) File(path string) ([]byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case strings.HasPrefix(path, "dbfs:"):
		b, ok := e.dbfs[normDBFS(path)]
		if !ok {
			return nil, false
		}
		return append([]byte(nil), b.data...), true
	case strings.HasPrefix(path, "/Volumes/"):
		b, ok := e.vfiles[cleanPath(path)]
		if !ok {
			return nil, false
		}
		return append([]byte(nil), b.data...), true
	default:
		o, ok := e.ws[normWS(path)]
		if !ok || o.Type == "DIRECTORY" {
			return nil, false
		}
		return append([]byte(nil), o.data...), true
	}
}

// Files lists every stored file path (Volumes, workspace as /Workspace/..., DBFS as dbfs:/...), sorted.
func (e *Emulator) Files() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for p := range e.vfiles {
		out = append(out, p)
	}
	for p, o := range e.ws {
		if o.Type != "DIRECTORY" {
			out = append(out, "/Workspace"+p)
		}
	}
	for p := range e.dbfs {
		out = append(out, "dbfs:"+p)
	}
	sort.Strings(out)
	return out
}

// --- HTTP helpers ---

type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) WriteHeader(s int) {
	if b.status == 0 {
		b.status = s
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// hijackClose closes the client's connection without an answer; with reset
// it sends a TCP RST instead of a FIN.
func hijackClose(w http.ResponseWriter, reset bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// apiError writes the standard Databricks error body.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error_code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	r.Body.Close()
	r.Body = readCloser{bytes.NewReader(b.Bytes())}
	return b.Bytes(), err
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// decodeJSON reads a JSON request body into v; on failure it answers 400
// MALFORMED_REQUEST like the real API and returns false.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request - "+err.Error())
		return false
	}
	return true
}

var base64Fields = map[string]bool{"content": true, "contents": true, "data": true}

func logFields(r *http.Request, body []byte) map[string]string {
	out := map[string]string{}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || len(body) == 0 {
		if r.Method == http.MethodPut {
			out["body_len"] = fmt.Sprint(len(body))
		}
		return out
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return out
	}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			if base64Fields[k] {
				out[k+"_len"] = fmt.Sprint(base64Len(v))
				continue
			}
			out[k] = v
		case json.Number:
			out[k] = v.String()
		case bool:
			out[k] = fmt.Sprint(v)
		}
	}
	for _, obj := range []string{"new_settings", "settings"} {
		if ns, ok := m[obj].(map[string]any); ok {
			if n, ok := ns["name"].(string); ok {
				out[obj+".name"] = n
			}
		}
	}
	return out
}

func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p
}

func parentOf(p string) string {
	i := strings.LastIndex(p, "/")
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func baseOf(p string) string { return p[strings.LastIndex(p, "/")+1:] }

func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }
