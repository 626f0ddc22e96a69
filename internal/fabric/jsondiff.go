package fabric

// The JSON comparison that tells whether a live job holds what Shipline sends.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strings"
)

// diffSubset returns where want is not contained in got ("" when it is):
// objects compare only want's keys, arrays element by element (matched by
// task_key / job_cluster_key / environment_key when elements carry one),
// numbers by value. Every difference is named, in key order, joined by "; "
// (the first maxDiffs, then how many more): a plan that shows the drift
// changes whenever the live job changes again.
func diffSubset(path string, want, got any) string {
	var d differences
	d.walk(path, want, got)
	if len(d.found) == 0 {
		return ""
	}
	out := strings.Join(d.found, "; ")
	if len(d.rest) > 0 {
		// The ones not named still change the text (and a plan's hash).
		sum := sha256.Sum256([]byte(strings.Join(d.rest, "\n")))
		out += fmt.Sprintf("; and %d more differences (sha256 %s)", len(d.rest), hex.EncodeToString(sum[:])[:12])
	}
	return out
}

// maxDiffs is how many differences diffSubset names.
const maxDiffs = 20

// differences collects the differences a walk finds.
type differences struct {
	found []string
	rest  []string // past maxDiffs
}

func (d *differences) add(format string, args ...any) {
	if len(d.found) < maxDiffs {
		d.found = append(d.found, fmt.Sprintf(format, args...))
		return
	}
	d.rest = append(d.rest, fmt.Sprintf(format, args...))
}

func (d *differences) walk(path string, want, got any) {
	switch w := want.(type) {
	case nil:
		return
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			d.add("%s: deployed an object, live has %s", orRoot(path), show(got))
			return
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if w[k] == nil {
				continue
			}
			gv, ok := g[k]
			if !ok {
				d.add("%s: deployed %s, missing live", join(path, k), show(w[k]))
				continue
			}
			d.walk(join(path, k), w[k], gv)
		}
		return
	case []any:
		g, ok := got.([]any)
		if key := elementKey(w); ok && key != "" {
			byKey := map[any]any{}
			for _, el := range g {
				if m, ok := el.(map[string]any); ok {
					byKey[m[key]] = el
				}
			}
			wanted := map[any]bool{}
			for _, el := range w {
				k := el.(map[string]any)[key]
				wanted[k] = true
				p := fmt.Sprintf("%s[%s=%v]", path, key, k)
				gv, ok := byKey[k]
				if !ok {
					d.add("%s: missing live", p)
					continue
				}
				d.walk(p, el, gv)
			}
			var extra []string // in key order, whatever order the live job lists them in
			for _, el := range g {
				m, _ := el.(map[string]any)
				if k := m[key]; !wanted[k] {
					extra = append(extra, fmt.Sprintf("%s[%s=%v]: not deployed, live has %s", path, key, k, show(el)))
				}
			}
			sort.Strings(extra)
			for _, e := range extra {
				d.add("%s", e)
			}
			return
		}
		if !ok || len(g) != len(w) {
			d.add("%s: deployed %d elements, live has %s", orRoot(path), len(w), show(got))
			return
		}
		for i := range w {
			d.walk(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])
		}
		return
	case json.Number:
		if g, ok := got.(json.Number); ok && sameNumber(w, g) {
			return
		}
	default:
		if reflect.DeepEqual(want, got) {
			return
		}
	}
	d.add("%s: deployed %s, live %s", orRoot(path), show(want), show(got))
}

func elementKey(list []any) string {
	for _, key := range []string{"task_key", "job_cluster_key", "environment_key"} {
		all := len(list) > 0
		for _, el := range list {
			m, ok := el.(map[string]any)
			all = all && ok && m[key] != nil
		}
		if all {
			return key
		}
	}
	return ""
}

func sameNumber(a, b json.Number) bool {
	if a == b {
		return true
	}
	x, ok1 := new(big.Float).SetString(string(a))
	y, ok2 := new(big.Float).SetString(string(b))
	return ok1 && ok2 && x.Cmp(y) == 0
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func orRoot(p string) string {
	if p == "" {
		return "settings"
	}
	return p
}

// show renders a JSON value for a difference; a long one is cut, with the
// checksum of the whole so that two long values never read the same.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		sum := sha256.Sum256(b)
		return fmt.Sprintf("%s... (%d bytes, sha256 %s)", strings.ToValidUTF8(string(b[:60]), ""), len(b), hex.EncodeToString(sum[:])[:12])
	}
	return string(b)
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
