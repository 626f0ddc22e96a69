package fabric

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
)

// pauseCase is one combination of the three places a pause state can come
// from, and the state the job must end in.
type pauseCase struct {
	name           string
	override       *bool // shipline.yaml fabrics.dev.jobs.daily.paused
	pauseSchedules bool  // platform.yaml fabrics.dev.pause_schedules
	ownPaused      *bool // the definition's pause_status / is_paused_upon_creation (nil: absent)
	want           bool
}

var pauseCases = []pauseCase{
	{"definition paused, nothing else", nil, false, boolPtr(true), true},
	{"definition unpaused, nothing else", nil, false, boolPtr(false), false},
	{"definition silent, nothing else", nil, false, nil, false},
	{"pause_schedules beats an unpaused definition", nil, true, boolPtr(false), true},
	{"pause_schedules with a silent definition", nil, true, nil, true},
	{"override false beats pause_schedules and a paused definition", boolPtr(false), true, boolPtr(true), false},
	{"override false beats a paused definition", boolPtr(false), false, boolPtr(true), false},
	{"override true beats an unpaused definition", boolPtr(true), false, boolPtr(false), true},
}

// pausedInput renders a definition for fabric dev with the case's manifest
// override and platform setting, through PausedFor as a deploy does.
func pausedInput(c pauseCase, sched manifest.Scheduler, def string) ([]byte, *bool, error) {
	man := &manifest.Manifest{Fabrics: map[string]manifest.Overrides{
		"dev": {Jobs: map[string]manifest.JobOverride{"daily": {Paused: c.override}}},
	}}
	cfg := &platform.Config{Fabrics: map[string]platform.Fabric{"dev": {PauseSchedules: c.pauseSchedules}}}
	in := renderInput(sched, def)
	in.Paused = PausedFor(man, cfg, "dev", "daily")
	return RenderJob(in)
}

// TestPausePrecedenceDatabricks: a job payload's own pause_status on its
// schedule, trigger and continuous survives unless pause_schedules or the
// manifest's per-fabric override says otherwise; the override wins over
// pause_schedules. Each case is deployed over a job left in the opposite
// state, so "unchanged" cannot hide a wrong state.
func TestPausePrecedenceDatabricks(t *testing.T) {
	for _, block := range []string{
		`"schedule": {"quartz_cron_expression": "0 0 5 * * ?", "timezone_id": "UTC"%s}`,
		`"trigger": {"periodic": {"interval": 1, "unit": "HOURS"}%s}`,
		`"continuous": {"task_retry_mode": "ON_FAILURE"%s}`,
	} {
		kind := block[1 : strings.Index(block[1:], `"`)+1]
		for _, c := range pauseCases {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				ctx := context.Background()
				emu, d, _ := dbSetup(t, dbVolume)
				own := ""
				if c.ownPaused != nil {
					own = `, "pause_status": "UNPAUSED"`
					if *c.ownPaused {
						own = `, "pause_status": "PAUSED"`
					}
				}
				def := `{"name": "demo daily", ` + fmt.Sprintf(block, own) + `, "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/x"}}]}`
				out, paused, err := pausedInput(c, manifest.Databricks, def)
				if err != nil {
					t.Fatal(err)
				}
				// The job as an earlier deploy left it: the opposite state.
				if _, err := d.UpsertJob(ctx, JobSpec{Project: "demo", Job: "daily", Definition: out, Paused: boolPtr(!c.want), Version: "v1"}); err != nil {
					t.Fatal(err)
				}
				spec := JobSpec{Project: "demo", Job: "daily", Definition: out, Paused: paused, Version: "v2"}
				if _, err := d.UpsertJob(ctx, spec); err != nil {
					t.Fatal(err)
				}
				var s map[string]json.RawMessage
				var b struct {
					PauseStatus string `json:"pause_status"`
				}
				if err := json.Unmarshal(emu.Jobs()[0].Settings, &s); err != nil || json.Unmarshal(s[kind], &b) != nil {
					t.Fatalf("live settings: %s", emu.Jobs()[0].Settings)
				}
				if got := b.PauseStatus == "PAUSED"; got != c.want {
					t.Errorf("live %s.pause_status = %q, want paused=%v", kind, b.PauseStatus, c.want)
				}
				if live, err := d.InspectJob(ctx, spec); err != nil || live.Drift {
					t.Errorf("drift right after the deploy: %+v %v", live, err)
				}
			})
		}
	}
}

