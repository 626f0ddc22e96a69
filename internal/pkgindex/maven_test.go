package pkgindex_test

import (
	"archive/zip"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/pkgindex"
	"github.com/shipline/shipline/internal/pkgindex/pkgindextest"
	"github.com/shipline/shipline/internal/storage"
)

const (
	group    = "com.example.data"
	artifact = "common-utils"
	groupDir = "com/example/data/common-utils"
)

func mavenIndex(t *testing.T, url string, c pkgindex.Config) pkgindex.Index {
	t.Helper()
	c.Name, c.Kind, c.URL = "nexus", "maven", url
	idx, err := pkgindex.Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func publishJar(idx pkgindex.Index, version, path string) (pkgindex.Result, error) {
	return idx.Publish(context.Background(), pkgindex.File{Project: "customer360", Name: artifact, Version: version, Path: path, GroupID: group})
}

type mavenMetadata struct {
	GroupID     string   `xml:"groupId"`
	ArtifactID  string   `xml:"artifactId"`
	Latest      string   `xml:"versioning>latest"`
	Release     string   `xml:"versioning>release"`
	Versions    []string `xml:"versioning>versions>version"`
	LastUpdated string   `xml:"versioning>lastUpdated"`
}

// checkSums checks the checksum files beside a file of the repository.
func checkSums(t *testing.T, read func(string) []byte, key string) {
	t.Helper()
	data := read(key)
	if data == nil {
		t.Fatalf("%s missing", key)
	}
	s1, m5, s256, s512 := sha1.Sum(data), md5.Sum(data), sha256.Sum256(data), sha512.Sum512(data)
	for ext, want := range map[string]string{"sha1": hex.EncodeToString(s1[:]), "md5": hex.EncodeToString(m5[:]),
		"sha256": hex.EncodeToString(s256[:]), "sha512": hex.EncodeToString(s512[:])} {
		if got := string(read(key + "." + ext)); got != want {
			t.Errorf("%s.%s = %q, want %q", key, ext, got, want)
		}
	}
}

func TestMavenPublishLayout(t *testing.T) {
	repo := pkgindextest.NewMaven(t, "deployer", "pw")
	idx := mavenIndex(t, repo.URL+"/repository/maven-releases", pkgindex.Config{Username: "deployer", Password: "pw"})
	src := t.TempDir()
	jar := pkgindextest.Jar(t, src, "utils_2.12-1.10.0.jar", "ten")
	res, err := publishJar(idx, "v1.10.0", jar)
	if err != nil {
		t.Fatal(err)
	}
	jarKey := "repository/maven-releases/" + groupDir + "/1.10.0/common-utils-1.10.0.jar"
	if res.URL != repo.URL+"/"+jarKey || res.AlreadyPublished {
		t.Errorf("result %+v", res)
	}
	read := func(k string) []byte { return repo.File(k) }
	if string(read(jarKey)) != readFile(t, jar) {
		t.Fatal("the repository holds other bytes")
	}
	checkSums(t, read, jarKey)
	pomKey := strings.TrimSuffix(jarKey, ".jar") + ".pom"
	checkSums(t, read, pomKey)
	var pom struct {
		GroupID, ArtifactID, Version, Packaging string
	}
	if err := xml.Unmarshal(read(pomKey), &struct {
		G *string `xml:"groupId"`
		A *string `xml:"artifactId"`
		V *string `xml:"version"`
		P *string `xml:"packaging"`
	}{&pom.GroupID, &pom.ArtifactID, &pom.Version, &pom.Packaging}); err != nil {
		t.Fatal(err)
	}
	if pom.GroupID != group || pom.ArtifactID != artifact || pom.Version != "1.10.0" || pom.Packaging != "jar" {
		t.Errorf("pom %+v", pom)
	}

	// An older version published later: listed, but latest stays the highest.
	if _, err := publishJar(idx, "1.9.0", pkgindextest.Jar(t, src, "u-1.9.0.jar", "nine")); err != nil {
		t.Fatal(err)
	}
	mdKey := "repository/maven-releases/" + groupDir + "/maven-metadata.xml"
	checkSums(t, read, mdKey)
	var md mavenMetadata
	if err := xml.Unmarshal(read(mdKey), &md); err != nil {
		t.Fatal(err)
	}
	if md.GroupID != group || md.ArtifactID != artifact || !reflect.DeepEqual(md.Versions, []string{"1.10.0", "1.9.0"}) ||
		md.Latest != "1.10.0" || md.Release != "1.10.0" || !regexp.MustCompile(`^20\d{12}$`).MatchString(md.LastUpdated) {
		t.Errorf("maven-metadata.xml: %+v\n%s", md, read(mdKey))
	}
	// The metadata comes after the version's files.
	puts := repo.Puts()
	if last := puts[len(puts)-5]; !strings.HasSuffix(last, "maven-metadata.xml") {
		t.Errorf("writes end with %v", puts[len(puts)-5:])
	}
}

func TestMavenImmutability(t *testing.T) {
	repo := pkgindextest.NewMaven(t, "deployer", "pw")
	idx := mavenIndex(t, repo.URL, pkgindex.Config{Username: "deployer", Token: "pw"})
	src := t.TempDir()
	jar := pkgindextest.Jar(t, src, "a.jar", "one")
	if _, err := publishJar(idx, "1.0.0", jar); err != nil {
		t.Fatal(err)
	}
	writes := len(repo.Puts())
	res, err := publishJar(idx, "1.0.0", jar)
	if err != nil || !res.AlreadyPublished {
		t.Fatalf("same bytes again: %+v, %v", res, err)
	}
	if len(repo.Puts()) != writes {
		t.Errorf("the same bytes again wrote %v", repo.Puts()[writes:])
	}
	other := pkgindextest.Jar(t, src, "b.jar", "two")
	_, err = publishJar(idx, "1.0.0", other)
	if apperr.Type(err) != apperr.VersionAlreadyPublished {
		t.Fatalf("other bytes: %v, want %s", err, apperr.VersionAlreadyPublished)
	}
	for _, s := range []string{"package index nexus", "common-utils 1.0.0", group + ":" + artifact + ":1.0.0", sha256File(t, jar), sha256File(t, other), "release a new version"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("refusal %q does not say %q", err, s)
		}
	}
	if string(repo.File(groupDir+"/1.0.0/common-utils-1.0.0.jar")) != readFile(t, jar) {
		t.Error("the refusal replaced the jar")
	}
}

