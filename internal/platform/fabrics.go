package platform

import (
	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
)

// fabrics decodes the fabrics: section. Teams are already read; the checks
// kinds make across fabrics (KindDecoder.Later) run once all are read.
func (p *parser) fabrics(v *yaml.Node) {
	p.fabricNodes = map[string]*yaml.Node{}
	if v == nil || yamlnode.IsNull(v) {
		return
	}
	p.Map(v, "fabrics", nil, func(name string, k, v *yaml.Node) {
		p.checkName(k, name, "fabric name")
		p.fabricNodes[name] = k
		p.c.Fabrics[name] = p.fabric(name, k, v)
	})
	for _, check := range p.later {
		check()
	}
	p.later = nil
}

// fabric decodes one fabric: the common keys here, the kind's own through
// its KindSpec (see kinds.go).
func (p *parser) fabric(name string, k, v *yaml.Node) Fabric {
	field := "fabrics." + name
	f := Fabric{Name: name}
	if yamlnode.IsNull(v) {
		p.Errorf(k, "give it kind: ("+kindList()+") and owner: <team>", "fabric %q has no settings", name)
		return f
	}
	// The kind decides which keys are allowed: read it first.
	allowed := append([]string{}, fabricCommon...)
	spec, isKind := KindSpec{}, false
	if kn := valueOf(v, "kind"); kn != nil && !yamlnode.IsNull(kn) {
		if s, ok := p.String(kn, field+".kind"); ok {
			if spec, isKind = kinds[FabricKind(s)]; isKind {
				f.Kind = spec.Name
				allowed = append(allowed, spec.Keys...)
			} else {
				p.Errorf(kn, "use "+kindList(), "fabric %q has unknown kind %q", name, s)
			}
		}
	} else {
		p.Errorf(k, "add kind: "+kindList(), "fabric %q has no kind", name)
	}
	if !isKind { // unknown kind: accept any known key, to report only the kind
		for _, kind := range Kinds() {
			allowed = append(allowed, kinds[kind].Keys...)
		}
	}
	d := &KindDecoder{p: p, name: name, kind: f.Kind, field: field, at: k, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	p.Map(v, field, allowed, func(key string, kk, vv *yaml.Node) {
		d.keys[key], d.vals[key] = kk, vv
		fk := field + "." + key
		switch key {
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
		}
	})
	if d.keys["owner"] == nil {
		p.Errorf(k, "add owner: <team>: only members of the owner team deploy to this fabric", "fabric %q has no owner", name)
	}
	if isKind {
		f.Settings = spec.Decode(d)
	}
	return f
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
