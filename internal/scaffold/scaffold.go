// Package scaffold writes a starting shipline.yaml for an existing repository
// (`shipline init`). It reads the repository, never changes it:
//
//   - pipelines are the directories holding a pyproject.toml or setup.py
//     (python), a pom.xml (java, or scala with src/main/scala) or a build.sbt
//     (scala); the outermost one wins, and a Maven aggregator (packaging pom)
//     is not a pipeline itself;
//   - Databricks jobs are the .json files that parse as a Jobs API job
//     settings object (a "tasks" list of objects with a "task_key");
//   - Airflow jobs are the .py files that import airflow and define one DAG
//     with a literal dag_id, which the DAG keeps (a deploy records who owns it
//     on each fabric); the job is named after it, without a
//     "${project.name}__" or "<project>__" prefix;
//   - a job runs the pipelines its definition references: a
//     ${artifact.<pipeline>} placeholder, a python_wheel_task package_name, a
//     wheel or jar file named after the pipeline's package, a main class in one
//     of its JVM packages, or (in a DAG) the package, module or console script
//     named as a word.
//
// The result is checked the way `shipline validate` checks a project; what does
// not validate (and what cannot be guessed, like a job whose pipelines are not
// found) is written commented out with the reason, so the file always
// validates. Every list is sorted, so the same repository gives the same file.
package scaffold

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/templating"
)

// Default fabric names written for jobs, with a TODO to replace them.
const (
	DatabricksFabric = "dev"
	AirflowFabric    = "airflow-dev"
)

// Options tune Init.
type Options struct {
	// Project is the project's name; empty: derived from DirName.
	Project string
	// DirName is the repository directory's base name (for the default project name).
	DirName string
	// Check validates a project offline the way `shipline validate` does; nil
	// skips the check (the caller then validates the file itself).
	Check func(fsys fs.FS) diag.List
}

// Pipeline is a pipeline found in the repository.
type Pipeline struct {
	Name     string            `json:"name"`
	Path     string            `json:"path"`
	Language manifest.Language `json:"language"`
	Build    string            `json:"build,omitempty"`
	Artifact string            `json:"artifact,omitempty"`
	// Marker is the file that makes the directory a pipeline.
	Marker string `json:"marker"`
	// Names are the names a job definition may use for it: distribution,
	// import packages, console scripts, artifactId, sbt name.
	Names []string `json:"names,omitempty"`
	// Scripts are its console scripts (entry points), normalized.
	Scripts []string `json:"scripts,omitempty"`
	// Packages are its top JVM packages (dotted), for spark_jar_task main classes.
	Packages []string `json:"packages,omitempty"`
	// Todo says what the user should check in its settings.
	Todo []string `json:"todo,omitempty"`
	// Disabled says why it is written commented out ("" when enabled).
	Disabled string `json:"disabled,omitempty"`
}

// Job is a job found in the repository.
type Job struct {
	Name       string             `json:"name"`
	Scheduler  manifest.Scheduler `json:"scheduler"`
	Fabric     string             `json:"fabric"`
	Definition string             `json:"definition"`
	Pipelines  []string           `json:"pipelines"`
	// Links say why each pipeline is linked ("ingest_orders: package_name ingest_orders").
	Links []string `json:"links,omitempty"`
	// DagID is an Airflow job's dag_id as written in the file.
	DagID string `json:"dag_id,omitempty"`
	// Hints say what to change in the definition (hard-coded artifact paths).
	Hints []string `json:"hints,omitempty"`
	// Disabled says why it is written commented out ("" when enabled).
	Disabled string `json:"disabled,omitempty"`

	vars []string
}

// Result is what Init found and the shipline.yaml it wrote.
type Result struct {
	Project   string     `json:"project"`
	Pipelines []Pipeline `json:"pipelines"`
	Jobs      []Job      `json:"jobs"`
	// Variables are the ${var.*} names the enabled jobs' definitions use,
	// each with the definitions using it; they are written commented out.
	Variables map[string][]string `json:"variables"`
	YAML      []byte              `json:"-"`
}

