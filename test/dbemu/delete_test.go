package dbemu_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/shipline/shipline/test/dbemu"
)

// The delete endpoints Shipline uses to delete a release, driven through the SDK.

func TestFilesDeleteFilesAndDirectories(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t)
	dir := volume + "/demo/v1.0.0"
	for _, f := range []string{dir + "/ingest/a.whl", dir + "/score/b.jar"} {
		if err := w.Files.Upload(ctx, files.UploadRequest{FilePath: f, Contents: io.NopCloser(strings.NewReader("x"))}); err != nil {
			t.Fatal(err)
		}
	}
	// Listing a directory shows files and subdirectories with names.
	entries, err := w.Files.ListDirectoryContentsAll(ctx, files.ListDirectoryContentsRequest{DirectoryPath: dir})
	if err != nil || len(entries) != 2 || !entries[0].IsDirectory || entries[0].Name != "ingest" {
		t.Fatalf("list %s: %+v %v", dir, entries, err)
	}

	// A non-empty directory is refused with the real API's 400 and ErrorInfo reason.
	err = w.Files.DeleteDirectoryByDirectoryPath(ctx, dir+"/ingest")
	var ae *apierr.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || ae.ErrorCode != "INVALID_PARAMETER_VALUE" {
		t.Fatalf("delete of a non-empty directory: %v", err)
	}
	if info := ae.ErrorDetails().ErrorInfo; info == nil || info.Reason != "FILES_API_DIRECTORY_IS_NOT_EMPTY" {
		t.Fatalf("error details = %+v, want reason FILES_API_DIRECTORY_IS_NOT_EMPTY", ae.ErrorDetails())
	}

	// Files, then directories bottom-up.
	if err := w.Files.DeleteByFilePath(ctx, dir+"/ingest/a.whl"); err != nil {
		t.Fatal(err)
	}
	if err := w.Files.DeleteByFilePath(ctx, dir+"/ingest/a.whl"); !apierr.IsMissing(err) {
		t.Fatalf("second delete of a file: %v, want not found", err)
	}
	if err := w.Files.DeleteDirectoryByDirectoryPath(ctx, dir+"/ingest"); err != nil {
		t.Fatalf("delete of an empty directory: %v", err)
	}
	err = w.Files.DeleteDirectoryByDirectoryPath(ctx, dir+"/ingest")
	if !apierr.IsMissing(err) || !errors.As(err, &ae) || ae.ErrorDetails().ErrorInfo == nil ||
		ae.ErrorDetails().ErrorInfo.Reason != "FILES_API_DIRECTORY_IS_NOT_FOUND" {
		t.Fatalf("delete of a missing directory: %v", err)
	}
	if err := w.Files.DeleteByFilePath(ctx, dir+"/score/b.jar"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir + "/score", dir} {
		if err := w.Files.DeleteDirectoryByDirectoryPath(ctx, d); err != nil {
			t.Fatalf("delete %s: %v", d, err)
		}
	}
	if _, err := w.Files.ListDirectoryContentsAll(ctx, files.ListDirectoryContentsRequest{DirectoryPath: dir}); !apierr.IsMissing(err) {
		t.Fatalf("list of a deleted directory: %v", err)
	}
	if got := emu.Files(); len(got) != 0 {
		t.Fatalf("files left: %v", got)
	}
	// The volume's root cannot be deleted through the directories API.
	if err := w.Files.DeleteDirectoryByDirectoryPath(ctx, volume); err == nil {
		t.Fatal("deleting the volume root succeeded")
	}
}

