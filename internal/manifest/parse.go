package manifest

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest/yamlnode"
	"github.com/shipline/shipline/internal/templating"
)

var (
	// NameRE is the rule for project, pipeline, job and fabric names.
	NameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	// VarRE is the rule for variable names (usable as ${var.NAME}).
	VarRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,62}$`)
)

const (
	nameRule = "use 1-63 characters: lowercase letters, digits, `_` or `-`, starting with a letter"
	varRule  = "use letters, digits, `_` or `-`, starting with a letter or `_` (at most 63 characters)"
)

var (
	topKeys         = []string{"name", "variables", "pipelines", "jobs", "fabrics", "libraries"}
	pipelineKeys    = []string{"path", "language", "build", "artifact", "test"}
	jobKeys         = []string{"scheduler", "fabric", "pipelines", "definition"}
	overrideKeys    = []string{"variables", "jobs"}
	jobOverrideKeys = []string{"paused"}
)

// source is what Parse and Load remember about shipline.yaml.
type source struct {
	pos  map[string]yamlnode.Pos // by field path: "name", "jobs.daily.fabric", "fabrics.prod", ...
	defs map[string]definition   // by job name
}

// definition is the scanned definition file of one job.
type definition struct {
	file string
	refs []templating.Ref
}

// pos returns the position of a field, if known.
func (m *Manifest) pos(field string) (yamlnode.Pos, bool) {
	if m.src == nil {
		return yamlnode.Pos{}, false
	}
	p, ok := m.src.pos[field]
	return p, ok
}

// diagAt builds a diagnostic at a field's position in shipline.yaml, or naming
// the field when the position is unknown.
func (m *Manifest) diagAt(sev diag.Severity, field, fix, format string, args ...any) diag.Diagnostic {
	d := diag.Diagnostic{Severity: sev, Summary: fmt.Sprintf(format, args...), Fix: fix}
	if p, ok := m.pos(field); ok {
		d.File, d.Line, d.Col = FileName, p.Line, p.Col
	} else {
		d.Field = field
	}
	return d
}

// parser decodes shipline.yaml into a Manifest.
type parser struct {
	yamlnode.Decoder
	m *Manifest
	// deferred checks that need the whole file (names defined later in it).
	jobPipelineRefs []nameRef
	overrideJobRefs []nameRef
	libraryRefs     []nameRef
}

// nameRef is a use of a pipeline or job name at a position.
type nameRef struct {
	owner, name string
	node        *yaml.Node
}

// Parse reads shipline.yaml's structure: types, keys, names, required fields,
// path syntax and references between pipelines and jobs. It does not look at
// the file system (see Load). The manifest is returned even when incomplete.
func Parse(file string, data []byte) (*Manifest, diag.List) {
	root, diags := yamlnode.Parse(file, data)
	if len(diags) > 0 {
		return nil, diags
	}
	if root == nil {
		return nil, diag.List{{Severity: diag.Error, File: file, Summary: file + " is empty",
			Fix: "add at least name: and pipelines: (see the shipline.yaml example in the README)"}}
	}
	m := &Manifest{
		Variables: map[string]string{},
		Pipelines: map[string]Pipeline{},
		Jobs:      map[string]Job{},
		Fabrics:   map[string]Overrides{},
		src:       &source{pos: map[string]yamlnode.Pos{}, defs: map[string]definition{}},
	}
	p := &parser{Decoder: yamlnode.Decoder{File: file}, m: m}
	p.top(root)
	p.crossRefs()
	p.crossLibraries()
	yamlnode.Sort(p.Diags)
	return m, p.Diags
}

func (p *parser) setPos(field string, n *yaml.Node) { p.m.src.pos[field] = yamlnode.PosOf(n) }

// top decodes the top-level mapping.
func (p *parser) top(root *yaml.Node) {
	var hasName, hasPipelines bool
	ok := p.Map(root, FileName, topKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			hasName = true
			p.setPos("name", v)
			if yamlnode.IsNull(v) {
				p.Errorf(k, "set name: to the project's name as registered in the platform config", "name is empty")
				return
			}
			if s, ok := p.String(v, "name"); ok {
				p.m.Name = s
				p.checkName(v, s, "project name")
			}
		case "variables":
			p.setPos("variables", k)
			if !yamlnode.IsNull(v) {
				vars, pos := p.Vars(v, "variables", VarRE, varRule)
				p.m.Variables = vars
				for name, at := range pos {
					p.m.src.pos["variables."+name] = at
				}
			}
		case "pipelines":
			hasPipelines = true
			p.setPos("pipelines", k)
			p.pipelines(k, v)
		case "jobs":
			p.setPos("jobs", k)
			if !yamlnode.IsNull(v) {
				p.Map(v, "jobs", nil, p.job)
			}
		case "fabrics":
			p.setPos("fabrics", k)
			if !yamlnode.IsNull(v) {
				p.Map(v, "fabrics", nil, p.override)
			}
		case "libraries":
			p.setPos("libraries", k)
			p.libraries(v)
		}
	})
	if !ok {
		return
	}
	if !hasName {
		p.Errorf(root, "add name: <project> (the name registered in the platform config)", "name is missing")
	}
	if !hasPipelines {
		p.Errorf(root, "add a pipelines: section, e.g. pipelines: {ingest: {path: pipelines/ingest, language: python}}",
			"pipelines is missing: a project needs at least one pipeline")
	}
}

func (p *parser) checkName(n *yaml.Node, name, what string) bool {
	if NameRE.MatchString(name) {
		return true
	}
	p.Errorf(n, nameRule, "invalid %s %q", what, name)
	return false
}

// pipelines decodes the pipelines: section.
func (p *parser) pipelines(k, v *yaml.Node) {
	if yamlnode.IsNull(v) || v.Kind == yaml.MappingNode && len(v.Content) == 0 {
		p.Errorf(k, "define at least one pipeline, e.g. ingest: {path: pipelines/ingest, language: python}",
			"pipelines is empty: a project needs at least one pipeline")
		return
	}
	p.Map(v, "pipelines", nil, func(name string, k, v *yaml.Node) {
		field := "pipelines." + name
		p.setPos(field, k)
		p.checkName(k, name, "pipeline name")
		pl := Pipeline{Name: name}
		var buildNode, artifactNode *yaml.Node
		if yamlnode.IsNull(v) {
			p.Errorf(k, "give it at least path: and language:", "pipeline %q has no settings", name)
			p.m.Pipelines[name] = pl
			return
		}
		empty := map[string]*yaml.Node{}
		isMap := p.Map(v, field, pipelineKeys, func(key string, kk, vv *yaml.Node) {
			if yamlnode.IsNull(vv) && (key == "path" || key == "language" || key == "test") {
				empty[key] = kk // reported below (test: empty means none)
				return
			}
			p.setPos(field+"."+key, vv)
			switch key {
			case "path":
				pl.Path, _ = p.relPath(vv, field+".path", true)
			case "language":
				pl.Language = p.language(vv, field, "pipeline", name)
			case "build", "artifact", "test":
				p.buildKey(key, kk, vv, field, buildKeys{&pl.Build, &pl.Artifact, &pl.Test, &buildNode, &artifactNode})
			}
		})
		if !isMap {
			p.m.Pipelines[name] = pl
			return
		}
		for _, req := range []struct{ key, fix string }{
			{"path", fmt.Sprintf("add path: pipelines/%s (the pipeline's directory, relative to the project root)", name)},
			{"language", "add language: python, scala or java"},
		} {
			if _, ok := p.m.pos(field + "." + req.key); !ok {
				p.missing(k, empty[req.key], req.fix, "pipeline", name, req.key)
			}
		}
		p.buildRule(k, "pipeline", name, pl, buildNode, artifactNode)
		p.m.Pipelines[name] = pl
	})
}

// buildKeys are where the keys pipelines and libraries share (build,
// artifact, test) are decoded to, and the nodes of build and artifact for
// buildRule.
type buildKeys struct {
	build, artifact, test   *string
	buildNode, artifactNode **yaml.Node
}

// buildKey decodes one of build, artifact and test of field.
func (p *parser) buildKey(key string, kk, vv *yaml.Node, field string, to buildKeys) {
	switch key {
	case "build":
		*to.buildNode = kk
		*to.build, _ = p.String(vv, field+".build")
		if *to.build == "" && yamlnode.IsNull(vv) {
			p.Errorf(kk, "give the build command, or remove build:", "%s.build is empty", field)
		}
	case "artifact":
		*to.artifactNode = kk
		if s, ok := p.String(vv, field+".artifact"); ok {
			*to.artifact = s
			p.artifactGlob(vv, field, s)
		} else if yamlnode.IsNull(vv) {
			p.Errorf(kk, "give the artifact's glob, or remove artifact:", "%s.artifact is empty", field)
		}
	case "test":
		*to.test, _ = p.String(vv, field+".test")
	}
}

// buildRule: python pipelines are always built as wheels by Shipline
// (`python -m build --wheel`), so they take no build/artifact; a java pipeline
// without them is compiled by convention (javac on src/main/java, then jar);
// scala pipelines, and java ones with a build command, must say how they are
// built and where the jar lands.
func (p *parser) buildRule(k *yaml.Node, what, name string, pl Pipeline, build, artifact *yaml.Node) {
	switch pl.Language {
	case Python:
		for _, n := range []*yaml.Node{build, artifact} {
			if n != nil {
				p.Errorf(n, fmt.Sprintf("remove %s: python "+what+"s are built into a wheel with `python -m build --wheel` from their pyproject.toml", n.Value),
					"python %s %q cannot set %s", what, name, n.Value)
			}
		}
	case Scala, Java:
		example := `build: "sbt -batch package", artifact: "target/scala-2.12/*.jar"`
		if pl.Language == Java {
			example = `build: "mvn -B package", artifact: "target/*.jar"`
		}
		switch {
		case build == nil && artifact == nil && pl.Language == Java:
			// built by convention
		case build == nil && artifact == nil:
			p.Errorf(k, "add "+example, "%s %s %q needs build and artifact", pl.Language, what, name)
		case build == nil:
			p.Errorf(artifact, "add the command that produces it, e.g. "+example, "%s %q sets artifact without build", what, name)
		case artifact == nil:
			p.Errorf(build, "add the glob of the built jar relative to the "+what+"'s path, e.g. "+example,
				"%s %q sets build without artifact", what, name)
		}
	}
}

// artifactGlob checks an artifact glob: relative to the pipeline, inside it, valid syntax.
func (p *parser) artifactGlob(n *yaml.Node, field, glob string) {
	if problem, fix := relPathProblem(glob); problem != "" {
		p.Errorf(n, fix, "%s %q %s", field+".artifact", glob, problem)
		return
	}
	if _, err := path.Match(glob, ""); err != nil {
		p.Errorf(n, "fix the glob: * ? and [a-z] are supported", "%s %q is not a valid glob", field+".artifact", glob)
	}
}

// relPath decodes a project-relative path.
func (p *parser) relPath(n *yaml.Node, field string, dirOK bool) (string, bool) {
	s, ok := p.String(n, field)
	if !ok {
		return "", false
	}
	if problem, fix := relPathProblem(s); problem != "" {
		p.Errorf(n, fix, "%s %q %s", field, s, problem)
		return s, false
	}
	if !dirOK && s == "." {
		p.Errorf(n, "name a file inside the project", "%s must name a file, not the project root", field)
		return s, false
	}
	return s, true
}

// relPathProblem says why s is not a clean, relative, slash-separated path
// inside the project ("" when it is fine), and how to fix it.
func relPathProblem(s string) (problem, fix string) {
	switch {
	case s == "":
		return "is empty", "give a path relative to the project root"
	case strings.Contains(s, `\`):
		return "uses backslashes", fmt.Sprintf("use forward slashes: %s", strings.ReplaceAll(s, `\`, "/"))
	case strings.HasPrefix(s, "/") || len(s) >= 2 && s[1] == ':' && (s[0]|0x20 >= 'a' && s[0]|0x20 <= 'z'):
		return "is absolute", "write it relative to the project root (no leading / or drive letter)"
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == ".." {
			return "leaves the project", "keep it inside the repository, relative to the project root (no `..`)"
		}
	}
	if c := path.Clean(s); c != s {
		return "is not a clean path", fmt.Sprintf("write it as %s", c)
	}
	return "", ""
}

// job decodes one entry of jobs:.
func (p *parser) job(name string, k, v *yaml.Node) {
	field := "jobs." + name
	p.setPos(field, k)
	p.checkName(k, name, "job name")
	j := Job{Name: name}
	defer func() { p.m.Jobs[name] = j }()
	if yamlnode.IsNull(v) {
		p.Errorf(k, "give it scheduler:, fabric:, pipelines: and definition:", "job %q has no settings", name)
		return
	}
	empty := map[string]*yaml.Node{}
	if !p.Map(v, field, jobKeys, func(key string, kk, vv *yaml.Node) {
		if yamlnode.IsNull(vv) {
			empty[key] = kk // reported as missing below
			return
		}
		p.setPos(field+"."+key, vv)
		switch key {
		case "scheduler":
			if s, ok := p.String(vv, field+".scheduler"); ok {
				switch Scheduler(s) {
				case Databricks, Airflow:
					j.Scheduler = Scheduler(s)
				default:
					p.Errorf(vv, "use databricks or airflow", "unknown scheduler %q for job %q", s, name)
				}
			}
		case "fabric":
			if s, ok := p.String(vv, field+".fabric"); ok {
				j.Fabric = s
				p.checkName(vv, s, "fabric name")
			}
		case "pipelines":
			list, nodes, _ := p.StringList(vv, field+".pipelines")
			seen := map[string]bool{}
			for i, pl := range list {
				if seen[pl] {
					p.Errorf(nodes[i], "list each pipeline once", "job %q lists pipeline %q twice", name, pl)
					continue
				}
				seen[pl] = true
				j.Pipelines = append(j.Pipelines, pl)
				p.jobPipelineRefs = append(p.jobPipelineRefs, nameRef{owner: name, name: pl, node: nodes[i]})
			}
			if vv.Kind == yaml.SequenceNode && len(vv.Content) == 0 {
				p.Errorf(vv, "list the pipelines whose artifacts the job runs, e.g. [ingest_orders]",
					"job %q runs no pipelines", name)
			}
		case "definition":
			j.Definition, _ = p.relPath(vv, field+".definition", false)
		}
	}) {
		return
	}
	for _, req := range []struct{ key, fix string }{
		{"scheduler", "add scheduler: databricks (a Jobs API 2.2 JSON payload) or scheduler: airflow (a DAG .py file)"},
		{"fabric", "add fabric: <name> (the fabric a plain deploy targets, as named in the platform config)"},
		{"pipelines", "add pipelines: [<pipeline>, ...] (the pipelines the job runs)"},
		{"definition", fmt.Sprintf("add definition: jobs/%s/job.json (Databricks) or jobs/%s/dag.py (Airflow)", name, name)},
	} {
		if _, ok := p.m.pos(field + "." + req.key); !ok {
			p.missing(k, empty[req.key], req.fix, "job", name, req.key)
		}
	}
	if j.Scheduler == Airflow && j.Definition != "" && !strings.HasSuffix(j.Definition, ".py") {
		at, _ := p.m.pos(field + ".definition")
		p.Errorf(&yaml.Node{Line: at.Line, Column: at.Col}, "use a .py file: Airflow only loads DAGs from Python files",
			"airflow job %q has definition %q, which is not a .py file", name, j.Definition)
	}
}

// missing reports a required setting that is absent (at the entry's key) or
// present but empty (at its own key).
func (p *parser) missing(entry, emptyKey *yaml.Node, fix, what, name, key string) {
	if emptyKey != nil {
		p.Errorf(emptyKey, fix, "%s %q: %s is empty", what, name, key)
		return
	}
	p.Errorf(entry, fix, "%s %q has no %s", what, name, key)
}

// override decodes one entry of fabrics:.
func (p *parser) override(fabric string, k, v *yaml.Node) {
	field := "fabrics." + fabric
	p.setPos(field, k)
	p.checkName(k, fabric, "fabric name")
	o := Overrides{Variables: map[string]string{}, Jobs: map[string]JobOverride{}}
	defer func() { p.m.Fabrics[fabric] = o }()
	if yamlnode.IsNull(v) {
		return
	}
	p.Map(v, field, overrideKeys, func(key string, kk, vv *yaml.Node) {
		p.setPos(field+"."+key, kk)
		if yamlnode.IsNull(vv) {
			return
		}
		switch key {
		case "variables":
			vars, pos := p.Vars(vv, field+".variables", VarRE, varRule)
			o.Variables = vars
			for name, at := range pos {
				p.m.src.pos[field+".variables."+name] = at
			}
		case "jobs":
			p.Map(vv, field+".jobs", nil, func(job string, jk, jv *yaml.Node) {
				jfield := field + ".jobs." + job
				p.setPos(jfield, jk)
				p.overrideJobRefs = append(p.overrideJobRefs, nameRef{owner: fabric, name: job, node: jk})
				var jo JobOverride
				if !yamlnode.IsNull(jv) {
					p.Map(jv, jfield, jobOverrideKeys, func(_ string, _, pv *yaml.Node) {
						if b, ok := p.Bool(pv, jfield+".paused"); ok {
							jo.Paused = &b
						}
					})
				}
				o.Jobs[job] = jo
			})
		}
	})
}

// crossRefs checks names used before or after their definition.
func (p *parser) crossRefs() {
	for _, r := range p.jobPipelineRefs {
		if _, ok := p.m.Pipelines[r.name]; !ok {
			p.Errorf(r.node, fmt.Sprintf("define pipelines.%s or remove it from jobs.%s.pipelines%s", r.name, r.owner,
				known("defined pipelines", p.m.Pipelines)),
				"job %q names unknown pipeline %q", r.owner, r.name)
		}
	}
	for _, r := range p.overrideJobRefs {
		if _, ok := p.m.Jobs[r.name]; !ok {
			p.Errorf(r.node, fmt.Sprintf("define jobs.%s or remove fabrics.%s.jobs.%s%s", r.name, r.owner, r.name,
				known("defined jobs", p.m.Jobs)),
				"fabric override %q names unknown job %q", r.owner, r.name)
		}
	}
}

// crossLibraries refuses a library named like a pipeline: both share the
// build cache's, the logs' and the release record's names.
func (p *parser) crossLibraries() {
	for _, r := range p.libraryRefs {
		if _, clash := p.m.Pipelines[r.name]; clash {
			p.Errorf(r.node, "rename the library or the pipeline: one name cannot be both (builds, logs and the release's record are keyed by name)",
				"library %q has the name of a pipeline", r.name)
		}
	}
}

// known renders " (what: a, b)" for fixes, or "" when m is empty.
func known[V any](what string, m map[string]V) string {
	if len(m) == 0 {
		return ""
	}
	return fmt.Sprintf(" (%s: %s)", what, strings.Join(sortedKeys(m), ", "))
}

// language reads the language of a pipeline or library (what) called name:
// one of the languages Shipline builds, "" (reported) otherwise.
func (p *parser) language(v *yaml.Node, field, what, name string) Language {
	s, ok := p.String(v, field+".language")
	if !ok {
		return ""
	}
	switch Language(s) {
	case Python, Scala, Java:
		return Language(s)
	}
	p.Errorf(v, "use python, scala or java", "unknown language %q for %s %q", s, what, name)
	return ""
}
