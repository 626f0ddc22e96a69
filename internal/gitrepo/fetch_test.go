package gitrepo

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/apperr"
)

func TestResolve(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	first := gitCmd(t, f.work, "rev-parse", "HEAD")
	gitCmd(t, f.work, "tag", "-a", "v0.1.0", "-m", "annotated")
	gitCmd(t, f.work, "tag", "light")
	gitCmd(t, f.work, "push", "-q", "origin", "--tags")
	gitCmd(t, f.work, "checkout", "-q", "-b", "feature/x")
	second := f.commit(t, "second", map[string]string{"README": "hello again\n"})
	gitCmd(t, f.work, "push", "-q", "origin", "feature/x")

	for _, remote := range []struct{ name, url string }{
		{"file URL", "file://" + f.bare},
		{"plain path", f.bare},
	} {
		t.Run(remote.name, func(t *testing.T) {
			m := f.mirror(t, remote.url)
			ctx := context.Background()
			for ref, want := range map[string]string{
				"main":                       first,
				"feature/x":                  second,
				"refs/heads/main":            first,
				"v0.1.0":                     first,
				"refs/tags/v0.1.0":           first,
				"light":                      first,
				first:                        first,
				first[:7]:                    first,
				strings.ToUpper(second[:10]): second,
			} {
				got, err := m.Resolve(ctx, ref)
				if err != nil {
					t.Errorf("Resolve(%q): %v", ref, err)
					continue
				}
				if got != want {
					t.Errorf("Resolve(%q) = %s, want %s", ref, got, want)
				}
			}
			for _, ref := range []string{"nope", "refs/heads/nope", "deadbeefdeadbeef", strings.Repeat("0", 40), "abc"} {
				_, err := m.Resolve(ctx, ref)
				if !errors.Is(err, ErrUnknownRef) {
					t.Errorf("Resolve(%q) = %v, want ErrUnknownRef", ref, err)
					continue
				}
				if !strings.Contains(err.Error(), "project demo") || !strings.Contains(err.Error(), ref) {
					t.Errorf("Resolve(%q) message does not say which project and ref: %v", ref, err)
				}
			}
		})
	}
}

func TestFetchPrunesAndFollowsURLChange(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	gitCmd(t, f.work, "push", "-q", "origin", "main:gone")
	s := &Store{Dir: t.TempDir()}
	m, err := s.Mirror(Remote{Project: "demo", URL: f.bare})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := m.Resolve(ctx, "gone"); err != nil {
		t.Fatalf("Resolve(gone) before deletion: %v", err)
	}
	gitCmd(t, f.work, "push", "-q", "origin", ":gone")
	if _, err := m.Resolve(ctx, "gone"); !errors.Is(err, ErrUnknownRef) {
		t.Fatalf("Resolve(gone) after deletion = %v, want ErrUnknownRef", err)
	}

	// The platform config now names another repository: the mirror follows it
	// and forgets the old one's branches.
	other := newFixture(t, map[string]string{"OTHER": "x\n"})
	gitCmd(t, other.work, "push", "-q", "origin", "main:only-in-other")
	gitCmd(t, f.work, "push", "-q", "origin", "main:only-in-first")
	if _, err := m.Resolve(ctx, "only-in-first"); err != nil {
		t.Fatal(err)
	}
	m2, err := s.Mirror(Remote{Project: "demo", URL: "file://" + other.bare})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Resolve(ctx, "only-in-other"); err != nil {
		t.Fatalf("Resolve(only-in-other) after URL change: %v", err)
	}
	if _, err := m2.Resolve(ctx, "only-in-first"); !errors.Is(err, ErrUnknownRef) {
		t.Fatalf("Resolve(only-in-first) after URL change = %v, want ErrUnknownRef", err)
	}
}

func TestEmptyRemoteAndUnreachableRemote(t *testing.T) {
	root := t.TempDir()
	gitCmd(t, root, "init", "-q", "--bare", "empty.git")
	s := &Store{Dir: t.TempDir()}
	m, err := s.Mirror(Remote{Project: "demo", URL: root + "/empty.git"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Resolve(context.Background(), "main"); !errors.Is(err, ErrUnknownRef) {
		t.Fatalf("Resolve on empty remote = %v, want ErrUnknownRef", err)
	}
	tags, err := m.ListTags(context.Background(), true)
	if err != nil || len(tags) != 0 {
		t.Fatalf("ListTags on empty remote = %v, %v", tags, err)
	}

	// A remote that refuses connections is transient (retried), not permanent.
	m, err = s.Mirror(Remote{Project: "down", URL: "http://127.0.0.1:1/repo.git"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Resolve(context.Background(), "main")
	var perm *apperr.Error
	if err == nil || errors.As(err, &perm) {
		t.Fatalf("Resolve on a down remote = %v, want a transient error", err)
	}
}