// ErrNothingFound is returned (wrapped, with what was looked for) when the
// repository holds no pipeline.
var ErrNothingFound = errors.New("no pipeline found")

// Init reads the repository in fsys and returns the shipline.yaml to write.
func Init(fsys fs.FS, o Options) (*Result, error) {
	project := o.Project
	if project == "" {
		project = sanitizeName(o.DirName, "project")
	}
	if !manifest.NameRE.MatchString(project) {
		return nil, fmt.Errorf("project name %q is not valid: use 1-63 characters: lowercase letters, digits, `_` or `-`, starting with a letter (pass --name)", project)
	}
	found, err := walk(fsys)
	if err != nil {
		return nil, err
	}
	pipelines := findPipelines(fsys, found.dirs)
	r := &Result{Project: project, Pipelines: pipelines, Variables: map[string][]string{}}
	r.Jobs = append(r.Jobs, findDatabricksJobs(fsys, found.json, pipelines)...)
	r.Jobs = append(r.Jobs, findAirflowJobs(fsys, found.py, pipelines, project)...)
	nameJobs(r.Jobs, project)
	if len(pipelines) == 0 {
		return r, fmt.Errorf("%w: no pyproject.toml, setup.py, pom.xml or build.sbt outside hidden, build and virtualenv directories%s; "+
			"shipline.yaml needs at least one pipeline: add one (a directory with its build file) and run init again", ErrNothingFound, jobsSeen(r.Jobs))
	}
	if err := r.settle(fsys, o.Check); err != nil {
		return r, err
	}
	return r, nil
}

// jobsSeen mentions the job definitions found, for the nothing-found message.
func jobsSeen(jobs []Job) string {
	if len(jobs) == 0 {
		return ""
	}
	defs := make([]string, len(jobs))
	for i, j := range jobs {
		defs[i] = j.Definition
	}
	return fmt.Sprintf(" (job definitions found: %s)", strings.Join(defs, ", "))
}

// settle renders the manifest and checks it, commenting out what does not
// validate, until it validates.
func (r *Result) settle(fsys fs.FS, check func(fs.FS) diag.List) error {
	for round := 0; ; round++ {
		if r.enabledPipelines() == 0 {
			var why []string
			for _, p := range r.Pipelines {
				why = append(why, fmt.Sprintf("%s (%s): %s", p.Name, p.Marker, p.Disabled))
			}
			return fmt.Errorf("%w that validates: %s", ErrNothingFound, strings.Join(why, "; "))
		}
		r.disableDependents()
		r.collectVariables()
		var owners map[int]string
		r.YAML, owners = r.render()
		if check == nil {
			return nil
		}
		diags := check(overlay{FS: fsys, yaml: r.YAML})
		if !diags.HasErrors() {
			return nil
		}
		changed := false
		var unplaced diag.List
		for _, d := range diags {
			if d.Severity == diag.Warning {
				continue
			}
			if r.disableFor(d, owners) {
				changed = true
			} else {
				unplaced = append(unplaced, d)
			}
		}
		if !changed || round > len(r.Jobs)+len(r.Pipelines) {
			if len(unplaced) == 0 {
				unplaced = diags
			}
			return fmt.Errorf("the shipline.yaml written for this repository does not validate; please report it:\n%s", unplaced.Error())
		}
	}
}

func (r *Result) enabledPipelines() int {
	n := 0
	for _, p := range r.Pipelines {
		if p.Disabled == "" {
			n++
		}
	}
	return n
}