// In a bucket: a publish that stopped after the jar is finished by the next.
func TestMavenBucketFinishesAnInterruptedPublish(t *testing.T) {
	dir := t.TempDir()
	idx := mavenIndex(t, storage.FileURL(dir), pkgindex.Config{})
	jar := pkgindextest.Jar(t, t.TempDir(), "a.jar", "one")
	if _, err := publishJar(idx, "2.0.0", jar); err != nil {
		t.Fatal(err)
	}
	read := func(k string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(k)))
		if err != nil {
			return nil
		}
		return data
	}
	for _, k := range []string{"2.0.0/common-utils-2.0.0.pom", "2.0.0/common-utils-2.0.0.jar.sha1", "maven-metadata.xml.sha1"} {
		if err := os.Remove(filepath.Join(dir, groupDir, k)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := publishJar(idx, "2.0.0", jar)
	if err != nil || !res.AlreadyPublished {
		t.Fatalf("republish: %+v, %v", res, err)
	}
	checkSums(t, read, groupDir+"/2.0.0/common-utils-2.0.0.jar")
	checkSums(t, read, groupDir+"/2.0.0/common-utils-2.0.0.pom")
	checkSums(t, read, groupDir+"/maven-metadata.xml")

	// Without its metadata, the version is added again.
	if err := os.Remove(filepath.Join(dir, groupDir, "maven-metadata.xml")); err != nil {
		t.Fatal(err)
	}
	if _, err := publishJar(idx, "2.0.0", jar); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(read(groupDir+"/maven-metadata.xml")), "<version>2.0.0</version>") {
		t.Error("metadata not rewritten")
	}
	checkSums(t, read, groupDir+"/maven-metadata.xml")
}

func TestMavenAuthErrors(t *testing.T) {
	repo := pkgindextest.NewMaven(t, "deployer", "pw")
	repo.AddReader("viewer", "pw")
	jar := pkgindextest.Jar(t, t.TempDir(), "a.jar", "one")
	_, err := publishJar(mavenIndex(t, repo.URL, pkgindex.Config{}), "1.0.0", jar)
	if apperr.Type(err) != apperr.IndexAuth || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "package_indexes.nexus") {
		t.Errorf("no credentials: %v", err)
	}
	_, err = publishJar(mavenIndex(t, repo.URL, pkgindex.Config{Username: "viewer", Password: "pw"}), "1.0.0", jar)
	if apperr.Type(err) != apperr.IndexAuth || !strings.Contains(err.Error(), "no deploy permission") {
		t.Errorf("a reader: %v", err)
	}
	repo.PrivateRead = true
	_, err = mavenIndex(t, repo.URL, pkgindex.Config{Username: "deployer", Password: "wrong"}).Has(context.Background(), group+":"+artifact, "1.0.0")
	if apperr.Type(err) != apperr.IndexAuth {
		t.Errorf("wrong password: %v", err)
	}
	if len(repo.Puts()) != 0 {
		t.Errorf("refused requests wrote %v", repo.Puts())
	}
}

