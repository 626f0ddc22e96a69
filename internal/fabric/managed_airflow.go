package fabric

// The managed-airflow fabric: an Airflow whose DAG folder and artifacts live
// in object storage, as Cloud Composer (gs://<bucket>/dags) and MWAA
// (s3://<bucket>/dags) keep them; any gocloud.dev/blob URL works, file:///dir
// included. DAGs get the airflow fabric's treatment (airflow.go): the same
// compile and dag_id checks on the worker before the bucket sees a byte, the
// same header, drift inspection, deletes and, through airflow_url, the same
// REST calls for pause, unpause and runs.
//
//   - DAGs: <dags_folder>/<project>__<job>.py. A new version is written to a
//     temporary key (<dags_folder>/.shipline-tmp/<name>.<random>.tmp: not a
//     .py file, so Airflow's DAG processor never loads it) with its MD5
//     checked by the store, then copied over the DAG's key in the store and
//     the temporary key deleted. Object stores replace a key whole, so
//     Airflow's sync (Composer's gcsfuse, MWAA's S3 sync) sees the old file
//     or the new one, never a part.
//   - Artifacts: <artifact_root>/<project>/<version>/<pipeline>/<file>,
//     immutable. artifact_root defaults to data/shipline beside the DAG
//     folder (gs://<bucket>/data/shipline: Composer mounts gs://<bucket>/data
//     on its workers). Written the same way as DAGs (temporary key, MD5,
//     copy); bytes already there are compared by sha256: the same bytes are
//     not uploaded again, other bytes are a permanent ArtifactConflict.
//     ${artifact.X} renders to the object's URL without its query (gs://...,
//     s3://...), or to the file's path for file:// roots.
//   - Credentials for the store come from its driver's standard environment
//     (GOOGLE_APPLICATION_CREDENTIALS, AWS_ACCESS_KEY_ID …); for the REST API
//     from the variables named by token_env (a bearer token) or
//     username_env/password_env (basic auth, or an Airflow 3 token exchange).

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/storage"
)

// KindManagedAirflow is an Airflow whose DAG folder is a bucket (Cloud
// Composer, MWAA).
const KindManagedAirflow platform.FabricKind = "managed-airflow"

// ManagedAirflowSettings are a managed-airflow fabric's platform.yaml keys.
type ManagedAirflowSettings struct {
	DagsFolder   string `json:"dags_folder"`   // bucket URL of the DAG folder
	ArtifactRoot string `json:"artifact_root"` // bucket URL; default data/shipline beside the DAG folder
	AirflowURL   string `json:"airflow_url,omitempty"`
	TokenEnv     string `json:"token_env,omitempty"`
	UsernameEnv  string `json:"username_env,omitempty"`
	PasswordEnv  string `json:"password_env,omitempty"`
}

var managedAirflowKind = Kind{
	KindSpec: platform.KindSpec{
		Name:       KindManagedAirflow,
		Keys:       []string{"dags_folder", "artifact_root", "airflow_url", "token_env", "username_env", "password_env"},
		Schedulers: []string{string(manifest.Airflow)},
		Decode:     decodeManagedAirflow,
		SeesRuns: func(f platform.Fabric) bool {
			s, err := settingsOf[ManagedAirflowSettings](f)
			return err == nil && s.AirflowURL != ""
		},
	},
	Open: openManagedAirflow,
}

