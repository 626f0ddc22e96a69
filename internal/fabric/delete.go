package fabric

// Deleting a release from a fabric: its artifact directory
// <artifact_root>/<project>/<version>/ and the jobs Shipline manages. Which
// jobs to delete and which to revert to the previous release is decided by the
// caller; these are the side effects only, each idempotent.
//
// Choices:
//   - Only <artifact_root>/<project>/<version>/ is ever removed: project and
//     version must be single safe path segments, and the local fabric refuses
//     a project or version directory that is a symlink (it could point
//     anywhere). Entries listed by a remote file system are checked to lie
//     under that directory before they are deleted.
//   - Databricks jobs are found by the tags shipline_project + shipline_job,
//     like UpsertJob; several such jobs (duplicates made by hand) are all
//     deleted, and JobResult.ID lists them all, comma-separated. A job that
//     disappears between the listing and its delete is not counted.
//   - Airflow: only the DAG file is removed; the scheduler marks the DAG
//     inactive itself. Its runs' history in Airflow's database is kept (the
//     REST API's DAG delete would erase it).
//   - The number of removed files is what this call removed: a retry after a
//     partial delete (DBFS answers 503 on large recursive deletes and asks to
//     call again) counts only what was left. On Volumes, a call that fails
//     part way still returns, with its error, how many files it removed.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/shipline/shipline/internal/apperr"
)

// Actions of DeleteJob.
const (
	JobDeleted JobAction = "deleted" // the job (or its file) was removed
	JobAbsent  JobAction = "absent"  // there was nothing to remove
)

// IDs splits the ID of a DeleteJob result that removed several jobs.
func (r JobResult) IDs() []string {
	if r.ID == "" {
		return nil
	}
	return strings.Split(r.ID, ",")
}

// artifactDeleter is the artifact half of DeleteArtifacts (a Fabric or an artifactDir).
type artifactDeleter interface {
	DeleteArtifacts(ctx context.Context, project, version string) (int, error)
}

func checkReleaseDir(project, version string) error {
	for _, s := range []string{project, version} {
		if err := checkSegment(s); err != nil {
			return err
		}
	}
	return nil
}

// --- local directories (local fabric, airflow fallback) ---

// DeleteJob removes <root>/jobs/<project>__<job>.json and
// <root>/dags/<project>__<job>.py, whichever exist, and releases the DAG's
// dag_id (dag_owners.go).
func (l *localFabric) DeleteJob(ctx context.Context, project, job string) (JobResult, error) {
	spec := JobSpec{Project: project, Job: job}
	if err := checkJobNames(spec); err != nil {
		return JobResult{}, err
	}
	base := project + "__" + job
	dags := dagDir(filepath.Join(l.root, "dags"))
	var owned string
	if have, err := dags.Read(ctx, base+".py"); err == nil {
		if dag, err := checkDAGContent(ctx, pythonBin(nil), spec, base+".py", have); err == nil {
			owned = dag.ID
		}
	}
	res, err := removeJobFiles(l.name, filepath.Join(l.root, "jobs", base+".json"), filepath.Join(l.root, "dags", base+".py"))
	if err == nil && owned != "" {
		err = releaseDAG(ctx, dags, owned, project, job)
	}
	return res, err
}

// removeJobFiles removes the files that exist among paths; a directory in
// the way is a permanent error (it is not a job file Shipline wrote).
func removeJobFiles(fabricName string, paths ...string) (JobResult, error) {
	var removed []string
	for _, p := range paths {
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return JobResult{}, fmt.Errorf("fabric %q: %w", fabricName, err)
		}
		if st.IsDir() {
			return JobResult{}, &apperr.Error{Type: apperr.UnsafePath,
				Msg: fmt.Sprintf("fabric %q: %s is a directory, not a job file Shipline wrote; remove or rename it by hand", fabricName, p)}
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return JobResult{}, fmt.Errorf("fabric %q: %w", fabricName, err)
		}
		syncDir(filepath.Dir(p))
		removed = append(removed, p)
	}
	if len(removed) == 0 {
		return JobResult{Action: JobAbsent}, nil
	}
	return JobResult{ID: strings.Join(removed, ","), Action: JobDeleted}, nil
}

// DeleteArtifacts removes <dir>/<project>/<version> recursively.
func (d artifactDir) DeleteArtifacts(ctx context.Context, project, version string) (int, error) {
	if err := checkReleaseDir(project, version); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	projectDir := filepath.Join(string(d), project)
	dir := filepath.Join(projectDir, version)
	for _, p := range []string{projectDir, dir} {
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("delete artifacts %s: %w", dir, err)
		}
		if !st.IsDir() { // includes symlinks, which Lstat does not follow
			return 0, &apperr.Error{Type: apperr.UnsafePath,
				Msg: fmt.Sprintf("delete artifacts: %s is not a directory (a symlink or a file), so it was not created by Shipline; nothing was deleted; remove it by hand", p)}
		}
	}
	n := 0
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.IsDir() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete artifacts %s: %w", dir, err)
	}
	// RemoveAll never follows symlinks: a link inside dir is removed, not its target.
	if err := os.RemoveAll(dir); err != nil {
		return 0, fmt.Errorf("delete artifacts %s: %w", dir, err)
	}
	syncDir(projectDir)
	return n, nil
}
