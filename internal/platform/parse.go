package platform

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest/yamlnode"
)

// Defaults applied by Parse.
const (
	DefaultAddress   = "127.0.0.1:7233"
	DefaultNamespace = "default"
	DefaultTaskQueue = "shipline"
	DefaultStateDir  = ".shipline"
)

// MaxFileSize limits platform.yaml.
const MaxFileSize = 1 << 20

var (
	// NameRE is the rule for team, project, fabric and stage names (the same as shipline.yaml's names).
	NameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	// EnvRE is the rule for the names of environment variables holding secrets.
	EnvRE  = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	varRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,62}$`)
	userRE = regexp.MustCompile(`^[^\s/\\:]+$`)
)

const (
	nameRule = "use 1-63 characters: lowercase letters, digits, `_` or `-`, starting with a letter"
	varRule  = "use letters, digits, `_` or `-`, starting with a letter or `_` (at most 63 characters)"
)

var (
	topKeys     = []string{"temporal", "state_dir", "teams", "projects", "fabrics", "promotion", "users", "require_signatures", "internal_auth", "storage", "windows", "package_indexes", "notifications", "web", "delegates"}
	teamKeys    = []string{"members"}
	projectKeys = []string{"repo", "git_token_env", "git_user_env", "ssh_key_file", "ssh_known_hosts", "git_retry", "admins",
		"auto_deploy", "selective_jobs"}
	fabricCommon  = []string{"kind", "owner", "variables", "pause_schedules", "active_runs", "active_runs_timeout"}
	promotionKeys = []string{"stages"}
	stageKeys     = []string{"name", "fabrics", "approval", "soak", "verify", "auto", "on_failure", "windows"}
	verifyKeys    = []string{"jobs", "params", "timeout"}
	approvalKeys  = []string{"team", "required", "self_approval", "timeout"}
)

// Load reads and validates the platform config at path. Relative paths in it
// resolve against the file's directory. Diagnostics name the file as path.
func Load(path string) (*Config, diag.List) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, diag.List{{Severity: diag.Error, File: path, Summary: "cannot read the platform config: " + unwrap(err),
			Fix: "pass the platform config file with --config (or --platform)"}}
	}
	if !fi.Mode().IsRegular() {
		what := "a directory"
		if !fi.IsDir() {
			what = "not a regular file (" + fi.Mode().Type().String() + ")"
		}
		return nil, diag.List{{Severity: diag.Error, File: path, Summary: "cannot read the platform config: it is " + what,
			Fix: "pass the platform config file with --config (or --platform)"}}
	}
	tooLarge := func(size int64) diag.List {
		return diag.List{{Severity: diag.Error, File: path,
			Summary: fmt.Sprintf("the platform config is too large (%d bytes; the limit is 1 MiB)", size),
			Fix:     "check this is the right file"}}
	}
	if fi.Size() > MaxFileSize {
		return nil, tooLarge(fi.Size())
	}
	// Read at most one byte more than the limit, whatever Stat said.
	f, err := os.Open(path)
	var data []byte
	if err == nil {
		data, err = io.ReadAll(io.LimitReader(f, MaxFileSize+1))
		f.Close()
	}
	if err != nil {
		return nil, diag.List{{Severity: diag.Error, File: path, Summary: "cannot read the platform config: " + unwrap(err),
			Fix: "check the file is readable"}}
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge(int64(len(data)))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	c, diags := Parse(path, data, filepath.Dir(abs))
	if c != nil {
		c.Path = abs
	}
	return c, diags
}

func unwrap(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse decodes and validates a platform config. file names it in diagnostics;
// baseDir is the directory relative paths resolve against (made absolute;
// empty means the working directory). The config is returned even when
// invalid, with defaults filled in, unless the YAML cannot be read.
func Parse(file string, data []byte, baseDir string) (*Config, diag.List) {
	root, diags := yamlnode.Parse(file, data)
	if len(diags) > 0 {
		return nil, diags
	}
	if root == nil {
		return nil, diag.List{{Severity: diag.Error, File: file, Summary: file + " is empty",
			Fix: "add at least teams:, projects: and fabrics: (see the platform.yaml example in the README)"}}
	}
	if abs, err := filepath.Abs(baseDir); err == nil {
		baseDir = abs
	}
	p := &parser{Decoder: yamlnode.Decoder{File: file}, baseDir: baseDir, c: &Config{
		Path:     file,
		Temporal: Temporal{TaskQueue: DefaultTaskQueue}, // address and namespace: empty unless written (defaults apply at dial time, after profiles)
		StateDir: filepath.Join(baseDir, DefaultStateDir),
		Teams:    map[string]Team{},
		Projects: map[string]Project{},
		Fabrics:  map[string]Fabric{},
	}}
	p.config(root)
	yamlnode.Sort(p.Diags)
	return p.c, p.Diags
}

// parser decodes platform.yaml.
type parser struct {
	yamlnode.Decoder
	baseDir string
	c       *Config
	// nodes of names, for cross-references checked once everything is read.
	teamNodes   map[string]*yaml.Node
	fabricNodes map[string]*yaml.Node
	// later are the fabric kinds' checks across fabrics (KindDecoder.Later).
	later []func()
}

// config decodes the top level: first the sections, then each in dependency
// order (teams before the fabrics that name them, fabrics before stages).
func (p *parser) config(root *yaml.Node) {
	sections := map[string]*yaml.Node{}
	keys := map[string]*yaml.Node{}
	if !p.Map(root, file(p.File), topKeys, func(key string, k, v *yaml.Node) { sections[key], keys[key] = v, k }) {
		return
	}
	if v := sections["temporal"]; v != nil && !yamlnode.IsNull(v) {
		p.temporal(v)
	}
	if v := sections["state_dir"]; v != nil {
		if s, ok := p.String(v, "state_dir"); ok && s != "" {
			p.c.StateDir = p.localPath(s)
		} else if ok || yamlnode.IsNull(v) {
			p.Errorf(keys["state_dir"], "give a directory, or remove state_dir to use "+DefaultStateDir, "state_dir is empty")
		}
	}
	p.teams(keys["teams"], sections["teams"], root)
	p.projects(sections["projects"])
	p.fabrics(sections["fabrics"])
	// Users before the promotion: a gate's quorum counts only the members who may vote.
	p.users(keys["require_signatures"], sections["users"], sections["require_signatures"])
	if v := sections["promotion"]; v != nil {
		p.promotion(keys["promotion"], v)
	}
	if v := sections["windows"]; v != nil { // after the promotion: entries name its stages
		p.c.Windows = p.windows(keys["windows"], v, "windows", true)
	}
	if v := sections["internal_auth"]; v != nil {
		p.internalAuth(keys["internal_auth"], v)
	}
	if v := sections["storage"]; v != nil {
		p.storage(keys["storage"], v)
	}
	if v := sections["package_indexes"]; v != nil {
		p.packageIndexes(v)
	}
	p.delegates(sections["delegates"])
	if v := sections["web"]; v != nil {
		p.web(keys["web"], v)
	}
	if v := sections["notifications"]; v != nil { // after projects and stages, which it names
		p.notifications(keys["notifications"], v)
	}
}

func file(name string) string { return filepath.Base(name) }

func (p *parser) teams(k, v, root *yaml.Node) {
	p.teamNodes = map[string]*yaml.Node{}
	if v == nil || yamlnode.IsNull(v) {
		at := root
		if k != nil {
			at = k
		}
		p.Errorf(at, "add teams:, e.g. teams: {developers: {members: [alice, bob]}}", "no teams are defined: every fabric needs an owner team")
		return
	}
	p.Map(v, "teams", nil, func(name string, k, v *yaml.Node) {
		p.checkName(k, name, "team name")
		p.teamNodes[name] = k
		field := "teams." + name
		var team Team
		hasMembers, membersOK := false, true
		if !yamlnode.IsNull(v) {
			p.Map(v, field, teamKeys, func(_ string, _, mv *yaml.Node) {
				hasMembers = true
				list, nodes, ok := p.StringList(mv, field+".members")
				membersOK = ok || len(list) > 0
				seen := map[string]bool{}
				for i, u := range list {
					switch {
					case !userRE.MatchString(u):
						p.Errorf(nodes[i], "user names have no spaces, slashes or colons", "invalid user name %q in %s", u, field)
					case seen[u]:
						p.Errorf(nodes[i], "list each member once", "%s lists %q twice", field, u)
					default:
						seen[u] = true
						team.Members = append(team.Members, u)
					}
				}
			})
		}
		if !hasMembers || membersOK && len(team.Members) == 0 {
			p.Errorf(k, fmt.Sprintf("add members, e.g. %s: {members: [alice]}", name), "team %q has no members", name)
		}
		p.c.Teams[name] = team
	})
}

func (p *parser) checkName(n *yaml.Node, name, what string) bool {
	if NameRE.MatchString(name) {
		return true
	}
	p.Errorf(n, nameRule, "invalid %s %q", what, name)
	return false
}

// localPath resolves a path against the config's directory; `~/` is the home
// directory of the user running Shipline.
func (p *parser) localPath(s string) string {
	if s == "~" || strings.HasPrefix(s, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(s[1:], "/"))
		}
	}
	s = filepath.FromSlash(s)
	if filepath.IsAbs(s) {
		return filepath.Clean(s)
	}
	return filepath.Join(p.baseDir, s)
}

// env checks a field that names an environment variable holding a secret.
func (p *parser) env(n *yaml.Node, field, example string) (string, bool) {
	s, ok := p.String(n, field)
	if !ok {
		if yamlnode.IsNull(n) {
			p.Errorf(n, "name the environment variable, e.g. "+example+", or remove the setting", "%s is empty", field)
		}
		return "", false
	}
	if EnvRE.MatchString(s) {
		return s, true
	}
	if looksSecret(s) {
		p.Errorf(n, fmt.Sprintf("never write secrets in this file: set the secret in an environment variable of the worker (e.g. %s=...) and write that variable's NAME here; rotate the secret if this file was shared", example),
			"%s looks like a secret itself, not the name of an environment variable", field)
		return "", false
	}
	p.Errorf(n, "use the name of an environment variable: uppercase letters, digits and _, e.g. "+example,
		"%s %q is not an environment variable name", field, s)
	return "", false
}

// looksSecret recognises common token shapes, so a pasted token is refused
// without being echoed back.
func looksSecret(s string) bool {
	for _, prefix := range []string{"dapi", "dose", "ghp_", "gho_", "ghs_", "github_pat_", "glpat-", "xox", "eyJ", "AKIA", "sk-"} {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	if len(s) < 20 {
		return false
	}
	var lower, upper, digit bool
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		}
	}
	return digit && (lower || upper)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// known renders " (what: a, b)" for fixes, or "" when m is empty.
func known[V any](what string, m map[string]V) string {
	if len(m) == 0 {
		return ""
	}
	return fmt.Sprintf(" (%s: %s)", what, strings.Join(sortedKeys(m), ", "))
}
