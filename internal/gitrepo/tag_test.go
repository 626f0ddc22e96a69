package gitrepo

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

var tagTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("CEST", 2*3600))

func tagReq(commit string) TagRequest {
	return TagRequest{Name: "v1.0.0", Commit: commit, Message: "First release", Tagger: "alice", When: tagTime}
}

func TestCreateTag(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	commit := gitCmd(t, f.work, "rev-parse", "HEAD")
	m := f.mirror(t, "file://"+f.bare)
	ctx := context.Background()

	res, err := m.CreateTag(ctx, tagReq(commit))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.Tagger != "alice" || !res.When.Equal(tagTime) {
		t.Fatalf("first CreateTag = %+v", res)
	}
	raw := f.remoteGit(t, "cat-file", "-p", "v1.0.0")
	for _, want := range []string{
		"object " + commit, "type commit", "tag v1.0.0",
		"tagger alice <alice@shipline.local> 1714972089 +0000", "\n\nFirst release",
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("remote tag object lacks %q:\n%s", want, raw)
		}
	}
	if typ := f.remoteGit(t, "cat-file", "-t", "v1.0.0"); typ != "tag" {
		t.Errorf("remote v1.0.0 is a %s, want an annotated tag", typ)
	}
	if got := f.remoteGit(t, "rev-parse", "v1.0.0^{commit}"); got != commit {
		t.Errorf("remote v1.0.0 peels to %s, want %s", got, commit)
	}

	// Again (a retry): success, nothing created, still one tag.
	res, err = m.CreateTag(ctx, tagReq(commit))
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.Tagger != "alice" || !res.When.Equal(tagTime) {
		t.Fatalf("second CreateTag = %+v, want Created=false with the existing tagger and time", res)
	}
	if tags := f.remoteGit(t, "tag", "-l"); tags != "v1.0.0" {
		t.Errorf("remote tags = %q", tags)
	}

	// A fresh mirror (another worker) sees the same.
	res, err = f.mirror(t, f.bare).CreateTag(ctx, tagReq(commit))
	if err != nil || res.Created {
		t.Fatalf("CreateTag from a fresh mirror = %+v, %v", res, err)
	}
}

func TestCreateTagConflict(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	first := gitCmd(t, f.work, "rev-parse", "HEAD")
	second := f.commit(t, "second", map[string]string{"README": "two\n"})
	// Someone tagged v1.0.0 on the first commit by hand.
	gitCmd(t, f.work, "tag", "-a", "v1.0.0", "-m", "by hand", first)
	gitCmd(t, f.work, "push", "-q", "origin", "v1.0.0")

	m := f.mirror(t, "file://"+f.bare)
	_, err := m.CreateTag(context.Background(), tagReq(second))
	if !errors.Is(err, ErrTagConflict) {
		t.Fatalf("CreateTag on a taken version = %v, want ErrTagConflict", err)
	}
	msg := err.Error()
	for _, want := range []string{"v1.0.0 already exists", first[:7], second[:7], "Choose a new version", "file://" + f.bare} {
		if !strings.Contains(msg, want) {
			t.Errorf("conflict message lacks %q: %s", want, msg)
		}
	}
	if got := f.remoteGit(t, "rev-parse", "v1.0.0^{commit}"); got != first {
		t.Errorf("remote tag moved to %s", got)
	}
}

func TestCreateTagLightweightOnSameCommit(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	commit := gitCmd(t, f.work, "rev-parse", "HEAD")
	gitCmd(t, f.work, "tag", "v1.0.0")
	gitCmd(t, f.work, "push", "-q", "origin", "v1.0.0")
	res, err := f.mirror(t, f.bare).CreateTag(context.Background(), tagReq(commit))
	if err != nil || res.Created {
		t.Fatalf("CreateTag over a lightweight tag on the same commit = %+v, %v", res, err)
	}
	if res.Tagger != "Carol Committer" {
		t.Errorf("Tagger = %q, want the committer of a lightweight tag", res.Tagger)
	}
}

// A crash between creating the tag in the mirror and pushing it must not
// block the retry, whether the retry builds the same object or another one.
func TestCreateTagAfterCrashBeforePush(t *testing.T) {
	for _, tc := range []struct {
		name    string
		earlier TagRequest
	}{
		{"same request", TagRequest{}},
		{"different time and message", TagRequest{Message: "older attempt", When: tagTime.Add(-time.Hour)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, map[string]string{"README": "hello\n"})
			commit := gitCmd(t, f.work, "rev-parse", "HEAD")
			m := f.mirror(t, "file://"+f.bare)
			ctx := context.Background()

			earlier := tagReq(commit)
			if tc.earlier.Message != "" {
				earlier.Message, earlier.When = tc.earlier.Message, tc.earlier.When
			}
			if err := m.checkTagRequest(&earlier); err != nil {
				t.Fatal(err)
			}
			repo, _, unlock, err := m.open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.fetch(ctx, repo); err != nil {
				t.Fatal(err)
			}
			if _, err := m.writeTag(ctx, repo, earlier, plumbing.NewHash(commit)); err != nil {
				t.Fatal(err)
			}
			unlock()
			if out := f.remoteGit(t, "tag", "-l"); out != "" {
				t.Fatalf("remote already has tags: %q", out)
			}

			res, err := m.CreateTag(ctx, tagReq(commit))
			if err != nil {
				t.Fatal(err)
			}
			if !res.Created {
				t.Errorf("CreateTag after crash: Created=false, want true")
			}
			raw := f.remoteGit(t, "cat-file", "-p", "v1.0.0")
			if !strings.Contains(raw, "First release") || !strings.Contains(raw, "1714972089") {
				t.Errorf("remote tag is not the retried request's:\n%s", raw)
			}
		})
	}
}

