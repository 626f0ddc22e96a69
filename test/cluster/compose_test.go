package cluster

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob"
	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/test/s3server"
)

// compose is the part of docker-compose.yml these checks read.
type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Volumes     []string          `yaml:"volumes"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// composeStore is docker-compose.yml's object store as the worker sees it.
type composeStore struct {
	bucket, identities  string // the bucket weed mini creates; the identity file (in the repo)
	storage             *url.URL
	key, secret, region string // the worker's S3 identity
}

// readComposeStore checks that docker-compose.yml's SeaweedFS service and
// worker agree: the worker waits for the store to be healthy, its storage
// URL names the bucket the service creates on the port it serves and probes,
// and its credentials are an identity of the service's identity file with
// rights on that bucket. Docker is not needed (nor run) here.
func readComposeStore(t *testing.T) composeStore {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	sw, ok := c.Services["seaweedfs"]
	if !ok {
		t.Fatal("docker-compose.yml has no seaweedfs service")
	}
	if !strings.HasPrefix(sw.Image, "chrislusf/seaweedfs:") {
		t.Errorf("seaweedfs image %q, want chrislusf/seaweedfs:<version>", sw.Image)
	}
	if len(sw.Command) == 0 || sw.Command[0] != "mini" {
		t.Fatalf("seaweedfs command %v, want weed mini (as test/s3server runs it)", sw.Command)
	}
	flags := map[string]string{}
	for _, a := range sw.Command[1:] {
		k, v, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		flags[k] = v
	}
	var st composeStore
	st.bucket = flags["bucket"]
	if st.bucket == "" {
		t.Fatalf("seaweedfs command %v creates no bucket (-bucket=NAME)", sw.Command)
	}
	port := flags["s3.port"]
	if port == "" {
		port = "8333" // weed mini's default
	}
	for _, v := range sw.Volumes {
		host, container, _ := strings.Cut(strings.TrimSuffix(v, ":ro"), ":")
		if container == flags["s3.config"] {
			st.identities = filepath.Join("..", "..", filepath.FromSlash(host))
		}
	}
	if st.identities == "" {
		t.Fatalf("seaweedfs -s3.config=%s is not a file mounted from the repository (volumes %v)", flags["s3.config"], sw.Volumes)
	}
	if !slices.ContainsFunc(sw.Healthcheck.Test, func(s string) bool { return strings.Contains(s, "localhost:"+port+"/") }) {
		t.Errorf("seaweedfs healthcheck %v does not probe its S3 port %s", sw.Healthcheck.Test, port)
	}
	if _, ok := c.Volumes["seaweedfs-data"]; !ok || !slices.Contains(sw.Volumes, "seaweedfs-data:/data") {
		t.Errorf("seaweedfs keeps no data volume at /data (volumes %v)", sw.Volumes)
	}

	w, ok := c.Services["shipline-worker"]
	if !ok {
		t.Fatal("docker-compose.yml has no shipline-worker service")
	}
	if w.DependsOn["seaweedfs"].Condition != "service_healthy" {
		t.Errorf("shipline-worker does not wait for seaweedfs to be healthy: %+v", w.DependsOn)
	}
	st.storage, err = url.Parse(w.Environment["SHIPLINE_STORAGE"])
	if err != nil || st.storage.Scheme != "s3" || st.storage.Host != st.bucket || st.storage.User != nil {
		t.Fatalf("shipline-worker SHIPLINE_STORAGE %q: want s3://%s/PREFIX?endpoint=… without credentials (%v)", w.Environment["SHIPLINE_STORAGE"], st.bucket, err)
	}
	q := st.storage.Query()
	if q.Get("endpoint") != "http://seaweedfs:"+port || q.Get("use_path_style") != "true" || q.Get("region") == "" {
		t.Errorf("SHIPLINE_STORAGE %s: want endpoint=http://seaweedfs:%s, use_path_style=true and a region", st.storage, port)
	}
	st.key, st.secret, st.region = w.Environment["AWS_ACCESS_KEY_ID"], w.Environment["AWS_SECRET_ACCESS_KEY"], w.Environment["AWS_REGION"]

	var ids struct {
		Identities []struct {
			Name        string `json:"name"`
			Credentials []struct {
				AccessKey string `json:"accessKey"`
				SecretKey string `json:"secretKey"`
			} `json:"credentials"`
			Actions []string `json:"actions"`
		} `json:"identities"`
	}
	data, err = os.ReadFile(st.identities)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &ids); err != nil {
		t.Fatalf("%s: %v", st.identities, err)
	}
	found := false
	for _, id := range ids.Identities {
		for _, c := range id.Credentials {
			if c.AccessKey == st.key && c.SecretKey == st.secret {
				found = true
				for _, a := range []string{"Read", "Write", "List"} {
					if !slices.Contains(id.Actions, a+":"+st.bucket) && !slices.Contains(id.Actions, a) {
						t.Errorf("identity %s in %s lacks %s on bucket %s: %v", id.Name, st.identities, a, st.bucket, id.Actions)
					}
				}
			}
		}
	}
	if !found {
		t.Errorf("the worker's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are no identity of %s", st.identities)
	}
	return st
}

// TestComposeObjectStore: docker-compose.yml's SeaweedFS service and worker
// agree (readComposeStore), the image is the SeaweedFS version the tests
// build, and — with bin/weed built — that identity file, bucket and storage
// URL work on the real server: weed mini started with the compose's identity
// file and bucket takes a write and a read through gocloud.dev/blob with the
// worker's credentials and the compose's URL (its endpoint pointed at the
// local server).
func TestComposeObjectStore(t *testing.T) {
	st := readComposeStore(t)
	if t.Failed() {
		t.FailNow()
	}
	bin, err := s3server.Binary()
	if err != nil {
		t.Skipf("compose file checked; not run against SeaweedFS: %v", err)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", bin, err)
	}
	version := regexp.MustCompile(`\b\d+\.\d+\b`).FindString(string(out))
	data, _ := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if want := "chrislusf/seaweedfs:${SEAWEEDFS_VERSION:-" + version + "}"; !strings.Contains(string(data), want) {
		t.Errorf("docker-compose.yml runs another SeaweedFS than tools/seaweedfs/go.mod builds (%s): want image %s", strings.TrimSpace(string(out)), want)
	}

	srv := s3server.Start(t, s3server.Options{Bucket: st.bucket, Identities: st.identities, Key: st.key, Secret: st.secret})
	srv.SetEnv(t)
	t.Setenv("AWS_REGION", st.region)
	u := *st.storage
	q := u.Query()
	q.Set("endpoint", srv.Endpoint)
	q.Set("prefix", strings.Trim(u.Path, "/")+"/")
	u.Path, u.RawQuery = "", q.Encode()
	ctx := context.Background()
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.WriteAll(ctx, "compose-check", []byte("ok"), nil); err != nil {
		t.Fatalf("write with the compose worker's identity to %s: %v", u.String(), err)
	}
	if got, err := b.ReadAll(ctx, "compose-check"); err != nil || string(got) != "ok" {
		t.Fatalf("read back: %q %v", got, err)
	}
}