func TestMavenHas(t *testing.T) {
	repo := pkgindextest.NewMaven(t, "deployer", "pw")
	repo.PrivateRead = true
	idx := mavenIndex(t, repo.URL, pkgindex.Config{Username: "deployer", Password: "pw"})
	ctx := context.Background()
	if _, err := publishJar(idx, "1.0.0", pkgindextest.Jar(t, t.TempDir(), "a.jar", "one")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, version string
		want          bool
	}{{group + ":" + artifact, "1.0.0", true}, {group + ":" + artifact, "v1.0.0", true}, {group + ":" + artifact, "1.0.1", false}, {"com.other:" + artifact, "1.0.0", false}} {
		if ok, err := idx.Has(ctx, c.name, c.version); err != nil || ok != c.want {
			t.Errorf("Has(%s, %s) = %v, %v", c.name, c.version, ok, err)
		}
	}
	if _, err := idx.Has(ctx, artifact, "1.0.0"); apperr.Type(err) != apperr.InvalidInput || !strings.Contains(err.Error(), "groupId:artifactId") {
		t.Errorf("a name without group: %v", err)
	}
	if _, err := idx.Publish(ctx, pkgindex.File{Name: artifact, Version: "1.0.0", Path: pkgindextest.Jar(t, t.TempDir(), "a.jar", "x")}); apperr.Type(err) != apperr.InvalidInput || !strings.Contains(err.Error(), "group id") {
		t.Errorf("a jar without group: %v", err)
	}
}

// A jar that carries its own pom for these coordinates publishes that pom.
func TestMavenUsesTheJarsOwnPom(t *testing.T) {
	own := fmt.Sprintf("<project><modelVersion>4.0.0</modelVersion><groupId>%s</groupId><artifactId>%s</artifactId><version>3.1.0</version>"+
		"<name>own</name></project>", group, artifact)
	path := filepath.Join(t.TempDir(), "own.jar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	z := zip.NewWriter(f)
	w, _ := z.Create(fmt.Sprintf("META-INF/maven/%s/%s/pom.xml", group, artifact))
	_, _ = w.Write([]byte(own))
	_ = z.Close()
	_ = f.Close()
	repo := pkgindextest.NewMaven(t, "deployer", "pw")
	if _, err := publishJar(mavenIndex(t, repo.URL, pkgindex.Config{Username: "deployer", Password: "pw"}), "3.1.0", path); err != nil {
		t.Fatal(err)
	}
	if got := string(repo.File(groupDir + "/3.1.0/common-utils-3.1.0.pom")); got != own {
		t.Errorf("pom = %s", got)
	}
}

// Debian's Maven resolves the published jar, checking its checksums (the
// repository's checksumPolicy is fail), from
// the repository over HTTP (with credentials) and from a directory.
func TestMavenResolvesPublishedJar(t *testing.T) {
	mvn, err := exec.LookPath("mvn")
	plugin := "/usr/share/maven-repo/org/apache/maven/plugins/maven-dependency-plugin/3.5.0"
	if err != nil {
		t.Skip("mvn, the judge of this test, is missing: apt-get install maven libmaven-dependency-plugin-java junit4")
	}
	if _, err := os.Stat(plugin); err != nil {
		t.Skip("Debian's maven-dependency-plugin, which the judge runs, is missing: apt-get install libmaven-dependency-plugin-java junit4")
	}
	jar := pkgindextest.Jar(t, t.TempDir(), "utils.jar", "resolved by maven")

	repo := pkgindextest.NewMaven(t, "deployer", "pw")
	repo.PrivateRead = true
	if _, err := publishJar(mavenIndex(t, repo.URL+"/releases", pkgindex.Config{Username: "deployer", Password: "pw"}), "1.2.0", jar); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := publishJar(mavenIndex(t, dir, pkgindex.Config{}), "1.2.0", jar); err != nil {
		t.Fatal(err)
	}
	for name, url := range map[string]string{"http": repo.URL + "/releases", "file": storage.FileURL(dir)} {
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			settings := fmt.Sprintf(`<settings>
  <localRepository>%s/m2</localRepository>
  <mirrors><mirror><id>debian</id><mirrorOf>central</mirrorOf><url>file:///usr/share/maven-repo</url></mirror></mirrors>
  <servers><server><id>shipline</id><username>deployer</username><password>pw</password></server></servers>
</settings>`, work)
			pom := fmt.Sprintf(`<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>judge</groupId><artifactId>judge</artifactId><version>1</version><packaging>pom</packaging>
  <repositories><repository><id>shipline</id><url>%s</url><releases><checksumPolicy>fail</checksumPolicy></releases></repository></repositories>
  <dependencies><dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>1.2.0</version></dependency></dependencies>
</project>`, url, group, artifact)
			for f, body := range map[string]string{"settings.xml": settings, "pom.xml": pom} {
				if err := os.WriteFile(filepath.Join(work, f), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(mvn, "-B", "-s", "settings.xml",
				"org.apache.maven.plugins:maven-dependency-plugin:3.5.0:copy-dependencies", "-DoutputDirectory=out")
			cmd.Dir = work
			cmd.Env = []string{"HOME=" + work, "PATH=/usr/bin:/bin"}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("mvn: %v\n%s", err, out)
			}
			if got := sha256File(t, filepath.Join(work, "out", "common-utils-1.2.0.jar")); got != sha256File(t, jar) {
				t.Errorf("maven resolved other bytes\n%s", out)
			}
		})
	}
}
