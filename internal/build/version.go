package build

import "strings"

// Content versions. Every wheel and jar Shipline builds carries a version that
// changes whenever its pipeline directory changes: the local label
// "sl.<first 8 hex digits of the directory's git tree hash>" is added to the
// version the project declares (PEP 440 local version for wheels, e.g.
// 1.0.0+sl.3f9a1c2e; the same "+sl.…" build metadata for jars). A cluster that
// already has ingest_orders 1.0.0 installed cannot keep serving it once the
// pipeline changed, because the new wheel is 1.0.0+sl.<other hash>.
//
// The label depends on the tree hash only, so an unchanged pipeline builds to
// the same name and bytes whoever builds it, and its cache key is unchanged.
// The label is written into the build's private copy of the sources, never
// into the project's repository.

// labelName starts every content label.
const labelName = "sl"

// ContentLabel returns the content label of a pipeline directory with the
// given git tree hash, in the form pip writes it back: "sl.3f9a1c2e". (PEP 440
// reads an all-digit segment as a number, so "sl.00412345" is written
// "sl.412345"; the label is given in that normal form.)
func ContentLabel(treeHash string) string {
	h := strings.ToLower(treeHash)
	if len(h) > 8 {
		h = h[:8]
	}
	if strings.Trim(h, "0123456789") == "" {
		if h = strings.TrimLeft(h, "0"); h == "" {
			h = "0"
		}
	}
	return labelName + "." + h
}

// WithLabel adds label to a declared version: "1.0.0" → "1.0.0+sl.3f9a1c2e";
// a version that already has a local part gets the label as more segments:
// "1.0.0+cpu" → "1.0.0+cpu.sl.3f9a1c2e". An empty version is the label alone.
func WithLabel(version, label string) string {
	switch {
	case version == "":
		return label
	case strings.Contains(version, "+"):
		return version + "." + label
	}
	return version + "+" + label
}

// hasLabel reports whether version carries label as its last local segments.
func hasLabel(version, label string) bool {
	_, local, ok := strings.Cut(version, "+")
	return ok && (local == label || strings.HasSuffix(local, "."+label))
}

// validTreeHash reports whether s is a git object id (hex): the content label
// is read from it.
func validTreeHash(s string) bool {
	return len(s) >= 8 && strings.Trim(strings.ToLower(s), "0123456789abcdef") == ""
}
