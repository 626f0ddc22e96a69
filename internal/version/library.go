package version

import (
	"fmt"
	"regexp"
	"strings"
)

// Libraries are versioned with the release tag: the release v1.2.0 publishes
// its libraries as 1.2.0. A Python package index wants PEP 440 versions and
// a Maven repository Maven's; these turn a release version into each.

var pythonPre = regexp.MustCompile(`^(a|alpha|b|beta|c|rc|pre|preview)\.?(0|[1-9][0-9]*)$`)
var pythonDev = regexp.MustCompile(`^dev\.?(0|[1-9][0-9]*)$`)

// Python returns the PEP 440 version of a release version: v1.2.0 → 1.2.0,
// v1.3.0-rc.1 → 1.3.0rc1, v1.3.0-beta.2 → 1.3.0b2, v1.3.0-dev.4 → 1.3.0.dev4.
// Other prereleases have no PEP 440 form: the error says which to use.
func Python(v string) (string, error) {
	if err := Check(v); err != nil {
		return "", err
	}
	core, pre, _ := strings.Cut(strings.TrimPrefix(v, "v"), "-")
	if pre == "" {
		return core, nil
	}
	if m := pythonPre.FindStringSubmatch(pre); m != nil {
		tag := map[string]string{"a": "a", "alpha": "a", "b": "b", "beta": "b", "c": "rc", "rc": "rc", "pre": "rc", "preview": "rc"}[m[1]]
		return core + tag + m[2], nil
	}
	if m := pythonDev.FindStringSubmatch(pre); m != nil {
		return core + ".dev" + m[1], nil
	}
	return "", fmt.Errorf("release %s publishes Python libraries, whose versions follow PEP 440: the prerelease %q has no PEP 440 form; use -alpha.N, -beta.N, -rc.N or -dev.N (e.g. %s-rc.1)", v, pre, "v"+core)
}

// Maven returns the Maven version of a release version: v1.2.0 → 1.2.0,
// v1.3.0-rc.1 → 1.3.0-rc.1.
func Maven(v string) (string, error) {
	if err := Check(v); err != nil {
		return "", err
	}
	return strings.TrimPrefix(v, "v"), nil
}
