// Package s3server starts a real S3-compatible object store for tests:
// SeaweedFS's `weed mini` (master, volume server, filer and S3 gateway in one
// process, the mode SeaweedFS ships for development and small setups, and
// the one docker-compose.yml runs), from the binary `make weed` builds into
// bin/weed (the module is pinned in tools/seaweedfs/go.mod, out of
// Shipline's own module graph). Each server listens on free loopback ports,
// keeps its data in a temporary directory, knows two S3 identities (an
// administrator, and Shipline's own with rights on its bucket only) from an
// identity config file, and has its bucket when Start returns.
//
// A test that needs it and finds no bin/weed is skipped, with the command
// that builds it; CI (.ci/run) builds it first, so nothing is skipped there.
package s3server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shipline/shipline/internal/freeport"
)

// Credentials of the two identities every server knows. They are test
// values, given to the server in its identity config file and to clients in
// their environment (Env), never in a URL.
const (
	// AccessKey and SecretKey are Shipline's identity: read, write, list
	// and tag its own bucket, nothing else (no bucket creation).
	AccessKey = "shipline-test"
	SecretKey = "shipline-test-secret-key"
	// adminAccessKey and adminSecretKey may do anything (a test may use
	// them to see what an administrator sees).
	adminAccessKey = "shipline-test-admin"
	adminSecretKey = "shipline-test-admin-secret-key"
	// Region is the region clients sign for (SeaweedFS accepts any).
	Region = "us-east-1"
	// BinaryEnv names the weed binary to run instead of bin/weed.
	BinaryEnv = "SHIPLINE_WEED"
)

// Options configure Start. The zero value is a server with bucket
// "shipline" in a test's temporary directory.
type Options struct {
	// Bucket to create (default "shipline").
	Bucket string
	// Dir holds the server's data, identity config and log (default t.TempDir()).
	Dir string
	// Binary is the weed executable (default: Binary()).
	Binary string
	// ReadyTimeout bounds the wait for the bucket to be created (default 2m).
	ReadyTimeout time.Duration
	// Identities is an S3 identity config file to use instead of the one
	// written for AccessKey/SecretKey and the administrator; Key and Secret
	// are then the credentials of one of its identities with rights on the
	// bucket (Client, Env and the readiness check use them).
	Identities, Key, Secret string
}

// Server is a running `weed mini`.
type Server struct {
	// Endpoint is the S3 endpoint, http://127.0.0.1:PORT.
	Endpoint string
	// Bucket exists, empty, when Start returns.
	Bucket string
	// Dir holds the data; Log is the server's output.
	Dir, Log string
	// key and secret are the identity Client and Env use.
	key, secret string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // the process's exit, once done is closed
}

// Binary returns the weed binary to run: $SHIPLINE_WEED, else bin/weed at
// the root of the Shipline module (found from the working directory up).
func Binary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinaryEnv, p, err)
		}
		return p, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", "weed")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not built: run `make weed` at the repository root (it builds SeaweedFS from tools/seaweedfs/go.mod), or set %s", p, BinaryEnv)
	}
	return p, nil
}

// moduleRoot is the nearest directory up from the working directory whose
// go.mod declares Shipline's module.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module github.com/shipline/shipline\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the Shipline module (no go.mod declaring github.com/shipline/shipline)")
		}
		dir = parent
	}
}

