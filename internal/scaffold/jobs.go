package scaffold

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/templating"
)

// genericDefinition are definition file names that say nothing about the job:
// the job is named after their directory instead.
var genericDefinition = map[string]bool{
	"job": true, "jobs": true, "job_settings": true, "settings": true, "definition": true, "databricks": true,
	"dag": true, "dags": true,
}

// jobNameOf names a job after its definition file.
func jobNameOf(file string) string {
	base := strings.TrimSuffix(path.Base(file), path.Ext(file))
	if dir := path.Base(path.Dir(file)); genericDefinition[strings.ToLower(base)] && dir != "." {
		base = dir
	}
	return sanitizeName(base, "job")
}

// findDatabricksJobs reads the .json files that are Jobs API job settings.
func findDatabricksJobs(fsys fs.FS, files []string, pipelines []Pipeline) []Job {
	var out []Job
	for _, file := range files {
		data, ok := readFile(fsys, file)
		if !ok {
			continue
		}
		var v any
		if json.Unmarshal(data, &v) != nil {
			continue
		}
		j := Job{Name: jobNameOf(file), Scheduler: manifest.Databricks, Fabric: DatabricksFabric, Definition: file}
		if obj, ok := v.(map[string]any); ok && !isJobSettings(v) && isJobSettings(obj["settings"]) {
			// A `databricks jobs get` answer: its settings are the job.
			j.Disabled = "it is a Jobs API get response (job_id, settings, ...): keep only the object under \"settings\" in the file, then uncomment"
			v = obj["settings"]
		}
		if !isJobSettings(v) {
			continue
		}
		l := &linker{job: &j, pipelines: pipelines}
		l.placeholders(file, data)
		walkJSON(v, "", l.jsonValue)
		l.finish()
		out = append(out, j)
	}
	return out
}

// isJobSettings reports whether v is a Jobs API 2.2 job settings object: a
// JSON object whose "tasks" is a non-empty list of objects with a "task_key".
func isJobSettings(v any) bool {
	obj, ok := v.(map[string]any)
	if !ok {
		return false
	}
	tasks, ok := obj["tasks"].([]any)
	if !ok || len(tasks) == 0 {
		return false
	}
	for _, t := range tasks {
		task, ok := t.(map[string]any)
		if !ok {
			return false
		}
		if key, ok := task["task_key"].(string); !ok || key == "" {
			return false
		}
	}
	return true
}

// walkJSON calls fn for every string of v with the key it sits under.
func walkJSON(v any, key string, fn func(key, s string)) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walkJSON(x[k], k, fn)
		}
	case []any:
		for _, e := range x {
			walkJSON(e, key, fn)
		}
	case string:
		fn(key, x)
	}
}

var (
	airflowImport = regexp.MustCompile(`(?m)^\s*(from\s+airflow[\s.]|import\s+airflow\b)`)
	dagCall       = regexp.MustCompile(`\bDAG\s*\(\s*(?:dag_id\s*=\s*)?(["'])([^"'\n]*)(["'])`)
	dagIDKeyword  = regexp.MustCompile(`\bdag_id\s*=\s*(["'])([^"'\n]*)(["'])`)
	dagIDName     = regexp.MustCompile(`\bdag_id\s*=\s*([A-Za-z_]\w*)\s*[,)\n]`)
	dagDecorator  = regexp.MustCompile(`(?m)^\s*@(?:\w+\.)?dag\b(\s*\(([^)]*)\))?\s*\n(?:\s*@.*\n)*\s*(?:async\s+)?def\s+(\w+)`)
	definesDAG    = regexp.MustCompile(`\bDAG\s*\(|@(?:\w+\.)?dag\b`)
)

