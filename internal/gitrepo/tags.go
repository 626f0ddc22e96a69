package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipline/shipline/internal/version"
)

// Tag is one release tag.
type Tag struct {
	Name      string
	Commit    string // full hash of the commit the tag peels to
	Annotated bool
	Message   string    // annotation without trailing newline; empty for lightweight tags
	Creator   string    // tagger name, else committer name
	Created   time.Time // tagger time, else commit time
}

// ListTags lists the mirror's tags whose names are release versions, newest
// version first. With fetch (or when the mirror is new) it fetches first.
func (m *Mirror) ListTags(ctx context.Context, fetch bool) ([]Tag, error) {
	repo, created, unlock, err := m.open(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if fetch || created {
		if err := m.fetch(ctx, repo); err != nil {
			return nil, err
		}
	}
	iter, err := repo.Tags()
	if err != nil {
		return nil, fmt.Errorf("list tags in mirror: %w", err)
	}
	defer iter.Close()
	var names []string
	hashes := map[string]plumbing.Hash{}
	err = iter.ForEach(func(r *plumbing.Reference) error {
		n := r.Name().Short()
		if version.Valid(n) {
			names = append(names, n)
			hashes[n] = r.Hash()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tags in mirror: %w", err)
	}
	version.Sort(names)
	out := make([]Tag, 0, len(names))
	for _, n := range names {
		t, err := describeTag(repo, n, hashes[n])
		if errors.Is(err, errNotCommit) {
			continue // a release-named tag on a tree or blob is not a release
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

var errNotCommit = errors.New("not a commit")

// describeTag reads the tag named name whose ref holds h.
func describeTag(repo *git.Repository, name string, h plumbing.Hash) (Tag, error) {
	t := Tag{Name: name}
	for range 10 {
		obj, err := repo.Storer.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return Tag{}, fmt.Errorf("read tag %s in mirror: %w", name, err)
		}
		switch obj.Type() {
		case plumbing.TagObject:
			tag, err := object.DecodeTag(repo.Storer, obj)
			if err != nil {
				return Tag{}, fmt.Errorf("read tag %s in mirror: %w", name, err)
			}
			if !t.Annotated { // the outermost annotation describes the tag
				t.Annotated = true
				t.Message = strings.TrimRight(tag.Message, "\n")
				t.Creator = tag.Tagger.Name
				t.Created = tag.Tagger.When
			}
			h = tag.Target
		case plumbing.CommitObject:
			c, err := object.DecodeCommit(repo.Storer, obj)
			if err != nil {
				return Tag{}, fmt.Errorf("read commit of tag %s in mirror: %w", name, err)
			}
			t.Commit = c.Hash.String()
			if !t.Annotated {
				t.Creator = c.Committer.Name
				t.Created = c.Committer.When
			}
			return t, nil
		default:
			return Tag{}, fmt.Errorf("tag %s points to a %s: %w", name, obj.Type(), errNotCommit)
		}
	}
	return Tag{}, errors.New("tag " + name + " is a chain of too many tags")
}