// decodeManagedAirflow reads and checks a managed-airflow fabric's keys.
func decodeManagedAirflow(d *platform.KindDecoder) any {
	var s ManagedAirflowSettings
	name := d.Fabric()
	if d.Require("dags_folder", "add dags_folder: the bucket URL Airflow loads DAGs from, e.g. gs://<composer-bucket>/dags or s3://<mwaa-bucket>/dags") {
		s.DagsFolder = bucketURL(d, "dags_folder")
	}
	if d.Has("artifact_root") {
		s.ArtifactRoot = bucketURL(d, "artifact_root")
	} else if s.DagsFolder != "" {
		s.ArtifactRoot = besideDags(s.DagsFolder)
	}
	if d.Has("airflow_url") {
		s.AirflowURL = d.HTTPURL("airflow_url", "write the Airflow web server's URL, e.g. https://<id>.composer.googleusercontent.com")
	}
	prefix := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	s.TokenEnv = d.Env("token_env", prefix+"_AIRFLOW_TOKEN")
	s.UsernameEnv = d.Env("username_env", prefix+"_AIRFLOW_USER")
	s.PasswordEnv = d.Env("password_env", prefix+"_AIRFLOW_PASSWORD")
	switch {
	case d.Has("token_env") && (d.Has("username_env") || d.Has("password_env")):
		d.Errorf("token_env", "keep token_env (a bearer token) or username_env and password_env (basic auth), not both",
			"managed-airflow fabric %q sets both a token and a user", name)
	case d.Has("username_env") != d.Has("password_env"):
		d.Errorf("", "set both username_env and password_env, or neither", "managed-airflow fabric %q sets only one of username_env and password_env", name)
	}
	for _, key := range []string{"token_env", "username_env", "active_runs", "active_runs_timeout"} {
		if d.Has(key) && !d.Has("airflow_url") {
			d.Errorf(key, "add airflow_url: (the environment's Airflow web server, whose REST API pauses, unpauses and runs DAGs), or remove "+key,
				"managed-airflow fabric %q sets %s but has no airflow_url", name, key)
		}
	}
	return s
}

