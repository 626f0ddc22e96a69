package fabric

// The databricks fabric: artifacts go to a Unity Catalog volume (Files API),
// the workspace (workspace import) or DBFS, chosen by artifact_root; jobs are
// Jobs API 2.2 jobs found by Shipline's tags. Everything goes through
// databricks-sdk-go; job payloads are sent as raw JSON through the SDK's
// low-level client so fields newer than the SDK's structs are kept.
//
// Choices:
//   - Checksums: an artifact already at its path with the same size is
//     downloaded and hashed (no sidecar .sha256 file: a sidecar is written
//     separately from the file, can be stale, and other tools do not keep it).
//     Downloads only happen on re-deploys of an existing version.
//   - Writes never overwrite: Files API PUT with overwrite=false, workspace
//     import without overwrite, DBFS put without overwrite or, above 1 MB, a
//     temporary file moved into place, so a half-written file never sits at
//     an immutable path. "Already exists" after a lost answer is re-checked.
//   - Exactly once, also when an answer is lost. Any call may act on the
//     server and still fail for its caller (a 5xx, a 429 or a connection
//     dropped after the server handled it), and databricks-sdk-go resends
//     a call answered 429 or 503 or whose connection was reset. That is
//     harmless for idempotent calls (reads, mkdirs, jobs/reset) and for the
//     create-only writes above (a resend is refused as "already exists").
//     The calls a resend would repeat — jobs/create (a second job) and DBFS
//     create, add-block, close and move (a block appended twice) — are sent
//     once, outside the SDK's retry loop (sendOnce). Before a create is sent
//     again the job is looked up by its tags (createJob); after any failed
//     artifact write the path is checked again before anything is resent.
//   - Jobs: the identity is the tag pair shipline_project + shipline_job. The
//     list is filtered by the payload's name first; when no tagged job has
//     that name, every job is listed (a renamed job is still found). A job
//     whose live settings already hold everything Shipline sends (server
//     defaults ignored) is left unchanged; otherwise it is reset, which
//     replaces all its settings. access_control_list only applies on create.
//   - "recreated" cannot be told from "created" here (the fabric keeps no
//     state); the caller, which remembers the job ID it deployed, maps
//     created → recreated.
//   - The token is read from token_env on every request, so fixing the
//     variable and resuming works without restarting the worker. The SDK
//     retries 429/503 itself for at most retryTimeout; after that the error
//     is returned as transient and Temporal retries the activity.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/common"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/config/credentials"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/platform"
)

// Tags Shipline puts on every Databricks job it deploys.
const (
	TagProject = "shipline_project"
	TagJob     = "shipline_job"
	TagVersion = "shipline_version"
)

const dbfsBlock = 1 << 20 // DBFS put and add-block take at most 1 MB

type databricksFabric struct {
	name, host, tokenEnv, profile, root string
	env                                 Env

	// SDK settings; tests shorten them before the first call.
	retryTimeout, httpTimeout time.Duration
	rateLimit                 int

	mu   sync.Mutex
	ws   *databricks.WorkspaceClient
	raw  *client.DatabricksClient
	once *http.Client // for sendOnce: no retries
}

// defaultRateLimit is the client-side request rate per fabric client.
const defaultRateLimit = 100

// defaultRetryTimeout bounds the SDK's own retries of a call answered 429 or
// 503 (and Shipline's looked-up retries of a create, see createJob).
const defaultRetryTimeout = 30 * time.Second

func newDatabricks(f platform.Fabric, env Env) (Fabric, error) {
	if env == nil {
		env = os.Getenv
	}
	d := &databricksFabric{
		name: f.Name, host: strings.TrimRight(f.Host, "/"), tokenEnv: f.TokenEnv, profile: f.Profile,
		root: strings.TrimRight(f.ArtifactRoot, "/"), env: env,
		retryTimeout: defaultRetryTimeout, httpTimeout: 60 * time.Second,
		// The SDK's default client-side limit (15 requests/s) serializes a deploy
		// of many jobs behind itself; the workspace answers 429 when it is busy,
		// which the SDK and Temporal retry.
		rateLimit: defaultRateLimit,
	}
	bad := func(msg string) (Fabric, error) {
		return nil, &apperr.Error{Type: apperr.FabricConfig, Msg: fmt.Sprintf("fabric %q: %s in platform.yaml", f.Name, msg)}
	}
	switch {
	case d.host == "" && d.profile == "":
		return bad("a databricks fabric needs host (or a profile that names one)")
	case d.tokenEnv == "" && d.profile == "":
		return bad("a databricks fabric needs token_env (the environment variable holding a token) or profile")
	case !strings.HasPrefix(d.root, "/Volumes/") && !strings.HasPrefix(d.root, "/Workspace/") && !strings.HasPrefix(d.root, "dbfs:/"):
		return bad(fmt.Sprintf("artifact_root %q must start with /Volumes/, /Workspace/ or dbfs:/", f.ArtifactRoot))
	}
	return d, nil
}

