package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/test/dbemu"
)

// A stage's plan against a Databricks workspace (the emulator, through the
// real SDK): reading it twice gives the same hash and writes nothing; a job
// edited by hand in the workspace, or another deployment recorded on the
// fabric, changes the plan and its hash, and the difference says what changed.
func TestPlanStageHashFollowsTheFabric(t *testing.T) {
	const volume, token = "/Volumes/main/shipline/artifacts", "dapi-plan"
	emu := dbemu.Start(dbemu.Options{Volumes: []string{volume}, Tokens: []string{token}})
	t.Cleanup(emu.Close)
	d, commit := demoRemote(t)
	d.Getenv = func(k string) string {
		if k == "PLAN_TEST_TOKEN" {
			return token
		}
		return ""
	}
	d.Platform.Fabrics["prod"] = platform.Fabric{Name: "prod", Kind: fabric.KindDatabricks, Owner: "developers", Settings: fabric.DatabricksSettings{Host: emu.URL, TokenEnv: "PLAN_TEST_TOKEN", ArtifactRoot: volume}}
	ctx := context.Background()
	fab, err := fabric.Open(d.Platform, "prod", d.env())
	if err != nil {
		t.Fatal(err)
	}
	job := ResolvedJob{Name: "daily_orders", Scheduler: "databricks", Fabric: "prod", Pipelines: []string{"ingest_orders", "score_churn"}, Definition: "jobs/daily_orders/job.json"}
	files := map[string]string{"ingest_orders": "ingest_orders-1.0.0-py3-none-any.whl", "score_churn": "score_churn-1.0.0-py3-none-any.whl"}
	paths := func(version string) map[string]string {
		out := map[string]string{}
		for p, f := range files {
			out[p] = fab.ArtifactPath("demo", version, p, f)
		}
		return out
	}
	// v1.1.0 runs on prod, as its fabric entity records.
	up, err := d.UpsertJob(ctx, UpsertJobInput{Project: "demo", Version: "v1.1.0", Commit: commit, DeploymentID: "deploy/demo/v1.1.0/x", Job: job, Artifacts: paths("v1.1.0")})
	if err != nil {
		t.Fatal(err)
	}
	recorded := DeployedJob{Project: "demo", Fabric: "prod", Job: "daily_orders", Scheduler: "databricks", Version: "v1.1.0", Commit: commit,
		DeploymentID: "deploy/demo/v1.1.0/x", Artifacts: paths("v1.1.0")}
	in := PlanStageInput{Project: "demo", Version: "v1.2.0", Stage: "prod", Commit: commit, Jobs: []ResolvedJob{job}, Files: files,
		Pins: map[string]string{"ingest_orders": strings.Repeat("a", 64), "score_churn": strings.Repeat("b", 64)}, Recorded: []DeployedJob{recorded}}
	plan := func(in PlanStageInput) StagePlan {
		t.Helper()
		p, err := d.PlanStage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	emu.ResetRequests()
	first := plan(in)
	want := PlanChange{Fabric: "prod", Job: "daily_orders", Action: PlanUpdate, From: "v1.1.0", To: "v1.2.0", Detail: "upgrade from v1.1.0"}
	if len(first.Changes) != 1 || first.Changes[0] != want || len(first.Hash) != 64 {
		t.Fatalf("plan %+v, want %+v", first, want)
	}
	if a := first.Artifacts; len(a) != 2 || a[0].Pipeline != "ingest_orders" || a[0].Path != paths("v1.2.0")["ingest_orders"] || a[0].SHA256 != in.Pins["ingest_orders"] ||
		a[1].Pipeline != "score_churn" || a[1].SHA256 != in.Pins["score_churn"] {
		t.Fatalf("artifacts %+v", a)
	}
	if again := plan(in); again.Hash != first.Hash {
		t.Fatalf("the same fabric planned twice: hash %s then %s", first.Hash, again.Hash)
	}
	for _, r := range emu.Requests() {
		if r.Method != "GET" {
			t.Fatalf("planning wrote to the workspace: %s %s", r.Method, r.Path)
		}
	}

	// Someone edits the job by hand: the plan says so, the hash changes.
	w, err := emu.Client(token)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := strconv.ParseInt(up.ID, 10, 64)
	if err := w.Jobs.Update(ctx, jobs.UpdateJob{JobId: id, NewSettings: &jobs.JobSettings{MaxConcurrentRuns: 4}}); err != nil {
		t.Fatal(err)
	}
	edited := plan(in)
	if edited.Hash == first.Hash || !strings.Contains(edited.Changes[0].Drift, "max_concurrent_runs") {
		t.Fatalf("after a change by hand: hash %s (was %s), changes %+v", edited.Hash, first.Hash, edited.Changes)
	}
	diff := DiffStagePlans(first, edited)
	if len(diff) != 1 || diff[0] != "prod/daily_orders: drift: max_concurrent_runs: deployed 1, live 4 (was: none)" {
		t.Fatalf("diff %q", diff)
	}
	// A second edit, after the first was seen (and perhaps approved): the
	// plan names both, and its hash changes again.
	if err := w.Jobs.Update(ctx, jobs.UpdateJob{JobId: id, NewSettings: &jobs.JobSettings{Description: "edited by hand"}}); err != nil {
		t.Fatal(err)
	}
	twice := plan(in)
	if twice.Hash == edited.Hash || !strings.Contains(twice.Changes[0].Drift, "max_concurrent_runs: deployed 1, live 4") ||
		!strings.Contains(twice.Changes[0].Drift, `description: deployed "Ingests`) {
		t.Fatalf("after a second change by hand: hash %s (was %s), drift %q", twice.Hash, edited.Hash, twice.Changes[0].Drift)
	}

	// Another deployment landed: the fabric records v1.1.1.
	landed := in
	landed.Recorded = []DeployedJob{recorded}
	landed.Recorded[0].Version = "v1.1.1"
	if p := plan(landed); p.Hash == edited.Hash || p.Changes[0].From != "v1.1.1" {
		t.Fatalf("after another deployment: %+v", p)
	}
}

// The hash is the sha256 of the canonical JSON documented in stage_plan.go:
// lists sorted, every field present, the hash itself left out.
func TestStagePlanHashIsTheDocumentedCanonicalJSON(t *testing.T) {
	p := StagePlan{Project: "demo", Version: "v1.2.0", Stage: "prod", Hash: "ignored",
		Changes: []PlanChange{
			{Fabric: "prod", Job: "weekly", Action: PlanLeave, From: "v1.0.0", To: "v1.0.0", Detail: "not in v1.2.0: keeps running v1.0.0"},
			{Fabric: "prod", Job: "daily", Action: PlanCreate, To: "v1.2.0"},
		},
		Artifacts: []PlanArtifact{{Fabric: "prod", Pipeline: "ingest", Path: "/V/demo/v1.2.0/ingest/i.whl", SHA256: "ab"}}}
	canonical := `{"project":"demo","version":"v1.2.0","stage":"prod","changes":[` +
		`{"fabric":"prod","job":"daily","action":"create","from":"","to":"v1.2.0","detail":"","drift":""},` +
		`{"fabric":"prod","job":"weekly","action":"leave","from":"v1.0.0","to":"v1.0.0","detail":"not in v1.2.0: keeps running v1.0.0","drift":""}],` +
		`"artifacts":[{"fabric":"prod","pipeline":"ingest","path":"/V/demo/v1.2.0/ingest/i.whl","sha256":"ab"}]}`
	sum := sha256.Sum256([]byte(canonical))
	got, err := HashStagePlan(p)
	if err != nil || got != hex.EncodeToString(sum[:]) {
		t.Fatalf("hash %s (%v), want sha256 of %s", got, err, canonical)
	}
}

// The hash of a plan read back from where it is stored (the promotion's
// state, JSON) is the hash it carries, even when a live value cut short left
// invalid UTF-8 in a drift: whoever checks a plan against its hash (the
// dashboard, an auditor) gets the same hash, and the same plan computed
// twice hashes the same.
func TestStagePlanHashSurvivesItsJSON(t *testing.T) {
	p := StagePlan{Project: "demo", Version: "v1.2.0", Stage: "prod",
		Changes: []PlanChange{{Fabric: "prod", Job: "daily", Action: PlanUpdate, From: "v1.1.0", To: "v1.2.0",
			Drift: "description: deployed \"r\xc3\xa9sum\xc3\", live \"x\xff\xfe\""}}}
	var err error
	if p.Hash, err = HashStagePlan(p); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var stored StagePlan
	if err := json.Unmarshal(data, &stored); err != nil {
		t.Fatal(err)
	}
	if again, err := HashStagePlan(stored); err != nil || again != p.Hash {
		t.Fatalf("the stored plan hashes %s (%v), the plan carries %s", again, err, p.Hash)
	}
}
