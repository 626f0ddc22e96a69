package fabric

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
)

// The local fabric deploys into a directory (the README demo):
//
//	<root>/artifacts/<project>/<version>/<pipeline>/<file>   artifacts, immutable
//	<root>/jobs/<project>__<job>.json                        Databricks job payloads, as Databricks would hold them
//	<root>/dags/<project>__<job>.py                          Airflow DAGs, checked like the airflow fabric does
//
// JobSpec does not say which scheduler a job is for, so the local fabric tells
// by content: a definition that parses as a JSON object is a Databricks payload,
// anything else an Airflow DAG. There is no scheduler behind the directory:
// JobSpec.Paused (else the definition's own setting) shows in the payload's
// pause_status, and a DAG file keeps its own is_paused_upon_creation.
type localFabric struct {
	name string
	root string
	artifactDir
}

// KindLocal is a directory on the worker's machine.
const KindLocal platform.FabricKind = "local"

// LocalSettings are a local fabric's platform.yaml keys.
type LocalSettings struct {
	Root string `json:"root"` // root: the directory deployed into
}

var localKind = Kind{
	KindSpec: platform.KindSpec{
		Name:       KindLocal,
		Keys:       []string{"root"},
		Schedulers: []string{string(manifest.Databricks), string(manifest.Airflow)},
		Decode: func(d *platform.KindDecoder) any {
			d.Require("root", "add root: the directory to deploy into (relative paths resolve against this file's directory)")
			return LocalSettings{Root: d.Path("root")}
		},
	},
	Open: func(_ *platform.Config, f platform.Fabric, _ Env) (Fabric, error) {
		s, err := settingsOf[LocalSettings](f)
		if err != nil {
			return nil, err
		}
		return newLocal(f.Name, s.Root), nil
	},
}

func newLocal(name, root string) *localFabric {
	return &localFabric{name: name, root: root, artifactDir: artifactDir(filepath.Join(root, "artifacts"))}
}

func (l *localFabric) Name() string { return l.name }

