package platform

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/manifest/yamlnode"
)

// promotion decodes promotion: {stages: [...]}. Teams and fabrics are already read.
func (p *parser) promotion(k, v *yaml.Node) {
	var stagesNode *yaml.Node
	if !yamlnode.IsNull(v) {
		p.Map(v, "promotion", promotionKeys, func(_ string, _, sv *yaml.Node) { stagesNode = sv })
	}
	if stagesNode == nil || yamlnode.IsNull(stagesNode) ||
		stagesNode.Kind == yaml.SequenceNode && len(stagesNode.Content) == 0 {
		p.Errorf(k, "list at least one stage, e.g. stages: [{name: dev, fabrics: [dev]}], or remove promotion:",
			"promotion has no stages")
		return
	}
	if stagesNode.Kind != yaml.SequenceNode {
		p.Errorf(stagesNode, "write stages as a YAML list: - {name: dev, fabrics: [dev]}",
			"promotion.stages must be a list, not %s", yamlnode.KindName(stagesNode))
		return
	}
	stageOf := map[string]string{} // fabric → stage
	names := map[string]int{}      // stage → line
	for i, sn := range stagesNode.Content {
		s, ok := p.stage(i, yamlnode.Resolve(sn), stageOf)
		if !ok {
			continue
		}
		if line, dup := names[s.Name]; dup && s.Name != "" {
			p.Errorf(valueOf(sn, "name"), "give every stage its own name",
				"stage name %q is used twice (first at line %d)", s.Name, line)
		} else if s.Name != "" {
			names[s.Name] = valueOf(sn, "name").Line
		}
		p.c.Promotion.Stages = append(p.c.Promotion.Stages, s)
	}
}

// stage decodes one promotion stage.
func (p *parser) stage(i int, n *yaml.Node, stageOf map[string]string) (Stage, bool) {
	field := fmt.Sprintf("promotion.stages[%d]", i)
	var s Stage
	var autoNode, onFailureNode *yaml.Node
	seen := map[string]bool{}
	if !p.Map(n, field, stageKeys, func(key string, kk, vv *yaml.Node) {
		seen[key] = true
		switch key {
		case "name":
			if name, ok := p.String(vv, field+".name"); ok {
				s.Name = name
				p.checkName(vv, name, "stage name")
				field = "stage " + name
			}
		case "fabrics":
			list, nodes, _ := p.StringList(vv, field+".fabrics")
			if vv.Kind == yaml.SequenceNode && len(vv.Content) == 0 {
				p.Errorf(vv, "list the fabrics this stage deploys to", "%s has no fabrics", field)
			}
			for j, f := range list {
				fab, ok := p.c.Fabrics[f]
				switch {
				case !ok:
					p.Errorf(nodes[j], "name a fabric defined under fabrics:"+known("fabrics", p.c.Fabrics),
						"%s: fabric %q is not defined", field, f)
				case stageOf[f] != "":
					p.Errorf(nodes[j], "a fabric belongs to at most one stage: remove it from one of them",
						"%s: fabric %q is already in stage %q", field, f, stageOf[f])
				default:
					stageOf[f] = s.Name
					if s.Name == "" {
						stageOf[f] = field
					}
					s.Fabrics = append(s.Fabrics, fab.Name)
				}
			}
		case "approval":
			s.Approval = p.approval(kk, vv, field+".approval")
		case "soak":
			s.Soak, _ = p.duration(vv, field+".soak", true)
		case "verify":
			s.Verify = p.verify(kk, vv, field+".verify")
		case "auto":
			s.Auto, _ = p.Bool(vv, field+".auto")
			autoNode = vv
		case "windows":
			s.Windows = p.windows(kk, vv, field+".windows", false)
		case "on_failure":
			if v, ok := p.String(vv, field+".on_failure"); ok {
				if v != OnFailureStop && v != OnFailureRollback {
					p.Errorf(vv, "write on_failure: rollback (redeploy the previous verified release) or on_failure: stop (the default)",
						"%s.on_failure %q is not stop or rollback", field, v)
				}
				s.OnFailure, onFailureNode = v, vv
			}
		}
	}) {
		return s, false
	}
	if s.Auto && s.Approval != nil {
		p.Errorf(autoNode, "remove auto: true, or remove approval: (a stage with a gate waits for its approvals)",
			"%s has both auto: true and an approval", field)
	}
	if s.Auto && i == 0 {
		p.Errorf(autoNode, "remove auto: true from the first stage (a release reaches it by deploy or promote)",
			"%s is the first stage: auto: true continues from a previous stage", field)
	}
	if s.OnFailure == OnFailureRollback && s.Verify == nil {
		p.Errorf(onFailureNode, "add verify: {jobs: [<job>]} to the stage, or remove on_failure",
			"%s has on_failure: rollback but no verify: only a failed verification rolls back", field)
	}

	if !seen["name"] {
		p.Errorf(n, "add name: <stage>, e.g. name: qa", "%s has no name", field)
	}
	if !seen["fabrics"] {
		p.Errorf(n, "add fabrics: [<fabric>, ...]", "%s has no fabrics", field)
	}
	return s, true
}

