package scaffold

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
	"strings"

	"github.com/shipline/shipline/internal/manifest"
)

// writer builds the YAML line by line, remembering which job or pipeline
// ("job:<name>", "pipeline:<name>") each line belongs to.
type writer struct {
	buf    bytes.Buffer
	n      int
	owners map[int]string
}

func (w *writer) line(owner, text string) {
	w.n++
	if owner != "" {
		w.owners[w.n] = owner
	}
	w.buf.WriteString(strings.TrimRight(text, " "))
	w.buf.WriteByte('\n')
}

// render writes the manifest: enabled pipelines and jobs as YAML, the others
// and the variables as comments, each with what the user should do.
func (r *Result) render() ([]byte, map[int]string) {
	w := &writer{owners: map[int]string{}}
	for _, l := range []string{
		"# shipline.yaml written by `shipline init`: a starting point. Review it, do what the TODO",
		"# comments say, then check it with `shipline validate` (add --platform FILE to check the",
		"# fabric names and variables against the platform config).",
	} {
		w.line("", l)
	}
	w.line("", "name: "+scalar(r.Project)+"  # TODO: the project's name as registered under projects: in platform.yaml")
	w.line("", "")
	w.line("", "pipelines:")
	var off []Pipeline
	for _, p := range r.Pipelines {
		if p.Disabled != "" {
			off = append(off, p)
			continue
		}
		writePipeline(w, "  ", "pipeline:"+p.Name, p)
	}
	if len(off) > 0 {
		w.line("", "  # Found, but not enabled: do what the comment says, then uncomment the entry.")
		for _, p := range off {
			w.line("", "  # "+oneLine(p.Name+" is commented out: "+p.Disabled))
			writePipeline(w, "  # ", "", p)
		}
	}
	var on, offJobs []Job
	for _, j := range r.Jobs {
		if j.Disabled != "" {
			offJobs = append(offJobs, j)
		} else {
			on = append(on, j)
		}
	}
	if len(on)+len(offJobs) > 0 {
		w.line("", "")
		if len(on) > 0 {
			w.line("", "jobs:")
		} else {
			w.line("", "# jobs:")
		}
		for _, j := range on {
			writeJob(w, "  ", "job:"+j.Name, j)
		}
		if len(offJobs) > 0 {
			w.line("", "  # Found, but not enabled: do what the comment says, then uncomment the entry.")
			for _, j := range offJobs {
				w.line("", "  # "+oneLine(j.Name+" is commented out: "+j.Disabled))
				writeJob(w, "  # ", "", j)
			}
		}
	}
	if len(r.Variables) > 0 {
		w.line("", "")
		w.line("", "# TODO: the job definitions use these ${var.*}: give them defaults here (uncomment), per fabric")
		w.line("", "# under fabrics.<fabric>.variables, or let platform.yaml's fabrics set them.")
		w.line("", "# variables:")
		names := make([]string, 0, len(r.Variables))
		for v := range r.Variables {
			names = append(names, v)
		}
		sort.Strings(names)
		for _, v := range names {
			w.line("", "#   "+scalar(v)+`: ""  # used by `+strings.Join(r.Variables[v], ", "))
		}
	}
	return w.buf.Bytes(), w.owners
}

func writePipeline(w *writer, indent, owner string, p Pipeline) {
	w.line(owner, indent+scalar(p.Name)+":  # found "+p.Marker)
	w.line(owner, indent+"  path: "+scalar(p.Path))
	w.line(owner, indent+"  language: "+string(p.Language))
	if p.Build != "" {
		w.line(owner, indent+"  build: "+scalar(p.Build))
	}
	if p.Artifact != "" {
		w.line(owner, indent+"  artifact: "+scalar(p.Artifact))
	}
	for _, t := range p.Todo {
		w.line(owner, indent+"  # TODO: "+oneLine(t))
	}
}

func writeJob(w *writer, indent, owner string, j Job) {
	what := "Databricks job"
	fabricTodo := "  # TODO: the fabric a plain deploy targets: a databricks fabric under fabrics: in platform.yaml"
	if j.Scheduler == manifest.Airflow {
		what, fabricTodo = strings.TrimSpace("Airflow DAG "+dagLabel(j.DagID)), "  # TODO: the fabric a plain deploy targets: an airflow fabric under fabrics: in platform.yaml"
	}
	w.line(owner, indent+scalar(j.Name)+":  # "+what+" found in "+j.Definition)
	w.line(owner, indent+"  scheduler: "+string(j.Scheduler))
	w.line(owner, indent+"  fabric: "+scalar(j.Fabric)+fabricTodo)
	list := make([]string, len(j.Pipelines))
	for i, p := range j.Pipelines {
		list[i] = scalar(p)
	}
	w.line(owner, indent+"  pipelines: ["+strings.Join(list, ", ")+"]")
	for _, l := range j.Links {
		w.line(owner, indent+"  #   "+oneLine(l))
	}
	w.line(owner, indent+"  definition: "+scalar(j.Definition))
	for _, h := range j.Hints {
		w.line(owner, indent+"  # TODO: "+oneLine(h))
	}
}

var (
	plainScalar = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./*-]*$`)
	yamlWords   = regexp.MustCompile(`^(?i:true|false|yes|no|on|off|y|n|null|~|[-+]?[0-9._]+([eE][-+]?[0-9]+)?|0x[0-9a-f]+|0o[0-7]+|\.inf|\.nan)$`)
)

// scalar writes s as a YAML scalar: plain when it cannot be read as anything
// but that string, else double-quoted.
func scalar(s string) string {
	if plainScalar.MatchString(s) && !yamlWords.MatchString(s) {
		return s
	}
	return quoteJSON(s)
}

// quoteJSON double-quotes s (a JSON string is a valid YAML double-quoted scalar).
func quoteJSON(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSpace(b.String())
}

func dagLabel(id string) string {
	if id == "" {
		return ""
	}
	return quoteJSON(id)
}

// oneLine keeps a comment on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
