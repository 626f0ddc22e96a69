package gitrepo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

func refName(s string) plumbing.ReferenceName { return plumbing.ReferenceName(s) }

// Fetch updates the mirror from the remote: every branch and tag, forced,
// pruning refs the remote no longer has.
func (m *Mirror) Fetch(ctx context.Context) error {
	repo, _, unlock, err := m.open(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return m.fetch(ctx, repo)
}

// fetch runs with the lock held.
func (m *Mirror) fetch(ctx context.Context, repo *git.Repository, specs ...string) error {
	creds, err := m.remote.credentials(m.getenv)
	if err != nil {
		return err
	}
	defer creds.close()
	opts := &git.FetchOptions{
		RemoteName: git.DefaultRemoteName,
		RefSpecs:   mirrorRefSpecs,
		Auth:       creds.method,
		Tags:       git.NoTags,
		Force:      true,
		Prune:      len(specs) == 0,
	}
	if len(specs) > 0 {
		opts.RefSpecs = nil
		for _, s := range specs {
			opts.RefSpecs = append(opts.RefSpecs, config.RefSpec(s))
		}
	}
	err = repo.FetchContext(ctx, opts)
	if err == nil || errors.Is(err, git.NoErrAlreadyUpToDate) || errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return nil
	}
	return m.remote.classify("fetch", err, creds)
}

// Resolve fetches the remote and returns the full hash of the commit ref names:
// a branch, a tag, a full ref name (refs/...), or a commit hash (full, or
// abbreviated to at least 7 hex digits). Tags are peeled to their commit. An
// unknown or ambiguous ref is an ErrUnknownRef.
func (m *Mirror) Resolve(ctx context.Context, ref string) (string, error) {
	repo, _, unlock, err := m.open(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := m.fetch(ctx, repo); err != nil {
		return "", err
	}
	h, err := m.resolve(repo, ref)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func (m *Mirror) resolve(repo *git.Repository, ref string) (plumbing.Hash, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return plumbing.ZeroHash, newError(ErrInvalid, nil, fmt.Sprintf("project %s: no ref given: name a branch, tag or commit", m.remote.Project))
	}
	if why := CheckRefName(ref); why != "" {
		return plumbing.ZeroHash, newError(ErrUnknownRef, nil, fmt.Sprintf("project %s: %q is not a branch, tag or commit (not a valid ref name: %s)", m.remote.Project, shorten(ref), why))
	}
	// Git's order: refs/<ref>, refs/tags/<ref>, refs/heads/<ref>.
	candidates := []string{"refs/tags/" + ref, "refs/heads/" + ref}
	if strings.HasPrefix(ref, "refs/") {
		candidates = []string{ref}
	}
	for _, c := range candidates {
		r, err := repo.Reference(refName(c), true)
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			continue
		}
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read ref %s in mirror: %w", c, err)
		}
		return m.peelToCommit(repo, r.Hash(), ref)
	}
	if isHex(ref) && len(ref) >= 7 && len(ref) <= 40 {
		return m.resolveHash(repo, strings.ToLower(ref))
	}
	return plumbing.ZeroHash, m.unknownRef(ref)
}

func (m *Mirror) unknownRef(ref string) error {
	if len(ref) == 40 && isHex(ref) {
		return newError(ErrUnknownRef, nil, fmt.Sprintf(
			"project %s: commit %s is not on any branch or tag of %s: push it (or resolve the ref again if history was rewritten)",
			m.remote.Project, ref, DisplayURL(m.remote.URL)))
	}
	return newError(ErrUnknownRef, nil, fmt.Sprintf(
		"project %s: ref %q is not a branch, tag or commit of %s: push it first, or check the spelling (branch names are case-sensitive; commit hashes need at least 7 hex digits)",
		m.remote.Project, ref, DisplayURL(m.remote.URL)))
}

// resolveHash finds the commit with a full or abbreviated hash.
func (m *Mirror) resolveHash(repo *git.Repository, prefix string) (plumbing.Hash, error) {
	if len(prefix) == 40 {
		return m.peelToCommit(repo, plumbing.NewHash(prefix), prefix)
	}
	iter, err := repo.CommitObjects()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("list commits in mirror: %w", err)
	}
	defer iter.Close()
	var found []plumbing.Hash
	err = iter.ForEach(func(c *object.Commit) error {
		if strings.HasPrefix(c.Hash.String(), prefix) {
			found = append(found, c.Hash)
		}
		return nil
	})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("list commits in mirror: %w", err)
	}
	switch len(found) {
	case 0:
		return plumbing.ZeroHash, m.unknownRef(prefix)
	case 1:
		return found[0], nil
	default:
		return plumbing.ZeroHash, newError(ErrUnknownRef, nil, fmt.Sprintf(
			"project %s: abbreviated commit %s is ambiguous (%d commits of %s start with it): give more hex digits",
			m.remote.Project, prefix, len(found), DisplayURL(m.remote.URL)))
	}
}

// peelToCommit follows tag objects from h to a commit.
func (m *Mirror) peelToCommit(repo *git.Repository, h plumbing.Hash, ref string) (plumbing.Hash, error) {
	for range 10 {
		obj, err := repo.Storer.EncodedObject(plumbing.AnyObject, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return plumbing.ZeroHash, m.unknownRef(ref)
		}
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read object %s in mirror: %w", h, err)
		}
		switch obj.Type() {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TagObject:
			tag, err := object.DecodeTag(repo.Storer, obj)
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("read tag %s in mirror: %w", h, err)
			}
			h = tag.Target
		default:
			return plumbing.ZeroHash, newError(ErrUnknownRef, nil, fmt.Sprintf(
				"project %s: ref %q points to a %s, not a commit: name a branch, tag or commit",
				m.remote.Project, ref, obj.Type()))
		}
	}
	return plumbing.ZeroHash, newError(ErrUnknownRef, nil, fmt.Sprintf("project %s: ref %q is a chain of too many tags", m.remote.Project, ref))
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s + strings.Repeat("0", len(s)%2))
	return err == nil
}

// CheckRefName applies git's check-ref-format rules to a ref a user gave,
// returning why it is invalid ("" when it is fine).
func CheckRefName(ref string) string {
	switch {
	case len(ref) > 255:
		return "it is longer than 255 characters"
	case strings.HasPrefix(ref, "-"):
		return "it starts with '-'"
	case strings.Contains(ref, ".."):
		return "it contains '..'"
	case strings.Contains(ref, "@{"):
		return "it contains '@{'"
	case strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/") || strings.Contains(ref, "//"):
		return "it has an empty path component"
	case strings.HasSuffix(ref, ".") || strings.HasSuffix(ref, ".lock"):
		return "it ends with '.' or '.lock'"
	}
	for _, r := range ref {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return fmt.Sprintf("it contains %q", r)
		}
	}
	for _, part := range strings.Split(ref, "/") {
		if strings.HasPrefix(part, ".") {
			return "a path component starts with '.'"
		}
	}
	return ""
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
