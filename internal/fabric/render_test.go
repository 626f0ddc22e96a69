package fabric

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/diag"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
)

func renderInput(sched manifest.Scheduler, def string) RenderInput {
	file := "jobs/daily/job.json"
	if sched == manifest.Airflow {
		file = "jobs/daily/dag.py"
	}
	return RenderInput{
		Project: "demo", Version: "v1.2.0", Commit: "0123abcd", Fabric: "dev",
		Job:           manifest.Job{Name: "daily", Scheduler: sched, Fabric: "dev", Pipelines: []string{"ingest"}, Definition: file},
		Definition:    []byte(def),
		ArtifactPaths: map[string]string{"ingest": "/Volumes/a/demo/v1.2.0/ingest/ingest-1.0-py3-none-any.whl"},
		Variables:     map[string]string{"schema": "dev_demo", "quote": "say \"hi\"\\\nbye\t<&>"},
	}
}

func TestRenderJSONEscapesValues(t *testing.T) {
	in := renderInput(manifest.Databricks, `{
  "name": "${project.name} ${release.version}",
  "description": "${var.quote}",
  "tags": {"commit": "${release.commit}", "fabric": "${fabric.name}"},
  "tasks": [{"libraries": [{"whl": "${artifact.ingest}"}], "cmd": "echo $${HOME}"}]
}`)
	out, paused, err := RenderJob(in)
	if err != nil {
		t.Fatal(err)
	}
	if paused != nil {
		t.Error("paused without a schedule")
	}
	var got struct {
		Name        string            `json:"name"`
		Description string            `json:"description"`
		Tags        map[string]string `json:"tags"`
		Tasks       []struct {
			Libraries []map[string]string `json:"libraries"`
			Cmd       string              `json:"cmd"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("rendered JSON does not parse: %v\n%s", err, out)
	}
	if got.Name != "demo v1.2.0" || got.Description != in.Variables["quote"] ||
		got.Tags["commit"] != "0123abcd" || got.Tags["fabric"] != "dev" ||
		got.Tasks[0].Libraries[0]["whl"] != in.ArtifactPaths["ingest"] || got.Tasks[0].Cmd != "echo ${HOME}" {
		t.Errorf("rendered %+v\n%s", got, out)
	}
	if strings.Contains(string(out), `\u003c`) {
		t.Errorf("HTML-escaped output: %s", out)
	}
}

func TestRenderDAGIsPlainText(t *testing.T) {
	in := renderInput(manifest.Airflow, "WHL = \"${artifact.ingest}\"\nSCHEMA = '${var.schema}'\n")
	in.Paused = boolPtr(true)
	out, paused, err := RenderJob(in)
	if err != nil {
		t.Fatal(err)
	}
	want := "WHL = \"/Volumes/a/demo/v1.2.0/ingest/ingest-1.0-py3-none-any.whl\"\nSCHEMA = 'dev_demo'\n"
	if string(out) != want || paused == nil || !*paused {
		t.Errorf("got %q paused=%v", out, paused)
	}
}

func TestRenderMissingPlaceholderNamesPosition(t *testing.T) {
	for _, tc := range []struct {
		name, def string
		line, col int
		summary   string
	}{
		{"unknown variable", "{\n  \"a\": \"x\",\n  \"b\": \"-${var.nope}\"\n}", 3, 10, "var.nope"},
		{"artifact of another pipeline", "{\"a\": \"${artifact.other}\"}", 1, 8, "not a pipeline of this job"},
		{"outside a string", "{\"a\": ${release.version}}", 1, 7, "outside a JSON string"},
		{"invalid JSON", "{\n\"a\": \"x\",\n}", 3, 1, "not valid JSON"},
		{"not an object", "[1]", 1, 1, "not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := RenderJob(renderInput(manifest.Databricks, tc.def))
			var fe *apperr.Error
			if !errors.As(err, &fe) || fe.Type != apperr.InvalidDefinition || !fe.Permanent() {
				t.Fatalf("err = %#v, want permanent InvalidDefinition", err)
			}
			var l diag.List
			if !errors.As(err, &l) || len(l) == 0 {
				t.Fatalf("no diagnostics in %v", err)
			}
			d := l[0]
			if d.File != "jobs/daily/job.json" || d.Line != tc.line || d.Col != tc.col || !strings.Contains(d.Summary, tc.summary) {
				t.Errorf("diagnostic %s, want jobs/daily/job.json:%d:%d …%s…", d, tc.line, tc.col, tc.summary)
			}
			if !strings.Contains(err.Error(), "jobs/daily/job.json:") {
				t.Errorf("message lacks the position: %v", err)
			}
		})
	}
}

func TestRenderPausedOnlyWithSchedule(t *testing.T) {
	in := renderInput(manifest.Databricks, `{"name": "x", "schedule": {"quartz_cron_expression": "0 0 1 * * ?", "timezone_id": "UTC"}}`)
	in.Paused = boolPtr(true)
	if _, paused, err := RenderJob(in); err != nil || paused == nil || !*paused {
		t.Errorf("paused=%v err=%v, want paused", paused, err)
	}
	in.Paused = boolPtr(false)
	if _, paused, _ := RenderJob(in); paused == nil || *paused {
		t.Error("paused although not wanted")
	}
	in.Paused = nil
	if _, paused, _ := RenderJob(in); paused != nil {
		t.Errorf("paused=%v, want nil (the definition's own setting)", *paused)
	}
	noSchedule := renderInput(manifest.Databricks, `{"name": "x"}`)
	noSchedule.Paused = boolPtr(true)
	if _, paused, _ := RenderJob(noSchedule); paused != nil {
		t.Error("a payload without schedule, trigger or continuous has nothing to pause")
	}
}

func boolPtr(b bool) *bool { return &b }

func TestMergeVariablesPrecedence(t *testing.T) {
	man := &manifest.Manifest{
		Variables: map[string]string{"schema": "m", "size": "m", "only_m": "m"},
		Fabrics: map[string]manifest.Overrides{
			"dev":  {Variables: map[string]string{"schema": "override"}},
			"prod": {Variables: map[string]string{"size": "prod-override"}},
		},
	}
	cfg := &platform.Config{Fabrics: map[string]platform.Fabric{
		"dev": {Variables: map[string]string{"schema": "platform", "size": "platform", "only_p": "p"}},
	}}
	got := MergeVariables(man, cfg, "dev")
	want := map[string]string{"schema": "override", "size": "platform", "only_m": "m", "only_p": "p"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if got := MergeVariables(man, nil, "prod"); got["size"] != "prod-override" || got["schema"] != "m" {
		t.Errorf("without platform config: %v", got)
	}
}

func TestPausedFor(t *testing.T) {
	f, tr := false, true
	man := &manifest.Manifest{Fabrics: map[string]manifest.Overrides{
		"dev":  {Jobs: map[string]manifest.JobOverride{"unpaused": {Paused: &f}, "plain": {}}},
		"prod": {Jobs: map[string]manifest.JobOverride{"paused": {Paused: &tr}}},
	}}
	cfg := &platform.Config{Fabrics: map[string]platform.Fabric{
		"dev":  {PauseSchedules: true},
		"prod": {},
	}}
	show := func(p *bool) string {
		if p == nil {
			return "definition's own"
		}
		return fmt.Sprint(*p)
	}
	for _, tc := range []struct {
		fabric, job string
		want        *bool
	}{
		{"dev", "other", &tr},   // pause_schedules
		{"dev", "plain", &tr},   // an override without paused leaves pause_schedules
		{"dev", "unpaused", &f}, // the per-job override beats pause_schedules
		{"prod", "other", nil},  // nothing forced: the definition decides
		{"prod", "paused", &tr}, // the per-job override beats the definition
		{"unknown", "x", nil},
	} {
		if got := PausedFor(man, cfg, tc.fabric, tc.job); show(got) != show(tc.want) {
			t.Errorf("PausedFor(%s, %s) = %s, want %s", tc.fabric, tc.job, show(got), show(tc.want))
		}
	}
	if got := PausedFor(nil, nil, "dev", "x"); got != nil {
		t.Errorf("without manifest and platform: %s", show(got))
	}
}