// verify decodes a stage's verification: {jobs: [..], params: {..}, timeout: 2h}.
// The jobs are checked against a project's manifest where it is known (the
// verification's runs refuse a job the project did not deploy there).
func (p *parser) verify(k, v *yaml.Node, field string) *Verify {
	if yamlnode.IsNull(v) {
		p.Errorf(k, "give verify: {jobs: [<job>]}, or remove verify: to count a deployment as verified", "%s is empty", field)
		return nil
	}
	out := &Verify{Timeout: DefaultVerifyTimeout}
	hasJobs := false
	p.Map(v, field, verifyKeys, func(key string, kk, vv *yaml.Node) {
		switch key {
		case "jobs":
			hasJobs = true
			list, nodes, _ := p.StringList(vv, field+".jobs")
			seen := map[string]bool{}
			for j, job := range list {
				switch {
				case !NameRE.MatchString(job):
					p.Errorf(nodes[j], "name a job of the project's shipline.yaml", "%s.jobs: %q is not a job name", field, job)
				case seen[job]:
					p.Errorf(nodes[j], "list each job once", "%s.jobs: %q is listed twice", field, job)
				default:
					seen[job] = true
					out.Jobs = append(out.Jobs, job)
				}
			}
			if len(list) == 0 && vv.Kind == yaml.SequenceNode {
				p.Errorf(vv, "list the jobs to run, e.g. jobs: [nightly]", "%s.jobs is empty", field)
			}
		case "params":
			out.Params, _ = p.Vars(vv, field+".params", varRE, varRule)
		case "timeout":
			if d, ok := p.duration(vv, field+".timeout", false); ok {
				out.Timeout = d
			}
		}
	})
	if !hasJobs {
		p.Errorf(k, "add jobs: [<job>] (jobs of the project that must run successfully)", "%s has no jobs", field)
	}
	return out
}

// approval decodes a stage's gate.
func (p *parser) approval(k, v *yaml.Node, field string) *Approval {
	a := &Approval{Required: 1, SelfApproval: true}
	var requiredNode, teamNode *yaml.Node
	hasTeam := false
	if yamlnode.IsNull(v) {
		p.Errorf(k, "give approval: {team: <team>, required: 1}, or remove approval for no gate", "%s is empty", field)
		return nil
	}
	p.Map(v, field, approvalKeys, func(key string, kk, vv *yaml.Node) {
		switch key {
		case "team":
			hasTeam = true
			if s, ok := p.String(vv, field+".team"); ok {
				a.Team, teamNode = s, vv
				if _, ok := p.c.Teams[s]; !ok {
					p.Errorf(vv, "name a team defined under teams:"+known("teams", p.c.Teams),
						"%s: team %q is not defined", field, s)
				}
			}
		case "required":
			if n, ok := p.Int(vv, field+".required"); ok {
				a.Required, requiredNode = n, vv
			}
		case "self_approval":
			a.SelfApproval, _ = p.Bool(vv, field+".self_approval")
		case "timeout":
			a.Timeout, _ = p.duration(vv, field+".timeout", false)
		}
	})
	if !hasTeam {
		p.Errorf(k, "add team: <team> (whose members approve)", "%s has no team", field)
	}
	services := p.c.Services(a.Team)
	if teamNode != nil && len(services) > 0 {
		p.Warnf(teamNode, "nothing to change if they are in the team to deploy to its fabrics; the gate's approvals come from its people",
			"%s: team %q includes service identities (%s): they may not approve or reject, and are not counted towards required",
			field, a.Team, strings.Join(services, ", "))
	}
	if requiredNode != nil {
		size := len(p.c.Teams[a.Team].Members)
		voters := size - len(services)
		switch {
		case a.Required < 1:
			p.Errorf(requiredNode, "require at least 1 approval, or remove approval: for no gate", "%s.required must be at least 1", field)
		case a.Team != "" && size > 0 && a.Required > size:
			p.Errorf(requiredNode, fmt.Sprintf("require at most %d, or add members to team %q", size, a.Team),
				"%s.required is %d but team %q has only %d member(s)", field, a.Required, a.Team, size)
		case a.Team != "" && size > 0 && a.Required > voters:
			p.Errorf(requiredNode, fmt.Sprintf("require at most %d, or add people to team %q", voters, a.Team),
				"%s.required is %d but only %d member(s) of team %q may vote (service identities never vote: %s)",
				field, a.Required, voters, a.Team, strings.Join(services, ", "))
		}
	}
	return a
}

var daysRE = regexp.MustCompile(`^([0-9]+)d(.*)$`)

// ParseDuration is time.ParseDuration plus a leading days part: "3d", "1d12h".
// Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("must not be negative")
	}
	var total time.Duration
	if m := daysRE.FindStringSubmatch(s); m != nil {
		days, err := strconv.Atoi(m[1])
		if err != nil || days > 365*100 {
			return 0, fmt.Errorf("too many days")
		}
		total = time.Duration(days) * 24 * time.Hour
		s = m[2]
		if s == "" {
			return total, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("not a duration")
	}
	if d < 0 {
		return 0, fmt.Errorf("must not be negative")
	}
	return total + d, nil
}

// duration decodes a duration string; zeroOK allows 0.
func (p *parser) duration(v *yaml.Node, field string, zeroOK bool) (time.Duration, bool) {
	const fix = "write a duration with a unit, e.g. 30m, 1h, 72h or 3d"
	v = yamlnode.Resolve(v)
	if v.Kind != yaml.ScalarNode || yamlnode.IsNull(v) || v.Tag == "!!bool" {
		p.Errorf(v, fix, "%s must be a duration, not %s", field, yamlnode.KindName(v))
		return 0, false
	}
	if v.Tag == "!!int" && v.Value != "0" {
		p.Errorf(v, fix, "%s %s has no unit", field, v.Value)
		return 0, false
	}
	d, err := ParseDuration(v.Value)
	switch {
	case err != nil:
		p.Errorf(v, fix, "%s %q is invalid: %v", field, v.Value, err)
		return 0, false
	case d == 0 && !zeroOK:
		p.Errorf(v, "remove it to wait without a time limit, or "+fix, "%s must be longer than 0", field)
		return 0, false
	}
	return d, true
}