func (d *databricksFabric) Name() string { return d.name }

func (d *databricksFabric) ArtifactPath(project, version, pipeline, file string) string {
	return strings.Join([]string{d.root, project, version, pipeline, file}, "/")
}

// --- client, credentials and errors ---

// envToken authenticates each request with the token in an environment variable.
type envToken struct {
	env  Env
	name string
}

func (envToken) Name() string { return "pat" }

func (t envToken) Configure(context.Context, *config.Config) (credentials.CredentialsProvider, error) {
	return credentials.NewCredentialsProvider(func(r *http.Request) error {
		tok := t.env(t.name)
		if tok == "" {
			return fmt.Errorf("environment variable %s is empty", t.name)
		}
		r.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}), nil
}

type noLoader struct{}

func (noLoader) Name() string                   { return "shipline platform.yaml" }
func (noLoader) Configure(*config.Config) error { return nil }

// clients returns the SDK clients, built once. With token_env nothing is read
// from DATABRICKS_* variables or ~/.databrickscfg: platform.yaml is the only source.
func (d *databricksFabric) clients() (*databricks.WorkspaceClient, *client.DatabricksClient, error) {
	if d.tokenEnv != "" && d.env(d.tokenEnv) == "" {
		return nil, nil, &apperr.Error{Type: apperr.FabricAuth,
			Msg: fmt.Sprintf("databricks fabric %q (%s): environment variable %s is empty; set it to a personal access token on the worker", d.name, d.host, d.tokenEnv)}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ws != nil {
		return d.ws, d.raw, nil
	}
	cfg := &databricks.Config{
		Host:                d.host,
		Profile:             d.profile,
		RetryTimeoutSeconds: int(d.retryTimeout / time.Second),
		HTTPTimeoutSeconds:  int(d.httpTimeout / time.Second),
		RateLimitPerSecond:  d.rateLimit,
	}
	if d.tokenEnv != "" {
		cfg.Credentials = envToken{env: d.env, name: d.tokenEnv}
		cfg.AuthType = "pat"
		cfg.Loaders = []config.Loader{noLoader{}}
	}
	ws, err := databricks.NewWorkspaceClient(cfg)
	if err == nil {
		d.raw, err = client.New(ws.Config)
	}
	if err != nil {
		return nil, nil, &apperr.Error{Type: apperr.FabricAuth,
			Msg: fmt.Sprintf("databricks fabric %q (%s): cannot configure the client: %s; %s", d.name, d.where(), d.redact(err.Error()), d.credentialHint())}
	}
	transport := ws.Config.HTTPTransport
	if transport == nil {
		transport = http.DefaultTransport
	}
	d.once = &http.Client{Transport: transport, Timeout: d.httpTimeout}
	d.ws = ws
	return d.ws, d.raw, nil
}

// sendOnce POSTs a call that a resend could repeat, once: outside
// databricks-sdk-go's retry loop, but with the SDK's credentials and its
// parsing of error answers (so errors are the usual *apierr.APIError, or a
// *url.Error when no answer came). net/http does not resend a POST either.
func (d *databricksFabric) sendOnce(ctx context.Context, path string, body, out any) error {
	w, _, err := d.clients()
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return &apperr.Error{Type: apperr.InvalidDefinition, Msg: fmt.Sprintf("encode %s request: %v", path, err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(w.Config.Host, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if err := w.Config.Authenticate(req); err != nil {
		return err
	}
	resp, err := d.once.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		rw, err := common.NewResponseWrapper(resp, common.RequestBody{})
		if err != nil {
			return err
		}
		return apierr.GetAPIError(ctx, rw)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if out != nil && len(data) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		return dec.Decode(out)
	}
	return nil
}

// outcomeUnknown tells whether a call that failed while ctx is still live
// may have acted: an answer of 429 or 5xx, or none at all (a request timeout
// included). Any other 4xx is the server's refusal.
func outcomeUnknown(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var fe *apperr.Error
	if errors.As(err, &fe) {
		return !fe.Permanent()
	}
	var ae *apierr.APIError
	if errors.As(err, &ae) {
		return ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode >= 500
	}
	return true
}

// backoffSleep waits before the attempt+1-th try of a call (1 s, 2 s, ... at
// most 10 s, like the SDK) or until ctx ends.
func backoffSleep(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(min(attempt, 10)) * time.Second)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (d *databricksFabric) where() string {
	if d.host != "" {
		return d.host
	}
	return "profile " + d.profile
}

func (d *databricksFabric) credentialHint() string {
	if d.tokenEnv != "" {
		return fmt.Sprintf("put a valid token with the needed permissions in environment variable %s on the worker, then resume", d.tokenEnv)
	}
	return fmt.Sprintf("fix profile %q in the Databricks config file of the worker, then resume", d.profile)
}

func (d *databricksFabric) redact(s string) string {
	if d.tokenEnv != "" {
		if tok := d.env(d.tokenEnv); len(tok) >= 4 {
			s = strings.ReplaceAll(s, tok, "<redacted>")
		}
	}
	return s
}

// fail maps an SDK error to an *apperr.Error: 401/403 → permanent FabricAuth, other
// 4xx → permanent FabricRejected, 429/5xx/network → transient.
func (d *databricksFabric) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var fe *apperr.Error
	if errors.As(err, &fe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ae *apierr.APIError
	if errors.As(err, &ae) {
		// A copy without the request (whose headers hold the token) keeps errors.Is working.
		clean := &apierr.APIError{ErrorCode: ae.ErrorCode, Message: d.redact(ae.Message), StatusCode: ae.StatusCode}
		detail := strings.TrimSpace(fmt.Sprintf("%d %s", ae.StatusCode, ae.ErrorCode)) + ": " + clean.Message // HEAD answers carry no error code
		switch {
		case ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden:
			return &apperr.Error{Type: apperr.FabricAuth, Cause: clean,
				Msg: fmt.Sprintf("databricks fabric %q (%s) refused %s (%s); %s", d.name, d.where(), op, detail, d.credentialHint())}
		case ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode >= 500:
			return &apperr.Error{Type: apperr.FabricUnavailable, Cause: clean,
				Msg: fmt.Sprintf("databricks fabric %q (%s): %s: %s (will retry)", d.name, d.where(), op, detail)}
		case ae.StatusCode >= 400:
			return &apperr.Error{Type: apperr.FabricRejected, Cause: clean,
				Msg: fmt.Sprintf("databricks fabric %q (%s) rejected %s: %s", d.name, d.where(), op, detail)}
		}
	}
	if errors.Is(err, config.ErrCannotConfigureDefault) {
		return &apperr.Error{Type: apperr.FabricAuth,
			Msg: fmt.Sprintf("databricks fabric %q (%s): no credentials: %s", d.name, d.where(), d.credentialHint())}
	}
	return &apperr.Error{Type: apperr.FabricUnavailable, Cause: err,
		Msg: fmt.Sprintf("databricks fabric %q (%s): %s: %s (will retry)", d.name, d.where(), op, d.redact(err.Error()))}
}

// --- artifacts ---

// Upload puts a at ArtifactPath by the kind of artifact_root, then checks the
// size on the fabric. Same bytes already there → Uploaded false; other bytes →
// permanent ArtifactConflict.
func (d *databricksFabric) Upload(ctx context.Context, project, version string, a Artifact) (Upload, error) {
	for _, s := range []string{project, version, a.Pipeline, a.File} {
		if err := checkSegment(s); err != nil {
			return Upload{}, err
		}
	}
	w, _, err := d.clients()
	if err != nil {
		return Upload{}, err
	}
	// The client rewinds the body to resend it after a 429/503: the artifact
	// (streamed and checked by a.Open) is spooled into a local file, only
	// when it must be sent or its size and checksum are not recorded.
	var local *os.File
	removeSpool := func() {}
	defer func() { removeSpool() }()
	spool := func() error {
		if local != nil {
			return nil
		}
		f, remove, err := a.spool(ctx)
		if err != nil {
			return fmt.Errorf("read artifact %s: %w", a.where(), err)
		}
		local, removeSpool = f, remove
		return nil
	}
	size, want := a.Size, strings.ToLower(a.SHA256)
	if size <= 0 || want == "" {
		if err := spool(); err != nil {
			return Upload{}, err
		}
		st, err := local.Stat()
		if err != nil {
			return Upload{}, fmt.Errorf("stat artifact %s: %w", a.where(), err)
		}
		size = st.Size()
		if want == "" {
			if want, err = fileSHA256(local.Name()); err != nil {
				return Upload{}, fmt.Errorf("hash artifact %s: %w", a.where(), err)
			}
		}
	}
	path := d.ArtifactPath(project, version, a.Pipeline, a.File)
	var store artifactBackend
	switch {
	case strings.HasPrefix(path, "/Volumes/"):
		store = volumeStore{w: w, path: path}
	case strings.HasPrefix(path, "/Workspace/"):
		store = workspaceStore{w: w, path: path}
	default:
		store = dbfsStore{w: w, path: path, once: d.sendOnce}
	}

	// 1. Already there?
	done, err := d.compareExisting(ctx, store, path, size, want, true)
	if err != nil || done {
		return Upload{Path: path}, err
	}
	if err := spool(); err != nil {
		return Upload{}, err
	}
	// 2. Write without overwriting; "already exists" means a concurrent or
	// earlier (answer lost) write: check it like step 1.
	if _, err := local.Seek(0, io.SeekStart); err != nil {
		return Upload{}, err
	}
	// A write whose outcome is unknown (its answer lost) may have landed:
	// check likewise before it is tried again.
	err = store.put(ctx, local, size)
	exists := errors.Is(err, apierr.ErrResourceConflict) || errors.Is(err, apierr.ErrResourceAlreadyExists)
	switch {
	case exists || outcomeUnknown(ctx, err):
		done, cerr := d.compareExisting(ctx, store, path, size, want, true)
		switch {
		case cerr != nil:
			return Upload{}, cerr
		case done:
			return Upload{Path: path, Uploaded: !exists}, nil
		case exists:
			return Upload{}, &apperr.Error{Type: apperr.FabricUnavailable, Msg: fmt.Sprintf("databricks fabric %q: %s was reported as existing but is not there (will retry)", d.name, path)}
		}
		return Upload{}, d.fail("upload of "+path, err)
	case err != nil:
		return Upload{}, d.fail("upload of "+path, err)
	}
	// 3. Verify the size on the fabric.
	if done, err := d.compareExisting(ctx, store, path, size, want, false); err != nil || !done {
		if err == nil {
			err = &apperr.Error{Type: apperr.FabricUnavailable, Msg: fmt.Sprintf("databricks fabric %q: %s is missing right after its upload (will retry)", d.name, path)}
		}
		return Upload{}, err
	}
	return Upload{Path: path, Uploaded: true}, nil
}

// compareExisting reports whether path holds the artifact (done): not there →
// false; other size or (with hash) other bytes → ArtifactConflict.
func (d *databricksFabric) compareExisting(ctx context.Context, s artifactBackend, path string, size int64, sum string, hash bool) (bool, error) {
	rsize, exists, err := s.stat(ctx)
	if err != nil {
		return false, d.fail("status of "+path, err)
	}
	if !exists {
		return false, nil
	}
	conflict := func(what string) error {
		return &apperr.Error{Type: apperr.ArtifactConflict,
			Msg: fmt.Sprintf("databricks fabric %q: %s already exists with %s: artifact paths are immutable; release a new version (or delete the file if it is garbage)", d.name, path, what)}
	}
	if rsize < 0 {
		return true, conflict("a folder or notebook there")
	}
	if rsize != size {
		return true, conflict(fmt.Sprintf("%d bytes, this build's artifact has %d", rsize, size))
	}
	if !hash {
		return true, nil
	}
	h := sha256.New()
	if err := s.read(ctx, h); err != nil {
		return false, d.fail("download of "+path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return true, conflict(fmt.Sprintf("other bytes (sha256 %s, this build's is %s)", got, sum))
	}
	return true, nil
}

// artifactBackend is one of the three places artifacts can live.
type artifactBackend interface {
	stat(ctx context.Context) (size int64, exists bool, err error)
	read(ctx context.Context, w io.Writer) error
	put(ctx context.Context, f *os.File, size int64) error // must not overwrite
}

type volumeStore struct {
	w    *databricks.WorkspaceClient
	path string
}

func (s volumeStore) stat(ctx context.Context) (int64, bool, error) {
	m, err := s.w.Files.GetMetadata(ctx, files.GetMetadataRequest{FilePath: s.path})
	if apierr.IsMissing(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return m.ContentLength, true, nil
}

func (s volumeStore) read(ctx context.Context, w io.Writer) error {
	r, err := s.w.Files.Download(ctx, files.DownloadRequest{FilePath: s.path})
	if err != nil {
		return err
	}
	defer r.Contents.Close()
	_, err = io.Copy(w, r.Contents)
	return err
}

func (s volumeStore) put(ctx context.Context, f *os.File, _ int64) error {
	// The SDK resends a seekable body when it retries a 429/503, but net/http
	// closes a body that is an io.Closer once sent: hand it one whose Close
	// does nothing, or every retry fails on "file already closed".
	// overwrite must be sent: the API overwrites when it is left out.
	return s.w.Files.Upload(ctx, files.UploadRequest{FilePath: s.path, Contents: resendable{f}, Overwrite: false, ForceSendFields: []string{"Overwrite"}})
}

// resendable is a request body the SDK can rewind and send again: Close is a
// no-op (the caller closes the file).
type resendable struct{ io.ReadSeeker }

func (resendable) Close() error { return nil }

type workspaceStore struct {
	w    *databricks.WorkspaceClient
	path string
}

func (s workspaceStore) stat(ctx context.Context) (int64, bool, error) {
	o, err := s.w.Workspace.GetStatusByPath(ctx, s.path)
	if apierr.IsMissing(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if o.ObjectType != workspace.ObjectTypeFile {
		return -1, true, nil // a notebook or folder: never our artifact
	}
	return o.Size, true, nil
}

func (s workspaceStore) read(ctx context.Context, w io.Writer) error {
	r, err := s.w.Workspace.Download(ctx, s.path, workspace.DownloadFormat(workspace.ExportFormatAuto))
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(w, r)
	return err
}

func (s workspaceStore) put(ctx context.Context, f *os.File, _ int64) error {
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	if err := s.w.Workspace.MkdirsByPath(ctx, s.path[:strings.LastIndex(s.path, "/")]); err != nil {
		return err
	}
	// RAW: always a workspace file, never turned into a notebook.
	return s.w.Workspace.Import(ctx, workspace.Import{Path: s.path, Format: workspace.ImportFormatRaw, Content: base64.StdEncoding.EncodeToString(data)})
}

type dbfsStore struct {
	w    *databricks.WorkspaceClient
	path string
	// once sends the calls a resend would repeat (create, add-block, close,
	// move): a failed stream is abandoned, never resumed.
	once func(ctx context.Context, path string, body, out any) error
}

func (s dbfsStore) stat(ctx context.Context) (int64, bool, error) {
	st, err := s.w.Dbfs.GetStatusByPath(ctx, s.path)
	if apierr.IsMissing(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if st.IsDir {
		return -1, true, nil
	}
	return st.FileSize, true, nil
}

func (s dbfsStore) read(ctx context.Context, w io.Writer) error {
	for off := int64(0); ; {
		r, err := s.w.Dbfs.Read(ctx, files.ReadDbfsRequest{Path: s.path, Offset: off, Length: dbfsBlock})
		if err != nil {
			return err
		}
		b, err := base64.StdEncoding.DecodeString(r.Data)
		if err != nil {
			return fmt.Errorf("decode dbfs read: %w", err)
		}
		if len(b) == 0 {
			return nil
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		off += int64(len(b))
	}
}

// put writes small files with one put; bigger ones stream into a temporary
// file next to the target and move it into place, so the target path never
// holds a partial file.
func (s dbfsStore) put(ctx context.Context, f *os.File, size int64) error {
	if err := s.w.Dbfs.MkdirsByPath(ctx, s.path[:strings.LastIndex(s.path, "/")]); err != nil {
		return err
	}
	if size <= dbfsBlock {
		data, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		return s.w.Dbfs.Put(ctx, files.Put{Path: s.path, Contents: base64.StdEncoding.EncodeToString(data)})
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := fmt.Sprintf("%s.shipline-%s.tmp", s.path, hex.EncodeToString(rnd[:]))
	err := s.stream(ctx, tmp, f)
	if err == nil {
		err = s.once(ctx, "/api/2.0/dbfs/move", files.Move{SourcePath: tmp, DestinationPath: s.path}, nil)
	}
	if err != nil {
		_ = s.w.Dbfs.Delete(context.WithoutCancel(ctx), files.Delete{Path: tmp})
	}
	return err
}

func (s dbfsStore) stream(ctx context.Context, tmp string, f *os.File) error {
	var h files.CreateResponse
	if err := s.once(ctx, "/api/2.0/dbfs/create", files.Create{Path: tmp, Overwrite: true}, &h); err != nil {
		return err
	}
	buf := make([]byte, dbfsBlock)
	for {
		n, rerr := io.ReadFull(f, buf)
		if n > 0 {
			if err := s.once(ctx, "/api/2.0/dbfs/add-block", files.AddBlock{Handle: h.Handle, Data: base64.StdEncoding.EncodeToString(buf[:n])}, nil); err != nil {
				return err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	return s.once(ctx, "/api/2.0/dbfs/close", files.Close{Handle: h.Handle}, nil)
}

// --- jobs ---

// UpsertJob creates the job, resets it, or leaves it unchanged (see the file
// comment). Two jobs with the job's tags are a permanent DuplicateJobs error.
func (d *databricksFabric) UpsertJob(ctx context.Context, j JobSpec) (JobResult, error) {
	want, acl, err := desiredSettings(j)
	if err != nil {
		return JobResult{}, err
	}
	ids, err := d.findJobs(ctx, j, want)
	if err != nil {
		return JobResult{}, err
	}
	if len(ids) > 1 {
		return JobResult{}, d.duplicates(j, ids)
	}
	if len(ids) == 1 {
		live, found, err := d.getSettings(ctx, ids[0])
		if err != nil {
			return JobResult{}, err
		}
		if found {
			id := strconv.FormatInt(ids[0], 10)
			if diffSubset("", want, live) == "" {
				return JobResult{ID: id, Action: JobUnchanged}, nil
			}
			err := d.postJSON(ctx, "/api/2.2/jobs/reset", map[string]any{"job_id": ids[0], "new_settings": want}, nil)
			if !isMissingJob(err) {
				if err != nil {
					return JobResult{}, d.fail(fmt.Sprintf("reset of job %d (%s/%s)", ids[0], j.Project, j.Job), err)
				}
				return JobResult{ID: id, Action: JobUpdated}, nil
			}
		}
		// Deleted between the list and now: create it again.
	}
	payload := want
	if acl != nil {
		payload = cloneMap(want)
		payload["access_control_list"] = acl
	}
	id, err := d.createJob(ctx, j, want, payload)
	if err != nil {
		return JobResult{}, err
	}
	return JobResult{ID: id, Action: JobCreated}, nil
}

// createJob sends jobs/create once per try (sendOnce) and returns the new
// job's ID. A try whose outcome is unknown may have created the job: it is
// looked up by its tags before the next try, so a lost answer never leaves a
// second job. Tries go on for retryTimeout; then the error is transient and
// the activity's retry starts again from the same lookup (UpsertJob).
func (d *databricksFabric) createJob(ctx context.Context, j JobSpec, want, payload map[string]any) (string, error) {
	op := fmt.Sprintf("create of job %s/%s", j.Project, j.Job)
	deadline := time.Now().Add(d.retryTimeout)
	for attempt := 1; ; attempt++ {
		var resp struct {
			JobID json.Number `json:"job_id"`
		}
		err := d.sendOnce(ctx, "/api/2.2/jobs/create", payload, &resp)
		if err == nil {
			return resp.JobID.String(), nil
		}
		if !outcomeUnknown(ctx, err) {
			return "", d.fail(op, err)
		}
		// Wait first: a create the server is still working on (its caller
		// gave up) has time to land before the lookup.
		if err := backoffSleep(ctx, attempt); err != nil {
			return "", err
		}
		ids, lerr := d.findJobs(ctx, j, want)
		switch {
		case lerr != nil:
			return "", lerr
		case len(ids) == 1:
			return strconv.FormatInt(ids[0], 10), nil // the lost create made it
		case len(ids) > 1:
			return "", d.duplicates(j, ids)
		case time.Now().After(deadline):
			return "", d.fail(op, err)
		}
	}
}

// InspectJob compares the live job with the spec: Drift when a field Shipline
// sends differs live (fields the service adds are ignored).
func (d *databricksFabric) InspectJob(ctx context.Context, j JobSpec) (LiveJob, error) {
	want, _, err := desiredSettings(j)
	if err != nil {
		return LiveJob{}, err
	}
	ids, err := d.findJobs(ctx, j, want)
	if err != nil || len(ids) == 0 {
		return LiveJob{}, err
	}
	if len(ids) > 1 {
		return LiveJob{Exists: true, ID: strconv.FormatInt(ids[0], 10), Drift: true, DriftDetail: d.duplicates(j, ids).Msg}, nil
	}
	live, found, err := d.getSettings(ctx, ids[0])
	if err != nil || !found {
		return LiveJob{}, err
	}
	out := LiveJob{Exists: true, ID: strconv.FormatInt(ids[0], 10)}
	if tags, ok := live["tags"].(map[string]any); ok {
		out.Version, _ = tags[TagVersion].(string)
	}
	out.DriftDetail = diffSubset("", want, live)
	out.Drift = out.DriftDetail != ""
	return out, nil
}

func (d *databricksFabric) duplicates(j JobSpec, ids []int64) *apperr.Error {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return &apperr.Error{Type: apperr.DuplicateJobs,
		Msg: fmt.Sprintf("databricks fabric %q (%s): jobs %s all carry tags %s=%s and %s=%s; delete all but one of them in the workspace, then resume",
			d.name, d.where(), strings.Join(s, ", "), TagProject, j.Project, TagJob, j.Job)}
}

// desiredSettings parses the payload and adds Shipline's tags and the pause
// status (applyPause); it returns the settings and the create-only
// access_control_list.
func desiredSettings(j JobSpec) (map[string]any, any, error) {
	invalid := func(msg string) error {
		return &apperr.Error{Type: apperr.InvalidDefinition, Msg: fmt.Sprintf("job %s/%s: %s", j.Project, j.Job, msg)}
	}
	if j.Project == "" || j.Job == "" {
		return nil, nil, invalid("project and job names are required")
	}
	dec := json.NewDecoder(bytes.NewReader(j.Definition))
	dec.UseNumber()
	var s map[string]any
	if err := dec.Decode(&s); err != nil {
		return nil, nil, invalid("the definition is not a JSON object (Jobs API 2.2 create payload): " + err.Error())
	}
	if dec.More() {
		return nil, nil, invalid("the definition has data after its JSON object")
	}
	if s == nil {
		return nil, nil, invalid("the definition is null; it must be a Jobs API 2.2 create payload")
	}
	acl := s["access_control_list"]
	delete(s, "access_control_list")
	tags := map[string]any{}
	if t, ok := s["tags"]; ok && t != nil {
		m, isObj := t.(map[string]any)
		if !isObj {
			return nil, nil, invalid("tags must be an object of strings")
		}
		tags = m
	}
	tags[TagProject], tags[TagJob], tags[TagVersion] = j.Project, j.Job, j.Version
	s["tags"] = tags
	applyPause(s, j.Paused)
	return s, acl, nil
}

// findJobs returns the IDs of the jobs tagged with j's project and job: among
// jobs named like the payload first, else among all jobs.
func (d *databricksFabric) findJobs(ctx context.Context, j JobSpec, want map[string]any) ([]int64, error) {
	w, _, err := d.clients()
	if err != nil {
		return nil, err
	}
	list := func(name string) ([]int64, error) {
		all, err := w.Jobs.ListAll(ctx, jobs.ListJobsRequest{Name: name, Limit: 100})
		if err != nil {
			return nil, d.fail(fmt.Sprintf("listing jobs to find %s/%s", j.Project, j.Job), err)
		}
		var ids []int64
		for _, b := range all {
			if b.Settings != nil && b.Settings.Tags[TagProject] == j.Project && b.Settings.Tags[TagJob] == j.Job {
				ids = append(ids, b.JobId)
			}
		}
		sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
		return ids, nil
	}
	if name, _ := want["name"].(string); name != "" {
		ids, err := list(name)
		if err != nil || len(ids) > 0 {
			return ids, err
		}
	}
	return list("")
}

// getSettings reads a job's full settings (all pages of tasks etc.) as JSON;
// found is false when the job no longer exists.
func (d *databricksFabric) getSettings(ctx context.Context, id int64) (map[string]any, bool, error) {
	_, raw, err := d.clients()
	if err != nil {
		return nil, false, err
	}
	var settings map[string]any
	token := ""
	for {
		var body []byte
		q := map[string]any{"job_id": id, "page_token": token}
		err := raw.Do(ctx, http.MethodGet, "/api/2.2/jobs/get", map[string]string{"Accept": "application/json"}, nil, q, &body)
		if isMissingJob(err) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, d.fail(fmt.Sprintf("reading job %d", id), err)
		}
		var page struct {
			Settings      map[string]any `json:"settings"`
			NextPageToken string         `json:"next_page_token"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&page); err != nil {
			return nil, false, &apperr.Error{Type: apperr.FabricUnavailable, Msg: fmt.Sprintf("databricks fabric %q: unreadable jobs/get answer for job %d: %v (will retry)", d.name, id, err)}
		}
		if settings == nil {
			settings = page.Settings
		} else {
			for _, k := range []string{"tasks", "job_clusters", "parameters", "environments"} {
				if more, ok := page.Settings[k].([]any); ok {
					prev, _ := settings[k].([]any)
					settings[k] = append(prev, more...)
				}
			}
		}
		if token = page.NextPageToken; token == "" {
			return settings, settings != nil, nil
		}
	}
}

func (d *databricksFabric) postJSON(ctx context.Context, path string, body any, out any) error {
	_, raw, err := d.clients()
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return &apperr.Error{Type: apperr.InvalidDefinition, Msg: fmt.Sprintf("encode %s request: %v", path, err)}
	}
	var resp []byte
	h := map[string]string{"Content-Type": "application/json", "Accept": "application/json"}
	if err := raw.Do(ctx, http.MethodPost, path, h, nil, b, &resp); err != nil {
		return err
	}
	if out != nil && len(resp) > 0 {
		return json.Unmarshal(resp, out)
	}
	return nil
}

// isMissingJob tells the service's "Job <id> does not exist." (400 on
// reset/delete, mapped to not-found by the SDK on get).
func isMissingJob(err error) bool {
	var ae *apierr.APIError
	return err != nil && (apierr.IsMissing(err) ||
		(errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest && strings.Contains(ae.Message, "does not exist")))
}

// diffSubset returns where want is not contained in got ("" when it is):
// objects compare only want's keys, arrays element by element (matched by
// task_key / job_cluster_key / environment_key when elements carry one),
// numbers by value.
func diffSubset(path string, want, got any) string {
	switch w := want.(type) {
	case nil:
		return ""
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: deployed an object, live has %s", orRoot(path), show(got))
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if w[k] == nil {
				continue
			}
			gv, ok := g[k]
			if !ok {
				return fmt.Sprintf("%s: deployed %s, missing live", join(path, k), show(w[k]))
			}
			if d := diffSubset(join(path, k), w[k], gv); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: deployed %d elements, live has %s", orRoot(path), len(w), show(got))
		}
		if key := elementKey(w); key != "" {
			byKey := map[any]any{}
			for _, el := range g {
				if m, ok := el.(map[string]any); ok {
					byKey[m[key]] = el
				}
			}
			for _, el := range w {
				k := el.(map[string]any)[key]
				p := fmt.Sprintf("%s[%s=%v]", path, key, k)
				gv, ok := byKey[k]
				if !ok {
					return fmt.Sprintf("%s: missing live", p)
				}
				if d := diffSubset(p, el, gv); d != "" {
					return d
				}
			}
			return ""
		}
		for i := range w {
			if d := diffSubset(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); d != "" {
				return d
			}
		}
		return ""
	case json.Number:
		if g, ok := got.(json.Number); ok && sameNumber(w, g) {
			return ""
		}
	default:
		if reflect.DeepEqual(want, got) {
			return ""
		}
	}
	return fmt.Sprintf("%s: deployed %s, live %s", orRoot(path), show(want), show(got))
}

func elementKey(list []any) string {
	for _, key := range []string{"task_key", "job_cluster_key", "environment_key"} {
		all := len(list) > 0
		for _, el := range list {
			m, ok := el.(map[string]any)
			all = all && ok && m[key] != nil
		}
		if all {
			return key
		}
	}
	return ""
}

func sameNumber(a, b json.Number) bool {
	if a == b {
		return true
	}
	x, ok1 := new(big.Float).SetString(string(a))
	y, ok2 := new(big.Float).SetString(string(b))
	return ok1 && ok2 && x.Cmp(y) == 0
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func orRoot(p string) string {
	if p == "" {
		return "settings"
	}
	return p
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil || len(b) > 80 {
		if err == nil {
			return string(b[:77]) + "..."
		}
		return fmt.Sprint(v)
	}
	return string(b)
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
