package templating

import (
	"fmt"
	"sort"
	"strings"

	"github.com/shipline/shipline/internal/diag"
)

// Known is what a job's definition may refer to.
type Known struct {
	// Pipelines are the pipelines the JOB runs: ${artifact.X} must name one of them.
	Pipelines []string
	// Vars are the variable names that have a value.
	Vars map[string]bool
	// VarsComplete says Vars holds every variable the deploy will have. When
	// false (no platform config), an unknown variable is only a warning.
	VarsComplete bool
	// Fabric names the fabric the vars are for, in messages (optional).
	Fabric string
}

// Fixed names, always available.
const (
	ReleaseVersion = "release.version"
	ReleaseCommit  = "release.commit"
	ProjectName    = "project.name"
	FabricName     = "fabric.name"
)

// ArtifactPrefix and VarPrefix start the names of artifact paths and variables.
const (
	ArtifactPrefix = "artifact."
	VarPrefix      = "var."
)

// Names lists the placeholder forms, for fix messages.
const Names = "${artifact.<pipeline>}, ${release.version}, ${release.commit}, ${project.name}, ${fabric.name}, ${var.<name>}"

// CheckRefs reports each ref that does not name something known. Diagnostics
// are in the order of refs.
func CheckRefs(file string, refs []Ref, known Known) diag.List {
	var diags diag.List
	pipelines := map[string]bool{}
	for _, p := range known.Pipelines {
		pipelines[p] = true
	}
	for _, r := range refs {
		if d, ok := checkRef(file, r, known, pipelines); !ok {
			diags = append(diags, d)
		}
	}
	return diags
}

func checkRef(file string, r Ref, known Known, pipelines map[string]bool) (diag.Diagnostic, bool) {
	at := func(sev diag.Severity, fix, format string, args ...any) (diag.Diagnostic, bool) {
		d := diag.Errorf(file, r.Line, r.Col, fix, format, args...)
		d.Severity = sev
		return d, false
	}
	switch {
	case r.Name == ReleaseVersion, r.Name == ReleaseCommit, r.Name == ProjectName, r.Name == FabricName:
		return diag.Diagnostic{}, true
	case strings.HasPrefix(r.Name, ArtifactPrefix):
		p := strings.TrimPrefix(r.Name, ArtifactPrefix)
		if pipelines[p] {
			return diag.Diagnostic{}, true
		}
		list := sortedKeys(pipelines)
		if len(list) == 0 {
			return at(diag.Error, "add the pipeline to the job's pipelines in shipline.yaml",
				"%s: this job runs no pipelines", quote(r.Name))
		}
		return at(diag.Error,
			fmt.Sprintf("use one of the job's pipelines (%s), or add %q to the job's pipelines in shipline.yaml",
				strings.Join(list, ", "), p),
			"%s: %q is not a pipeline of this job", quote(r.Name), p)
	case strings.HasPrefix(r.Name, VarPrefix):
		v := strings.TrimPrefix(r.Name, VarPrefix)
		if strings.Contains(v, ".") {
			return at(diag.Error, "variable names have no dots, e.g. ${var.schema}", "malformed variable %s", quote(r.Name))
		}
		if known.Vars[v] {
			return diag.Diagnostic{}, true
		}
		if !known.VarsComplete {
			return at(diag.Warning,
				fmt.Sprintf("define variables.%s in shipline.yaml, or check with --platform if a platform fabric sets it", v),
				"variable %s is not defined in shipline.yaml and cannot be checked without --platform", quote(r.Name))
		}
		fabric, where := "<fabric>", "this fabric"
		if known.Fabric != "" {
			fabric, where = known.Fabric, fmt.Sprintf("fabric %q", known.Fabric)
		}
		return at(diag.Error,
			fmt.Sprintf("define %s under variables or fabrics.%s.variables in shipline.yaml, or ask the platform admins to set it on the fabric", v, fabric),
			"variable %s has no value on %s", quote(r.Name), where)
	default:
		return at(diag.Error, "use one of "+Names+"; write `$${` for a literal `${`",
			"unknown placeholder %s", quote(r.Name))
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