// TestPausePrecedenceLocal: the local fabric stores the same pause_status.
func TestPausePrecedenceLocal(t *testing.T) {
	for _, c := range pauseCases {
		own := ""
		if c.ownPaused != nil {
			own = fmt.Sprintf(`, "pause_status": %q`, map[bool]string{true: "PAUSED", false: "UNPAUSED"}[*c.ownPaused])
		}
		def := `{"name": "demo daily", "schedule": {"quartz_cron_expression": "0 0 5 * * ?", "timezone_id": "UTC"` + own + `}}`
		out, paused, err := pausedInput(c, manifest.Databricks, def)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := localJobJSON(JobSpec{Project: "demo", Job: "daily", Definition: out, Paused: paused, Version: "v1"})
		if err != nil {
			t.Fatal(err)
		}
		want := `"pause_status": "UNPAUSED"`
		if c.want {
			want = `"pause_status": "PAUSED"`
		}
		if !strings.Contains(string(stored), want) {
			t.Errorf("%s: stored\n%s\nwant %s", c.name, stored, want)
		}
	}
}

// TestPausePrecedenceAirflow: with airflow_url, a DAG's own
// is_paused_upon_creation is what Shipline sets through the API unless
// pause_schedules or the override says otherwise; an unchanged DAG file is
// read again; an expression Shipline cannot evaluate is left to Airflow.
func TestPausePrecedenceAirflow(t *testing.T) {
	requirePython(t)
	dagWith := func(arg string) string {
		return strings.Replace(validDAG, `schedule="@daily"`, `schedule="@daily"`+arg, 1)
	}
	for _, c := range pauseCases {
		t.Run(c.name, func(t *testing.T) {
			s, url := newAirflowStandIn(t, "v2", "")
			arg := ""
			if c.ownPaused != nil {
				arg = map[bool]string{true: ", is_paused_upon_creation=True", false: ", is_paused_upon_creation=False"}[*c.ownPaused]
			}
			out, paused, err := pausedInput(c, manifest.Airflow, dagWith(arg))
			if err != nil {
				t.Fatal(err)
			}
			cfg, _, _ := airflowConfig(t, url)
			f := openAirflow(t, cfg)
			for round := range 2 { // the second deploy finds the file unchanged
				s.SetPaused("demo__orders", !c.want)
				if _, err := f.UpsertJob(context.Background(), JobSpec{Project: "demo", Job: "orders", Definition: out, Paused: paused, Version: "v1"}); err != nil {
					t.Fatal(err)
				}
				if s.Paused("demo__orders") != c.want {
					t.Errorf("round %d: is_paused = %v, want %v", round, s.Paused("demo__orders"), c.want)
				}
			}
		})
	}
	t.Run("dynamic is_paused_upon_creation", func(t *testing.T) {
		s, url := newAirflowStandIn(t, "v2", "")
		cfg, _, _ := airflowConfig(t, url)
		def := "import os\n" + dagWith(`, is_paused_upon_creation=os.environ.get("X") == "1"`)
		if _, err := openAirflow(t, cfg).UpsertJob(context.Background(), JobSpec{Project: "demo", Job: "orders", Definition: []byte(def), Version: "v1"}); err != nil {
			t.Fatal(err)
		}
		if len(s.Requests()) != 0 {
			t.Errorf("a DAG whose pause setting is an expression was paused or unpaused: %v", s.Requests())
		}
		// An explicit choice still applies.
		if _, err := openAirflow(t, cfg).UpsertJob(context.Background(), JobSpec{Project: "demo", Job: "orders", Definition: []byte(def), Version: "v1", Paused: boolPtr(true)}); err != nil || !s.Paused("demo__orders") {
			t.Errorf("override on a dynamic DAG: paused=%v %v", s.Paused("demo__orders"), err)
		}
	})
}
