package platform

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
)

// fabrics decodes the fabrics: section. Teams are already read; fabric to
// fabric references (artifact_fabric) are checked after all are read.
func (p *parser) fabrics(v *yaml.Node) {
	p.fabricNodes = map[string]*yaml.Node{}
	if v == nil || yamlnode.IsNull(v) {
		return
	}
	artifactRefs := map[string]*yaml.Node{}
	p.Map(v, "fabrics", nil, func(name string, k, v *yaml.Node) {
		p.checkName(k, name, "fabric name")
		p.fabricNodes[name] = k
		f, ref := p.fabric(name, k, v)
		if ref != nil {
			artifactRefs[name] = ref
		}
		p.c.Fabrics[name] = f
	})
	for _, name := range sortedKeys(artifactRefs) {
		n, target := artifactRefs[name], p.c.Fabrics[name].ArtifactFabric
		t, ok := p.c.Fabrics[target]
		switch {
		case !ok:
			p.Errorf(n, "name a databricks or local fabric"+known("fabrics", p.c.Fabrics),
				"fabric %q: artifact_fabric %q is not a defined fabric", name, target)
		case t.Kind != KindDatabricks && t.Kind != KindLocal:
			p.Errorf(n, "name a databricks or local fabric: the DAG's tasks read artifacts from there",
				"fabric %q: artifact_fabric %q is of kind %s", name, target, t.Kind)
		}
	}
}

// fabric decodes one fabric; it returns the artifact_fabric node to check later.
func (p *parser) fabric(name string, k, v *yaml.Node) (Fabric, *yaml.Node) {
	field := "fabrics." + name
	f := Fabric{Name: name}
	if yamlnode.IsNull(v) {
		p.Errorf(k, "give it kind: (databricks, airflow or local) and owner: <team>", "fabric %q has no settings", name)
		return f, nil
	}
	// The kind decides which keys are allowed: read it first.
	allowed := append([]string{}, fabricCommon...)
	if kn := valueOf(v, "kind"); kn != nil && !yamlnode.IsNull(kn) {
		if s, ok := p.String(kn, field+".kind"); ok {
			switch FabricKind(s) {
			case KindDatabricks, KindAirflow, KindLocal:
				f.Kind = FabricKind(s)
				allowed = append(allowed, fabricKindKeys[f.Kind]...)
			default:
				p.Errorf(kn, "use databricks, airflow or local", "fabric %q has unknown kind %q", name, s)
			}
		}
	} else {
		p.Errorf(k, "add kind: databricks, airflow or local", "fabric %q has no kind", name)
	}
	if f.Kind == "" { // unknown kind: accept any known key, to report only the kind
		for _, kind := range []FabricKind{KindDatabricks, KindAirflow, KindLocal} {
			allowed = append(allowed, fabricKindKeys[kind]...)
		}
	}
	seen := map[string]*yaml.Node{}
	var artifactRef *yaml.Node
	p.Map(v, field, allowed, func(key string, kk, vv *yaml.Node) {
		seen[key] = kk
		fk := field + "." + key
		switch key {
		case "kind":
		case "owner":
			if s, ok := p.String(vv, fk); ok {
				f.Owner = s
				if _, ok := p.c.Teams[s]; !ok {
					p.Errorf(vv, "name a team defined under teams:"+known("teams", p.c.Teams),
						"fabric %q: owner %q is not a defined team", name, s)
				}
			}
		case "variables":
			if !yamlnode.IsNull(vv) {
				f.Variables, _ = p.Vars(vv, fk, varRE, varRule)
			}
		case "pause_schedules":
			f.PauseSchedules, _ = p.Bool(vv, fk)
		case "active_runs":
			if s, ok := p.String(vv, fk); ok {
				switch ActiveRunsPolicy(s) {
				case ActiveRunsWait, ActiveRunsFail, ActiveRunsCancel:
					f.ActiveRuns = ActiveRunsPolicy(s)
				default:
					p.Errorf(vv, "use wait (the default), fail or cancel", "%s %q is not a known setting", fk, s)
				}
			}
		case "active_runs_timeout":
			if d, ok := p.duration(vv, fk, true); ok && d == 0 {
				p.Errorf(vv, "give how long a deployment waits for a job's active run, e.g. 30m or 2h (remove it for the default, 1h)",
					"%s must be longer than 0", fk)
			} else {
				f.ActiveRunsTimeout = d
			}
		case "host":
			f.Host = p.host(kk, vv, fk)
		case "token_env":
			f.TokenEnv, _ = p.env(vv, fk, strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+"_DATABRICKS_TOKEN")
		case "profile":
			if s, ok := p.String(vv, fk); ok && s != "" {
				f.Profile = s
			} else {
				p.Errorf(kk, "name a profile of ~/.databrickscfg, or remove profile", "%s is empty", fk)
			}
		case "artifact_root":
			f.ArtifactRoot = p.artifactRoot(kk, vv, fk)
		case "dags_folder", "root":
			if s, ok := p.String(vv, fk); ok && s != "" {
				if key == "root" {
					f.Root = p.localPath(s)
				} else {
					f.DagsFolder = p.localPath(s)
				}
			} else {
				p.Errorf(kk, "give a directory (relative paths resolve against this file's directory)", "%s is empty", fk)
			}
		case "artifact_fabric":
			if s, ok := p.String(vv, fk); ok {
				f.ArtifactFabric, artifactRef = s, vv
			}
		case "airflow_url":
			if s, ok := p.String(vv, fk); ok {
				if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					p.Errorf(vv, "write the Airflow web server's URL, e.g. https://airflow.example.com", "%s %q is not an http(s) URL", fk, s)
				} else {
					f.AirflowURL = strings.TrimRight(s, "/")
				}
			}
		case "airflow_user_env":
			f.AirflowUserEnv, _ = p.env(vv, fk, "AIRFLOW_USER")
		case "airflow_password_env":
			f.AirflowPassEnv, _ = p.env(vv, fk, "AIRFLOW_PASSWORD")
		}
	})
	if seen["owner"] == nil {
		p.Errorf(k, "add owner: <team>: only members of the owner team deploy to this fabric", "fabric %q has no owner", name)
	}
	require := func(key, fix string) {
		if seen[key] == nil {
			p.Errorf(k, fix, "%s fabric %q has no %s", f.Kind, name, key)
		}
	}
	switch f.Kind {
	case KindDatabricks:
		require("host", "add host: https://<workspace>.cloud.databricks.com (the workspace URL)")
		require("artifact_root", "add artifact_root: /Volumes/<catalog>/<schema>/<volume>/shipline (or /Workspace/... or dbfs:/...)")
		switch {
		case seen["token_env"] == nil && seen["profile"] == nil:
			p.Errorf(k, "add token_env: <ENV_VAR holding a token> or profile: <~/.databrickscfg profile>",
				"databricks fabric %q has no credentials source", name)
		case seen["token_env"] != nil && seen["profile"] != nil:
			p.Errorf(seen["profile"], "keep only one of token_env and profile", "databricks fabric %q sets both token_env and profile", name)
		}
	case KindAirflow:
		require("dags_folder", "add dags_folder: the directory Airflow loads DAGs from")
		// Without the REST API Shipline cannot see the DAG's runs: a setting
		// about them would silently do nothing.
		for _, key := range []string{"active_runs", "active_runs_timeout"} {
			if seen[key] != nil && seen["airflow_url"] == nil {
				p.Errorf(seen[key], "add airflow_url: (the web server's REST API, where Shipline reads the DAG's runs), or remove "+key,
					"airflow fabric %q sets %s but has no airflow_url: Shipline cannot see its runs", name, key)
			}
		}
	case KindLocal:
		require("root", "add root: the directory to deploy into (relative paths resolve against this file's directory)")
	}
	return f, artifactRef
}

