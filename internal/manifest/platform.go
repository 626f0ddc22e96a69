package manifest

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/templating"
)

// Validate is Load followed by CheckPlatform: everything `shipline validate
// --platform` checks. Variables are checked only once, completely, against
// the platform config (no "cannot be checked" warnings).
func Validate(fsys fs.FS, cfg *platform.Config, project string) (*Manifest, diag.List) {
	m, diags := load(fsys, false)
	if m == nil {
		return nil, diags
	}
	return m, order(append(diags, CheckPlatform(m, cfg, project)...))
}

// CheckPlatform cross-checks a manifest with the platform config: the project
// is registered (as project when non-empty, else as the manifest's name), each
// job's fabric exists and its kind runs the job's scheduler (platform.KindSpec), fabric
// overrides name known fabrics, and each ${var.X} of a job's definition has a
// value on the job's fabric (shipline.yaml variables, the manifest's
// fabrics.<f>.variables, and the platform fabric's variables). Placeholders
// are known only for a manifest from Load or Validate.
func CheckPlatform(m *Manifest, cfg *platform.Config, project string) diag.List {
	var diags diag.List
	add := func(sev diag.Severity, field, fix, format string, args ...any) {
		diags = append(diags, m.diagAt(sev, field, fix, format, args...))
	}
	registered := known("registered projects", cfg.Projects)
	switch {
	case project != "" && m.Name != project:
		add(diag.Error, "name", fmt.Sprintf("set name: %s, or use --project %s", project, m.Name),
			"shipline.yaml names project %q but the project is %q", m.Name, project)
	case project == "" && m.Name != "":
		project = m.Name
	}
	if _, ok := cfg.Projects[project]; !ok && project != "" {
		add(diag.Error, "name", "ask the platform admins to add it under projects: in the platform config, or fix the name"+registered,
			"project %q is not registered in the platform config", project)
	}
	for _, name := range m.byPosition("jobs.", sortedKeys(m.Jobs)) {
		j := m.Jobs[name]
		if j.Fabric == "" {
			continue
		}
		f, ok := cfg.Fabrics[j.Fabric]
		if !ok {
			add(diag.Error, "jobs."+name+".fabric", "use a fabric of the platform config"+known("fabrics", cfg.Fabrics),
				"job %q: fabric %q is not defined in the platform config", name, j.Fabric)
			continue
		}
		if !f.Runs(string(j.Scheduler)) && platform.KindsRunning(string(j.Scheduler)) != nil {
			add(diag.Error, "jobs."+name+".fabric", fmt.Sprintf("use a %s fabric%s", platform.JoinKinds(platform.KindsRunning(string(j.Scheduler))), compatible(cfg, j.Scheduler)),
				"job %q runs on %s but fabric %q is of kind %s", name, j.Scheduler, j.Fabric, f.Kind)
		}
		diags = append(diags, m.checkVars(name, j, f)...)
	}
	diags = append(diags, m.checkLibraryIndexes(cfg)...)
	for _, name := range m.byPosition("fabrics.", sortedKeys(m.Fabrics)) {
		if _, ok := cfg.Fabrics[name]; !ok {
			add(diag.Error, "fabrics."+name, "rename or remove this override"+known("fabrics", cfg.Fabrics),
				"fabric override %q names a fabric that is not defined in the platform config", name)
		}
	}
	return order(diags)
}

// compatible renders " (candidates: a, b)" for the fabrics able to run s.
func compatible(cfg *platform.Config, s Scheduler) string {
	var names []string
	for _, n := range sortedKeys(cfg.Fabrics) {
		if cfg.Fabrics[n].Runs(string(s)) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (candidates: " + strings.Join(names, ", ") + ")"
}

// checkVars checks the ${var.X} placeholders of a job's definition against
// every variable the job has on its fabric.
func (m *Manifest) checkVars(name string, j Job, f platform.Fabric) diag.List {
	if m.src == nil {
		return nil
	}
	def, ok := m.src.defs[name]
	if !ok {
		return nil
	}
	vars := map[string]bool{}
	for k := range m.Variables {
		vars[k] = true
	}
	for k := range m.Fabrics[j.Fabric].Variables {
		vars[k] = true
	}
	for k := range f.Variables {
		vars[k] = true
	}
	var refs []templating.Ref
	for _, r := range def.refs {
		if strings.HasPrefix(r.Name, templating.VarPrefix) {
			refs = append(refs, r)
		}
	}
	return templating.CheckRefs(def.file, refs, templating.Known{Pipelines: j.Pipelines, Vars: vars, VarsComplete: true, Fabric: j.Fabric})
}
