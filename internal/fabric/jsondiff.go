package fabric

// The JSON comparison that tells whether a live job holds what Shipline sends.

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"sort"
)

// diffSubset returns where want is not contained in got ("" when it is):
// objects compare only want's keys, arrays element by element (matched by
// task_key / job_cluster_key / environment_key when elements carry one),
// numbers by value.
func diffSubset(path string, want, got any) string {
	switch w := want.(type) {
	case nil:
		return ""
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: deployed an object, live has %s", orRoot(path), show(got))
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
				return fmt.Sprintf("%s: deployed %s, missing live", join(path, k), show(w[k]))
			}
			if d := diffSubset(join(path, k), w[k], gv); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: deployed %d elements, live has %s", orRoot(path), len(w), show(got))
		}
		if key := elementKey(w); key != "" {
			byKey := map[any]any{}
			for _, el := range g {
				if m, ok := el.(map[string]any); ok {
					byKey[m[key]] = el
				}
			}
			for _, el := range w {
				k := el.(map[string]any)[key]
				p := fmt.Sprintf("%s[%s=%v]", path, key, k)
				gv, ok := byKey[k]
				if !ok {
					return fmt.Sprintf("%s: missing live", p)
				}
				if d := diffSubset(p, el, gv); d != "" {
					return d
				}
			}
			return ""
		}
		for i := range w {
			if d := diffSubset(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); d != "" {
				return d
			}
		}
		return ""
	case json.Number:
		if g, ok := got.(json.Number); ok && sameNumber(w, g) {
			return ""
		}
	default:
		if reflect.DeepEqual(want, got) {
			return ""
		}
	}
	return fmt.Sprintf("%s: deployed %s, live %s", orRoot(path), show(want), show(got))
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

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil || len(b) > 80 {
		if err == nil {
			return string(b[:77]) + "..."
		}
		return fmt.Sprint(v)
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