// host checks a Databricks workspace URL: https, or http for a loopback host
// (the local emulator used in tests).
func (p *parser) host(k, v *yaml.Node, field string) string {
	s, ok := p.String(v, field)
	if !ok || s == "" {
		p.Errorf(k, "give the workspace URL, e.g. https://adb-1234.azuredatabricks.net", "%s is empty", field)
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		p.Errorf(v, "write the workspace URL only, e.g. https://adb-1234.azuredatabricks.net", "%s %q is not a workspace URL", field, s)
		return ""
	}
	if u.User != nil {
		p.Errorf(v, "remove the credentials from the URL; use token_env or profile", "%s holds credentials: secrets never go in this file", field)
		return ""
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		p.Errorf(v, "use https://", "%s %q must use https (http is only accepted for localhost)", field, s)
		return ""
	}
	return strings.TrimRight(s, "/")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// artifactRoot checks a Databricks location: /Volumes/..., /Workspace/... or dbfs:/...
func (p *parser) artifactRoot(k, v *yaml.Node, field string) string {
	s, ok := p.String(v, field)
	if !ok || s == "" {
		p.Errorf(k, "give a location such as /Volumes/main/shipline/artifacts", "%s is empty", field)
		return ""
	}
	const fix = "use an absolute workspace location: /Volumes/<catalog>/<schema>/<volume>/..., /Workspace/... or dbfs:/..."
	rest, prefix := s, ""
	switch {
	case strings.HasPrefix(s, "dbfs:/"):
		prefix, rest = "dbfs:", strings.TrimPrefix(s, "dbfs:")
	case strings.HasPrefix(s, "/Volumes/"), strings.HasPrefix(s, "/Workspace/"):
	default:
		p.Errorf(v, fix, "%s %q is not a Databricks location", field, s)
		return ""
	}
	for _, seg := range strings.Split(rest, "/") {
		if seg == ".." {
			p.Errorf(v, fix, "%s %q contains `..`", field, s)
			return ""
		}
	}
	if c := path.Clean(rest); c != rest {
		p.Errorf(v, fmt.Sprintf("write it as %s%s", prefix, c), "%s %q is not a clean path", field, s)
		return ""
	}
	if strings.HasPrefix(s, "/Volumes/") && len(strings.Split(strings.TrimPrefix(s, "/Volumes/"), "/")) < 3 {
		p.Errorf(v, "a volume path is /Volumes/<catalog>/<schema>/<volume>[/...]", "%s %q does not name a volume", field, s)
		return ""
	}
	return s
}

// valueOf returns the value of key in mapping n, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	n = yamlnode.Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return yamlnode.Resolve(n.Content[i+1])
		}
	}
	return nil
}
