package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/workflows"
)

// jobs renders every job for its fabric as a deploy would (the provisional
// version, the built artifacts' paths), checks each as a deploy's check step
// does, and plans each against its live fabric, read-only: here with
// --platform, else on the worker when one is reachable.
func (c *checker) jobs() {
	switch {
	case !c.mValid:
		c.skipJobs(c.mWhy)
	case c.o.platform != "" && c.cfg == nil:
		c.skipJobs(c.o.platform + " is invalid")
	case c.o.platform != "":
		c.reportJobs(activities.CheckJobsOfTree(c.o.ctx, c.cfg, os.Getenv, c.src.fsys, c.m, c.treeInput()), "with "+c.o.platform)
	default:
		c.onWorker()
	}
}

// treeInput is what rendering needs besides the files.
func (c *checker) treeInput() activities.CheckTreeInput {
	return activities.CheckTreeInput{Project: c.m.Name, Version: c.rep.Version, Commit: c.src.commitOrZero(), Fabric: c.o.fabric, Artifacts: c.files}
}

// onWorker sends the manifest and the job definitions to the worker's
// read-only project entity, which renders, checks and plans with its
// platform.yaml and credentials. No reachable worker skips both steps.
func (c *checker) onWorker() {
	tc, err := c.g.dial(c.g)
	if err != nil {
		c.skipJobs(fmt.Sprintf("no --platform FILE given and no Temporal reachable at %s (%s); pass --platform, or run it where the worker's Temporal is reachable", c.g.address, firstLine(err.Error())))
		return
	}
	defer tc.Close()
	if err := c.g.checkQueue(c.o.ctx, tc, c.g.taskQueue); err != nil {
		c.skipJobs(fmt.Sprintf("no --platform FILE given and no worker polls task queue %q at %s; pass --platform, or start the worker", c.g.taskQueue, c.g.address))
		return
	}
	if err := c.g.refusePlaintext(c.o.ctx, tc); err != nil {
		c.failJobs(err.Error())
		return
	}
	in := c.treeInput()
	in.Files = map[string]string{}
	for _, name := range append(append([]string{manifest.FileName}, c.definitions()...), c.libraryFiles()...) {
		data, err := manifest.ReadFile(c.src.fsys, name)
		if err != nil {
			c.failJobs(fmt.Sprintf("read %s: %v", name, err))
			return
		}
		in.Files[name] = string(data)
	}
	for _, name := range sortedKeys(c.m.Pipelines) {
		in.Dirs = append(in.Dirs, c.m.Pipelines[name].Path)
	}
	for _, name := range sortedKeys(c.m.Libraries) {
		in.Dirs = append(in.Dirs, c.m.Libraries[name].Path)
	}
	var out workflows.CheckOutput
	if err := readProject(c.o.ctx, c.g, tc, c.m.Name, workflows.CheckUpdate, in, &out); err != nil {
		c.failJobs(err.Error())
		return
	}
	c.reportJobs(out, "on the worker at "+c.g.address)
}

// definitions lists the job definition files, each once.
func (c *checker) definitions() []string {
	var out []string
	for _, name := range sortedKeys(c.m.Jobs) {
		if d := c.m.Jobs[name].Definition; d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// libraryFiles lists the files of the libraries that validation reads
// besides their directories: a Python library's pyproject.toml (its name and
// version are checked).
func (c *checker) libraryFiles() []string {
	var out []string
	for _, name := range sortedKeys(c.m.Libraries) {
		if l := c.m.Libraries[name]; l.Language == manifest.Python {
			out = append(out, l.Path+"/pyproject.toml")
		}
	}
	return out
}

// reportJobs turns a render-and-plan into the render and plan steps.
func (c *checker) reportJobs(out activities.CheckTreeOutput, where string) {
	if out.Diagnostics.HasErrors() { // the manifest against the worker's platform.yaml
		for _, d := range out.Diagnostics {
			c.annotate(d, c.src.repoPath(d.File), checkRender)
		}
		c.rep.Steps = append(c.rep.Steps, checkStep{Name: checkRender, Status: stepFailed, Diagnostics: relativeTo(c.o.dir, out.Diagnostics),
			Summary: fmt.Sprintf("%s is invalid against the platform.yaml %s: %s", manifest.FileName, where, countOf(countErrors(out.Diagnostics), "error"))})
		c.skip(checkPlan, "no job rendered")
		return
	}
	if out.Error != "" {
		c.failJobs(out.Error)
		return
	}
	c.rep.Jobs = out.Jobs
	rendered, planFailed := 0, 0
	counts, fabrics := map[string]int{}, map[string]bool{}
	for _, j := range out.Jobs {
		fabrics[j.Fabric] = true
		switch {
		case j.Render != stepOK:
			c.renderFailure(j)
		case j.Plan == stepFailed:
			rendered++
			planFailed++
			c.rep.annots = append(c.rep.annots, annotation{Level: "error", File: c.src.repoPath(j.Definition), Title: "shipline check: plan",
				Message: fmt.Sprintf("job %s on fabric %s: %s", j.Job, j.Fabric, j.Error)})
		default:
			rendered++
			counts[j.Plan]++
		}
	}
	st := checkStep{Name: checkRender, Status: stepOK, Summary: fmt.Sprintf("%s rendered and checked %s", countOf(len(out.Jobs), "job"), where)}
	if bad := len(out.Jobs) - rendered; bad > 0 {
		st.Status, st.Summary = stepFailed, fmt.Sprintf("%d of %s invalid %s", bad, countOf(len(out.Jobs), "job definition"), where)
	}
	c.rep.Steps = append(c.rep.Steps, st)
	st = checkStep{Name: checkPlan, Status: stepOK, Summary: fmt.Sprintf("read-only against %s: %d to create, %d to update, %d unchanged",
		strings.Join(sortedKeys(fabrics), ", "), counts["create"], counts["update"], counts["unchanged"])}
	if planFailed > 0 {
		st.Status, st.Summary = stepFailed, fmt.Sprintf("%d of %s could not be read on the fabric", planFailed, countOf(len(out.Jobs), "job"))
	}
	c.rep.Steps = append(c.rep.Steps, st)
}

// renderFailure annotates each finding of an invalid definition at its
// source line, or the job's definition file.
func (c *checker) renderFailure(j activities.CheckedJob) {
	if len(j.Diagnostics) > 0 {
		for _, d := range j.Diagnostics {
			d.Summary = fmt.Sprintf("job %s on fabric %s: %s", j.Job, j.Fabric, d.Summary)
			c.annotate(d, c.src.repoPath(d.File), checkRender)
		}
		return
	}
	c.rep.annots = append(c.rep.annots, annotation{Level: "error", File: c.src.repoPath(j.Definition), Title: "shipline check: render",
		Message: fmt.Sprintf("job %s on fabric %s: %s", j.Job, j.Fabric, j.Error)})
}

// failJobs records a render that could not run at all; the plan is skipped.
func (c *checker) failJobs(why string) {
	c.rep.Steps = append(c.rep.Steps, checkStep{Name: checkRender, Status: stepFailed, Summary: why})
	c.rep.annots = append(c.rep.annots, annotation{Level: "error", File: c.src.repoPath(manifest.FileName), Title: "shipline check: render", Message: why})
	c.skip(checkPlan, "no job rendered")
}

// skipJobs records that neither render nor plan ran, and why.
func (c *checker) skipJobs(why string) {
	c.skip(checkRender, why)
	c.skip(checkPlan, why)
}