// disableFor comments out the job or pipeline a diagnostic is about: a
// definition's file names its jobs, a line of shipline.yaml its owner.
// It reports whether anything changed.
func (r *Result) disableFor(d diag.Diagnostic, owners map[int]string) bool {
	reason := d.Where() + ": " + d.Summary
	if d.Fix != "" {
		reason += " (fix: " + d.Fix + ")"
	}
	changed := false
	for i := range r.Jobs {
		j := &r.Jobs[i]
		if j.Disabled == "" && (d.File == j.Definition || d.File == manifest.FileName && owners[d.Line] == "job:"+j.Name) {
			j.Disabled, changed = reason, true
		}
	}
	for i := range r.Pipelines {
		p := &r.Pipelines[i]
		if p.Disabled == "" && d.File == manifest.FileName && owners[d.Line] == "pipeline:"+p.Name {
			p.Disabled, changed = reason, true
		}
	}
	return changed
}

// disableDependents comments out jobs that run a pipeline that is commented out.
func (r *Result) disableDependents() {
	off := map[string]string{}
	for _, p := range r.Pipelines {
		if p.Disabled != "" {
			off[p.Name] = p.Disabled
		}
	}
	for i := range r.Jobs {
		j := &r.Jobs[i]
		for _, p := range j.Pipelines {
			if _, ok := off[p]; ok && j.Disabled == "" {
				j.Disabled = fmt.Sprintf("it runs pipeline %s, which is commented out", p)
			}
		}
	}
}

// collectVariables lists the ${var.*} the enabled jobs use.
func (r *Result) collectVariables() {
	r.Variables = map[string][]string{}
	for _, j := range r.Jobs {
		if j.Disabled != "" {
			continue
		}
		for _, v := range j.vars {
			if !contains(r.Variables[v], j.Definition) {
				r.Variables[v] = append(r.Variables[v], j.Definition)
			}
		}
	}
	for v := range r.Variables {
		sort.Strings(r.Variables[v])
	}
}

// nameJobs gives every job a unique valid name, in definition order: a
// collision gets the definition's directory as prefix, then a number. A
// second DAG with a dag_id another has (once ${project.name} is filled in)
// is commented out: a fabric takes one owner per dag_id.
func nameJobs(jobs []Job, project string) {
	sort.SliceStable(jobs, func(a, b int) bool { return jobs[a].Definition < jobs[b].Definition })
	taken := map[string]string{}  // name → definition
	dagIDs := map[string]string{} // dag_id → definition
	for i := range jobs {
		j := &jobs[i]
		name := j.Name
		id := strings.ReplaceAll(j.DagID, "${"+templating.ProjectName+"}", project)
		if first, dup := dagIDs[id]; dup && id != "" && j.Disabled == "" {
			// One owner per dag_id on a fabric: a deploy would refuse the second.
			j.Disabled = fmt.Sprintf("dag_id %q is the DAG's of %s already: give one of the DAGs another dag_id", id, first)
		} else if id != "" {
			dagIDs[id] = j.Definition
		}
		if taken[name] != "" {
			if dir := path.Base(path.Dir(j.Definition)); dir != "." && dir != "/" {
				name = sanitizeName(dir+"_"+name, "job")
			}
		}
		base := name
		for n := 2; taken[name] != ""; n++ {
			name = fmt.Sprintf("%s_%d", truncate(base, 60), n)
		}
		j.Name = name
		taken[name] = j.Definition
	}
	sort.SliceStable(jobs, func(a, b int) bool { return jobs[a].Name < jobs[b].Name })
}

var notNameChar = regexp.MustCompile(`[^a-z0-9_-]+`)

// sanitizeName turns s into a valid project, pipeline or job name
// (manifest.NameRE): lowercase, other characters as `_`, starting with a
// letter (prefix when it does not).
func sanitizeName(s, prefix string) string {
	n := notNameChar.ReplaceAllString(strings.ToLower(s), "_")
	n = strings.Trim(n, "_-")
	if n == "" || n[0] < 'a' || n[0] > 'z' {
		n = prefix + "_" + n
		n = strings.TrimRight(n, "_")
	}
	return truncate(n, 63)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return strings.TrimRight(s[:n], "_-")
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
