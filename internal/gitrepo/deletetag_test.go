package gitrepo

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

func mirrorHasTag(t *testing.T, m *Mirror, name string) bool {
	t.Helper()
	repo, _, unlock, err := m.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, err = repo.Reference(plumbing.ReferenceName("refs/tags/"+name), false)
	return err == nil
}

func TestDeleteTag(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	commit := gitCmd(t, f.work, "rev-parse", "HEAD")
	m := f.mirror(t, "file://"+f.bare)
	ctx := context.Background()
	if _, err := m.CreateTag(ctx, tagReq(commit)); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, f.work, "tag", "v0.9.0", commit) // another release: must stay
	gitCmd(t, f.work, "push", "-q", "origin", "v0.9.0")
	if !mirrorHasTag(t, m, "v1.0.0") {
		t.Fatal("mirror lacks the tag it created")
	}

	deleted, err := m.DeleteTag(ctx, "v1.0.0", strings.ToUpper(commit))
	if err != nil || !deleted {
		t.Fatalf("DeleteTag = %v, %v; want deleted", deleted, err)
	}
	if tags := f.remoteGit(t, "tag", "-l"); tags != "v0.9.0" {
		t.Fatalf("remote tags = %q, want only v0.9.0", tags)
	}
	if mirrorHasTag(t, m, "v1.0.0") {
		t.Error("the mirror still has the deleted tag")
	}

	// Again (a retry after a lost answer): absent, no error.
	deleted, err = m.DeleteTag(ctx, "v1.0.0", commit)
	if err != nil || deleted {
		t.Fatalf("second DeleteTag = %v, %v; want not deleted, no error", deleted, err)
	}
	// The commit is still there: only the tag went.
	if got := f.remoteGit(t, "rev-parse", "main"); got != commit {
		t.Errorf("main = %s, want %s", got, commit)
	}
	// A lightweight tag on the expected commit is deleted too.
	deleted, err = m.DeleteTag(ctx, "v0.9.0", commit)
	if err != nil || !deleted {
		t.Fatalf("DeleteTag of a lightweight tag = %v, %v", deleted, err)
	}
}

func TestDeleteTagMovedIsConflict(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	first := gitCmd(t, f.work, "rev-parse", "HEAD")
	second := f.commit(t, "second", map[string]string{"README": "two\n"})
	m := f.mirror(t, "file://"+f.bare)
	ctx := context.Background()
	if _, err := m.CreateTag(ctx, tagReq(first)); err != nil {
		t.Fatal(err)
	}
	// Someone moved the tag to the second commit by hand.
	gitCmd(t, f.work, "tag", "-f", "-a", "v1.0.0", "-m", "moved", second)
	gitCmd(t, f.work, "push", "-q", "-f", "origin", "v1.0.0")

	deleted, err := m.DeleteTag(ctx, "v1.0.0", first)
	if deleted || !errors.Is(err, ErrTagConflict) {
		t.Fatalf("DeleteTag of a moved tag = %v, %v; want ErrTagConflict", deleted, err)
	}
	for _, want := range []string{"tag moved; not deleting", second[:7], first[:7], "demo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if got := f.remoteGit(t, "rev-parse", "v1.0.0^{commit}"); got != second {
		t.Fatalf("the moved tag was touched: peels to %s", got)
	}
}

func TestDeleteTagStaleMirror(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	commit := gitCmd(t, f.work, "rev-parse", "HEAD")
	m := f.mirror(t, "file://"+f.bare)
	ctx := context.Background()
	if _, err := m.CreateTag(ctx, tagReq(commit)); err != nil {
		t.Fatal(err)
	}
	// Deleted on the remote by hand: the mirror's copy is dropped, nothing pushed.
	f.remoteGit(t, "tag", "-d", "v1.0.0")
	deleted, err := m.DeleteTag(ctx, "v1.0.0", commit)
	if err != nil || deleted {
		t.Fatalf("DeleteTag = %v, %v; want not deleted", deleted, err)
	}
	if mirrorHasTag(t, m, "v1.0.0") {
		t.Error("the mirror kept a tag the remote no longer has")
	}
	// A fresh mirror (another worker) deleting a tag that exists.
	gitCmd(t, f.work, "tag", "-a", "v1.0.0", "-m", "again", commit)
	gitCmd(t, f.work, "push", "-q", "origin", "v1.0.0")
	deleted, err = f.mirror(t, f.bare).DeleteTag(ctx, "v1.0.0", commit)
	if err != nil || !deleted {
		t.Fatalf("DeleteTag from a fresh mirror = %v, %v", deleted, err)
	}
}

