package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/version"
)

// TagRequest describes an annotated release tag.
type TagRequest struct {
	Name    string // release version, e.g. v1.2.3
	Commit  string // full 40-hex commit hash
	Message string // default "Release <Name>"
	Tagger  string // the actor
	// TaggerEmail defaults to <Tagger>@shipline.local.
	TaggerEmail string
	// When is the tag time. The caller chooses it so a retry builds the
	// identical tag object; it is stored in UTC with one-second precision.
	When time.Time
}

// TagResult says what CreateTag did.
type TagResult struct {
	// Created is false when the remote already had the tag on the commit.
	Created bool
	// Object is the hash of the tag on the remote (the tag object, or the commit
	// for a lightweight tag).
	Object string
	// Tagger and When describe the tag on the remote (for a lightweight tag the
	// committer and commit time).
	Tagger string
	When   time.Time
}

// CreateTag creates the annotated tag in the mirror and pushes refs/tags/<Name>
// to the remote. It is idempotent: the tag already on the remote at Commit is
// success with Created false; at another commit it is an ErrTagConflict. A tag
// left in the mirror by an earlier attempt that never reached the remote is
// replaced.
func (m *Mirror) CreateTag(ctx context.Context, req TagRequest) (TagResult, error) {
	if err := m.checkTagRequest(&req); err != nil {
		return TagResult{}, err
	}
	repo, _, unlock, err := m.open(ctx)
	if err != nil {
		return TagResult{}, err
	}
	defer unlock()
	commit := plumbing.NewHash(req.Commit)

	// 1. Is it already on the remote?
	if res, done, err := m.existingTag(ctx, repo, req.Name, commit); done || err != nil {
		return res, err
	}
	// 2. Build the tag object in the mirror (same input, same object).
	tagHash, err := m.writeTag(ctx, repo, req, commit)
	if err != nil {
		return TagResult{}, err
	}
	// 3. Push it. A rejection means someone else pushed the tag meanwhile.
	upToDate, pushErr := m.push(ctx, repo, req.Name)
	if pushErr == nil {
		return TagResult{Created: !upToDate, Object: tagHash.String(), Tagger: req.Tagger, When: req.When}, nil
	}
	var perm *apperr.Error
	if errors.As(pushErr, &perm) {
		return TagResult{}, pushErr
	}
	if res, done, err := m.existingTag(ctx, repo, req.Name, commit); done || err != nil {
		return res, err
	}
	return TagResult{}, pushErr
}

// checkTagRequest validates and normalises req.
func (m *Mirror) checkTagRequest(req *TagRequest) error {
	p := m.remote.Project
	switch {
	case !version.Valid(req.Name):
		return newError(ErrInvalid, nil, fmt.Sprintf("project %s: %v", p, version.Check(req.Name)))
	case len(req.Commit) != 40 || !isHex(req.Commit):
		return newError(ErrInvalid, nil, fmt.Sprintf("project %s: commit %q is not a full 40-hex commit hash: resolve the ref first", p, req.Commit))
	case strings.TrimSpace(req.Tagger) == "":
		return newError(ErrInvalid, nil, fmt.Sprintf("project %s: tag %s has no tagger: every release needs an actor", p, req.Name))
	case req.When.IsZero():
		return newError(ErrInvalid, nil, fmt.Sprintf("project %s: tag %s has no time: the workflow must choose it", p, req.Name))
	}
	req.Commit = strings.ToLower(req.Commit)
	req.Tagger = strings.TrimSpace(req.Tagger)
	if req.TaggerEmail == "" {
		req.TaggerEmail = req.Tagger + "@shipline.local"
	}
	if strings.TrimSpace(req.Message) == "" {
		req.Message = "Release " + req.Name
	}
	req.Message = strings.TrimSpace(req.Message) + "\n"
	req.When = req.When.UTC().Truncate(time.Second)
	return nil
}