// findAirflowJobs reads the .py files that import airflow and define a DAG.
func findAirflowJobs(fsys fs.FS, files []string, pipelines []Pipeline, project string) []Job {
	var out []Job
	for _, file := range files {
		data, ok := readFile(fsys, file)
		if !ok || !airflowImport.Match(data) || !definesDAG.Match(data) {
			continue
		}
		j := Job{Scheduler: manifest.Airflow, Fabric: AirflowFabric, Definition: file}
		ids := dagIDs(string(data))
		switch {
		case len(ids) == 0:
			j.Name = jobNameOf(file)
			j.Disabled = fmt.Sprintf("no dag_id written as a string literal was found: write it as a string, e.g. dag_id=\"${project.name}__%s\"", j.Name)
		case len(ids) > 1:
			j.Name = jobNameOf(file)
			j.Disabled = fmt.Sprintf("it defines %d DAGs (%s); a deploy writes one DAG per job: keep one DAG per file",
				len(ids), strings.Join(ids, ", "))
		default:
			j.DagID = ids[0]
			j.Name, j.Disabled = airflowJobName(ids[0], project, file)
		}
		l := &linker{job: &j, pipelines: pipelines}
		l.placeholders(file, data)
		l.text(string(data))
		l.finish()
		out = append(out, j)
	}
	return out
}

// airflowJobName names the job of a DAG after its dag_id, without a
// "${project.name}__" or "<project>__" prefix. The DAG keeps its dag_id
// (renaming a DAG loses its Airflow history): a deploy records which job
// owns it on each fabric.
func airflowJobName(id, project, file string) (string, string) {
	for _, prefix := range []string{"${" + templating.ProjectName + "}__", project + "__"} {
		if rest, ok := strings.CutPrefix(id, prefix); ok && manifest.NameRE.MatchString(rest) {
			return rest, ""
		}
	}
	return sanitizeName(strings.TrimPrefix(id, "${"+templating.ProjectName+"}__"), "job"), ""
}

// dagIDs lists the distinct dag_ids a DAG file defines, as written: the
// DAG(...) calls' first argument or dag_id=, a dag_id= bound to a module-level
// string constant, and @dag functions (their dag_id=, else their name).
func dagIDs(src string) []string {
	var ids []string
	add := func(id string) {
		if id != "" && !contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for _, m := range dagCall.FindAllStringSubmatch(src, -1) {
		if m[1] == m[3] {
			add(m[2])
		}
	}
	for _, m := range dagIDKeyword.FindAllStringSubmatch(src, -1) {
		if m[1] == m[3] {
			add(m[2])
		}
	}
	for _, m := range dagIDName.FindAllStringSubmatch(src, -1) {
		constant := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m[1]) + `\s*=\s*(["'])([^"'\n]*)(["'])`)
		if c := constant.FindStringSubmatch(src); c != nil && c[1] == c[3] {
			add(c[2])
		}
	}
	for _, m := range dagDecorator.FindAllStringSubmatch(src, -1) {
		if !strings.Contains(m[2], "dag_id") {
			add(m[3])
		}
	}
	sort.Strings(ids)
	return ids
}

// linker finds the pipelines a job definition references.
type linker struct {
	job       *Job
	pipelines []Pipeline
	links     map[string][]string // pipeline → why
	hints     []string
	vars      []string
}

// link records that the job runs pipeline p, and why.
func (l *linker) link(p, why string) {
	if l.links == nil {
		l.links = map[string][]string{}
	}
	if !contains(l.links[p], why) {
		l.links[p] = append(l.links[p], why)
	}
}

// placeholders links ${artifact.<pipeline>} and collects ${var.*}.
func (l *linker) placeholders(file string, data []byte) {
	refs, _ := templating.Scan(file, data)
	for _, r := range refs {
		switch {
		case strings.HasPrefix(r.Name, templating.ArtifactPrefix):
			l.link(strings.TrimPrefix(r.Name, templating.ArtifactPrefix), "${"+r.Name+"}")
		case strings.HasPrefix(r.Name, templating.VarPrefix):
			if v := strings.TrimPrefix(r.Name, templating.VarPrefix); !contains(l.vars, v) {
				l.vars = append(l.vars, v)
			}
		}
	}
}