// bucketURL checks key: a gocloud.dev/blob URL of a scheme the project
// supports, with no credentials; file://./dir is resolved against
// platform.yaml's directory.
func bucketURL(d *platform.KindDecoder, key string) string {
	const fix = "write a bucket URL: gs://<bucket>/<path>, s3://<bucket>/<path>?region=…, azblob://<container>/<path> or file:///<dir>"
	s, ok := d.String(key, fix)
	if !ok {
		return ""
	}
	u, err := url.Parse(s)
	field := "fabrics." + d.Fabric() + "." + key
	switch {
	case err != nil || !slices.Contains(platform.StorageSchemes, u.Scheme):
		d.Errorf(key, fix, "%s %q is not a bucket URL", field, storage.Redact(s))
		return ""
	case u.User != nil:
		d.Errorf(key, "remove the credentials: the store's credentials come from its standard environment (GOOGLE_APPLICATION_CREDENTIALS, AWS_ACCESS_KEY_ID …)",
			"%s holds credentials: secrets never go in this file", field)
		return ""
	case u.Scheme == "file" && (u.Host == "." || u.Host == ".."):
		u.Path = filepath.ToSlash(filepath.Join(d.BaseDir(), u.Host, filepath.FromSlash(u.Path)))
		u.Host = ""
	case u.Scheme == "file" && (u.Host != "" && u.Host != "localhost" || !path.IsAbs(u.Path)):
		d.Errorf(key, "write file:///abs/dir, or file://./dir for a directory relative to platform.yaml", "%s %q names no absolute directory", field, s)
		return ""
	case u.Scheme != "file" && u.Host == "":
		d.Errorf(key, fix, "%s %q names no bucket", field, s)
		return ""
	}
	if err := storage.CheckURL(u.String()); err != nil {
		d.Errorf(key, fix, "%s: %v", field, err)
		return ""
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u.String()
}

// besideDags is the default artifact_root: data/shipline next to the DAG
// folder (gs://b/dags → gs://b/data/shipline), with the same query.
func besideDags(dags string) string {
	u, err := url.Parse(dags)
	if err != nil {
		return ""
	}
	u.Path = path.Join(path.Dir("/"+strings.TrimPrefix(u.Path, "/")), "data", "shipline")
	return u.String()
}

func openManagedAirflow(_ *platform.Config, f platform.Fabric, env Env) (Fabric, error) {
	s, err := settingsOf[ManagedAirflowSettings](f)
	if err != nil {
		return nil, err
	}
	if env == nil {
		env = os.Getenv
	}
	ctx := context.Background()
	dags, err := openBucketFolder(ctx, f.Name, "dags_folder", s.DagsFolder)
	if err != nil {
		return nil, err
	}
	arts, err := openBucketFolder(ctx, f.Name, "artifact_root", s.ArtifactRoot)
	if err != nil {
		return nil, err
	}
	var api *airflowAPI
	if s.AirflowURL != "" {
		api = newAirflowAPI(f.Name, s.AirflowURL, airflowAuth{TokenEnv: s.TokenEnv, UserEnv: s.UsernameEnv, PasswordEnv: s.PasswordEnv}, env)
	}
	return newAirflowOn(f.Name, dags, bucketArtifacts{root: arts}, api, env), nil
}

// bucketFolder is a folder of a bucket: the DAG folder (a dagFolder) or the
// artifact root. Keys are relative to it.
type bucketFolder struct {
	fabric string
	st     *storage.Store
	url    string // the folder's URL without query, for messages and artifact paths
	dir    string // the directory of a file:// folder, "" for cloud stores
}

// openBucketFolder opens a settings URL the way internal/storage opens
// buckets (the URL's path is the key prefix).
func openBucketFolder(ctx context.Context, fabric, key, raw string) (*bucketFolder, error) {
	st, err := storage.Open(ctx, raw)
	if err != nil {
		return nil, &apperr.Error{Type: apperr.FabricConfig, Cause: err,
			Msg: fmt.Sprintf("fabric %q: %s: %v; fix it in platform.yaml", fabric, key, err)}
	}
	b := &bucketFolder{fabric: fabric, st: st, url: storage.Redact(raw)}
	if u, err := url.Parse(raw); err == nil && u.Scheme == "file" {
		b.dir = filepath.FromSlash(u.Path)
	}
	return b, nil
}

// Where is the key's URL (or, for a file:// folder, its path).
func (b *bucketFolder) Where(name string) string {
	if b.dir != "" {
		return filepath.Join(b.dir, filepath.FromSlash(name))
	}
	if name == "" {
		return b.url
	}
	return strings.TrimRight(b.url, "/") + "/" + name
}

func (b *bucketFolder) Ready(ctx context.Context) error {
	ok, err := b.st.Bucket().IsAccessible(ctx)
	switch {
	case err != nil:
		return &apperr.Error{Type: apperr.FabricUnavailable, Cause: err, Msg: fmt.Sprintf("fabric %q: bucket %s: %v", b.fabric, b.url, err)}
	case !ok:
		return &apperr.Error{Type: apperr.FabricConfig,
			Msg: fmt.Sprintf("fabric %q: bucket %s does not exist or the worker may not read it; fix dags_folder in platform.yaml or the worker's credentials", b.fabric, b.url)}
	}
	return nil
}

func (b *bucketFolder) Read(ctx context.Context, name string) ([]byte, error) {
	return b.st.ReadAll(ctx, name)
}

// Replace writes data to a temporary key, its MD5 checked by the store, then
// copies it over name (see the file comment).
func (b *bucketFolder) Replace(ctx context.Context, name string, data []byte) error {
	return b.replaceFrom(ctx, name, bytes.NewReader(data), md5Of(data))
}

// replaceFrom streams r (whose MD5 is sum) into name through a temporary key.
func (b *bucketFolder) replaceFrom(ctx context.Context, name string, r io.Reader, sum []byte) error {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := ".shipline-tmp/" + path.Base(name) + "." + hex.EncodeToString(rnd[:]) + ".tmp"
	bucket := b.st.Bucket()
	wctx, cancel := context.WithCancel(ctx)
	w, err := bucket.NewWriter(wctx, tmp, &blob.WriterOptions{ContentMD5: sum, ContentType: "application/octet-stream"})
	if err != nil {
		cancel()
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel() // abort: Close must not commit a part
		_ = w.Close()
		return err
	}
	err = w.Close()
	cancel()
	if err != nil {
		return err
	}
	defer func() { _ = bucket.Delete(context.WithoutCancel(ctx), tmp) }()
	return bucket.Copy(ctx, name, tmp, nil)
}

// Create writes name only when absent: a conditional write on a cloud
// store, a hard link on a file:// folder (fileblob's own check is not
// atomic across processes).
func (b *bucketFolder) Create(ctx context.Context, name string, data []byte) (bool, error) {
	if b.dir != "" {
		return createExclusive(b.dir, name, data)
	}
	err := b.st.Bucket().WriteAll(ctx, name, data, &blob.WriterOptions{IfNotExist: true, ContentType: "application/json"})
	if gcerrors.Code(err) == gcerrors.FailedPrecondition {
		return false, nil
	}
	return err == nil, err
}

func (b *bucketFolder) Remove(ctx context.Context, name string) (bool, error) {
	ok, err := b.st.Exists(ctx, name)
	if err != nil || !ok {
		return false, err
	}
	return true, b.st.Delete(ctx, name)
}

func md5Of(data []byte) []byte {
	sum := md5.Sum(data)
	return sum[:]
}

// bucketArtifacts is the artifact store of a managed-airflow fabric.
type bucketArtifacts struct{ root *bucketFolder }

func (s bucketArtifacts) key(project, version, pipeline, file string) string {
	return strings.Join([]string{project, version, pipeline, file}, "/")
}

func (s bucketArtifacts) ArtifactPath(project, version, pipeline, file string) string {
	return s.root.Where(s.key(project, version, pipeline, file))
}

// Upload puts the artifact at its immutable key (see the file comment).
func (s bucketArtifacts) Upload(ctx context.Context, project, version string, a Artifact) (Upload, error) {
	for _, seg := range []string{project, version, a.Pipeline, a.File} {
		if err := checkSegment(seg); err != nil {
			return Upload{}, err
		}
	}
	key := s.key(project, version, a.Pipeline, a.File)
	up := Upload{Path: s.ArtifactPath(project, version, a.Pipeline, a.File)}
	f, remove, err := a.spool(ctx)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Upload{}, &apperr.Error{Type: apperr.ArtifactMissing, Cause: err, Msg: fmt.Sprintf("artifact %s is gone: rebuild it", a.where())}
		}
		return Upload{}, err
	}
	defer remove()
	h5, h256 := md5.New(), sha256.New()
	size, err := io.Copy(io.MultiWriter(h5, h256), f)
	if err != nil {
		return Upload{}, err
	}
	sum := hex.EncodeToString(h256.Sum(nil))
	if a.SHA256 != "" && !strings.EqualFold(a.SHA256, sum) {
		return Upload{}, &apperr.Error{Type: apperr.ArtifactCorrupt, Msg: fmt.Sprintf("artifact %s: sha256 %s, expected %s", a.where(), sum, a.SHA256)}
	}
	if same, err := s.sameBytes(ctx, key, size, sum); err != nil {
		return Upload{}, err
	} else if same {
		return up, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Upload{}, err
	}
	if err := s.root.replaceFrom(ctx, key, f, h5.Sum(nil)); err != nil {
		return Upload{}, fmt.Errorf("fabric %q: upload %s: %w", s.root.fabric, up.Path, err)
	}
	// Check what the key holds now: another writer may have been first.
	if same, err := s.sameBytes(ctx, key, size, sum); err != nil || !same {
		if err == nil {
			err = fmt.Errorf("fabric %q: %s does not hold the uploaded bytes after the upload; will retry", s.root.fabric, up.Path)
		}
		return Upload{}, err
	}
	up.Uploaded = true
	return up, nil
}

