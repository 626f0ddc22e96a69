package fabric

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/templating"
)

// CheckDAG checks a rendered Airflow DAG offline, writing nothing to any
// fabric: it must compile with the worker's python3 and define one DAG whose
// dag_id is a string literal (the same check the airflow, managed-airflow
// and local fabrics make before they write a DAG). Failures are permanent InvalidDefinition errors wrapping
// a diag.List that names the source file:line (spec.Source), or
// PythonUnavailable. env nil reads the process environment.
func CheckDAG(ctx context.Context, env Env, spec JobSpec) error {
	_, err := checkDAG(ctx, env, spec)
	return err
}

// checkDAG is CheckDAG returning what the DAG says about itself.
func checkDAG(ctx context.Context, env Env, spec JobSpec) (dagInfo, error) {
	if err := checkJobNames(spec); err != nil {
		return dagInfo{}, err
	}
	return checkDAGContent(ctx, pythonBin(env), spec, dagID(spec)+".py", dagFileContent(spec))
}

// Stand-ins for the values only a deploy knows, used by CheckProjectDAGs.
const (
	checkVersion = "v0.0.0"
	checkCommit  = "0000000000000000000000000000000000000000"
)

// CheckProjectDAGs compiles every Airflow DAG of a project offline (see
// CheckDAG), as `shipline validate` and a release do before anything is
// tagged or deployed. Each DAG is rendered for its job's fabric: project and
// fabric names, and variables (the manifest's, and the platform's when cfg is
// not nil) are the real ones; the release, the artifact paths and any
// variable without a value (reported by manifest.Load) are stand-ins. project
// "" means the manifest's name. Definitions Load found unreadable or
// malformed are skipped (Load reported them); files are read as Load reads
// them (manifest.ReadFile: no FIFO, device or link out of the project).
// Two jobs whose DAGs define the same dag_id on one fabric are refused (a
// fabric records one owner per dag_id, see dag_owners.go). Diagnostics name
// the source file:line; without a Python interpreter it returns one warning.
func CheckProjectDAGs(ctx context.Context, fsys fs.FS, m *manifest.Manifest, cfg *platform.Config, project string, env Env) diag.List {
	if m == nil {
		return nil
	}
	if project == "" {
		project = m.Name
	}
	names := make([]string, 0, len(m.Jobs))
	for name, j := range m.Jobs {
		if j.Scheduler == manifest.Airflow {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var diags diag.List
	owners := map[string]string{} // fabric + "\x00" + dag_id → job
	for _, name := range names {
		j := m.Jobs[name]
		j.Name = name
		if j.Definition == "" || !fs.ValidPath(j.Definition) {
			continue
		}
		data, err := manifest.ReadFile(fsys, j.Definition)
		if err != nil {
			continue // Load reported it
		}
		refs, sd := templating.Scan(j.Definition, data)
		if sd.HasErrors() {
			continue
		}
		in := RenderInput{Project: project, Version: checkVersion, Commit: checkCommit, Fabric: j.Fabric, Job: j,
			Definition: data, ArtifactPaths: map[string]string{}, Variables: MergeVariables(m, cfg, j.Fabric)}
		for _, p := range j.Pipelines {
			in.ArtifactPaths[p] = path.Join("/shipline-check", project, checkVersion, p, p+".artifact")
		}
		for _, r := range refs {
			if v, ok := strings.CutPrefix(r.Name, templating.VarPrefix); ok {
				if _, has := in.Variables[v]; !has {
					in.Variables[v] = "shipline-check-" + v
				}
			}
		}
		spec, err := RenderJobSpec(in, "")
		if err != nil {
			continue // an unknown placeholder: manifest.Load reported it
		}
		dag, err := checkDAG(ctx, env, spec)
		var ae *apperr.Error
		var l diag.List
		switch {
		case err == nil:
			key := j.Fabric + "\x00" + dag.ID
			if other, taken := owners[key]; taken {
				diags = append(diags, diag.Diagnostic{Severity: diag.Error, File: j.Definition,
					Summary: fmt.Sprintf("job %q defines dag_id %q, like job %q, for fabric %q: a dag_id has one owner on a fabric", name, dag.ID, other, j.Fabric),
					Fix:     "give one of the two DAGs another dag_id"})
			} else {
				owners[key] = name
			}
		case errors.As(err, &l):
			diags = append(diags, l...)
		case errors.As(err, &ae) && ae.Type == apperr.PythonUnavailable:
			return append(diags, diag.Diagnostic{Severity: diag.Warning, File: j.Definition,
				Summary: fmt.Sprintf("the Airflow DAGs were not compiled: no Python interpreter %q here", pythonBin(env)),
				Fix:     "install python3 (or set SHIPLINE_PYTHON) to check DAGs before a deploy does"})
		default:
			diags = append(diags, diag.Diagnostic{Severity: diag.Error, File: j.Definition,
				Summary: fmt.Sprintf("job %q: cannot check the DAG: %v", name, err), Fix: "check that python3 runs on this machine"})
		}
	}
	return diags
}