func TestCreateTagConcurrent(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	commit := gitCmd(t, f.work, "rev-parse", "HEAD")
	s := &Store{Dir: t.TempDir()}
	var wg sync.WaitGroup
	results := make([]TagResult, 6)
	errs := make([]error, 6)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half share a Store, half use their own Mirror value: the lock is per path.
			m, err := s.Mirror(Remote{Project: "demo", URL: f.bare})
			if err != nil {
				errs[i] = err
				return
			}
			results[i], errs[i] = m.CreateTag(context.Background(), tagReq(commit))
		}()
	}
	wg.Wait()
	created := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("CreateTag %d: %v", i, errs[i])
		}
		if results[i].Created {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d calls created the tag, want exactly 1", created)
	}
}

// Two mirrors (two workers with separate state) race to push different tag
// objects: the loser sees the push rejected and applies the same rules.
func TestCreateTagPushRejected(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	first := gitCmd(t, f.work, "rev-parse", "HEAD")
	second := f.commit(t, "second", map[string]string{"README": "two\n"})
	m := f.mirror(t, f.bare)
	ctx := context.Background()

	req := tagReq(second)
	if err := m.checkTagRequest(&req); err != nil {
		t.Fatal(err)
	}
	repo, _, unlock, err := m.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := m.fetch(ctx, repo); err != nil {
		t.Fatal(err)
	}
	if _, err := m.writeTag(ctx, repo, req, plumbing.NewHash(second)); err != nil {
		t.Fatal(err)
	}
	// Meanwhile someone pushes v1.0.0 on the first commit.
	gitCmd(t, f.work, "tag", "-a", "v1.0.0", "-m", "racer", first)
	gitCmd(t, f.work, "push", "-q", "origin", "v1.0.0")

	if _, err := m.push(ctx, repo, req.Name); err == nil {
		t.Fatal("push over an existing tag succeeded")
	}
	if _, _, err := m.existingTag(ctx, repo, req.Name, plumbing.NewHash(second)); !errors.Is(err, ErrTagConflict) {
		t.Fatalf("re-check after rejected push = %v, want ErrTagConflict", err)
	}
}

func TestCreateTagInvalid(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	commit := gitCmd(t, f.work, "rev-parse", "HEAD")
	m := f.mirror(t, f.bare)
	for name, mut := range map[string]func(*TagRequest){
		"bad version":  func(r *TagRequest) { r.Name = "1.0" },
		"short commit": func(r *TagRequest) { r.Commit = commit[:8] },
		"no tagger":    func(r *TagRequest) { r.Tagger = " " },
		"no time":      func(r *TagRequest) { r.When = time.Time{} },
	} {
		req := tagReq(commit)
		mut(&req)
		if _, err := m.CreateTag(context.Background(), req); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	req := tagReq(strings.Repeat("ab", 20))
	if _, err := m.CreateTag(context.Background(), req); !errors.Is(err, ErrUnknownRef) {
		t.Errorf("unknown commit: err = %v, want ErrUnknownRef", err)
	}
}

func TestListTags(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	first := gitCmd(t, f.work, "rev-parse", "HEAD")
	gitCmd(t, f.work, "tag", "v0.9.0") // lightweight
	gitCmd(t, f.work, "tag", "not-a-release")
	gitCmd(t, f.work, "push", "-q", "origin", "--tags")
	m := f.mirror(t, f.bare)
	ctx := context.Background()
	if _, err := m.CreateTag(ctx, tagReq(first)); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, f.work, "tag", "v1.1.0-rc.1")
	gitCmd(t, f.work, "push", "-q", "origin", "v1.1.0-rc.1")

	tags, err := m.ListTags(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 2 || tags[0].Name != "v1.0.0" || tags[1].Name != "v0.9.0" {
		t.Fatalf("ListTags without fetch = %+v", tags)
	}
	tags, err = m.ListTags(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range tags {
		names = append(names, tg.Name)
	}
	if strings.Join(names, " ") != "v1.1.0-rc.1 v1.0.0 v0.9.0" {
		t.Fatalf("ListTags = %v", names)
	}
	rel := tags[1]
	if !rel.Annotated || rel.Commit != first || rel.Creator != "alice" || rel.Message != "First release" || !rel.Created.Equal(tagTime) {
		t.Errorf("v1.0.0 = %+v", rel)
	}
	light := tags[2]
	if light.Annotated || light.Commit != first || light.Creator != "Carol Committer" || light.Message != "" ||
		!light.Created.Equal(time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("v0.9.0 = %+v", light)
	}
}

func TestCreateTagOnEmptyRemoteIsUnknownCommit(t *testing.T) {
	root := t.TempDir()
	gitCmd(t, root, "init", "-q", "--bare", "empty.git")
	s := &Store{Dir: t.TempDir()}
	m, err := s.Mirror(Remote{Project: "demo", URL: root + "/empty.git"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.CreateTag(context.Background(), tagReq(strings.Repeat("ab", 20)))
	if !errors.Is(err, ErrUnknownRef) {
		t.Fatalf("CreateTag on an empty remote = %v, want ErrUnknownRef", err)
	}
}
