package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/shipline/shipline/internal/version"
)

// DeleteTag deletes the release tag refs/tags/<name> on the remote and in the
// mirror, but only while the remote's tag peels to expectCommit: a tag that
// points elsewhere is an ErrTagConflict ("tag moved; not deleting") and is left
// alone. A tag absent from the remote is deleted=false without error, so a
// retry after a lost answer is success.
//
// The delete is race-free: the push names the tag object it checked, so the
// remote refuses it if the tag was moved in between (receive-pack compares the
// old value), and a tag re-pointed before the push is caught by
// RequireRemoteRefs and checked again.
func (m *Mirror) DeleteTag(ctx context.Context, name, expectCommit string) (deleted bool, err error) {
	p := m.remote.Project
	if !version.Valid(name) {
		return false, newError(ErrInvalid, nil, fmt.Sprintf("project %s: %v", p, version.Check(name)))
	}
	if len(expectCommit) != 40 || !isHex(expectCommit) {
		return false, newError(ErrInvalid, nil, fmt.Sprintf(
			"project %s: commit %q is not a full 40-hex commit hash: name the commit the release tag %s must point to", p, expectCommit, name))
	}
	want := plumbing.NewHash(strings.ToLower(expectCommit))
	repo, _, unlock, err := m.open(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	full := "refs/tags/" + name

	for attempt := 1; ; attempt++ {
		refs, err := m.lsRemote(ctx, repo)
		if err != nil {
			return false, err
		}
		obj, ok := refs[full]
		if !ok {
			return false, m.dropMirrorTag(repo, full)
		}
		// Bring the remote's tag into the mirror to peel it.
		if err := m.fetch(ctx, repo, "+"+full+":"+full); err != nil {
			return false, err
		}
		at, err := m.peelToCommit(repo, obj, name)
		if err != nil {
			return false, err
		}
		if at != want {
			return false, newError(ErrTagConflict, nil, fmt.Sprintf(
				"project %s: tag %s on %s points to commit %s, not to the release's commit %s: tag moved; not deleting. Delete or fix it by hand if it is garbage",
				p, name, DisplayURL(m.remote.URL), short(at), short(want)))
		}
		gone, moved, err := m.pushDelete(ctx, repo, full, obj)
		if err != nil {
			return false, err
		}
		if moved && attempt < 3 {
			continue // changed between the listing and the push: look again
		}
		if moved {
			return false, fmt.Errorf("project %s: tag %s keeps changing on %s while being deleted; will retry", p, name, DisplayURL(m.remote.URL))
		}
		if err := m.dropMirrorTag(repo, full); err != nil {
			return false, err
		}
		return !gone, nil
	}
}

// pushDelete pushes the deletion of ref, requiring the remote to still hold
// obj. gone: the remote no longer had the ref; moved: it held something else.
func (m *Mirror) pushDelete(ctx context.Context, repo *git.Repository, ref string, obj plumbing.Hash) (gone, moved bool, err error) {
	creds, err := m.remote.credentials(m.getenv)
	if err != nil {
		return false, false, err
	}
	defer creds.close()
	err = repo.PushContext(ctx, &git.PushOptions{
		RemoteName:        git.DefaultRemoteName,
		RefSpecs:          []config.RefSpec{config.RefSpec(":" + ref)},
		RequireRemoteRefs: []config.RefSpec{config.RefSpec(obj.String() + ":" + ref)},
		Auth:              creds.method,
	})
	switch {
	case err == nil:
		return false, false, nil
	case errors.Is(err, git.NoErrAlreadyUpToDate):
		return true, false, nil // nothing to delete: someone else did
	}
	// go-git's RequireRemoteRefs and receive-pack's stale-ref refusals are
	// plain errors; tell them by their text.
	msg := err.Error()
	switch {
	case strings.Contains(msg, "required to be") && strings.Contains(msg, "but is absent"):
		return true, false, nil
	case strings.Contains(msg, "required to be"),
		strings.Contains(msg, "stale info"), strings.Contains(msg, "failed to lock"),
		strings.Contains(msg, "cannot lock ref"), strings.Contains(msg, "reference has changed"):
		return false, true, nil
	}
	return false, false, m.remote.classify("delete of tag "+strings.TrimPrefix(ref, "refs/tags/"), err, creds)
}

// dropMirrorTag removes ref from the mirror, if it is there.
func (m *Mirror) dropMirrorTag(repo *git.Repository, ref string) error {
	if err := repo.Storer.RemoveReference(refName(ref)); err != nil && !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return fmt.Errorf("remove %s from the mirror: %w", ref, err)
	}
	return nil
}
