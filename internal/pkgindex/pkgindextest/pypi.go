package pkgindextest

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/blake2b"
)

// PyPI is a PyPI-compatible index for tests: the legacy upload API at
// /legacy/ and PEP 503 pages at /simple/, answering as PyPI's warehouse does
// (https://docs.pypi.org/api/upload/): 403 without valid credentials or for
// another user's project, 400 with warehouse's messages for bad uploads
// ("File already exists …" for a file name taken by other bytes), 200 for
// an upload of a file it holds with the same bytes.
type PyPI struct {
	*httptest.Server

	mu sync.Mutex
	// passwords maps user → password; tokens maps token → user.
	passwords map[string]string
	tokens    map[string]string
	uploads   map[string]Upload // by file name
	owners    map[string]string // normalized project → user
	// HideFiles keeps the simple pages empty (an index whose pages lag, or
	// are behind other credentials).
	HideFiles bool
	// NoJSON answers 404 to PyPI's JSON API (/pypi/<name>/<version>/json),
	// as most other indexes do.
	NoJSON bool
}

// Upload is a file the server holds, with what its upload said.
type Upload struct {
	Filename, Project, Version string
	SHA256, MD5, Blake2b256    string
	Size                       int64
	// Form holds the upload's form fields, each with its values in order
	// (the file part left out).
	Form map[string][]string
	// User is who uploaded it.
	User    string
	content []byte
}

// NewPyPI starts a server, closed when the test ends.
func NewPyPI(t testing.TB) *PyPI {
	s := &PyPI{passwords: map[string]string{}, tokens: map[string]string{}, uploads: map[string]Upload{}, owners: map[string]string{}}
	s.Server = httptest.NewServer(s)
	t.Cleanup(s.Close)
	return s
}

// AddUser lets user upload with password.
func (s *PyPI) AddUser(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passwords[user] = password
}

// AddToken lets token upload (as user __token__) on behalf of user.
func (s *PyPI) AddToken(user, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = user
}

// UploadURL is the legacy upload API's URL.
func (s *PyPI) UploadURL() string { return s.URL + "/legacy/" }

// SimpleURL is the simple index's URL.
func (s *PyPI) SimpleURL() string { return s.URL + "/simple/" }

// Uploads returns the files the server holds, by file name.
func (s *PyPI) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sortedUploads()
}

// sortedUploads is Uploads with s.mu held.
func (s *PyPI) sortedUploads() []Upload {
	out := make([]Upload, 0, len(s.uploads))
	for _, u := range s.uploads {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b Upload) int { return strings.Compare(a.Filename, b.Filename) })
	return out
}

func (s *PyPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/legacy/" && r.Method == http.MethodPost:
		s.upload(w, r)
	case r.URL.Path == "/simple/" && r.Method == http.MethodGet:
		s.root(w)
	case strings.HasPrefix(r.URL.Path, "/simple/") && r.Method == http.MethodGet:
		s.project(w, r)
	case strings.HasPrefix(r.URL.Path, "/packages/") && r.Method == http.MethodGet:
		s.file(w, r)
	case strings.HasPrefix(r.URL.Path, "/pypi/") && strings.HasSuffix(r.URL.Path, "/json") && r.Method == http.MethodGet:
		s.release(w, r)
	default:
		http.NotFound(w, r)
	}
}

// fail answers as warehouse does: the message as the body (warehouse also
// puts it in the status line's reason, which Go's server cannot).
func fail(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%d %s\n\n"+format+"\n", append([]any{status, http.StatusText(status)}, args...)...)
}

var (
	normRuns     = regexp.MustCompile(`[-_.]+`)
	validProject = regexp.MustCompile(`(?i)^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$`)
	// pep440 is a (loose) PEP 440 public version.
	pep440          = regexp.MustCompile(`^([0-9]+!)?[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?(\+[a-z0-9]+(\.[a-z0-9]+)*)?$`)
	metadataVersion = []string{"1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4"}
)

func normalize(name string) string { return strings.ToLower(normRuns.ReplaceAllString(name, "-")) }

