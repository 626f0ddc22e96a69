// Package fabric puts artifacts and jobs onto execution environments. Each kind
// (local, databricks, airflow, ...) is one file declaring a Kind value behind
// the Fabric interface; adding a kind touches that file and one line of the
// registry (registry.go).
//
// Failures a user can act on are *apperr.Error values with a stable type:
// permanent (bad credentials, a 4xx, an invalid definition) unless the type is
// transient (FabricUnavailable, DagNotParsed), which Temporal retries. Other
// errors are transient too.
package fabric

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/templating"
)

// Artifact is a built file to upload.
type Artifact struct {
	Pipeline string `json:"pipeline"`
	File     string `json:"file"` // base name, e.g. ingest_orders-1.0.0+sl.3f9a1c2e-py3-none-any.whl
	// Object is the artifact's key in the store workers share
	// (cache/<key>/<sha256>/<file>, see internal/build).
	Object string `json:"object,omitempty"`
	// LocalPath is the artifact's file in one worker's build cache: only
	// deployments recorded before the shared store carry it.
	LocalPath string `json:"local_path,omitempty"`
	SHA256    string `json:"sha256"` // hex
	Size      int64  `json:"size"`
	// Open streams the artifact's bytes; the activity that uploads it opens
	// Object in the shared store. Nil opens LocalPath (direct callers, tests).
	Open func(ctx context.Context) (io.ReadCloser, error) `json:"-"`
}

// open streams the artifact; a missing one is an error matching fs.ErrNotExist.
func (a Artifact) open(ctx context.Context) (io.ReadCloser, error) {
	if a.Open != nil {
		return a.Open(ctx)
	}
	return os.Open(a.LocalPath)
}

// where names the artifact's source in messages.
func (a Artifact) where() string {
	if a.Object != "" {
		return a.Object + " in the shared storage"
	}
	return a.LocalPath
}

// checksum is the artifact's sha256: a.SHA256, else computed from its bytes.
func (a Artifact) checksum(ctx context.Context) (string, error) {
	if a.SHA256 != "" {
		return strings.ToLower(a.SHA256), nil
	}
	r, err := a.open(ctx)
	if err != nil {
		return "", err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// spool copies the artifact into a temporary file, for clients that must
// rewind their request body to resend it; remove deletes the file.
func (a Artifact) spool(ctx context.Context) (f *os.File, remove func(), err error) {
	src, err := a.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	f, err = os.CreateTemp("", "shipline-artifact-*")
	if err != nil {
		return nil, nil, err
	}
	remove = func() { f.Close(); os.Remove(f.Name()) }
	if _, err := io.Copy(f, src); err != nil {
		remove()
		return nil, nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		remove()
		return nil, nil, err
	}
	return f, remove, nil
}

// Upload is the result of putting one artifact on a fabric.
type Upload struct {
	Path string `json:"path"` // where it lives on the fabric (what ${artifact.X} renders to)
	// Uploaded is false when the same bytes were already there (idempotent re-upload).
	Uploaded bool `json:"uploaded"`
}

// JobSpec is one job to create or update on a fabric.
type JobSpec struct {
	Project string `json:"project"`
	Job     string `json:"job"`
	// Definition is the rendered definition: a Jobs API 2.2 create payload (JSON)
	// for databricks jobs, Python source for Airflow DAGs.
	Definition []byte `json:"definition"`
	// Paused, when set, is the pause status of the job's schedule, trigger
	// or continuous run (databricks) or of the DAG (airflow). Nil leaves it
	// to the definition: its own pause_status (none: UNPAUSED, the API's
	// default) or is_paused_upon_creation. See PausedFor.
	Paused       *bool  `json:"paused,omitempty"`
	Version      string `json:"version"`
	DeploymentID string `json:"deployment_id"`
	// Source is the definition's path in the project (jobs/x/dag.py), and
	// SourceLines maps each line of Definition to its line there: errors
	// about the rendered definition name the source (see RenderJobSpec).
	Source      string            `json:"source,omitempty"`
	SourceLines []templating.Line `json:"source_lines,omitempty"`
}

// JobAction says what an upsert did.
type JobAction string

const (
	JobCreated   JobAction = "created"
	JobUpdated   JobAction = "updated"
	JobRecreated JobAction = "recreated" // it had been deleted by hand
	JobUnchanged JobAction = "unchanged"
)

// JobResult is the outcome of an upsert.
type JobResult struct {
	ID     string    `json:"id"` // Databricks job ID, or the file written
	Action JobAction `json:"action"`
}

// LiveJob is what a fabric holds now for a job, compared with what Shipline deployed.
type LiveJob struct {
	Exists  bool   `json:"exists"`
	ID      string `json:"id,omitempty"`
	Version string `json:"version,omitempty"` // the shipline_version tag / header found live
	// Drift is true when the live job no longer matches the deployed definition.
	Drift       bool   `json:"drift"`
	DriftDetail string `json:"drift_detail,omitempty"`
}

// Fabric is one execution environment.
type Fabric interface {
	// Name is the fabric's name in platform.yaml.
	Name() string
	// ArtifactPath is the immutable path of an artifact on this fabric:
	// <artifact_root>/<project>/<version>/<pipeline>/<file>.
	ArtifactPath(project, version, pipeline, file string) string
	// Upload puts an artifact at ArtifactPath, verifying size/checksum. Uploading
	// the same bytes again is a no-op; different bytes at an existing path is a
	// permanent error (paths are immutable).
	Upload(ctx context.Context, project, version string, a Artifact) (Upload, error)
	// UpsertJob creates or updates the job, never creating a duplicate.
	UpsertJob(ctx context.Context, j JobSpec) (JobResult, error)
	// InspectJob reads the live job and compares it with the deployed spec.
	InspectJob(ctx context.Context, j JobSpec) (LiveJob, error)
	// DeleteJob removes the job Shipline manages for project/job: Action
	// JobDeleted (ID names what was removed; several IDs, comma-separated,
	// when duplicates were found and all deleted) or JobAbsent when there was
	// nothing to remove. Idempotent.
	DeleteJob(ctx context.Context, project, job string) (JobResult, error)
	// DeleteArtifacts removes <artifact_root>/<project>/<version>/ and
	// everything under it, and nothing else; it returns how many files it
	// removed (0 when the directory is absent). Idempotent.
	DeleteArtifacts(ctx context.Context, project, version string) (int, error)
}

// Env reads credentials (os.Getenv in production).
type Env func(string) string

// Open returns the fabric named name from the platform config.
func Open(cfg *platform.Config, name string, env Env) (Fabric, error) {
	f, ok := cfg.Fabrics[name]
	if !ok {
		known := make([]string, 0, len(cfg.Fabrics))
		for k := range cfg.Fabrics {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, &apperr.Error{Type: apperr.FabricRejected, Msg: fmt.Sprintf("fabric %q is not defined in platform.yaml (defined: %v)", name, known)}
	}
	if k, ok := kinds[f.Kind]; ok {
		return k.Open(cfg, f, env)
	}
	return nil, &apperr.Error{Type: apperr.FabricRejected, Msg: fmt.Sprintf("fabric %q has unknown kind %q", name, f.Kind)}
}