func TestWorkspaceDeleteRecursive(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t)
	dir := "/Workspace/Shared/shipline/demo/v1.0.0"
	for _, f := range []string{dir + "/ingest/a.whl", dir + "/score/b.jar"} {
		if err := w.Workspace.MkdirsByPath(ctx, f[:strings.LastIndex(f, "/")]); err != nil {
			t.Fatal(err)
		}
		if err := w.Workspace.Import(ctx, workspace.Import{Path: f, Format: workspace.ImportFormatRaw, Content: "eA=="}); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := w.Workspace.RecursiveList(ctx, dir)
	if err != nil || len(objs) != 2 {
		t.Fatalf("recursive list: %+v %v", objs, err)
	}
	err = w.Workspace.Delete(ctx, workspace.Delete{Path: dir})
	if !errors.Is(err, apierr.ErrBadRequest) || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("non-recursive delete of a folder: %v", err)
	}
	if err := w.Workspace.Delete(ctx, workspace.Delete{Path: dir, Recursive: true}); err != nil {
		t.Fatalf("recursive delete: %v", err)
	}
	if got := emu.Files(); len(got) != 0 {
		t.Fatalf("files left: %v", got)
	}
	if _, err := w.Workspace.GetStatusByPath(ctx, dir); !apierr.IsMissing(err) {
		t.Fatalf("status of the deleted folder: %v", err)
	}
	if _, err := w.Workspace.GetStatusByPath(ctx, "/Workspace/Shared/shipline/demo"); err != nil {
		t.Fatalf("the parent folder must stay: %v", err)
	}
	if err := w.Workspace.Delete(ctx, workspace.Delete{Path: dir, Recursive: true}); !apierr.IsMissing(err) {
		t.Fatalf("delete of a missing folder: %v, want RESOURCE_DOES_NOT_EXIST", err)
	}
}

func TestDBFSDeleteRecursive(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t)
	dir := "dbfs:/shipline/artifacts/demo/v1.0.0"
	for _, f := range []string{dir + "/ingest/a.whl", dir + "/score/b.jar"} {
		if err := w.Dbfs.Put(ctx, files.Put{Path: f, Contents: "eA=="}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := w.Dbfs.ListAll(ctx, files.ListDbfsRequest{Path: dir})
	if err != nil || len(list) != 2 || !list[0].IsDir {
		t.Fatalf("list: %+v %v", list, err)
	}
	err = w.Dbfs.Delete(ctx, files.Delete{Path: dir})
	if !errors.Is(err, apierr.ErrBadRequest) {
		t.Fatalf("non-recursive delete of a non-empty directory: %v", err)
	}
	if err := w.Dbfs.Delete(ctx, files.Delete{Path: dir, Recursive: true}); err != nil {
		t.Fatalf("recursive delete: %v", err)
	}
	if got := emu.Files(); len(got) != 0 {
		t.Fatalf("files left: %v", got)
	}
	if _, err := w.Dbfs.GetStatusByPath(ctx, dir); !apierr.IsMissing(err) {
		t.Fatalf("status of the deleted directory: %v", err)
	}
	if st, err := w.Dbfs.GetStatusByPath(ctx, "dbfs:/shipline/artifacts/demo"); err != nil || !st.IsDir {
		t.Fatalf("the parent must stay: %+v %v", st, err)
	}
	// Like the real service, deleting a path that does not exist succeeds.
	if err := w.Dbfs.Delete(ctx, files.Delete{Path: dir, Recursive: true}); err != nil {
		t.Fatalf("delete of a missing path: %v", err)
	}
}

func TestJobsDeleteThroughSDK(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t)
	var ids []int64
	for _, name := range []string{"a", "b"} {
		r, err := w.Jobs.Create(ctx, jobs.CreateJob{Name: name, Tags: map[string]string{"shipline_project": "demo"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.JobId)
	}
	if err := w.Jobs.DeleteByJobId(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	err := w.Jobs.DeleteByJobId(ctx, ids[0])
	var ae *apierr.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || !strings.Contains(ae.Message, "does not exist") {
		t.Fatalf("second delete: %v, want 400 ... does not exist", err)
	}
	left := emu.Jobs()
	if len(left) != 1 || left[0].ID != ids[1] {
		t.Fatalf("jobs left: %+v", left)
	}
	if !slices.ContainsFunc(emu.Requests(), func(r dbemu.Request) bool { return r.Path == "/api/2.2/jobs/delete" }) {
		t.Error("no request to /api/2.2/jobs/delete recorded")
	}
}
