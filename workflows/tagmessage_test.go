package workflows

import (
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/apperr"
)

func TestCheckTagMessage(t *testing.T) {
	for _, msg := range []string{
		"Hotfix\n\nShipline-Release: release/demo/v9.9.9",
		"Shipline-Release: release/demo/v1.0.0",
		"  shipline-release : release/demo/v1.0.0",
		"ok\rShipline-Actor: dave",
		"ok\u2028Shipline-Approved-By: carol",
		"> Shipline-Release: quoted",
	} {
		if err := CheckTagMessage(msg); err == nil || !strings.Contains(err.Error(), "reads as a Shipline trailer") {
			t.Errorf("CheckTagMessage(%q) = %v, want a refusal", msg, err)
		}
	}
	for _, msg := range []string{"", "First release", "Mentions Shipline-Release without a colon", "see: Shipline-Release: is written by shipline"} {
		if err := CheckTagMessage(msg); err != nil {
			t.Errorf("CheckTagMessage(%q) = %v, want ok", msg, err)
		}
	}
}

func TestIsShiplineTagTrustsOnlyTheLastTrailerBlock(t *testing.T) {
	id := TagTrailer + ReleaseID("demo", "v1.0.0")
	for _, c := range []struct {
		msg  string
		want bool
	}{
		{strings.TrimSuffix(TagMessage("First release", "demo", "v1.0.0"), "\n"), true},
		{"First release\n\n\n" + id, true}, // a message that ended with a newline
		{TagMessage(DefaultTagMessage("demo", "v1.0.0"), "demo", "v1.0.0"), true},
		// A tag made with plain git, its trailer-looking line in the middle.
		{"made by hand\n\n" + id + "\n\nmore text", false},
		// The trailer alone, or with other trailers in Shipline's block.
		{id, false},
		{"text\n\nSigned-off-by: mallory\n" + id, false},
		{"text\n\n" + id + "\nnot a trailer", false},
		// Another release's trailer.
		{TagMessage("x", "demo", "v2.0.0"), false},
		{TagMessage("x", "other", "v1.0.0"), false},
	} {
		if got := IsShiplineTag(c.msg, "demo", "v1.0.0"); got != c.want {
			t.Errorf("IsShiplineTag(%q) = %v, want %v", c.msg, got, c.want)
		}
	}
}

// A release whose message forges a trailer is refused before any git step.
func TestReleaseRefusesAForgedTrailerInItsMessage(t *testing.T) {
	e := newReleaseEnv(t, activities.ProjectSettings{Admins: []string{"alice"}})
	e.ExecuteWorkflow(Release, ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "alice",
		Message: "Hotfix\n\nShipline-Release: release/demo/v0.9.0"})
	var app *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &app) || app.Type() != apperr.InvalidInput || !strings.Contains(app.Message(), "Shipline trailer") {
		t.Fatalf("release ended with %v, want %s naming the trailer", err, apperr.InvalidInput)
	}
	if e.tagCall.in.Version != "" {
		t.Fatalf("a tag was created: %+v", e.tagCall.in)
	}
}