// Start starts a server for the test and stops it when the test ends. It
// skips the test when the weed binary has not been built, and fails it when
// the server does not start.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Binary == "" {
		bin, err := Binary()
		if err != nil {
			t.Skipf("no SeaweedFS server for the S3 tests: %v", err)
		}
		o.Binary = bin
	}
	s, err := StartServer(o.withDefaults(t))
	if s != nil {
		t.Cleanup(func() {
			if err := s.Stop(); err != nil {
				t.Errorf("stop SeaweedFS: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("start SeaweedFS: %v", err)
	}
	return s
}

func (o Options) withDefaults(t testing.TB) Options {
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	return o
}

// StartServer starts a server with o (Binary and Dir are required) and waits
// until its bucket answers Shipline's identity. A port taken between its
// choice and weed's bind makes weed exit at once: it is tried again on other
// ports. On error the returned server, if not nil, must still be stopped.
func StartServer(o Options) (*Server, error) {
	if o.Binary == "" || o.Dir == "" {
		return nil, errors.New("s3server: Options.Binary and Options.Dir are required")
	}
	if o.Bucket == "" {
		o.Bucket = "shipline"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
	cfg := filepath.Join(o.Dir, "s3-identities.json")
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	if o.Identities != "" {
		if o.Key == "" || o.Secret == "" {
			return nil, errors.New("s3server: Options.Identities needs Key and Secret")
		}
		abs, err := filepath.Abs(o.Identities)
		if err != nil {
			return nil, err
		}
		cfg = abs
	} else if err := os.WriteFile(cfg, identityConfig(o.Bucket), 0o600); err != nil {
		return nil, err
	}
	for try := 1; ; try++ {
		s, err := start(o, cfg)
		if err != nil {
			return s, err
		}
		if err = s.waitReady(o.ReadyTimeout); err == nil {
			return s, nil
		}
		if !errors.Is(err, errExited) || try == 3 {
			return s, fmt.Errorf("%w\n%s", err, s.logTail(30))
		}
	}
}

// start runs weed mini on fresh ports with a fresh data directory.
func start(o Options, cfg string) (*Server, error) {
	data, err := os.MkdirTemp(o.Dir, "data-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(10)
	if err != nil {
		return nil, err
	}
	s := &Server{Bucket: o.Bucket, Dir: data, Log: data + ".log", key: AccessKey, secret: SecretKey, done: make(chan struct{})}
	if o.Identities != "" {
		s.key, s.secret = o.Key, o.Secret
	}
	s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(ports[6])
	logFile, err := os.Create(s.Log)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(o.Binary, miniArgs(data, cfg, o.Bucket, ports)...)
	s.cmd.Dir = o.Dir
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	// The identity file is the only source of credentials: weed also takes an
	// admin identity from AWS_ACCESS_KEY_ID, which the test's environment may hold.
	s.cmd.Env = withoutAWS(os.Environ())
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", o.Binary, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		logFile.Close()
		removeSockets(ports)
		close(s.done)
	}()
	return s, nil
}

// removeSockets removes the Unix sockets weed mini opens in /tmp next to
// each gRPC port (and leaves behind for some of them).
func removeSockets(ports []int) {
	for i, name := range []string{"master", "volume", "filer", "s3", "admin"} {
		p := fmt.Sprintf("/tmp/seaweedfs-%s-grpc-%d.sock", name, ports[2*i+1])
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(p)
		}
	}
}

// miniArgs runs master, volume server, filer, S3 gateway and SeaweedFS's
// admin server in one process, each on its own loopback port (ports:
// master, master gRPC, volume, volume gRPC, filer, filer gRPC, S3, S3 gRPC,
// admin, admin gRPC), creating bucket on start; no WebDAV, admin UI,
// Iceberg or Lance listeners, no telemetry.
func miniArgs(data, cfg, bucket string, p []int) []string {
	port := func(flag string, i int) string { return "-" + flag + "=" + strconv.Itoa(p[i]) }
	sock := func(name string) string {
		return "-" + name + ".localSocket=" + filepath.Join(filepath.Dir(cfg), filepath.Base(data)+"-"+name+".sock")
	}
	return []string{
		"-logtostderr=true", "mini",
		"-dir=" + data,
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		port("master.port", 0), port("master.port.grpc", 1), "-master.telemetry=false",
		port("volume.port", 2), port("volume.port.grpc", 3),
		port("filer.port", 4), port("filer.port.grpc", 5), sock("filer"),
		port("s3.port", 6), port("s3.port.grpc", 7), sock("s3"),
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.config=" + cfg,
		port("admin.port", 8), port("admin.port.grpc", 9), "-admin.port.legacy=0", "-admin.ui=false",
		"-webdav=false",
		"-bucket=" + bucket,
	}
}

// identityConfig is SeaweedFS's S3 identity file: the administrator, and
// Shipline's identity limited to bucket.
func identityConfig(bucket string) []byte {
	type cred struct {
		AccessKey string `json:"accessKey"`
		SecretKey string `json:"secretKey"`
	}
	type identity struct {
		Name        string   `json:"name"`
		Credentials []cred   `json:"credentials"`
		Actions     []string `json:"actions"`
	}
	data, _ := json.MarshalIndent(map[string][]identity{"identities": {
		{Name: "admin", Credentials: []cred{{adminAccessKey, adminSecretKey}}, Actions: []string{"Admin", "Read", "Write", "List", "Tagging"}},
		{Name: "shipline", Credentials: []cred{{AccessKey, SecretKey}},
			Actions: []string{"Read:" + bucket, "Write:" + bucket, "List:" + bucket, "Tagging:" + bucket}},
	}}, "", "  ")
	return data
}

var errExited = errors.New("weed exited")

// waitReady waits until the server's identity can reach the bucket, the
// process exits (errExited), or timeout passes.
func (s *Server) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := s.Client()
	var last error
	for {
		select {
		case <-s.done:
			return fmt.Errorf("%w (%v) before bucket %s was ready: see %s", errExited, s.err, s.Bucket, s.Log)
		default:
		}
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := client.HeadBucket(cctx, &s3.HeadBucketInput{Bucket: aws.String(s.Bucket)})
		ccancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-s.done:
		case <-ctx.Done():
			return fmt.Errorf("bucket %s not ready at %s within %s: %v (see %s)", s.Bucket, s.Endpoint, timeout, last, s.Log)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Client is an S3 client of the server signed with Shipline's identity.
func (s *Server) Client() *s3.Client { return s.client(s.key, s.secret) }

func (s *Server) client(key, secret string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		UsePathStyle: true,
	})
}

// StorageURL is the platform.yaml `storage:` URL of prefix in the bucket:
// s3://BUCKET/PREFIX?endpoint=…&region=…&use_path_style=true. It holds no
// credentials: give the worker Env().
func (s *Server) StorageURL(prefix string) string {
	u := url.URL{Scheme: "s3", Host: s.Bucket, Path: "/" + strings.Trim(prefix, "/"), RawQuery: s.query().Encode()}
	if u.Path == "/" {
		u.Path = ""
	}
	return u.String()
}

// BucketURL is the gocloud.dev/blob URL of the bucket (keys under prefix
// when it is not empty): s3://BUCKET?endpoint=…&prefix=PREFIX/&region=…&use_path_style=true.
func (s *Server) BucketURL(prefix string) string {
	q := s.query()
	if p := strings.Trim(prefix, "/"); p != "" {
		q.Set("prefix", p+"/")
	}
	return (&url.URL{Scheme: "s3", Host: s.Bucket, RawQuery: q.Encode()}).String()
}

func (s *Server) query() url.Values {
	return url.Values{"endpoint": {s.Endpoint}, "region": {Region}, "use_path_style": {"true"}}
}

// Env is the environment a client process needs for Shipline's identity
// (the AWS SDK's standard variables).
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.key, "AWS_SECRET_ACCESS_KEY=" + s.secret, "AWS_REGION=" + Region}
}

// SetEnv sets Env() for the rest of the test (for clients in the test's own
// process, such as gocloud.dev/blob's s3blob), and keeps the machine's AWS
// configuration files out.
func (s *Server) SetEnv(t testing.TB) {
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	// No shared config or credentials files from the machine's user.
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
}

// Stop ends the server (SIGTERM: weed mini stops its services in order,
// in a few seconds; SIGKILL after 30) and waits for it. Stopping a stopped
// server is a no-op.
func (s *Server) Stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("weed did not stop within 30s of SIGTERM; killed (see %s)", s.Log)
	}
}

// Running reports whether the server process is alive.
func (s *Server) Running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// logTail returns the last n lines of the server's log, for errors.
func (s *Server) logTail(n int) string {
	data, _ := os.ReadFile(s.Log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return "last lines of " + s.Log + ":\n" + strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// freePorts returns n distinct free loopback ports, clear of the kernel's
// ephemeral range (freeport.Get).
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		p, err := freeport.Get("127.0.0.1")
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	return ports, nil
}

// withoutAWS drops AWS_* variables from env.
func withoutAWS(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return out
}