// existingTag looks the tag up on the remote. done is true when the remote has
// it: res describes it if it is at commit; otherwise err is an ErrTagConflict.
func (m *Mirror) existingTag(ctx context.Context, repo *git.Repository, name string, commit plumbing.Hash) (res TagResult, done bool, err error) {
	refs, err := m.lsRemote(ctx, repo)
	if err != nil {
		return TagResult{}, false, err
	}
	full := "refs/tags/" + name
	obj, ok := refs[full]
	if !ok {
		return TagResult{}, false, nil
	}
	// Bring the remote's tag into the mirror to peel and describe it.
	if err := m.fetch(ctx, repo, "+"+full+":"+full); err != nil {
		return TagResult{}, true, err
	}
	at, err := m.peelToCommit(repo, obj, name)
	if err != nil {
		return TagResult{}, true, err
	}
	if at != commit {
		return TagResult{}, true, newError(ErrTagConflict, nil, fmt.Sprintf(
			"project %s: tag %s already exists on %s at commit %s; the release asks for %s. Choose a new version, or release %s at commit %s",
			m.remote.Project, name, DisplayURL(m.remote.URL), short(at), short(commit), name, short(at)))
	}
	info, err := describeTag(repo, name, obj)
	if err != nil {
		return TagResult{}, true, err
	}
	return TagResult{Created: false, Object: obj.String(), Tagger: info.Creator, When: info.Created}, true, nil
}

// lsRemote lists the remote's refs (name → hash), like git ls-remote.
func (m *Mirror) lsRemote(ctx context.Context, repo *git.Repository) (map[string]plumbing.Hash, error) {
	creds, err := m.remote.credentials(m.getenv)
	if err != nil {
		return nil, err
	}
	defer creds.close()
	remote, err := repo.Remote(git.DefaultRemoteName)
	if err != nil {
		return nil, fmt.Errorf("mirror remote: %w", err)
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: creds.method})
	if err != nil {
		if errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return map[string]plumbing.Hash{}, nil
		}
		return nil, m.remote.classify("listing of refs", err, creds)
	}
	out := make(map[string]plumbing.Hash, len(refs))
	for _, r := range refs {
		if r.Type() == plumbing.HashReference {
			out[r.Name().String()] = r.Hash()
		}
	}
	return out, nil
}

// writeTag stores the tag object and points refs/tags/<name> at it, replacing
// any tag of that name the mirror kept from an attempt that never got pushed.
func (m *Mirror) writeTag(ctx context.Context, repo *git.Repository, req TagRequest, commit plumbing.Hash) (plumbing.Hash, error) {
	if _, err := repo.CommitObject(commit); err != nil {
		// The commit may be newer than the last fetch.
		if err := m.fetch(ctx, repo); err != nil {
			return plumbing.ZeroHash, err
		}
		if _, err := repo.CommitObject(commit); err != nil {
			return plumbing.ZeroHash, m.unknownRef(req.Commit)
		}
	}
	tag := &object.Tag{
		Name:       req.Name,
		Tagger:     object.Signature{Name: req.Tagger, Email: req.TaggerEmail, When: req.When},
		Message:    req.Message,
		TargetType: plumbing.CommitObject,
		Target:     commit,
	}
	obj := repo.Storer.NewEncodedObject()
	if err := tag.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode tag %s: %w", req.Name, err)
	}
	h, err := repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store tag %s in mirror: %w", req.Name, err)
	}
	ref := plumbing.NewHashReference(refName("refs/tags/"+req.Name), h)
	if err := repo.Storer.SetReference(ref); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("set tag %s in mirror: %w", req.Name, err)
	}
	return h, nil
}

// push sends refs/tags/<name> to the remote, never forcing. upToDate is true
// when the remote already had exactly this tag object.
func (m *Mirror) push(ctx context.Context, repo *git.Repository, name string) (upToDate bool, err error) {
	creds, err := m.remote.credentials(m.getenv)
	if err != nil {
		return false, err
	}
	defer creds.close()
	full := "refs/tags/" + name
	err = repo.PushContext(ctx, &git.PushOptions{
		RemoteName: git.DefaultRemoteName,
		RefSpecs:   []config.RefSpec{config.RefSpec(full + ":" + full)},
		Auth:       creds.method,
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return true, nil
	}
	return false, m.remote.classify("push of tag "+name, err, creds)
}

func short(h plumbing.Hash) string { return h.String()[:7] }
