package dbemu_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/workspace"
)

func TestFilesUploadHeadOverwrite(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t)
	p := volume + "/demo/v1.0.0/ingest/ingest-1.0.0-py3-none-any.whl"

	err := w.Files.Upload(ctx, files.UploadRequest{FilePath: p, Contents: io.NopCloser(strings.NewReader("wheel-1")), Overwrite: false, ForceSendFields: []string{"Overwrite"}})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	meta, err := w.Files.GetMetadata(ctx, files.GetMetadataRequest{FilePath: p})
	if err != nil || meta.ContentLength != 7 || meta.LastModified == "" {
		t.Fatalf("head: %v %+v", err, meta)
	}
	// overwrite=false on an existing file → 409 ALREADY_EXISTS.
	err = w.Files.Upload(ctx, files.UploadRequest{FilePath: p, Contents: io.NopCloser(strings.NewReader("other")), ForceSendFields: []string{"Overwrite"}})
	var apiErr *apierr.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 409 || !errors.Is(err, apierr.ErrAlreadyExists) {
		t.Fatalf("upload without overwrite: %v", err)
	}
	// overwrite unspecified → overwrites (the real API's default).
	if err := w.Files.Upload(ctx, files.UploadRequest{FilePath: p, Contents: io.NopCloser(strings.NewReader("wheel-2!"))}); err != nil {
		t.Fatalf("upload overwrite: %v", err)
	}
	if b, ok := emu.File(p); !ok || string(b) != "wheel-2!" {
		t.Errorf("File(%s) = %q %v", p, b, ok)
	}
	dl, err := w.Files.Download(ctx, files.DownloadRequest{FilePath: p})
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	body, _ := io.ReadAll(dl.Contents)
	if string(body) != "wheel-2!" {
		t.Errorf("download = %q", body)
	}

	_, err = w.Files.GetMetadata(ctx, files.GetMetadataRequest{FilePath: volume + "/nope"})
	if !errors.Is(err, apierr.ErrNotFound) {
		t.Errorf("head missing: %v", err)
	}
	err = w.Files.Upload(ctx, files.UploadRequest{FilePath: "/Volumes/main/missing/vol/x", Contents: io.NopCloser(strings.NewReader("x"))})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("upload into a missing volume: %v", err)
	}

	// Directories: create, HEAD, list.
	if err := w.Files.CreateDirectory(ctx, files.CreateDirectoryRequest{DirectoryPath: volume + "/empty/dir"}); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	if err := w.Files.GetDirectoryMetadata(ctx, files.GetDirectoryMetadataRequest{DirectoryPath: volume + "/demo/v1.0.0"}); err != nil {
		t.Errorf("implicit parent directory: %v", err)
	}
	entries, err := w.Files.ListDirectoryContentsAll(ctx, files.ListDirectoryContentsRequest{DirectoryPath: volume, PageSize: 1})
	if err != nil || len(entries) != 2 || !entries[0].IsDirectory {
		t.Errorf("list: %v %+v", err, entries)
	}
}

func TestDBFSMultiBlock(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB
	h, err := w.Dbfs.Create(ctx, files.Create{Path: "dbfs:/shipline/demo/big.jar"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	for off := 0; off < len(big); off += 1 << 20 {
		chunk := big[off:min(off+1<<20, len(big))]
		if err := w.Dbfs.AddBlock(ctx, files.AddBlock{Handle: h.Handle, Data: base64.StdEncoding.EncodeToString(chunk)}); err != nil {
			t.Fatalf("add-block: %v", err)
		}
	}
	if err := w.Dbfs.CloseByHandle(ctx, h.Handle); err != nil {
		t.Fatalf("close: %v", err)
	}
	st, err := w.Dbfs.GetStatusByPath(ctx, "/shipline/demo/big.jar")
	if err != nil || st.FileSize != int64(len(big)) || st.IsDir {
		t.Fatalf("get-status: %v %+v", err, st)
	}
	got, err := w.Dbfs.ReadFile(ctx, "dbfs:/shipline/demo/big.jar")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read back: %v (%d bytes)", err, len(got))
	}
	if b, ok := emu.File("dbfs:/shipline/demo/big.jar"); !ok || len(b) != len(big) {
		t.Errorf("File helper: %d %v", len(b), ok)
	}
	// put is limited to 1 MB; an existing file without overwrite is refused.
	err = w.Dbfs.Put(ctx, files.Put{Path: "/x.bin", Contents: base64.StdEncoding.EncodeToString(big)})
	var apiErr *apierr.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != "MAX_BLOCK_SIZE_EXCEEDED" {
		t.Errorf("put 3 MB: %v", err)
	}
	_, err = w.Dbfs.Create(ctx, files.Create{Path: "/shipline/demo/big.jar"})
	if !errors.Is(err, apierr.ErrResourceAlreadyExists) {
		t.Errorf("create existing: %v", err)
	}
	if err := w.Dbfs.Move(ctx, files.Move{SourcePath: "/shipline/demo/big.jar", DestinationPath: "/shipline/final.jar"}); err != nil {
		t.Errorf("move: %v", err)
	}
	_, err = w.Dbfs.GetStatusByPath(ctx, "/shipline/demo/big.jar")
	if !errors.Is(err, apierr.ErrNotFound) {
		t.Errorf("moved source still there: %v", err)
	}
}

func TestWorkspaceImportStatusExport(t *testing.T) {
	ctx := context.Background()
	emu, w := start(t)
	dir := "/Workspace/Shared/shipline/demo/v1"
	imp := workspace.Import{Path: dir + "/lib.whl", Format: workspace.ImportFormatAuto, Content: base64.StdEncoding.EncodeToString([]byte("whl"))}
	err := w.Workspace.Import(ctx, imp)
	if !errors.Is(err, apierr.ErrNotFound) {
		t.Fatalf("import without parent: %v", err)
	}
	if err := w.Workspace.MkdirsByPath(ctx, dir); err != nil {
		t.Fatalf("mkdirs: %v", err)
	}
	if err := w.Workspace.Import(ctx, imp); err != nil {
		t.Fatalf("import: %v", err)
	}
	err = w.Workspace.Import(ctx, imp)
	if !errors.Is(err, apierr.ErrResourceAlreadyExists) {
		t.Errorf("import again without overwrite: %v", err)
	}
	st, err := w.Workspace.GetStatusByPath(ctx, dir+"/lib.whl")
	if err != nil || st.ObjectType != workspace.ObjectTypeFile || st.Size != 3 {
		t.Fatalf("get-status: %v %+v", err, st)
	}
	got, err := w.Workspace.ReadFile(ctx, dir+"/lib.whl")
	if err != nil || string(got) != "whl" {
		t.Errorf("export: %v %q", err, got)
	}
	// AUTO turns a source file with the notebook header into a notebook without extension.
	if err := w.Workspace.Upload(ctx, dir+"/nb.py", strings.NewReader("# Databricks notebook source\nprint(1)"), workspace.UploadFormat(workspace.ImportFormatAuto)); err != nil {
		t.Fatalf("multipart upload: %v", err)
	}
	st, err = w.Workspace.GetStatusByPath(ctx, dir+"/nb")
	if err != nil || st.ObjectType != workspace.ObjectTypeNotebook || st.Language != workspace.LanguagePython {
		t.Errorf("notebook: %v %+v", err, st)
	}
	if _, ok := emu.File(dir + "/lib.whl"); !ok {
		t.Errorf("File helper misses the workspace file")
	}
}
