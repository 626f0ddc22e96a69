package activities

import (
	"context"
	"testing"
)

// A release without --ref resolves its version's tag when it is on the remote
// (adoption of a tag pushed by hand), else the ref.
func TestResolveRefPrefersTheVersionTag(t *testing.T) {
	r := newTestRemote(t)
	tagged := r.commit(t, map[string]string{"a.txt": "1"})
	runGit(t, r.work, "tag", "-a", "v1.0.0", "-m", "pushed by hand")
	runGit(t, r.work, "push", "-q", "origin", "v1.0.0")
	head := r.commit(t, map[string]string{"a.txt": "2"})
	g := gitActivities(t, r.bare, nil)
	ctx := context.Background()

	out, err := g.ResolveRef(ctx, ResolveRefInput{Project: "demo", Ref: "main", Tag: "v1.0.0"})
	if err != nil || out.Commit != tagged || !out.FromTag {
		t.Fatalf("with the tag on the remote: %+v %v; want %s from the tag", out, err, tagged)
	}
	out, err = g.ResolveRef(ctx, ResolveRefInput{Project: "demo", Ref: "main", Tag: "v2.0.0"})
	if err != nil || out.Commit != head || out.FromTag {
		t.Fatalf("without the tag: %+v %v; want main at %s", out, err, head)
	}
	out, err = g.ResolveRef(ctx, ResolveRefInput{Project: "demo", Ref: "main"})
	if err != nil || out.Commit != head || out.FromTag {
		t.Fatalf("no tag asked: %+v %v", out, err)
	}
}
