package pkgindextest

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Maven is a Maven repository for tests, as Nexus and Artifactory serve a
// hosted release repository: GET and HEAD of files (anonymous unless
// PrivateRead), PUT with basic auth (401 with a Basic challenge without
// valid credentials, 403 for a user who may only read), and no redeploy of
// a release file (400, as Nexus answers "Repository does not allow updating
// assets"); maven-metadata.xml and checksum files may be replaced.
type Maven struct {
	*httptest.Server

	mu        sync.Mutex
	files     map[string][]byte
	puts      []string
	passwords map[string]string
	readers   map[string]bool
	// PrivateRead asks for credentials to read too.
	PrivateRead bool
}

// NewMaven starts a repository whose deployer is user with password,
// closed when the test ends.
func NewMaven(t testing.TB, user, password string) *Maven {
	m := &Maven{files: map[string][]byte{}, passwords: map[string]string{user: password}, readers: map[string]bool{}}
	m.Server = httptest.NewServer(m)
	t.Cleanup(m.Close)
	return m
}

// AddReader adds a user who may read but not deploy.
func (m *Maven) AddReader(user, password string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.passwords[user] = password
	m.readers[user] = true
}

// File returns a file of the repository (nil when absent).
func (m *Maven) File(key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.files[key]
}

// Puts returns the keys written, in order.
func (m *Maven) Puts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.puts)
}

// WriteTo copies the repository's files into dir (a file:// repository).
func (m *Maven) WriteTo(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range m.files {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, v, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// user returns the authenticated user ("" for none or wrong credentials).
func (m *Maven) user(r *http.Request) string {
	u, p, ok := r.BasicAuth()
	if !ok {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if want, known := m.passwords[u]; known && want == p {
		return u
	}
	return ""
}

func (m *Maven) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	user := m.user(r)
	challenge := func() {
		w.Header().Set("WWW-Authenticate", `Basic realm="Sonatype Nexus Repository Manager"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if m.PrivateRead && user == "" {
			challenge()
			return
		}
		m.mu.Lock()
		data, ok := m.files[key]
		m.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(data)
		}
	case http.MethodPut:
		if user == "" {
			challenge()
			return
		}
		m.mu.Lock()
		reader := m.readers[user]
		_, exists := m.files[key]
		m.mu.Unlock()
		if reader {
			http.Error(w, fmt.Sprintf("User '%s' has no deploy permission for %s", user, key), http.StatusForbidden)
			return
		}
		base := path.Base(key)
		replaceable := strings.HasPrefix(base, "maven-metadata.xml") || isChecksum(base)
		if exists && !replaceable {
			http.Error(w, "Repository does not allow updating assets: maven-releases", http.StatusBadRequest)
			return
		}
		data, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		m.mu.Lock()
		m.files[key] = data
		m.puts = append(m.puts, key)
		m.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	default:
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	}
}

func isChecksum(name string) bool {
	for _, ext := range []string{".sha1", ".md5", ".sha256", ".sha512"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// Jar writes a jar (a zip with a manifest and one class-path resource,
// its content the given text) into dir and returns its path.
func Jar(t testing.TB, dir, name, text string) string {
	t.Helper()
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{
		{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: shipline-test\r\n\r\n"},
		{"shipline/test/resource.txt", text},
	} {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate}
		h.Modified = h.Modified.AddDate(1980, 0, 0)
		w, err := z.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
