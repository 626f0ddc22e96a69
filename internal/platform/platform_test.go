// The platform config is read with the fabric kinds internal/fabric registers.
package platform_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/internal/fabric"
	. "github.com/shipline/shipline/internal/platform"
)

var update = flag.Bool("update", false, "rewrite the golden .want files")

// baseDir stands for the platform file's directory in golden outputs.
const baseDir = "/etc/shipline"

// TestGolden parses each testdata/*.yaml and compares the diagnostics (and,
// for a valid file, the resulting config) with testdata/*.want.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, diags := Parse("platform.yaml", data, baseDir)
			var got string
			if len(diags) > 0 {
				// The list of every registered kind grows with each kind: the
				// goldens hold it as <kinds> (TestKindsListed checks it).
				got = strings.ReplaceAll(diags.Error(), JoinKinds(Kinds()), "<kinds>") + "\n"
			}
			if !diags.HasErrors() {
				js, err := json.MarshalIndent(cfg, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got += string(js) + "\n"
			}
			want := strings.TrimSuffix(f, ".yaml") + ".want"
			if *update {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			w, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(w) {
				t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", want, got, w)
			}
		})
	}
}

// TestKindsListed: the kinds internal/fabric registers are the ones a
// platform.yaml may name, and messages list them all.
func TestKindsListed(t *testing.T) {
	_, diags := Parse("platform.yaml", []byte("teams: {dev: {members: [a]}}\nfabrics: {x: {kind: nope, owner: dev}}\n"), baseDir)
	for _, k := range []FabricKind{fabric.KindLocal, fabric.KindDatabricks, fabric.KindAirflow} {
		if !strings.Contains(diags.Error(), string(k)) {
			t.Errorf("kind %s is not listed in %s", k, diags.Error())
		}
		if _, ok := LookupKind(k); !ok {
			t.Errorf("kind %s is not registered", k)
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg, diags := Parse("platform.yaml", []byte("teams: {dev: {members: [a]}}\nprojects: {p: {repo: x, admins: [a]}}\n"+
		"promotion: {stages: [{name: s, fabrics: [], approval: {team: dev}}]}\n"), "/srv")
	if len(diags) != 1 { // the stage has no fabrics
		t.Fatalf("diags: %v", diags)
	}
	// Address and namespace stay empty when the file does not write them: their
	// defaults apply when the worker dials, after a Temporal profile's.
	if cfg.Temporal != (Temporal{TaskQueue: "shipline"}) {
		t.Errorf("temporal = %+v", cfg.Temporal)
	}
	if cfg.StateDir != filepath.Join("/srv", ".shipline") {
		t.Errorf("state_dir = %q", cfg.StateDir)
	}
	p := cfg.Projects["p"]
	if !p.AutoDeploy || p.SelectiveJobs || p.Name != "p" || p.Repo != filepath.Join("/srv", "x") {
		t.Errorf("project = %+v", p)
	}
	a := cfg.Promotion.Stages[0].Approval
	if a == nil || a.Required != 1 || !a.SelfApproval || a.Timeout != 0 {
		t.Errorf("approval = %+v", a)
	}
}

func TestLoadResolvesAgainstFileDir(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "conf")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sub, "platform.yaml")
	src := "state_dir: state\nstorage: file://./shared/../store\nteams: {dev: {members: [a]}}\n" +
		"projects: {p: {repo: ../repos/p, admins: [a], ssh_key_file: keys/id}, q: {repo: 'git@host:q.git', admins: [a]}}\n" +
		"fabrics: {l: {kind: local, owner: dev, root: fab}, af: {kind: airflow, owner: dev, dags_folder: /abs/dags/}}\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := Load(path)
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	for got, want := range map[string]string{
		cfg.Path:                     path,
		cfg.StateDir:                 filepath.Join(sub, "state"),
		cfg.Storage:                  "file://" + filepath.ToSlash(filepath.Join(sub, "store")),
		cfg.Projects["p"].Repo:       filepath.Join(dir, "repos", "p"),
		cfg.Projects["p"].SSHKeyFile: filepath.Join(sub, "keys", "id"),
		cfg.Projects["q"].Repo:       "git@host:q.git",
		cfg.Fabrics["l"].Settings.(fabric.LocalSettings).Root:          filepath.Join(sub, "fab"),
		cfg.Fabrics["af"].Settings.(fabric.AirflowSettings).DagsFolder: "/abs/dags",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if _, diags := Load(filepath.Join(dir, "missing.yaml")); !diags.HasErrors() {
		t.Error("missing file accepted")
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1h": time.Hour, "3d": 72 * time.Hour, "1d12h": 36 * time.Hour, "90m": 90 * time.Minute, "0s": 0,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-1h", "-2d", "1w", "d", "3", ""} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

func TestTeams(t *testing.T) {
	c := &Config{Teams: map[string]Team{"b": {Members: []string{"x", "y"}}, "a": {Members: []string{"x"}}}}
	if got := c.TeamOf("x"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("TeamOf(x) = %v", got)
	}
	if got := c.TeamOf("z"); got != nil {
		t.Errorf("TeamOf(z) = %v", got)
	}
	if !c.IsMember("b", "y") || c.IsMember("a", "y") || c.IsMember("nope", "x") || c.IsMember("a", "") {
		t.Error("IsMember")
	}
}

// TestUserKeyFiles: users.<u>.key_files reads OpenSSH public key lines from
// files next to the platform file; an unreadable or keyless file is an error
// naming the list entry and telling how to create it.
func TestUserKeyFiles(t *testing.T) {
	dir := t.TempDir()
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDwjr7Fs2eBgmoHjQ4wPXfHOlbWRn5Ph5rjd4ngg8aHz alice@demo"
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "alice.pub"), []byte("# alice's laptop\n\n"+key+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "empty.pub"), []byte("# nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := "teams: {dev: {members: [alice]}}\nrequire_signatures: true\n"
	cfg, diags := Parse("platform.yaml", []byte(base+"users: {alice: {key_files: [keys/alice.pub]}}\n"), dir)
	if len(diags) != 0 {
		t.Fatalf("diags: %v", diags)
	}
	if got := cfg.Users["alice"].Keys; !reflect.DeepEqual(got, []string{key}) {
		t.Errorf("alice's keys = %q", got)
	}
	for _, c := range []struct{ users, want string }{
		{"users: {alice: {key_files: [keys/bob.pub]}}", "platform.yaml:3:29: error: users.alice.key_files[0]: cannot read " +
			filepath.Join(dir, "keys", "bob.pub") + ": no such file or directory"},
		{"users: {alice: {key_files: [keys/empty.pub]}}", "users.alice.key_files[0]: " + filepath.Join(dir, "keys", "empty.pub") + " holds no key"},
		{"users: {alice: {key_files: [keys]}}", "not a regular file"},
		{"users: {alice: {key_files: []}}", "users.alice has no keys"},
	} {
		_, diags := Parse("platform.yaml", []byte(base+c.users+"\n"), dir)
		if len(diags) != 1 || !strings.Contains(diags.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant one error containing %q", c.users, diags, c.want)
		}
	}
}

// Without storage, workers keep the shared store in state_dir (file://).
func TestStorageURLDefaultsToStateDir(t *testing.T) {
	c := &Config{StateDir: "/srv/state"}
	if got := c.StorageURL(); got != "file:///srv/state" {
		t.Errorf("StorageURL() = %q", got)
	}
	c.Storage = "s3://b/p?region=x"
	if got := c.StorageURL(); got != c.Storage {
		t.Errorf("StorageURL() = %q", got)
	}
}

// SHIPLINE_STORAGE (OverrideStorage) replaces storage: with the same checks,
// and its errors name the variable.
func TestOverrideStorage(t *testing.T) {
	c := &Config{StateDir: "/srv/state", Storage: "s3://old/p?region=x"}
	if err := c.OverrideStorage("SHIPLINE_STORAGE", "s3://shipline/cluster?endpoint=http://seaweedfs:8333&region=us-east-1&use_path_style=true"); err != nil {
		t.Fatal(err)
	}
	if got := c.StorageURL(); got != "s3://shipline/cluster?endpoint=http://seaweedfs:8333&region=us-east-1&use_path_style=true" {
		t.Errorf("StorageURL() = %q", got)
	}
	for _, bad := range []string{"s3://key:secret@b/p", "ftp://b/p", "s3:///p"} {
		err := (&Config{}).OverrideStorage("SHIPLINE_STORAGE", bad)
		if err == nil || !strings.Contains(err.Error(), "SHIPLINE_STORAGE") {
			t.Errorf("OverrideStorage(%q) = %v, want an error naming SHIPLINE_STORAGE", bad, err)
		}
	}
}
