package pkgindex

import (
	"archive/zip"
	"bufio"
	"fmt"
	"io"
	"net/mail"
	"strings"

	"github.com/shipline/shipline/internal/apperr"
)

// Metadata is a Python distribution's core metadata (a wheel's
// *.dist-info/METADATA): its header fields in order of appearance, each
// name with all its values, and the body (the long description).
type Metadata struct {
	Fields []Field
	Body   string
}

// Field is one metadata header with its values (Classifier appears many times).
type Field struct {
	Name   string
	Values []string
}

// Get returns the first value of a field ("" when absent); names ignore case.
func (m Metadata) Get(name string) string {
	if v := m.All(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// All returns every value of a field; names ignore case.
func (m Metadata) All(name string) []string {
	for _, f := range m.Fields {
		if strings.EqualFold(f.Name, name) {
			return f.Values
		}
	}
	return nil
}

// WheelMetadata reads the core metadata of the wheel at path: the METADATA of
// its one top-level *.dist-info directory.
func WheelMetadata(path string) (Metadata, error) {
	z, err := zip.OpenReader(path)
	if err != nil {
		return Metadata{}, inputError("%s is not a readable wheel (a zip file): %v", path, err)
	}
	defer z.Close()
	var found *zip.File
	for _, f := range z.File {
		dir, name, ok := strings.Cut(f.Name, "/")
		if ok && name == "METADATA" && strings.HasSuffix(dir, ".dist-info") {
			if found != nil {
				return Metadata{}, inputError("wheel %s holds two METADATA files (%s and %s): rebuild it", path, found.Name, f.Name)
			}
			found = f
		}
	}
	if found == nil {
		return Metadata{}, inputError("wheel %s has no *.dist-info/METADATA: rebuild it with a PEP 517 backend", path)
	}
	r, err := found.Open()
	if err != nil {
		return Metadata{}, inputError("wheel %s: read %s: %v", path, found.Name, err)
	}
	defer r.Close()
	md, err := ParseMetadata(r)
	if err != nil {
		return Metadata{}, inputError("wheel %s: %s: %v", path, found.Name, err)
	}
	return md, nil
}

// ParseMetadata reads core metadata in its email-header form (continuation
// lines are joined, as email parsers do).
func ParseMetadata(r io.Reader) (Metadata, error) {
	br := bufio.NewReader(r)
	msg, err := mail.ReadMessage(br)
	if err != nil {
		return Metadata{}, fmt.Errorf("not core metadata: %w", err)
	}
	body, err := io.ReadAll(msg.Body)
	if err != nil {
		return Metadata{}, err
	}
	// net/mail keeps no order: fields come sorted by name.
	var md Metadata
	for _, name := range sortedKeys(msg.Header) {
		md.Fields = append(md.Fields, Field{Name: name, Values: msg.Header[name]})
	}
	md.Body = string(body)
	return md, nil
}

// wheelName is a wheel filename's parts (PEP 427: name-version[-build]-py-abi-platform.whl).
type wheelName struct {
	Name, Version, Build, Python, ABI, Platform string
}

// parseWheelName splits a wheel's file name; ok is false for other names.
func parseWheelName(filename string) (wheelName, bool) {
	base, ok := strings.CutSuffix(filename, ".whl")
	if !ok {
		return wheelName{}, false
	}
	p := strings.Split(base, "-")
	switch len(p) {
	case 5:
		return wheelName{Name: p[0], Version: p[1], Python: p[2], ABI: p[3], Platform: p[4]}, true
	case 6:
		return wheelName{Name: p[0], Version: p[1], Build: p[2], Python: p[3], ABI: p[4], Platform: p[5]}, true
	}
	return wheelName{}, false
}

// sdistSuffixes are the endings of source distributions' file names.
var sdistSuffixes = []string{".tar.gz", ".zip", ".tar.bz2", ".tgz"}

// fileVersion returns the package name and version a distribution's file
// name carries (a wheel or an sdist); ok is false for other files.
func fileVersion(filename string) (name, version string, ok bool) {
	if w, ok := parseWheelName(filename); ok {
		return w.Name, w.Version, true
	}
	for _, s := range sdistSuffixes {
		if base, ok := strings.CutSuffix(filename, s); ok {
			i := strings.LastIndex(base, "-")
			if i <= 0 {
				return "", "", false
			}
			return base[:i], base[i+1:], true
		}
	}
	return "", "", false
}

// pythonFile describes a Python distribution file to publish: the checked
// package name and version, and its metadata (wheels only).
type pythonFile struct {
	File
	Meta           Metadata
	RequiresPython string
}

// checkPythonFile checks f as a Python distribution: a wheel's name and
// version (in its file name and METADATA) must be f's.
func checkPythonFile(c Config, f File) (pythonFile, error) {
	if err := checkFile(c, &f); err != nil {
		return pythonFile{}, err
	}
	if f.Name == "" {
		if md, err := WheelMetadata(f.Path); err == nil {
			f.Name = md.Get("Name")
		}
	}
	if !validName.MatchString(f.Name) {
		return pythonFile{}, &apperr.Error{Type: apperr.InvalidName, Msg: fmt.Sprintf(
			"publish %s to package index %s: %q is not a Python package name (letters, digits, '-', '_', '.')", f.Filename, c.Name, f.Name)}
	}
	pf := pythonFile{File: f}
	name, version, ok := fileVersion(f.Filename)
	if !ok {
		return pythonFile{}, inputError("publish %s to package index %s: not a wheel or sdist file name (name-version-py-abi-platform.whl)", f.Filename, c.Name)
	}
	if Normalize(name) != Normalize(f.Name) || normVersion(version) != normVersion(f.Version) {
		return pythonFile{}, inputError("publish to package index %s: file %s is not %s %s: its name says %s %s; build the library at its version",
			c.Name, f.Filename, f.Name, f.Version, name, version)
	}
	if _, isWheel := parseWheelName(f.Filename); isWheel {
		md, err := WheelMetadata(f.Path)
		if err != nil {
			return pythonFile{}, err
		}
		if Normalize(md.Get("Name")) != Normalize(f.Name) || normVersion(md.Get("Version")) != normVersion(f.Version) {
			return pythonFile{}, inputError("publish to package index %s: wheel %s holds the metadata of %s %s, not %s %s: rebuild it",
				c.Name, f.Filename, md.Get("Name"), md.Get("Version"), f.Name, f.Version)
		}
		pf.Meta, pf.RequiresPython = md, md.Get("Requires-Python")
	}
	return pf, nil
}