// jsonValue links what a Databricks job's strings name: a wheel package, a
// main class, a wheel or jar file.
func (l *linker) jsonValue(key, s string) {
	switch key {
	case "package_name":
		for _, p := range l.pipelines {
			if p.Language == manifest.Python && contains(p.Names, normalize(s)) {
				l.link(p.Name, "package_name "+s)
			}
		}
	case "entry_point":
		for _, p := range l.pipelines {
			if contains(p.Scripts, normalize(s)) {
				l.link(p.Name, "entry_point "+s)
			}
		}
	case "main_class_name":
		if i := strings.LastIndex(s, "."); i > 0 {
			for _, p := range l.pipelines {
				for _, pkg := range p.Packages {
					if pkg == s[:i] || strings.HasPrefix(s[:i], pkg+".") {
						l.link(p.Name, "main class "+s)
					}
				}
			}
		}
	}
	l.file(s)
}

// file links a wheel or jar path named after a pipeline's package; one that is
// not a placeholder gets a hint to use ${artifact.<pipeline>} instead.
func (l *linker) file(s string) {
	ext := path.Ext(s)
	if ext != ".whl" && ext != ".jar" {
		return
	}
	base := strings.TrimSuffix(path.Base(s), ext)
	for _, p := range l.pipelines {
		if !artifactOf(p, base, ext) {
			continue
		}
		l.link(p.Name, strings.TrimPrefix(ext, ".")+" "+path.Base(s))
		if !strings.Contains(s, "${") {
			l.hints = append(l.hints, fmt.Sprintf("%s names %s %q of pipeline %s: write \"${artifact.%s}\" instead, so each release runs its own build",
				l.job.Definition, strings.TrimPrefix(ext, "."), s, p.Name, p.Name))
		}
	}
}

// artifactOf reports whether a wheel or jar file name (without extension) is
// pipeline p's: a wheel's distribution (before the first "-"), a jar named
// after the artifactId or sbt name.
func artifactOf(p Pipeline, base, ext string) bool {
	if ext == ".whl" {
		dist, _, _ := strings.Cut(base, "-")
		return p.Language == manifest.Python && contains(p.Names, normalize(dist))
	}
	if p.Language == manifest.Python {
		return false
	}
	for _, n := range p.Names {
		if base == n || strings.HasPrefix(base, n+"-") || strings.HasPrefix(base, n+"_") {
			return true
		}
	}
	return false
}

var filePath = regexp.MustCompile(`[^\s"'()\[\],]+\.(whl|jar)\b`)

// text links the pipelines a DAG names as words (package, module, console
// script, JVM package) and the wheel and jar paths it names.
func (l *linker) text(src string) {
	for _, m := range filePath.FindAllString(src, -1) {
		l.file(m)
	}
	for _, p := range l.pipelines {
		words := append(append(append([]string{}, p.Names...), p.Scripts...), p.Packages...)
		for _, w := range words {
			if wordRE(w).MatchString(src) {
				l.link(p.Name, "names "+w)
			}
		}
	}
}

// wordRE matches a name as a word; `_`, `-` and `.` inside it match each other
// (a distribution is spelled either way).
func wordRE(name string) *regexp.Regexp {
	parts := separators.Split(name, -1)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`(?:^|[^A-Za-z0-9_])` + strings.Join(parts, `[-_.]`) + `(?:$|[^A-Za-z0-9_])`)
}

// finish writes what was found into the job.
func (l *linker) finish() {
	names := make([]string, 0, len(l.links))
	for p := range l.links {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		l.job.Pipelines = append(l.job.Pipelines, p)
		l.job.Links = append(l.job.Links, p+": "+strings.Join(l.links[p], ", "))
	}
	sort.Strings(l.hints)
	l.job.Hints = l.hints
	sort.Strings(l.vars)
	l.job.vars = l.vars
	if len(names) == 0 && l.job.Disabled == "" {
		l.job.Disabled = "its definition references no pipeline found here (no ${artifact.<pipeline>}, package, wheel, jar or main class of one): list the pipelines it runs under pipelines:, then uncomment"
	}
}
