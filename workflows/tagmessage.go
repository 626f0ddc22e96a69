package workflows

import (
	"fmt"
	"regexp"
	"strings"
)

// A release tag's message is the user's text, a blank line, and the trailer
// block Shipline writes last (TagTrailer + the release's workflow ID). User text
// may never hold a line that reads as a Shipline trailer, and a listing trusts
// only the last paragraph, so no message can make a tag pass for Shipline's or
// say something on Shipline's behalf.

// trailerLine matches a line that reads as a Shipline trailer or field
// ("Shipline-Release: …", "shipline-approved-by : …"), however it is indented.
var trailerLine = regexp.MustCompile(`(?i)^[\s>]*shipline-[A-Za-z0-9_-]*\s*:`)

// CheckTagMessage refuses a release message holding a line that reads as a
// Shipline trailer: only Shipline writes those.
func CheckTagMessage(msg string) error {
	for i, line := range messageLines(msg) {
		if trailerLine.MatchString(line) {
			return fmt.Errorf("the release message's line %d %q reads as a Shipline trailer, which only Shipline writes; reword it (e.g. without the \"Shipline-\" prefix before a colon)", i+1, strings.TrimSpace(line))
		}
	}
	return nil
}

// DefaultTagMessage is the message of a release made without one.
func DefaultTagMessage(project, version string) string {
	return fmt.Sprintf("Release %s of %s", version, project)
}

// TagMessage is the annotated tag's message: the user's text followed by
// Shipline's trailer block.
func TagMessage(msg, project, version string) string {
	return msg + "\n\n" + TagTrailer + ReleaseID(project, version) + "\n"
}

// IsShiplineTag reports whether a tag message carries Shipline's trailer block
// for this release: its last paragraph must be Shipline trailers only, one of
// them naming the release. Trailer-like text elsewhere counts for nothing.
func IsShiplineTag(message, project, version string) bool {
	body := strings.TrimRight(strings.ReplaceAll(message, "\r\n", "\n"), " \t\r\n")
	i := strings.LastIndex(body, "\n\n")
	if i < 0 {
		return false // one paragraph: Shipline always writes text, then its block
	}
	want := TagTrailer + ReleaseID(project, version)
	found := false
	for _, line := range strings.Split(body[i+2:], "\n") {
		if !trailerLine.MatchString(line) || !strings.HasPrefix(strings.ToLower(line), "shipline-") {
			return false
		}
		found = found || line == want
	}
	return found
}

// messageLines splits text on every line break git or a terminal honours,
// keeping empty lines so numbers match what the user typed.
func messageLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Split(strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\v', '\f', '\u0085', '\u2028', '\u2029':
			return '\n'
		}
		return r
	}, s), "\n")
}