// sameBytes reports whether key holds size bytes of sha256 sum: false when
// absent, a permanent ArtifactConflict when other bytes are there.
func (s bucketArtifacts) sameBytes(ctx context.Context, key string, size int64, sum string) (bool, error) {
	have, err := s.root.st.Size(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	conflict := func(what string) error {
		return &apperr.Error{Type: apperr.ArtifactConflict,
			Msg: fmt.Sprintf("fabric %q: %s already holds other bytes (%s); artifact paths are immutable: release a new version", s.root.fabric, s.root.Where(key), what)}
	}
	if have != size {
		return false, conflict(fmt.Sprintf("%d bytes, not %d", have, size))
	}
	r, err := s.root.st.Get(ctx, key)
	if err != nil {
		return false, err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return false, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return false, conflict("sha256 " + got)
	}
	return true, nil
}

// DeleteArtifacts deletes every key under <project>/<version>/.
func (s bucketArtifacts) DeleteArtifacts(ctx context.Context, project, version string) (int, error) {
	if err := checkReleaseDir(project, version); err != nil {
		return 0, err
	}
	bucket := s.root.st.Bucket()
	prefix := project + "/" + version + "/"
	it := bucket.List(&blob.ListOptions{Prefix: prefix})
	n := 0
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("fabric %q: list %s: %w", s.root.fabric, s.root.Where(prefix), err)
		}
		if obj.IsDir || !strings.HasPrefix(obj.Key, prefix) {
			continue
		}
		if err := bucket.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return n, fmt.Errorf("fabric %q: delete %s: %w", s.root.fabric, s.root.Where(obj.Key), err)
		}
		n++
	}
	if s.root.dir != "" { // fileblob leaves the emptied directories behind
		_ = os.RemoveAll(filepath.Join(s.root.dir, project, version))
	}
	return n, nil
}