// user authenticates the request's basic auth ("" when refused).
func (s *PyPI) user(r *http.Request) string {
	name, pass, ok := r.BasicAuth()
	if !ok {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "__token__" {
		return s.tokens[pass]
	}
	if want, ok := s.passwords[name]; ok && want == pass {
		return name
	}
	return ""
}

func (s *PyPI) upload(w http.ResponseWriter, r *http.Request) {
	user := s.user(r)
	if user == "" {
		fail(w, http.StatusForbidden, "Invalid or non-existent authentication information. See %s/help/#invalid-auth for more information.", s.URL)
		return
	}
	if err := r.ParseMultipartForm(64 << 20); err != nil {
		fail(w, http.StatusBadRequest, "Invalid multipart form: %v", err)
		return
	}
	form := r.MultipartForm.Value
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if get(":action") != "file_upload" {
		fail(w, http.StatusBadRequest, "Unknown :action %q.", get(":action"))
		return
	}
	if get("protocol_version") != "1" {
		fail(w, http.StatusBadRequest, "Unknown protocol version.")
		return
	}
	if mv := get("metadata_version"); !slices.Contains(metadataVersion, mv) {
		fail(w, http.StatusBadRequest, "'%s' is an invalid value for Metadata-Version. Error: Use a known metadata version. See https://packaging.python.org/specifications/core-metadata for more information.", mv)
		return
	}
	name, version := get("name"), get("version")
	if !validProject.MatchString(name) {
		fail(w, http.StatusBadRequest, "'%s' is an invalid value for Name. Error: Start and end with a letter or numeral containing only ASCII numeric and '.', '_' and '-'. See https://packaging.python.org/specifications/core-metadata for more information.", name)
		return
	}
	if !pep440.MatchString(strings.ToLower(version)) {
		fail(w, http.StatusBadRequest, "'%s' is an invalid value for Version. Error: Start and end with a letter or numeral containing only ASCII numeric and '.', '_' and '-'. See https://packaging.python.org/specifications/core-metadata for more information.", version)
		return
	}
	files := r.MultipartForm.File["content"]
	if len(files) != 1 {
		fail(w, http.StatusBadRequest, "Upload payload does not have a file.")
		return
	}
	filetype := get("filetype")
	if filetype != "bdist_wheel" && filetype != "sdist" {
		fail(w, http.StatusBadRequest, "Invalid value for filetype. Error: Use a known file type.")
		return
	}
	if (filetype == "sdist") != (get("pyversion") == "source") {
		fail(w, http.StatusBadRequest, "Invalid value for pyversion. Error: Use 'source' as Python version for an sdist.")
		return
	}
	f, err := files[0].Open()
	if err != nil {
		fail(w, http.StatusBadRequest, "Upload payload does not have a file.")
		return
	}
	content, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		fail(w, http.StatusBadRequest, "Upload payload does not have a file.")
		return
	}
	filename := files[0].Filename
	sha := sha256.Sum256(content)
	m5 := md5.Sum(content)
	b2 := blake2b.Sum256(content)
	up := Upload{Filename: filename, Project: normalize(name), Version: version, Size: int64(len(content)), User: user, content: content,
		SHA256: hex.EncodeToString(sha[:]), MD5: hex.EncodeToString(m5[:]), Blake2b256: hex.EncodeToString(b2[:])}
	if get("md5_digest") == "" && get("sha256_digest") == "" && get("blake2_256_digest") == "" {
		fail(w, http.StatusBadRequest, "Include at least one message digest.")
		return
	}
	for k, want := range map[string]string{"md5_digest": up.MD5, "sha256_digest": up.SHA256, "blake2_256_digest": up.Blake2b256} {
		if v := get(k); v != "" && !strings.EqualFold(v, want) {
			fail(w, http.StatusBadRequest, "The digest supplied does not match a digest calculated from the uploaded file.")
			return
		}
	}
	if !strings.HasSuffix(filename, ".whl") && !strings.HasSuffix(filename, ".tar.gz") && !strings.HasSuffix(filename, ".zip") {
		fail(w, http.StatusBadRequest, "Invalid file extension: Use .tar.gz, .whl or .zip extension. See https://www.python.org/dev/peps/pep-0527 and https://peps.python.org/pep-0715/ for more information")
		return
	}
	parts := strings.Split(strings.TrimSuffix(filename, ".whl"), "-")
	if len(parts) < 2 || normalize(parts[0]) != up.Project || parts[1] != version {
		fail(w, http.StatusBadRequest, "Start filename for '%s' with '%s'.", name, strings.ReplaceAll(up.Project, "-", "_")+"-"+version)
		return
	}
	if filetype == "bdist_wheel" {
		if msg := wheelMatches(content, name, version); msg != "" {
			fail(w, http.StatusBadRequest, "%s", msg)
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if owner, ok := s.owners[up.Project]; ok && owner != user {
		fail(w, http.StatusForbidden, "The user '%s' isn't allowed to upload to project '%s'. See %s/help/#project-name for more information.", user, name, s.URL)
		return
	}
	if old, ok := s.uploads[filename]; ok {
		if old.SHA256 == up.SHA256 && old.Blake2b256 == up.Blake2b256 {
			w.WriteHeader(http.StatusOK) // the same file again: warehouse says OK
			return
		}
		fail(w, http.StatusBadRequest, "File already exists ('%s', with blake2_256 hash '%s'). See %s/help/#file-name-reuse for more information.", filename, old.Blake2b256, s.URL)
		return
	}
	up.Form = map[string][]string{}
	for k, v := range form {
		up.Form[k] = slices.Clone(v)
	}
	s.uploads[filename] = up
	s.owners[up.Project] = user
	w.WriteHeader(http.StatusOK)
}

// wheelMatches checks that a wheel's METADATA is the upload's name and
// version, as warehouse does ("" when it is).
func wheelMatches(content []byte, name, version string) string {
	z, err := zip.NewReader(bytes.NewReader(content), int64(len(content)))
	if err != nil {
		return "Invalid distribution file. File is not a zipfile"
	}
	for _, f := range z.File {
		dir, base, ok := strings.Cut(f.Name, "/")
		if !ok || base != "METADATA" || !strings.HasSuffix(dir, ".dist-info") {
			continue
		}
		r, err := f.Open()
		if err != nil {
			return "Invalid distribution file. METADATA unreadable"
		}
		msg, err := mail.ReadMessage(bufio.NewReader(r))
		r.Close()
		if err != nil {
			return "Invalid distribution file. METADATA unreadable"
		}
		if normalize(msg.Header.Get("Name")) != normalize(name) || msg.Header.Get("Version") != version {
			return fmt.Sprintf("The wheel's METADATA (%s %s) does not match the upload's name and version (%s %s).",
				msg.Header.Get("Name"), msg.Header.Get("Version"), name, version)
		}
		return ""
	}
	return "Wheel does not contain the required METADATA file"
}

func (s *PyPI) root(w http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	projects := map[string]bool{}
	for _, u := range s.uploads {
		projects[u.Project] = true
	}
	names := make([]string, 0, len(projects))
	for p := range projects {
		names = append(names, p)
	}
	slices.Sort(names)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Simple index</title></head><body>\n")
	for _, p := range names {
		fmt.Fprintf(w, "<a href=\"/simple/%s/\">%s</a>\n", p, html.EscapeString(p))
	}
	fmt.Fprint(w, "</body></html>\n")
}

// project serves a project's page; another spelling of the name, or no
// final slash, redirects to the normalized one, as warehouse does.
func (s *PyPI) project(w http.ResponseWriter, r *http.Request) {
	name, _ := strings.CutPrefix(r.URL.Path, "/simple/")
	name, slash := strings.CutSuffix(name, "/")
	if strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	if norm := normalize(name); norm != name || !slash {
		http.Redirect(w, r, "/simple/"+url.PathEscape(norm)+"/", http.StatusMovedPermanently)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var files []Upload
	for _, u := range s.uploads {
		if u.Project == name {
			files = append(files, u)
		}
	}
	if len(files) == 0 {
		http.NotFound(w, r)
		return
	}
	if s.HideFiles {
		files = nil
	}
	slices.SortFunc(files, func(a, b Upload) int { return strings.Compare(a.Filename, b.Filename) })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Links for %s</title></head><body><h1>Links for %s</h1>\n", name, name)
	for _, u := range files {
		rp := ""
		if v := u.Form["requires_python"]; len(v) > 0 && v[0] != "" {
			rp = fmt.Sprintf(` data-requires-python="%s"`, html.EscapeString(v[0]))
		}
		fmt.Fprintf(w, "<a href=\"../../packages/%s/%s#sha256=%s\"%s>%s</a><br/>\n", name, url.PathEscape(u.Filename), u.SHA256, rp, html.EscapeString(u.Filename))
	}
	fmt.Fprint(w, "</body></html>\n")
}

func (s *PyPI) file(w http.ResponseWriter, r *http.Request) {
	rest, _ := strings.CutPrefix(r.URL.Path, "/packages/")
	_, filename, ok := strings.Cut(rest, "/")
	s.mu.Lock()
	u, found := s.uploads[filename]
	s.mu.Unlock()
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(u.content)
}

// release serves PyPI's JSON API for a release: its files with their digests.
func (s *PyPI) release(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // pypi, name, version, json
	if len(parts) != 4 || s.NoJSON {
		http.NotFound(w, r)
		return
	}
	project, version := normalize(parts[1]), parts[2]
	type file struct {
		Filename string            `json:"filename"`
		URL      string            `json:"url"`
		Digests  map[string]string `json:"digests"`
		Size     int64             `json:"size"`
	}
	var out struct {
		Info struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"info"`
		URLs []file `json:"urls"`
	}
	s.mu.Lock()
	for _, u := range s.sortedUploads() {
		if u.Project == project && u.Version == version {
			out.Info.Name, out.Info.Version = u.Form["name"][0], u.Version
			out.URLs = append(out.URLs, file{Filename: u.Filename, URL: s.URL + "/packages/" + project + "/" + url.PathEscape(u.Filename),
				Digests: map[string]string{"sha256": u.SHA256, "md5": u.MD5, "blake2b_256": u.Blake2b256}, Size: u.Size})
		}
	}
	s.mu.Unlock()
	if len(out.URLs) == 0 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
