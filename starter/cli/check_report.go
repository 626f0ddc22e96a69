package cli

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// printCheckReport prints a check for people: one line per step, the
// pipelines and jobs under their steps, every finding with its place.
func printCheckReport(g *globals, r *checkReport) {
	w := g.stdout
	name := r.Project
	if name == "" {
		name = r.Dir
	}
	fmt.Fprintf(w, "check of %s: %s, as version %s\n", name, r.Source, r.Version)
	for _, s := range r.Steps {
		sep := ":"
		if s.Status == stepSkipped {
			sep = " —"
		}
		fmt.Fprintf(w, "%-9s %s%s %s\n", s.Name+":", s.Status, sep, s.Summary)
		for _, d := range s.Diagnostics {
			fmt.Fprintln(w, indentLines(d.String(), "    "))
		}
		switch {
		case s.Name == checkBuild && s.Status != stepSkipped:
			printPipelines(g, r.Pipelines)
		case s.Name == checkRender && s.Status != stepSkipped:
			for _, j := range r.Jobs {
				line := fmt.Sprintf("    %-14s %-18s %s", j.Fabric, j.Job, j.Render)
				if j.Render == stepFailed {
					line += "\n" + indentLines(j.Error, "      ")
				}
				fmt.Fprintln(w, line)
			}
		case s.Name == checkPlan && s.Status != stepSkipped:
			for _, j := range r.Jobs {
				line := fmt.Sprintf("    %-14s %-18s %s", j.Fabric, j.Job, j.Plan)
				switch {
				case j.Plan == stepSkipped:
					line += " (its definition is invalid)"
				case j.Plan == stepFailed:
					line += ": " + firstLine(j.Error)
				default:
					if j.ID != "" {
						line += " (" + j.ID + ")"
					}
					if j.Detail != "" {
						line += ": " + firstLine(j.Detail)
					}
				}
				fmt.Fprintln(w, line)
			}
		}
	}
	if r.Passed {
		fmt.Fprintln(w, "check passed; nothing was written to any fabric and no tag was created")
	}
}

func printPipelines(g *globals, ps []checkedPipeline) {
	for _, p := range ps {
		if p.Library {
			p.Pipeline += " (library)"
		}
		switch p.Status {
		case "built":
			fmt.Fprintf(g.stdout, "    %-18s built and tested: %s\n", p.Pipeline, p.File)
		case "cached":
			fmt.Fprintf(g.stdout, "    %-18s from the cache:   %s\n", p.Pipeline, p.File)
		default:
			what := "FAILED"
			if len(p.FailedTests) > 0 {
				what = "TESTS FAILED: " + strings.Join(p.FailedTests, ", ")
			}
			fmt.Fprintf(g.stdout, "    %-18s %s\n%s\n", p.Pipeline, what, indentLines(p.Error, "      "))
		}
	}
}

func indentLines(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}

// failedTest is one failing test as pytest reports it.
type failedTest struct {
	ID     string // tests/test_parse.py::test_empty
	Reason string // AssertionError: assert 1 == 2
	File   string // tests/test_parse.py, relative to the pipeline
	Line   int
}

var (
	pytestFailed   = regexp.MustCompile(`^(?:FAILED|ERROR) (\S+?)(?: - (.*))?$`)
	pytestSection  = regexp.MustCompile(`^_{3,} (.+?) _{3,}$`)
	pytestLocation = regexp.MustCompile(`^(\S+\.py):(\d+): `)
)

// failedTests reads pytest's output (the end of a build log): the tests its
// short summary lists as failed, each with the place in its test file where
// it failed (the last line of that file in its traceback section).
func failedTests(out string) []failedTest {
	where := map[string][2]string{} // section title → file, line
	section := ""
	var tests []failedTest
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := pytestSection.FindStringSubmatch(line); m != nil {
			section = m[1]
			continue
		}
		if m := pytestLocation.FindStringSubmatch(line); m != nil && section != "" {
			where[section] = [2]string{m[1], m[2]}
			continue
		}
		if m := pytestFailed.FindStringSubmatch(line); m != nil && strings.Contains(m[1], "::") {
			tests = append(tests, failedTest{ID: m[1], Reason: m[2]})
		}
	}
	for i, t := range tests {
		file, name, _ := strings.Cut(t.ID, "::")
		if loc, ok := where[strings.ReplaceAll(name, "::", ".")]; ok && loc[0] == file {
			tests[i].File = file
			tests[i].Line, _ = strconv.Atoi(loc[1])
		} else {
			tests[i].File = file
		}
	}
	return tests
}
