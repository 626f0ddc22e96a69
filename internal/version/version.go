// Package version checks and orders release versions: git tags of the form
// vMAJOR.MINOR.PATCH with an optional -prerelease part (and no build metadata).
package version

import (
	"fmt"
	"regexp"
	"sort"

	"golang.org/x/mod/semver"
)

var pattern = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// MaxLen bounds a version's length (it becomes part of tags, workflow IDs and paths).
const MaxLen = 64

// Valid reports whether v is a release version.
func Valid(v string) bool { return len(v) <= MaxLen && pattern.MatchString(v) && semver.IsValid(v) }

// Check returns a user-facing error when v is not a release version.
func Check(v string) error {
	if Valid(v) {
		return nil
	}
	if len(v) > MaxLen {
		return fmt.Errorf("version %.20q… is not a release version: it has %d characters, at most %d are allowed", v, len(v), MaxLen)
	}
	return fmt.Errorf("version %q is not a release version: use vMAJOR.MINOR.PATCH with an optional -prerelease, for example v1.2.0 or v1.3.0-rc.1", v)
}

// Compare orders two valid versions by semver precedence (-1, 0, +1).
func Compare(a, b string) int { return semver.Compare(a, b) }

// Prerelease reports whether v carries a -prerelease part.
func Prerelease(v string) bool { return semver.Prerelease(v) != "" }

// Latest returns the highest version that is not a prerelease, or the highest
// prerelease when there are only prereleases; "" for an empty list.
func Latest(vs []string) string {
	best, bestPre := "", ""
	for _, v := range vs {
		if !Valid(v) {
			continue
		}
		if Prerelease(v) {
			if bestPre == "" || Compare(v, bestPre) > 0 {
				bestPre = v
			}
		} else if best == "" || Compare(v, best) > 0 {
			best = v
		}
	}
	if best != "" {
		return best
	}
	return bestPre
}

// Sort orders versions from newest to oldest.
func Sort(vs []string) {
	sort.SliceStable(vs, func(i, j int) bool { return Compare(vs[i], vs[j]) > 0 })
}
