package pkgindex

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/shipline/shipline/internal/apperr"
)

// mavenIndex is a Maven repository (Maven 2 layout), over HTTP (GET, HEAD,
// PUT with basic auth: Nexus, Artifactory, Reposilite, GitLab) or in a
// bucket. A version is
//
//	<group/path>/<artifactId>/<version>/<artifactId>-<version>.jar   + .sha1 .md5 .sha256 .sha512
//	<group/path>/<artifactId>/<version>/<artifactId>-<version>.pom   + checksums
//	<group/path>/<artifactId>/maven-metadata.xml                     + checksums
//
// written in that order: the metadata names a version only once its files
// are there. The pom is the jar's own (META-INF/maven/<g>/<a>/pom.xml) when
// it has one for these coordinates and no parent, else a minimal one.
type mavenIndex struct {
	c     Config
	store mavenStore
}

func openMaven(ctx context.Context, c Config) (Index, error) {
	if strings.HasPrefix(c.URL, "http://") || strings.HasPrefix(c.URL, "https://") {
		u, err := checkHTTPURL(c, c.URL)
		if err != nil {
			return nil, err
		}
		return &mavenIndex{c: c, store: &mavenHTTP{remote: newRemote(c, ""), base: strings.TrimSuffix(u.String(), "/")}}, nil
	}
	s, err := openSimple(ctx, c) // the same bucket URLs as the simple kind
	if err != nil {
		return nil, err
	}
	return &mavenIndex{c: c, store: &mavenBucket{s.(*simpleIndex)}}, nil
}

