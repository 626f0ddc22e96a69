package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

func TestReorderArgs(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	for _, tc := range []struct{ in, want []string }{
		{
			in:   []string{"shipline", "release", "v1.0.0", "--project", "demo", "--wait"},
			want: []string{"shipline", "release", "--project", "demo", "--wait", "--", "v1.0.0"},
		},
		{
			in:   []string{"shipline", "--as", "bob", "releases", "--project=demo", "--output", "json"},
			want: []string{"shipline", "--as", "bob", "--output", "json", "releases", "--project=demo"},
		},
		{
			in:   []string{"shipline", "validate", "examples/demo", "--platform", "examples/platform.yaml"},
			want: []string{"shipline", "validate", "--platform", "examples/platform.yaml", "--", "examples/demo"},
		},
		{in: []string{"shipline", "--help"}, want: []string{"shipline", "--help"}},
	} {
		if got := reorderArgs(app, tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("reorderArgs(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestExitCodesForUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"shipline", "release", "1.0", "--project", "demo", "--as", "alice"}, ExitInvalid, "not a release version"},
		{[]string{"shipline", "release", "v1.0.0"}, ExitInvalid, "project"},
		{[]string{"shipline", "release", "v1.0.0", "--project", "demo", "--bogus"}, ExitInvalid, "bogus"},
		{[]string{"shipline", "--output", "yaml", "releases", "--project", "demo"}, ExitInvalid, "--output must be text or json"},
		{[]string{"shipline", "status"}, ExitInvalid, "one workflow ID"},
		{[]string{"shipline", "release", "v1.0.0", "--project", "demo", "--as", "alice", "--message", "fix\n\nShipline-Release: release/demo/v9.0.0"},
			ExitInvalid, "reads as a Shipline trailer"},
	} {
		var out, errb bytes.Buffer
		if code := Main(tc.args, &out, &errb); code != tc.code || !bytes.Contains(errb.Bytes(), []byte(tc.msg)) {
			t.Errorf("%q: exit %d stderr %q; want exit %d mentioning %q", tc.args, code, errb.String(), tc.code, tc.msg)
		}
	}
}

// A missing required flag is bad usage (exit 2), also when the rule is the
// CLI's own: reject needs --comment.
func TestMissingRequiredFlagIsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"shipline", "--as", "carol", "reject", "v1.0.0", "--project", "demo", "--stage", "prod"},
		{"shipline", "--as", "carol", "reject", "v1.0.0", "--project", "demo", "--stage", "prod", "--comment", "  "},
		{"shipline", "--as", "carol", "approve", "v1.0.0", "--project", "demo"},
	} {
		var out, errb bytes.Buffer
		if code := Main(args, &out, &errb); code != ExitInvalid {
			t.Errorf("%q: exit %d (%s), want 2", args, code, errb.String())
		}
	}
}

// Every flag of every command says what it is for.
func TestEveryFlagHasUsage(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	check := func(where string, flags []ucli.Flag) {
		for _, f := range flags {
			if d, ok := f.(ucli.DocGenerationFlag); !ok || strings.TrimSpace(d.GetUsage()) == "" {
				t.Errorf("%s: flag --%s has no description", where, f.Names()[0])
			}
		}
	}
	check("shipline", app.Flags)
	for _, c := range app.Commands {
		check("shipline "+c.Name, c.Flags)
		if c.Usage == "" {
			t.Errorf("command %s has no description", c.Name)
		}
	}
}

// Malformed payload encryption keys are bad input (exit 2), named by their
// variable, before Temporal is dialed; --codec-keys-env names another variable.
func TestMalformedCodecKeysAreInvalid(t *testing.T) {
	t.Setenv("SHIPLINE_CODEC_KEYS", "k1-without-a-key")
	t.Setenv("OTHER_CODEC_KEYS", "k1:tooshort")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"status", "release/demo/v1.0.0"}, "payload encryption keys: SHIPLINE_CODEC_KEYS, entry 1: no ':' between the key ID and the key"},
		{[]string{"--codec-keys-env", "OTHER_CODEC_KEYS", "status", "release/demo/v1.0.0"}, `payload encryption keys: OTHER_CODEC_KEYS, key "k1"`},
	} {
		f := newFake()
		code, _, errOut := shipline(t, f, tc.args...)
		if code != ExitInvalid || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%q: exit %d stderr %q; want exit 2 mentioning %q", tc.args, code, errOut, tc.msg)
		}
		if len(f.calls) > 0 {
			t.Errorf("%q: called Temporal with bad keys: %v", tc.args, f.calls)
		}
	}
}
