package fabric

// The databricks fabric's artifact stores: Unity Catalog volumes (Files API),
// the workspace and DBFS, chosen by artifact_root (see databricks.go).

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/shipline/shipline/internal/apperr"
)

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
