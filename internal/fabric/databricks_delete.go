package fabric

// The databricks fabric's deletion of jobs and release artifacts (see delete.go).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/shipline/shipline/internal/apperr"
)

// DeleteJob deletes every job tagged with project and job (Jobs API 2.2 delete).
func (d *databricksFabric) DeleteJob(ctx context.Context, project, job string) (JobResult, error) {
	spec := JobSpec{Project: project, Job: job}
	if err := checkJobNames(spec); err != nil {
		return JobResult{}, err
	}
	w, _, err := d.clients()
	if err != nil {
		return JobResult{}, err
	}
	ids, err := d.findJobs(ctx, spec, nil)
	if err != nil {
		return JobResult{}, err
	}
	var deleted []string
	for _, id := range ids {
		err := w.Jobs.DeleteByJobId(ctx, id)
		if isMissingJob(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return JobResult{}, d.fail(fmt.Sprintf("delete of job %d (%s/%s)", id, project, job), err)
		}
		deleted = append(deleted, strconv.FormatInt(id, 10))
	}
	if len(deleted) == 0 {
		return JobResult{Action: JobAbsent}, nil
	}
	return JobResult{ID: strings.Join(deleted, ","), Action: JobDeleted}, nil
}

// DeleteArtifacts removes <artifact_root>/<project>/<version> by the kind of artifact_root.
func (d *databricksFabric) DeleteArtifacts(ctx context.Context, project, version string) (int, error) {
	if err := checkReleaseDir(project, version); err != nil {
		return 0, err
	}
	w, _, err := d.clients()
	if err != nil {
		return 0, err
	}
	dir := d.root + "/" + project + "/" + version
	switch {
	case strings.HasPrefix(dir, "/Volumes/"):
		return d.deleteVolumeDir(ctx, w, dir)
	case strings.HasPrefix(dir, "/Workspace/"):
		return d.deleteWorkspaceDir(ctx, w, dir)
	default:
		return d.deleteDBFSDir(ctx, w, dir)
	}
}

// under reports whether p is dir or inside it (both cleaned, slash-separated).
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// deleteVolumeDir walks dir with the Files API, deletes its files, then its
// directories bottom-up (the API only deletes empty directories).
func (d *databricksFabric) deleteVolumeDir(ctx context.Context, w *databricks.WorkspaceClient, dir string) (int, error) {
	var fileList, dirs []string
	queue := []string{dir}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		entries, err := w.Files.ListDirectoryContentsAll(ctx, files.ListDirectoryContentsRequest{DirectoryPath: p})
		if apierr.IsMissing(err) {
			if p == dir { // no directory; a file at that path is removed like the rest
				if _, err := w.Files.GetMetadata(ctx, files.GetMetadataRequest{FilePath: dir}); err == nil {
					fileList = append(fileList, dir)
				} else if !apierr.IsMissing(err) {
					return 0, d.fail("status of "+dir, err)
				}
			}
			continue
		}
		if err != nil {
			return 0, d.fail("listing of "+p, err)
		}
		dirs = append(dirs, p)
		for _, e := range entries {
			child := strings.TrimSuffix(e.Path, "/")
			if e.Name != "" {
				child = path.Join(p, e.Name)
			}
			if child == p || !under(child, dir) {
				return 0, &apperr.Error{Type: apperr.UnsafePath,
					Msg: fmt.Sprintf("databricks fabric %q: listing %s returned %q, which is not inside it; nothing more was deleted", d.name, p, e.Path)}
			}
			if e.IsDirectory {
				queue = append(queue, child)
			} else {
				fileList = append(fileList, child)
			}
		}
	}
	n := 0
	for _, f := range fileList {
		err := w.Files.DeleteByFilePath(ctx, f)
		if apierr.IsMissing(err) {
			continue
		}
		if err != nil {
			return n, d.fail("delete of "+f, err)
		}
		n++
	}
	// dirs is in breadth-first order: children come after their parents.
	for i := len(dirs) - 1; i >= 0; i-- {
		err := w.Files.DeleteDirectoryByDirectoryPath(ctx, dirs[i])
		switch {
		case err == nil || apierr.IsMissing(err): // an implicit directory may vanish with its last file
		case directoryNotEmpty(err):
			return n, &apperr.Error{Type: apperr.FabricUnavailable,
				Msg: fmt.Sprintf("databricks fabric %q: %s got new entries while it was being deleted (an upload of the same version?); will retry", d.name, dirs[i])}
		default:
			return n, d.fail("delete of directory "+dirs[i], err)
		}
	}
	return n, nil
}

// directoryNotEmpty tells the Files API's answer to deleting a non-empty
// directory: 400 with reason FILES_API_DIRECTORY_IS_NOT_EMPTY.
func directoryNotEmpty(err error) bool {
	var ae *apierr.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest {
		return false
	}
	if info := ae.ErrorDetails().ErrorInfo; info != nil && info.Reason == "FILES_API_DIRECTORY_IS_NOT_EMPTY" {
		return true
	}
	return ae.ErrorCode == "DIRECTORY_NOT_EMPTY"
}

// deleteWorkspaceDir counts the files under dir, then deletes it recursively.
func (d *databricksFabric) deleteWorkspaceDir(ctx context.Context, w *databricks.WorkspaceClient, dir string) (int, error) {
	objs, err := w.Workspace.RecursiveList(ctx, dir) // a missing dir lists as empty
	if err != nil {
		return 0, d.fail("listing of "+dir, err)
	}
	err = w.Workspace.Delete(ctx, workspace.Delete{Path: dir, Recursive: true})
	if apierr.IsMissing(err) {
		return 0, nil
	}
	if err != nil {
		return 0, d.fail("delete of "+dir, err)
	}
	return len(objs), nil
}

// deleteDBFSDir counts the files under dir, then deletes it recursively.
func (d *databricksFabric) deleteDBFSDir(ctx context.Context, w *databricks.WorkspaceClient, dir string) (int, error) {
	norm := strings.TrimPrefix(dir, "dbfs:")
	n := 0
	queue := []string{dir}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		infos, err := w.Dbfs.ListAll(ctx, files.ListDbfsRequest{Path: p})
		if apierr.IsMissing(err) {
			continue
		}
		if err != nil {
			return 0, d.fail("listing of "+p, err)
		}
		for _, fi := range infos {
			child := strings.TrimSuffix(strings.TrimPrefix(fi.Path, "dbfs:"), "/")
			if !under(child, norm) {
				return 0, &apperr.Error{Type: apperr.UnsafePath,
					Msg: fmt.Sprintf("databricks fabric %q: listing %s returned %q, which is not inside %s; nothing was deleted", d.name, p, fi.Path, dir)}
			}
			switch {
			case !fi.IsDir:
				n++
			case child != strings.TrimPrefix(p, "dbfs:"):
				queue = append(queue, child)
			}
		}
	}
	// The real service deletes large trees in increments, answering 503 and
	// asking to call again: a transient error, retried by the activity.
	err := w.Dbfs.Delete(ctx, files.Delete{Path: dir, Recursive: true})
	if apierr.IsMissing(err) {
		return 0, nil
	}
	if err != nil {
		return 0, d.fail("delete of "+dir, err)
	}
	return n, nil
}
