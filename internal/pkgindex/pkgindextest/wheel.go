// Package pkgindextest holds what tests of package indexes need: valid
// wheels and jars built in Go, a PyPI-compatible upload server (the legacy
// upload API and /simple/ pages, as PyPI's warehouse answers) and a Maven
// repository server (HTTP GET and PUT with basic auth).
package pkgindextest

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// WheelOptions shape a test wheel.
type WheelOptions struct {
	// Code is the body of the package's __init__.py (other code, other bytes).
	Code string
	// RequiresPython is the Requires-Python metadata ("" leaves it out).
	RequiresPython string
	// Summary is the Summary metadata.
	Summary string
}

// Wheel writes a valid pure-Python wheel of name and version into dir and
// returns its path. The wheel holds one package, importable as the name with
// "-" and "." turned to "_", whose __init__.py is opts.Code.
func Wheel(t testing.TB, dir, name, version string, opts WheelOptions) string {
	t.Helper()
	dist := regexp.MustCompile(`[-_.]+`).ReplaceAllString(name, "_")
	module := strings.ToLower(dist)
	distInfo := fmt.Sprintf("%s-%s.dist-info", dist, version)
	meta := fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, version)
	if opts.Summary != "" {
		meta += "Summary: " + opts.Summary + "\n"
	}
	if opts.RequiresPython != "" {
		meta += "Requires-Python: " + opts.RequiresPython + "\n"
	}
	meta += "Classifier: Programming Language :: Python :: 3\nClassifier: Operating System :: OS Independent\n"
	meta += "Description-Content-Type: text/plain\n\nA library of the Shipline tests.\n"
	files := []struct{ name, body string }{
		{module + "/__init__.py", opts.Code + "\n"},
		{distInfo + "/METADATA", meta},
		{distInfo + "/WHEEL", "Wheel-Version: 1.0\nGenerator: shipline-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n"},
		{distInfo + "/top_level.txt", module + "\n"},
	}
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	var record strings.Builder
	add := func(name, body string) {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o644)
		// A fixed time keeps the bytes a function of the content.
		h.Modified = h.Modified.AddDate(1980, 0, 0)
		w, err := z.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		add(f.name, f.body)
		sum := sha256.Sum256([]byte(f.body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.body))
	}
	record.WriteString(distInfo + "/RECORD,,\n")
	add(distInfo+"/RECORD", record.String())
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-py3-none-any.whl", dist, version))
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