// The push itself refuses to delete a tag that changed after it was checked.
func TestPushDeleteRequiresCheckedObject(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	commit := gitCmd(t, f.work, "rev-parse", "HEAD")
	m := f.mirror(t, "file://"+f.bare)
	ctx := context.Background()
	gitCmd(t, f.work, "tag", "-a", "v1.0.0", "-m", "one", commit)
	gitCmd(t, f.work, "push", "-q", "origin", "v1.0.0")
	repo, _, unlock, err := m.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	stale := plumbing.NewHash(commit) // not the tag object the remote holds
	gone, moved, err := m.pushDelete(ctx, repo, "refs/tags/v1.0.0", stale)
	if err != nil || gone || !moved {
		t.Fatalf("pushDelete with a stale object = gone %v moved %v, %v; want moved", gone, moved, err)
	}
	if f.remoteGit(t, "tag", "-l") != "v1.0.0" {
		t.Fatal("the tag was deleted despite the stale check")
	}
	obj := plumbing.NewHash(f.remoteGit(t, "rev-parse", "refs/tags/v1.0.0"))
	if gone, moved, err := m.pushDelete(ctx, repo, "refs/tags/v1.0.0", obj); err != nil || gone || moved {
		t.Fatalf("pushDelete = gone %v moved %v, %v", gone, moved, err)
	}
	if gone, moved, err := m.pushDelete(ctx, repo, "refs/tags/v1.0.0", obj); err != nil || !gone || moved {
		t.Fatalf("pushDelete of an absent tag = gone %v moved %v, %v; want gone", gone, moved, err)
	}
}

func TestDeleteTagInvalidInput(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	commit := gitCmd(t, f.work, "rev-parse", "HEAD")
	m := f.mirror(t, "file://"+f.bare)
	for _, tc := range [][2]string{{"1.0.0", commit}, {"v1.0.0", commit[:10]}, {"v1.0.0", ""}, {"../v1.0.0", commit}} {
		if _, err := m.DeleteTag(context.Background(), tc[0], tc[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("DeleteTag(%q, %q) = %v, want ErrInvalid", tc[0], tc[1], err)
		}
	}
}

// Over smart HTTP with git's own receive-pack: a read-only token is a
// permanent ErrAuth and leaves the tag; the push token deletes it.
func TestDeleteTagSmartHTTP(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	commit := gitCmd(t, f.work, "rev-parse", "HEAD")
	gitCmd(t, f.work, "tag", "-a", "v1.0.0", "-m", "one", commit)
	gitCmd(t, f.work, "push", "-q", "origin", "v1.0.0")
	url := smartHTTP(t, f)
	ctx := context.Background()

	_, err := httpMirror(t, url, readToken).DeleteTag(ctx, "v1.0.0", commit)
	if !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), readToken) {
		t.Fatalf("DeleteTag with a read-only token = %v, want ErrAuth without the token", err)
	}
	if f.remoteGit(t, "tag", "-l") != "v1.0.0" {
		t.Fatal("tag deleted with a read-only token")
	}
	deleted, err := httpMirror(t, url, goodToken).DeleteTag(ctx, "v1.0.0", commit)
	if err != nil || !deleted {
		t.Fatalf("DeleteTag = %v, %v", deleted, err)
	}
	if tags := f.remoteGit(t, "tag", "-l"); tags != "" {
		t.Fatalf("remote tags = %q", tags)
	}
}
