package platform

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
)

// KindSpec is what the platform config knows of a fabric kind: the
// platform.yaml keys it adds beside the common ones, how it reads and checks
// them, and which job schedulers it runs. Each kind is declared in one file
// of internal/fabric, which registers it (internal/fabric/registry.go), the
// way gocloud.dev's URL openers and database/sql's drivers register
// themselves: nothing here names a kind.
type KindSpec struct {
	Name FabricKind
	// Keys are the kind's own keys; the common ones (kind, owner, variables,
	// pause_schedules, active_runs, active_runs_timeout) are always allowed.
	Keys []string
	// Schedulers are the shipline.yaml job schedulers (databricks, airflow)
	// whose jobs a fabric of this kind runs.
	Schedulers []string
	// Decode reads and checks the kind's keys of one fabric through d,
	// reporting problems with d.Errorf, and returns the fabric's Settings.
	Decode func(d *KindDecoder) any
	// SeesRuns tells whether Shipline can read the runs of jobs on a fabric
	// of this kind (nil: always).
	SeesRuns func(f Fabric) bool
}

// kinds holds the registered fabric kinds, filled while packages initialise.
var kinds = map[FabricKind]KindSpec{}

// RegisterKind adds a fabric kind; it panics on a duplicate name, a
// programming error found by any test.
func RegisterKind(k KindSpec) {
	if _, dup := kinds[k.Name]; dup || k.Name == "" || k.Decode == nil {
		panic(fmt.Sprintf("platform: fabric kind %q registered twice or incomplete", k.Name))
	}
	kinds[k.Name] = k
}

// Kinds lists the registered fabric kinds, sorted.
func Kinds() []FabricKind {
	out := make([]FabricKind, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// LookupKind returns a registered kind.
func LookupKind(k FabricKind) (KindSpec, bool) {
	s, ok := kinds[k]
	return s, ok
}

// kindList renders the registered kinds for messages: "a, b or c".
func kindList() string { return JoinKinds(Kinds()) }

// JoinKinds renders kinds for messages: "a, b or c".
func JoinKinds(ks []FabricKind) string {
	names := make([]string, 0, len(ks))
	for _, k := range ks {
		names = append(names, string(k))
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Runs tells whether the fabric runs jobs of the shipline.yaml scheduler s.
func (f Fabric) Runs(scheduler string) bool {
	k, ok := kinds[f.Kind]
	if !ok {
		return false
	}
	for _, s := range k.Schedulers {
		if s == scheduler {
			return true
		}
	}
	return false
}

// KindsRunning lists the kinds whose fabrics run jobs of scheduler s.
func KindsRunning(scheduler string) []FabricKind {
	var out []FabricKind
	for _, k := range Kinds() {
		if (Fabric{Kind: k}).Runs(scheduler) {
			out = append(out, k)
		}
	}
	return out
}

// KindDecoder reads one fabric's kind-specific keys for its KindSpec.Decode.
// Every error names the key's file:line:col.
type KindDecoder struct {
	p     *parser
	name  string
	kind  FabricKind
	field string
	at    *yaml.Node            // the fabric's name, for errors about a missing key
	keys  map[string]*yaml.Node // key nodes
	vals  map[string]*yaml.Node // value nodes
}

// Fabric is the fabric's name in platform.yaml.
func (d *KindDecoder) Fabric() string { return d.name }

// Has tells whether the fabric sets key (any key, common ones included).
func (d *KindDecoder) Has(key string) bool { return d.keys[key] != nil }

// Errorf reports a problem at key's value (at the fabric's name when key is
// not set).
func (d *KindDecoder) Errorf(key, fix, format string, args ...any) {
	n := d.vals[key]
	if n == nil {
		n = d.at
	}
	d.p.Errorf(n, fix, format, args...)
}

// Require reports key missing, with fix.
func (d *KindDecoder) Require(key, fix string) bool {
	if d.keys[key] != nil {
		return true
	}
	d.p.Errorf(d.at, fix, "%s fabric %q has no %s", d.kind, d.name, key)
	return false
}

// String reads key as a non-empty string; ok is false (and the problem
// reported) when it is set but is not one, false without a report when unset.
func (d *KindDecoder) String(key, fix string) (string, bool) {
	v := d.vals[key]
	if v == nil {
		return "", false
	}
	s, ok := d.p.String(v, d.field+"."+key)
	if ok && s == "" || !ok && yamlnode.IsNull(v) {
		d.p.Errorf(d.keys[key], fix, "%s.%s is empty", d.field, key)
		return "", false
	}
	return s, ok
}

// Path reads key as a local directory, resolved against platform.yaml's
// directory (`~/` is the worker user's home).
func (d *KindDecoder) Path(key string) string {
	s, ok := d.String(key, "give a directory (relative paths resolve against this file's directory)")
	if !ok {
		return ""
	}
	return d.p.localPath(s)
}

// Env reads key as the NAME of an environment variable holding a secret.
func (d *KindDecoder) Env(key, example string) string {
	v := d.vals[key]
	if v == nil {
		return ""
	}
	s, _ := d.p.env(v, d.field+"."+key, example)
	return s
}

// HTTPURL reads key as an http(s) URL without a trailing slash; fix says
// what to write instead.
func (d *KindDecoder) HTTPURL(key, fix string) string {
	s, ok := d.String(key, fix)
	if !ok {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.Errorf(key, fix, "%s.%s %q is not an http(s) URL", d.field, key, s)
		return ""
	}
	if u.User != nil {
		d.Errorf(key, "remove the credentials from the URL; name environment variables holding them instead",
			"%s.%s holds credentials: secrets never go in this file", d.field, key)
		return ""
	}
	return strings.TrimRight(s, "/")
}

// BaseDir is the directory relative paths resolve against.
func (d *KindDecoder) BaseDir() string { return d.p.baseDir }

// Later runs check once every fabric is read, for references from one
// fabric to another; its errorf reports at the named key of this fabric.
func (d *KindDecoder) Later(check func(c *Config, errorf func(key, fix, format string, args ...any))) {
	d.p.later = append(d.p.later, func() { check(d.p.c, d.Errorf) })
}
