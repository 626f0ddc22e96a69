package dbemu

import (
	"net/http"
	"strings"
	"time"
)

// DropMode says when an injected fault drops the connection.
type DropMode int

const (
	// NoDrop answers normally.
	NoDrop DropMode = iota
	// DropBefore closes the connection without handling the request: nothing changes.
	DropBefore
	// DropAfter handles the request (a job is created, a file written) and then
	// closes the connection instead of answering: the client cannot tell it worked.
	DropAfter
)

// Fault is an injected failure for calls matching Method and Path.
type Fault struct {
	// Method matches the HTTP method; "" matches any.
	Method string
	// Path matches the URL path exactly, or as a prefix when it ends with "*"
	// (e.g. "/api/2.2/jobs/*", "/api/2.0/fs/files/Volumes/*"); "" matches any.
	Path string
	// Times is how many matching calls fail; 0 means every one until cleared.
	Times int
	// Status answers with this HTTP status and the matching Databricks error:
	// 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 429 REQUEST_LIMIT_EXCEEDED
	// (with Retry-After), 500 INTERNAL_ERROR, 503 TEMPORARILY_UNAVAILABLE,
	// 504 DEADLINE_EXCEEDED, 400 INVALID_PARAMETER_VALUE.
	Status int
	// Latency delays the answer (or the drop).
	Latency time.Duration
	// Hold, when not nil, holds each matching call, its request read, until
	// Hold is closed or the client goes away; the call then goes on as the
	// other fields say. A test thus decides when a call in flight ends (a
	// worker killed mid-upload), without guessing a latency.
	Hold <-chan struct{}
	// Holding, when not nil, is sent the path of each call as Hold starts
	// holding it. The send does not block: give the channel room.
	Holding chan<- string
	// Drop closes the connection before or after handling the call.
	Drop DropMode
	// After makes a Status fault act first: the call is handled (a job is
	// created, a file written, a block appended) and its answer is then
	// replaced by the error, as when a gateway gives up on a call the
	// workspace went on to complete. Without it the error answers instead
	// of the call and nothing changes.
	After bool
	// Reset closes a dropped connection with a TCP reset: the client reads
	// "connection reset by peer" (which databricks-sdk-go retries on its
	// own) instead of an EOF (which it does not).
	Reset bool

	used int
}

func (f *Fault) matches(r *http.Request) bool {
	if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
		return false
	}
	return pathMatches(f.Path, r.URL.Path)
}

func pathMatches(pattern, path string) bool {
	if pattern == "" {
		return true
	}
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(path, p)
	}
	return pattern == path
}

// Inject adds a fault. Faults are tried in the order they were added; the
// first matching one with calls left answers.
func (e *Emulator) Inject(f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, &f)
}

// ClearFaults removes every injected fault and turns random faults off.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = nil
	e.random = nil
}

type randomFaults struct {
	p        float64
	statuses []int
	paths    []string
	after    float64 // the fraction of them that act first
}

// RandomFaults makes a fraction p of calls whose path matches one of paths
// (patterns as in Fault.Path; none = every call) fail with one of statuses
// (default 429 and 503), drawn from the emulator's seeded RNG (Options.Seed).
func (e *Emulator) RandomFaults(p float64, statuses []int, paths ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(statuses) == 0 {
		statuses = []int{http.StatusTooManyRequests, http.StatusServiceUnavailable}
	}
	e.random = &randomFaults{p: p, statuses: statuses, paths: paths}
}

// LoseRandomAnswers makes a fraction of the random faults (RandomFaults) act
// first, as Fault.After: the call is handled and its answer lost.
func (e *Emulator) LoseRandomAnswers(fraction float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.random != nil {
		e.random.after = fraction
	}
}

// pickFault returns the fault that answers r, if any, and counts its use.
func (e *Emulator) pickFault(r *http.Request) *Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.faults {
		if (f.Times == 0 || f.used < f.Times) && f.matches(r) {
			f.used++
			return f
		}
	}
	if rf := e.random; rf != nil {
		match := len(rf.paths) == 0
		for _, p := range rf.paths {
			match = match || pathMatches(p, r.URL.Path)
		}
		if match && e.rng.Float64() < rf.p {
			f := &Fault{Status: rf.statuses[e.rng.Intn(len(rf.statuses))]}
			f.After = rf.after > 0 && e.rng.Float64() < rf.after
			return f
		}
	}
	return nil
}

func writeFault(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusUnauthorized:
		apiError(w, status, "UNAUTHENTICATED", "Invalid access token.")
	case http.StatusForbidden:
		apiError(w, status, "PERMISSION_DENIED", "You do not have permission to perform this operation.")
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
		apiError(w, status, "REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again.")
	case http.StatusServiceUnavailable:
		apiError(w, status, "TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable. Please try again later.")
	case http.StatusGatewayTimeout:
		apiError(w, status, "DEADLINE_EXCEEDED", "The request timed out.")
	case http.StatusBadRequest:
		apiError(w, status, "INVALID_PARAMETER_VALUE", "Injected invalid parameter.")
	case http.StatusNotFound:
		apiError(w, status, "RESOURCE_DOES_NOT_EXIST", "Injected missing resource.")
	default:
		apiError(w, status, "INTERNAL_ERROR", "Internal error. Please try again later.")
	}
}