var (
	mavenGroup = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	mavenID    = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// coords are a version's Maven coordinates.
type coords struct {
	Group, Artifact, Version string
}

func (c coords) dir() string {
	return strings.ReplaceAll(c.Group, ".", "/") + "/" + c.Artifact
}
func (c coords) file(ext string) string {
	return fmt.Sprintf("%s/%s/%s-%s.%s", c.dir(), c.Version, c.Artifact, c.Version, ext)
}
func (c coords) String() string { return c.Group + ":" + c.Artifact + ":" + c.Version }

// mavenCoords checks the coordinates of f. A release's leading "v" is not
// part of the Maven version (v1.2.0 is published as 1.2.0).
func (m *mavenIndex) mavenCoords(group, artifact, version string) (coords, error) {
	version = normVersion(version)
	switch {
	case group == "":
		return coords{}, inputError("publish %s to Maven repository %s: no group id: give the library a group id (e.g. com.example)", artifact, m.c.Name)
	case !mavenGroup.MatchString(group):
		return coords{}, inputError("maven repository %s: %q is not a group id (letters, digits, '-', '_' between dots)", m.c.Name, group)
	case !mavenID.MatchString(artifact) || strings.Trim(artifact, ".") != artifact:
		return coords{}, inputError("maven repository %s: %q is not an artifact id (letters, digits, '-', '_', '.')", m.c.Name, artifact)
	case !mavenID.MatchString(version) || strings.Trim(version, ".") != version:
		return coords{}, inputError("maven repository %s: %q is not a version (letters, digits, '-', '_', '.')", m.c.Name, version)
	case strings.HasSuffix(version, "-SNAPSHOT"):
		return coords{}, inputError("maven repository %s: %s is a snapshot; Shipline publishes releases only", m.c.Name, version)
	}
	return coords{Group: group, Artifact: artifact, Version: version}, nil
}

func (m *mavenIndex) Publish(ctx context.Context, f File) (Result, error) {
	if err := checkFile(m.c, &f); err != nil {
		return Result{}, err
	}
	artifact := f.ArtifactID
	if artifact == "" {
		artifact = f.Name
	}
	co, err := m.mavenCoords(f.GroupID, artifact, f.Version)
	if err != nil {
		return Result{}, err
	}
	ext := strings.TrimPrefix(path.Ext(f.Filename), ".")
	if ext != "jar" {
		return Result{}, inputError("publish %s to Maven repository %s: the maven kind publishes jars; build the library as a jar", f.Filename, m.c.Name)
	}
	if f.Name == "" {
		f.Name = co.Group + ":" + co.Artifact
	}
	sum, err := fileSHA256(f.Path)
	if err != nil {
		return Result{}, err
	}
	jarKey := co.file(ext)
	res := Result{URL: m.store.url(jarKey)}

	there, found, err := m.store.digest(ctx, jarKey)
	if err != nil {
		return Result{}, err
	}
	if !found {
		created, err := m.store.create(ctx, jarKey, f.Path)
		if err != nil {
			return Result{}, err
		}
		if !created {
			// Another publish wrote it meanwhile: compare with that.
			if there, found, err = m.store.digest(ctx, jarKey); err != nil {
				return Result{}, err
			}
		}
	}
	if found {
		if there != sum {
			return Result{}, conflict(m.c, f, co.String()+" "+path.Base(jarKey), there, sum)
		}
		res.AlreadyPublished = true
	}
	// What follows the jar is (re)done when missing: a publish that stopped
	// after the jar is finished by the next one.
	if err := m.ensureChecksums(ctx, jarKey, f.Path); err != nil {
		return Result{}, err
	}
	pomKey := co.file("pom")
	if ok, err := m.store.exists(ctx, pomKey); err != nil {
		return Result{}, err
	} else if !ok {
		if err := m.putWithChecksums(ctx, pomKey, pomFor(f.Path, co), ""); err != nil {
			return Result{}, err
		}
	}
	if err := m.addToMetadata(ctx, co); err != nil {
		return Result{}, err
	}
	return res, nil
}

// Has reports whether the repository holds the version's pom or jar. name is
// "groupId:artifactId".
func (m *mavenIndex) Has(ctx context.Context, name, version string) (bool, error) {
	group, artifact, ok := strings.Cut(name, ":")
	if !ok {
		return false, inputError("maven repository %s: %q names no group: write groupId:artifactId", m.c.Name, name)
	}
	co, err := m.mavenCoords(group, artifact, version)
	if err != nil {
		return false, err
	}
	for _, ext := range []string{"pom", "jar"} {
		if ok, err := m.store.exists(ctx, co.file(ext)); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// checksums are the algorithms of the files beside each file.
var checksums = []struct {
	ext string
	new func() hash.Hash
}{
	{"sha1", sha1.New}, {"md5", md5.New}, {"sha256", sha256.New}, {"sha512", sha512.New},
}

// sums returns the hex checksums of data (or of the file at path).
func sums(data []byte, path string) (map[string]string, error) {
	var r io.Reader = bytes.NewReader(data)
	if data == nil {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	hs := make([]hash.Hash, len(checksums))
	ws := make([]io.Writer, len(checksums))
	for i, c := range checksums {
		hs[i] = c.new()
		ws[i] = hs[i]
	}
	if _, err := io.Copy(io.MultiWriter(ws...), r); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, c := range checksums {
		out[c.ext] = hex.EncodeToString(hs[i].Sum(nil))
	}
	return out, nil
}

// putWithChecksums writes a file, then its checksum files.
func (m *mavenIndex) putWithChecksums(ctx context.Context, key string, data []byte, path string) error {
	s, err := sums(data, path)
	if err != nil {
		return err
	}
	if err := m.store.put(ctx, key, data, path); err != nil {
		return err
	}
	for _, c := range checksums {
		if err := m.store.put(ctx, key+"."+c.ext, []byte(s[c.ext]), ""); err != nil {
			return err
		}
	}
	return nil
}

// ensureChecksums writes the checksum files of key that are missing.
func (m *mavenIndex) ensureChecksums(ctx context.Context, key, path string) error {
	var s map[string]string
	for _, c := range checksums {
		ok, err := m.store.exists(ctx, key+"."+c.ext)
		if err != nil || ok {
			if err != nil {
				return err
			}
			continue
		}
		if s == nil {
			if s, err = sums(nil, path); err != nil {
				return err
			}
		}
		if err := m.store.put(ctx, key+"."+c.ext, []byte(s[c.ext]), ""); err != nil {
			return err
		}
	}
	return nil
}

// syncChecksums rewrites the checksum files of key that do not match data.
func (m *mavenIndex) syncChecksums(ctx context.Context, key string, data []byte) error {
	want, err := sums(data, "")
	if err != nil {
		return err
	}
	for _, c := range checksums {
		have, _, err := m.store.get(ctx, key+"."+c.ext)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(have)) == want[c.ext] {
			continue
		}
		if err := m.store.put(ctx, key+"."+c.ext, []byte(want[c.ext]), ""); err != nil {
			return err
		}
	}
	return nil
}

// metadata is maven-metadata.xml at the artifact's level.
type metadata struct {
	XMLName    xml.Name `xml:"metadata"`
	GroupID    string   `xml:"groupId"`
	ArtifactID string   `xml:"artifactId"`
	Versioning struct {
		Latest      string   `xml:"latest,omitempty"`
		Release     string   `xml:"release,omitempty"`
		Versions    []string `xml:"versions>version"`
		LastUpdated string   `xml:"lastUpdated,omitempty"`
	} `xml:"versioning"`
}

// addToMetadata adds the version to maven-metadata.xml (with latest and
// release the highest version) and rewrites its checksums. It reads the
// file back and adds again when another publish replaced it meanwhile.
func (m *mavenIndex) addToMetadata(ctx context.Context, co coords) error {
	key := co.dir() + "/maven-metadata.xml"
	for range pageRewrites {
		data, found, err := m.store.get(ctx, key)
		if err != nil {
			return err
		}
		md := metadata{GroupID: co.Group, ArtifactID: co.Artifact}
		if found {
			if err := xml.Unmarshal(data, &md); err != nil {
				return &apperr.Error{Type: apperr.IndexRejected, Msg: fmt.Sprintf(
					"maven repository %s: %s is not valid maven-metadata.xml (%v): repair or remove it", m.c.Name, m.store.url(key), err)}
			}
		}
		if found && slices.Contains(md.Versioning.Versions, co.Version) {
			// Listed already; its checksums may lag behind it (a publish
			// that stopped between the two).
			return m.syncChecksums(ctx, key, data)
		}
		md.Versioning.Versions = append(md.Versioning.Versions, co.Version)
		highest := co.Version
		for _, v := range md.Versioning.Versions {
			if compareMavenVersions(v, highest) > 0 {
				highest = v
			}
		}
		md.Versioning.Latest, md.Versioning.Release = highest, highest
		md.Versioning.LastUpdated = time.Now().UTC().Format("20060102150405")
		out, err := xml.MarshalIndent(md, "", "  ")
		if err != nil {
			return err
		}
		out = append([]byte(xml.Header), append(out, '\n')...)
		if err := m.putWithChecksums(ctx, key, out, ""); err != nil {
			return err
		}
	}
	return fmt.Errorf("maven repository %s: %s kept changing while %s was added; publish again", m.c.Name, key, co)
}

// compareMavenVersions orders versions roughly as Maven does: numeric parts
// as numbers, a version with a qualifier (1.0-rc1) before the plain one.
func compareMavenVersions(a, b string) int {
	split := func(v string) ([]string, string) {
		nums, qual, _ := strings.Cut(v, "-")
		return strings.Split(nums, "."), qual
	}
	an, aq := split(a)
	bn, bq := split(b)
	for i := 0; i < max(len(an), len(bn)); i++ {
		x, y := "0", "0"
		if i < len(an) {
			x = an[i]
		}
		if i < len(bn) {
			y = bn[i]
		}
		x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
		if len(x) != len(y) {
			if len(x) < len(y) {
				return -1
			}
			return 1
		}
		if c := strings.Compare(x, y); c != 0 {
			return c
		}
	}
	switch {
	case aq == bq:
		return 0
	case aq == "":
		return 1
	case bq == "":
		return -1
	}
	return strings.Compare(aq, bq)
}

// pomFor returns the jar's own pom when it has one for these coordinates and
// no parent (a parent would have to be published too), else a minimal pom.
func pomFor(jarPath string, co coords) []byte {
	if own := ownPom(jarPath, co); own != nil {
		return own
	}
	return []byte(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>%s</groupId>
  <artifactId>%s</artifactId>
  <version>%s</version>
  <packaging>jar</packaging>
  <description>Published by Shipline</description>
</project>
`, co.Group, co.Artifact, co.Version))
}

func ownPom(jarPath string, co coords) []byte {
	z, err := zip.OpenReader(jarPath)
	if err != nil {
		return nil
	}
	defer z.Close()
	f, err := z.Open(fmt.Sprintf("META-INF/maven/%s/%s/pom.xml", co.Group, co.Artifact))
	if err != nil {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil
	}
	var p struct {
		Parent     *struct{} `xml:"parent"`
		GroupID    string    `xml:"groupId"`
		ArtifactID string    `xml:"artifactId"`
		Version    string    `xml:"version"`
	}
	if xml.Unmarshal(data, &p) != nil || p.Parent != nil || p.GroupID != co.Group || p.ArtifactID != co.Artifact || p.Version != co.Version {
		return nil
	}
	return data
}
