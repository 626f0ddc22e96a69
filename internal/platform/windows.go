package platform

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
	"github.com/shipline/shipline/internal/window"
)

// Change windows and freezes live in platform.yaml, next to the stages and
// the teams that own their fabrics, so the platform team controls them:
//
//	windows:                           # platform-wide (entries may name stages)
//	  freezes:
//	    - {from: "2026-12-21 00:00", to: "2027-01-04 08:00", timezone: Europe/Berlin, reason: year-end freeze}
//	promotion:
//	  stages:
//	    - name: prod
//	      fabrics: [prod]
//	      windows:
//	        open: [{days: [mon-thu], hours: "08:00-17:00", timezone: Europe/Berlin}]
//	        freezes: [{from: "2026-12-24", to: "2026-12-27", reason: holidays}]
//
// The computation is internal/window's.

var (
	windowsKeys     = []string{"open", "freezes"}
	openKeys        = []string{"days", "hours", "timezone"}
	freezeKeys      = []string{"from", "to", "reason", "timezone"}
	zoneFix         = "write an IANA time zone name, e.g. Europe/Berlin, America/New_York or UTC"
	daysFix         = "write weekdays as mon, tue, wed, thu, fri, sat, sun, or a range such as mon-fri"
	hoursFix        = `write the hours as "HH:MM-HH:MM" in quotes, e.g. "08:00-17:00" ("22:00-06:00" crosses midnight, "00:00-24:00" is the whole day)`
	freezeTimeFix   = `write a time such as "2026-12-21 08:00" (in the freeze's timezone, UTC by default) or "2026-12-21T08:00:00+01:00"`
	platformWideKey = "stages"
)

// windows decodes a windows: block; platformWide allows entries to name the
// stages they apply to.
func (p *parser) windows(k, v *yaml.Node, field string, platformWide bool) *window.Spec {
	if yamlnode.IsNull(v) {
		p.Errorf(k, "give windows: {open: [...], freezes: [...]}, or remove windows: (always open)", "%s is empty", field)
		return nil
	}
	spec := &window.Spec{}
	p.Map(v, field, windowsKeys, func(key string, kk, vv *yaml.Node) {
		if vv.Kind != yaml.SequenceNode {
			p.Errorf(vv, "write a YAML list: - {...}", "%s.%s must be a list, not %s", field, key, yamlnode.KindName(vv))
			return
		}
		for i, item := range vv.Content {
			f := fmt.Sprintf("%s.%s[%d]", field, key, i)
			switch key {
			case "open":
				if w, ok := p.openWindow(yamlnode.Resolve(item), f, platformWide); ok {
					spec.Open = append(spec.Open, w)
				}
			case "freezes":
				if fr, ok := p.freeze(yamlnode.Resolve(item), f, platformWide); ok {
					spec.Freezes = append(spec.Freezes, fr)
				}
			}
		}
	})
	return spec
}

// openWindow decodes {days: [...], hours: "08:00-17:00", timezone: Europe/Berlin}.
func (p *parser) openWindow(n *yaml.Node, field string, platformWide bool) (window.Recurring, bool) {
	var w window.Recurring
	ok := true
	seen := map[string]bool{}
	allowed := openKeys
	if platformWide {
		allowed = append(slices.Clone(openKeys), platformWideKey)
	}
	if !p.Map(n, field, allowed, func(key string, kk, vv *yaml.Node) {
		seen[key] = true
		switch key {
		case "days":
			list, nodes, good := p.StringList(vv, field+".days")
			ok = ok && good
			if good && len(list) == 0 {
				p.Errorf(vv, daysFix, "%s.days is empty", field)
				ok = false
			}
			for j, d := range list {
				days, err := window.ParseDays(d)
				if err != nil {
					p.Errorf(nodes[j], daysFix, "%s.days: %v", field, err)
					ok = false
					continue
				}
				for _, day := range days {
					if !slices.Contains(w.Days, day) {
						w.Days = append(w.Days, day)
					}
				}
			}
		case "hours":
			s, good := p.Scalar(vv, field+".hours")
			if !good {
				ok = false
				return
			}
			if _, _, err := window.ParseHours(s); err != nil {
				p.Errorf(vv, hoursFix, "%s.hours %v", field, err)
				ok = false
			}
			w.Hours = strings.TrimSpace(s)
		case "timezone":
			w.Timezone, ok = p.zone(vv, field+".timezone", ok)
		case platformWideKey:
			w.Stages, ok = p.windowStages(vv, field, ok)
		}
	}) {
		return w, false
	}
	for _, key := range openKeys {
		if !seen[key] {
			p.Errorf(n, `an open window needs days, hours and timezone, e.g. {days: [mon-fri], hours: "08:00-17:00", timezone: Europe/Berlin}`,
				"%s has no %s", field, key)
			ok = false
		}
	}
	return w, ok
}