// UpsertJob writes the job's file; its ID is the file's path.
func (l *localFabric) UpsertJob(ctx context.Context, j JobSpec) (JobResult, error) {
	dir, name, want, isDAG, err := l.jobFile(j)
	if err != nil {
		return JobResult{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return JobResult{}, fmt.Errorf("local fabric %q: %w", l.name, err)
	}
	if isDAG { // checked, and its dag_id claimed, like on an airflow fabric
		dag, err := checkDAGContent(ctx, pythonBin(nil), j, name, want)
		if err != nil {
			return JobResult{}, err
		}
		if err := claimDAG(ctx, l.name, dagDir(dir), dag.ID, j.Project, j.Job, j.Source); err != nil {
			return JobResult{}, err
		}
	}
	return upsertFile(dir, name, want, nil)
}

// InspectJob compares the job's file with what the spec renders to.
func (l *localFabric) InspectJob(_ context.Context, j JobSpec) (LiveJob, error) {
	dir, name, want, isDAG, err := l.jobFile(j)
	if err != nil {
		return LiveJob{}, err
	}
	version := jsonFileVersion
	if isDAG {
		version = dagFileVersion
	}
	return inspectFile(filepath.Join(dir, name), want, version)
}

// jobFile returns where a job's file goes and what it holds.
func (l *localFabric) jobFile(j JobSpec) (dir, name string, content []byte, isDAG bool, err error) {
	if err := checkJobNames(j); err != nil {
		return "", "", nil, false, err
	}
	base := j.Project + "__" + j.Job
	if looksLikeJSONObject(j.Definition) {
		content, err = localJobJSON(j)
		return filepath.Join(l.root, "jobs"), base + ".json", content, false, err
	}
	return filepath.Join(l.root, "dags"), base + ".py", dagFileContent(j), true, nil
}

func looksLikeJSONObject(def []byte) bool {
	t := bytes.TrimSpace(def)
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// localJobJSON is a Databricks payload as the local fabric stores it: pretty
// printed, with the Shipline tags, and pause_status set on schedule, trigger
// and continuous when present (applyPause, as Databricks holds a job after a
// reset).
func localJobJSON(j JobSpec) ([]byte, error) {
	payload, bad := decodeJobPayload(j.Project+"__"+j.Job+".json", j.Definition)
	if bad != nil {
		return nil, &apperr.Error{Type: apperr.InvalidDefinition, Msg: bad.Error(), Cause: bad}
	}
	tags := map[string]any{}
	if t, ok := payload["tags"]; ok && t != nil {
		m, ok := t.(map[string]any)
		if !ok {
			return nil, &apperr.Error{Type: apperr.InvalidDefinition,
				Msg: fmt.Sprintf("job %q: \"tags\" must be a JSON object of strings (Jobs API 2.2)", j.Job)}
		}
		tags = m
	}
	tags["shipline_project"] = j.Project
	tags["shipline_job"] = j.Job
	tags["shipline_version"] = j.Version
	payload["tags"] = tags
	applyPause(payload, j.Paused)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(payload); err != nil {
		return nil, fmt.Errorf("encode job %q: %w", j.Job, err)
	}
	return b.Bytes(), nil
}

// jsonFileVersion reads tags.shipline_version of a stored payload.
func jsonFileVersion(data []byte) string {
	var v struct {
		Tags map[string]any `json:"tags"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	s, _ := v.Tags["shipline_version"].(string)
	return s
}

// checkJobNames refuses names that would escape the target directory. Project
// and job names are validated by the manifest and platform parsers already.
func checkJobNames(j JobSpec) error {
	for _, s := range []string{j.Project, j.Job} {
		if err := checkSegment(s); err != nil {
			return err
		}
	}
	return nil
}

var segmentRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`)

// checkSegment accepts one path segment: no separators, not . or ..
func checkSegment(s string) error {
	if !segmentRE.MatchString(s) || s == "." || s == ".." || strings.Contains(s, "..") {
		return &apperr.Error{Type: apperr.InvalidName, Msg: fmt.Sprintf("%q cannot be used in a file path", s)}
	}
	return nil
}

// upsertFile makes dir/name hold want: unchanged when it already does, else
// written atomically (see writeFileAtomic) after check, created or updated.
func upsertFile(dir, name string, want []byte, check func(tmp string) error) (JobResult, error) {
	path := filepath.Join(dir, name)
	res := JobResult{ID: path, Action: JobCreated}
	switch have, err := os.ReadFile(path); {
	case err == nil && bytes.Equal(have, want):
		res.Action = JobUnchanged
		return res, nil
	case err == nil:
		res.Action = JobUpdated
	case !errors.Is(err, fs.ErrNotExist):
		return JobResult{}, fmt.Errorf("read %s: %w", path, err)
	}
	if err := writeFileAtomic(dir, name, want, check); err != nil {
		return JobResult{}, err
	}
	return res, nil
}

// writeFileAtomic writes data to dir/name through a temporary file in dir
// (named .<name>.tmp-*, so neither Airflow nor a *.py glob picks it up): write,
// fsync, check (when set), rename over the target, fsync the directory. A
// failure leaves the old file in place and no temporary file behind.
func writeFileAtomic(dir, name string, data []byte, check func(tmp string) error) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if check != nil {
		if err = check(tmp.Name()); err != nil {
			return err
		}
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("rename %s: %w", tmp.Name(), err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable; best effort (not every OS can sync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// inspectFile compares a deployed file with what it should hold.
func inspectFile(path string, want []byte, version func([]byte) string) (LiveJob, error) {
	have, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return LiveJob{}, fmt.Errorf("read %s: %w", path, err)
	}
	return inspectContent(path, have, err == nil, want, version), nil
}

// inspectContent compares a deployed file's content (have, when exists)
// with what it should hold.
func inspectContent(path string, have []byte, exists bool, want []byte, version func([]byte) string) LiveJob {
	if !exists {
		return LiveJob{Drift: true, DriftDetail: path + " does not exist (deleted by hand?)"}
	}
	live := LiveJob{Exists: true, ID: path, Version: version(have)}
	if !bytes.Equal(have, want) {
		live.Drift = true
		live.DriftDetail = fmt.Sprintf("%s was changed outside Shipline (first difference at line %d)", path, firstDiffLine(have, want))
	}
	return live
}

func firstDiffLine(a, b []byte) int {
	line := 1
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return line
		}
		if a[i] == '\n' {
			line++
		}
	}
	return line
}

// artifactDir stores artifacts under a local directory at
// <dir>/<project>/<version>/<pipeline>/<file>.
type artifactDir string

func (d artifactDir) ArtifactPath(project, version, pipeline, file string) string {
	return filepath.Join(string(d), project, version, pipeline, file)
}

// Upload copies the artifact into place. Its bytes are checked against
// a.SHA256/a.Size (when set) before it becomes visible; the final step is a
// hard link, which cannot replace a file another upload put there meanwhile.
func (d artifactDir) Upload(ctx context.Context, project, version string, a Artifact) (Upload, error) {
	for _, s := range []string{project, version, a.Pipeline, a.File} {
		if err := checkSegment(s); err != nil {
			return Upload{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return Upload{}, err
	}
	dst := d.ArtifactPath(project, version, a.Pipeline, a.File)
	if up, done, err := existingArtifact(ctx, dst, a); done {
		return up, err
	}
	src, err := a.open(ctx)
	if errors.Is(err, fs.ErrNotExist) {
		return Upload{}, &apperr.Error{Type: apperr.ArtifactMissing,
			Msg: fmt.Sprintf("artifact %s of pipeline %q is missing from the build cache (%s): rebuild it", a.File, a.Pipeline, a.where())}
	}
	if err != nil {
		return Upload{}, fmt.Errorf("open artifact %s: %w", a.where(), err)
	}
	defer src.Close()
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Upload{}, fmt.Errorf("upload %s: %w", dst, err)
	}
	tmp, err := os.CreateTemp(dir, "."+a.File+".tmp-*")
	if err != nil {
		return Upload{}, fmt.Errorf("upload %s: %w", dst, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		return Upload{}, fmt.Errorf("upload %s: %w", dst, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if (a.SHA256 != "" && !strings.EqualFold(sum, a.SHA256)) || (a.Size > 0 && n != a.Size) {
		return Upload{}, &apperr.Error{Type: apperr.ArtifactCorrupt,
			Msg: fmt.Sprintf("artifact %s of pipeline %q: the build cache file %s has sha256 %s and %d bytes, expected %s and %d bytes: rebuild it",
				a.File, a.Pipeline, a.where(), sum, n, a.SHA256, a.Size)}
	}
	if a.SHA256 == "" {
		a.SHA256 = sum
	}
	if err := os.Link(tmp.Name(), dst); err != nil {
		if up, done, err2 := existingArtifact(ctx, dst, a); done {
			return up, err2
		}
		if err := os.Rename(tmp.Name(), dst); err != nil { // no hard links here
			return Upload{}, fmt.Errorf("upload %s: %w", dst, err)
		}
	}
	syncDir(dir)
	return Upload{Path: dst, Uploaded: true}, nil
}

// existingArtifact checks an artifact already at dst: done is false when there
// is none; the same bytes are a no-op, other bytes a permanent conflict.
func existingArtifact(ctx context.Context, dst string, a Artifact) (up Upload, done bool, err error) {
	sum, err := fileSHA256(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return Upload{}, false, nil
	}
	if err != nil {
		return Upload{}, true, fmt.Errorf("read %s: %w", dst, err)
	}
	want, err := a.checksum(ctx)
	if err != nil {
		return Upload{}, true, fmt.Errorf("read %s: %w", a.where(), err)
	}
	if !strings.EqualFold(sum, want) {
		return Upload{}, true, &apperr.Error{Type: apperr.ArtifactConflict,
			Msg: fmt.Sprintf("%s already exists with other bytes (sha256 %s, this build's is %s): artifact paths are immutable; release a new version",
				dst, sum, want)}
	}
	return Upload{Path: dst}, true, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
