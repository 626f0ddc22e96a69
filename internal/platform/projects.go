package platform

import (
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
)

// projects decodes the projects: section. Teams are already read.
func (p *parser) projects(v *yaml.Node) {
	if v == nil || yamlnode.IsNull(v) {
		return // a worker with no projects yet is valid
	}
	p.Map(v, "projects", nil, func(name string, k, v *yaml.Node) {
		p.checkName(k, name, "project name")
		field := "projects." + name
		pr := Project{Name: name, AutoDeploy: true}
		var autoNode, selNode *yaml.Node
		seen := map[string]bool{}
		if !yamlnode.IsNull(v) {
			p.Map(v, field, projectKeys, func(key string, kk, vv *yaml.Node) {
				seen[key] = true
				f := field + "." + key
				switch key {
				case "repo":
					pr.Repo = p.repo(kk, vv, f)
				case "git_token_env":
					pr.GitTokenEnv, _ = p.env(vv, f, "GIT_TOKEN")
				case "git_user_env":
					pr.GitUserEnv, _ = p.env(vv, f, "GIT_USER")
				case "ssh_key_file", "ssh_known_hosts":
					s, ok := p.String(vv, f)
					if !ok || s == "" {
						p.Errorf(kk, "give a file path, or remove the setting", "%s is empty", f)
						return
					}
					if key == "ssh_key_file" {
						pr.SSHKeyFile = p.localPath(s)
					} else {
						pr.SSHKnownHosts = p.localPath(s)
					}
				case "git_retry":
					if s, ok := p.String(vv, f); ok {
						d, err := ParseDuration(s)
						if err != nil || d <= 0 {
							p.Errorf(vv, "write a positive duration such as 10m or 1h", "%s %q is not a positive duration", f, s)
						}
						pr.GitRetry = d
					}
				case "admins":
					pr.Admins = p.admins(kk, vv, f)
				case "auto_deploy":
					pr.AutoDeploy, _ = p.Bool(vv, f)
					autoNode = vv
				case "selective_jobs":
					pr.SelectiveJobs, _ = p.Bool(vv, f)
					selNode = vv
				}
			})
		}
		if !seen["repo"] {
			p.Errorf(k, "add repo: the project's git remote (https://, ssh://, git@host:path, file:// or a local path)",
				"project %q has no repo", name)
		}
		if !seen["admins"] {
			p.Errorf(k, "add admins: [user, ...]: only admins release, delete releases and change settings",
				"project %q has no admins", name)
		}
		if pr.AutoDeploy && pr.SelectiveJobs {
			at := selNode
			if autoNode != nil && selNode == nil {
				at = autoNode
			}
			p.Errorf(at, "set auto_deploy: false to deploy chosen jobs, or selective_jobs: false to keep release-deploys-all (auto_deploy is true by default)",
				"project %q sets selective_jobs with auto_deploy: a release deploys every job, so jobs cannot be chosen", name)
		}
		p.c.Projects[name] = pr
	})
}

// admins decodes a project's admin list. An admin who is in no team is
// allowed (admins need not deploy) but warned about, as it is often a typo.
func (p *parser) admins(k, v *yaml.Node, field string) []string {
	list, nodes, _ := p.StringList(v, field)
	var out []string
	seen := map[string]bool{}
	for i, u := range list {
		switch {
		case !userRE.MatchString(u):
			p.Errorf(nodes[i], "user names have no spaces, slashes or colons", "invalid user name %q in %s", u, field)
		case seen[u]:
			p.Errorf(nodes[i], "list each admin once", "%s lists %q twice", field, u)
		default:
			seen[u] = true
			out = append(out, u)
			if len(p.c.TeamOf(u)) == 0 {
				p.Warnf(nodes[i], "check the spelling, or add the user to a team", "admin %q is not a member of any team", u)
			}
		}
	}
	if rv := yamlnode.Resolve(v); rv.Kind == yaml.SequenceNode && len(rv.Content) == 0 {
		p.Errorf(k, "name at least one admin: only admins release, delete releases and change settings", "%s is empty", field)
	}
	return out
}

// repo checks and normalises a git remote: URLs with scheme file, http,
// https or ssh, scp-like [user@]host:path, or a local path (made absolute).
func (p *parser) repo(k, v *yaml.Node, field string) string {
	s, ok := p.String(v, field)
	if !ok || s == "" {
		if ok || yamlnode.IsNull(v) {
			p.Errorf(k, "give the project's git remote", "%s is empty", field)
		}
		return ""
	}
	if i := strings.Index(s, "://"); i > 0 {
		u, err := url.Parse(s)
		if err != nil {
			p.Errorf(v, "write a URL such as https://git.example.com/team/project.git", "%s is not a valid URL", field)
			return ""
		}
		switch u.Scheme {
		case "file":
			if u.Path == "" {
				p.Errorf(v, "write file:///absolute/path/to/repo", "%s has no path", field)
			}
		case "http", "https", "ssh":
			if u.Host == "" {
				p.Errorf(v, "write a URL with a host, e.g. https://git.example.com/team/project.git", "%s has no host", field)
			}
			if _, hasPass := u.User.Password(); hasPass {
				p.Errorf(v, "remove the credentials from the URL and name the environment variable holding the token in git_token_env",
					"%s holds a password or token: secrets never go in this file", field)
				return ""
			}
		default:
			p.Errorf(v, "use https://, http://, ssh://, file://, git@host:path or a local path",
				"%s: unsupported URL scheme %q", field, u.Scheme)
			return ""
		}
		return s
	}
	if isSCP(s) {
		return s
	}
	return p.localPath(s)
}

// isSCP reports whether s is an scp-like remote ([user@]host:path): a colon
// before any slash, after more than one character (so C:\repo is a path).
func isSCP(s string) bool {
	colon := strings.Index(s, ":")
	slash := strings.IndexAny(s, `/\`)
	return colon > 1 && (slash < 0 || colon < slash)
}