// freeze decodes {from: ..., to: ..., reason: ..., timezone: ...}.
func (p *parser) freeze(n *yaml.Node, field string, platformWide bool) (window.Freeze, bool) {
	var fr window.Freeze
	ok := true
	nodes := map[string]*yaml.Node{}
	allowed := freezeKeys
	if platformWide {
		allowed = append(slices.Clone(freezeKeys), platformWideKey)
	}
	if !p.Map(n, field, allowed, func(key string, kk, vv *yaml.Node) {
		nodes[key] = vv
		switch key {
		case "reason":
			s, good := p.String(vv, field+".reason")
			if !good || strings.TrimSpace(s) == "" {
				if good || yamlnode.IsNull(vv) {
					p.Errorf(vv, "say why, e.g. reason: year-end freeze (waiting deploys show it)", "%s.reason is empty", field)
				}
				ok = false
			}
			fr.Reason = strings.TrimSpace(s)
		case "timezone":
			fr.Timezone, ok = p.zone(vv, field+".timezone", ok)
		case platformWideKey:
			fr.Stages, ok = p.windowStages(vv, field, ok)
		}
	}) {
		return fr, false
	}
	// from and to are read once the timezone is known, whatever the key order.
	times := map[string]bool{}
	for _, key := range []string{"from", "to", "reason"} {
		if nodes[key] == nil {
			p.Errorf(n, `a freeze needs from, to and reason, e.g. {from: "2026-12-21 00:00", to: "2027-01-04 08:00", reason: year-end freeze}`,
				"%s has no %s", field, key)
			ok = false
			continue
		}
		if key == "reason" {
			continue
		}
		s, good := p.Scalar(nodes[key], field+"."+key)
		if !good {
			ok = false
			continue
		}
		zone := fr.Timezone
		if nodes["timezone"] != nil && zone == "" {
			continue // the timezone was refused already
		}
		t, err := window.ParseTime(s, zone)
		if err != nil {
			p.Errorf(nodes[key], freezeTimeFix, "%s.%s %v", field, key, err)
			ok = false
			continue
		}
		times[key] = true
		if key == "from" {
			fr.From = t
		} else {
			fr.To = t
		}
	}
	if times["from"] && times["to"] && !fr.To.After(fr.From) {
		p.Errorf(nodes["to"], "make to later than from (a freeze closes from `from` until `to`)",
			"%s.to (%s) is not after from (%s)", field, fr.To.Format("2006-01-02 15:04 MST"), fr.From.Format("2006-01-02 15:04 MST"))
		ok = false
	}
	return fr, ok
}

func (p *parser) zone(v *yaml.Node, field string, ok bool) (string, bool) {
	s, good := p.String(v, field)
	if !good {
		if yamlnode.IsNull(v) {
			p.Errorf(v, zoneFix, "%s is empty", field)
		}
		return "", false
	}
	if _, err := window.LoadZone(s); err != nil {
		p.Errorf(v, zoneFix, "%s: %v", field, err)
		return "", false
	}
	return s, ok
}

// windowStages decodes a platform-wide entry's stages: each a promotion stage.
func (p *parser) windowStages(v *yaml.Node, field string, ok bool) ([]string, bool) {
	list, nodes, good := p.StringList(v, field+".stages")
	if !good {
		return nil, false
	}
	var names []string
	for _, s := range p.c.Promotion.Stages {
		names = append(names, s.Name)
	}
	var out []string
	for j, s := range list {
		if !slices.Contains(names, s) {
			fix := "name a stage of promotion.stages"
			if len(names) > 0 {
				fix += " (stages: " + strings.Join(names, ", ") + ")"
			}
			p.Errorf(nodes[j], fix+", or remove stages: to apply it to every stage", "%s.stages: %q is not a stage", field, s)
			ok = false
			continue
		}
		out = append(out, s)
	}
	if len(list) == 0 && v.Kind == yaml.SequenceNode {
		p.Errorf(v, "name the stages it applies to, or remove stages: to apply it to every stage", "%s.stages is empty", field)
		ok = false
	}
	return out, ok
}
