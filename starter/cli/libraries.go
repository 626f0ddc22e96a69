package cli

import (
	"fmt"
	"strings"

	"github.com/shipline/shipline/workflows"
)

// printPublishedLibraries prints, in `shipline status` of a release, the
// libraries it published: package, version, index, file and checksum.
func printPublishedLibraries(g *globals, libs map[string]workflows.PublishedLibrary) {
	if len(libs) == 0 {
		return
	}
	fmt.Fprintln(g.stdout, "  libraries published:")
	for _, name := range sortedKeys(libs) {
		l := libs[name]
		note := ""
		if l.AlreadyPublished {
			note = " (already on the index with the same bytes)"
		}
		fmt.Fprintf(g.stdout, "    %-18s %-10s on %-10s %s sha256 %s%s\n", l.Name, l.Version, l.Index, l.File, shortSum(l.SHA256), note)
	}
}

// printReleaseLibraries lists, under the table of `shipline releases`, the
// libraries each release published (nothing when none did).
func printReleaseLibraries(g *globals, rows []releaseRow) {
	var lines []string
	for _, r := range rows {
		if len(r.Libraries) > 0 {
			lines = append(lines, fmt.Sprintf("  %s: %s", r.Version, strings.Join(r.Libraries, ", ")))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(g.stdout, "\nlibraries published:")
	for _, l := range lines {
		fmt.Fprintln(g.stdout, l)
	}
}

// shortSum is the first 12 hex digits of a sha256.
func shortSum(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
