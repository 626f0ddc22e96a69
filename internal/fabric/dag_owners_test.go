package fabric

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/shipline/shipline/internal/apperr"
)

// dagWithID is a DAG file whose author chose dag_id id.
func dagWithID(id string) []byte {
	return []byte("from airflow import DAG\nwith DAG(dag_id=\"" + id + "\") as dag:\n    pass\n")
}

func readOwnerFile(t *testing.T, dags, id string) dagOwner {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dags, ".shipline", "owners", id+".json"))
	if err != nil {
		t.Fatalf("no ownership record of %s: %v", id, err)
	}
	var o dagOwner
	if err := json.Unmarshal(data, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestDagIDOwnership: a DAG keeps its author's dag_id; the first job that
// deploys it owns it on the fabric, a second owner is refused with what to
// do, and the owner releases it by deploying another dag_id or deleting the
// job.
func TestDagIDOwnership(t *testing.T) {
	requirePython(t)
	ctx := context.Background()
	cfg, dags, _ := airflowConfig(t, "")
	f := openAirflow(t, cfg)
	orders := JobSpec{Project: "demo", Job: "orders", Definition: dagWithID("orders_daily"), Version: "v1.0.0", Source: "jobs/orders/dag.py"}
	report := JobSpec{Project: "sales", Job: "report", Definition: dagWithID("orders_daily"), Version: "v2.0.0", Source: "jobs/report/dag.py"}

	if _, err := f.UpsertJob(ctx, orders); err != nil {
		t.Fatal(err)
	}
	if o := readOwnerFile(t, dags, "orders_daily"); o != (dagOwner{DagID: "orders_daily", Project: "demo", Job: "orders"}) {
		t.Errorf("record = %+v", o)
	}
	if data, _ := os.ReadFile(filepath.Join(dags, "demo__orders.py")); !strings.Contains(string(data), `dag_id="orders_daily"`) {
		t.Errorf("the DAG lost its dag_id:\n%s", data)
	}
	if res, err := f.UpsertJob(ctx, orders); err != nil || res.Action != JobUnchanged {
		t.Fatalf("the owner again: %+v, %v", res, err)
	}

	// A plan, a check and a deployment's check step say so before a deploy tries.
	err := CheckDagOwner(ctx, f, report)
	permanentKind(t, err, apperr.DagIDOwned)
	if err := CheckDagOwner(ctx, f, orders); err != nil {
		t.Fatalf("the owner's claim is refused: %v", err)
	}
	if live, err := f.InspectJob(ctx, orders); err != nil || !live.Exists || live.Drift {
		t.Fatalf("the owner's inspection: %+v, %v", live, err)
	}
	_, err = f.UpsertJob(ctx, report)
	fe := permanentKind(t, err, apperr.DagIDOwned)
	for _, want := range []string{`fabric "af"`, `dag_id "orders_daily" belongs to job orders of project demo`,
		filepath.Join(dags, ".shipline", "owners", "orders_daily.json"), "job report of project sales cannot deploy",
		"give the DAG in jobs/report/dag.py another dag_id", "delete that job from this fabric"} {
		if !strings.Contains(fe.Msg, want) {
			t.Errorf("message lacks %q:\n%s", want, fe.Msg)
		}
	}
	if _, err := os.Stat(filepath.Join(dags, "sales__report.py")); !os.IsNotExist(err) {
		t.Errorf("the refused DAG was written: %v", err)
	}

	// A new release of orders with another dag_id frees orders_daily.
	orders.Version, orders.Definition = "v1.1.0", dagWithID("orders_v2")
	if res, err := f.UpsertJob(ctx, orders); err != nil || res.Action != JobUpdated {
		t.Fatalf("rename: %+v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(dags, ".shipline", "owners", "orders_daily.json")); !os.IsNotExist(err) {
		t.Errorf("the old dag_id is still recorded: %v", err)
	}
	if _, err := f.UpsertJob(ctx, report); err != nil {
		t.Fatalf("the freed dag_id: %v", err)
	}
	if o := readOwnerFile(t, dags, "orders_daily"); o.Project != "sales" || o.Job != "report" {
		t.Errorf("record = %+v", o)
	}

	// Deleting the job releases its dag_id.
	if _, err := f.DeleteJob(ctx, "demo", "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dags, ".shipline", "owners", "orders_v2.json")); !os.IsNotExist(err) {
		t.Errorf("deleted job's dag_id is still recorded: %v", err)
	}
}

// TestDagIDClaimOneWinner: of many deployments claiming one dag_id at once,
// exactly one owns it.
func TestDagIDClaimOneWinner(t *testing.T) {
	dags := dagDir(t.TempDir())
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = claimDAG(context.Background(), "af", dags, "shared", "p", string(rune('a'+i)), "")
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case apperr.Type(err) != apperr.DagIDOwned:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d claims won, want 1", won)
	}
}

// TestDagIDOwnershipLocalFabric: a local fabric's DAG folder follows the same rule.
func TestDagIDOwnershipLocalFabric(t *testing.T) {
	requirePython(t)
	ctx := context.Background()
	root := t.TempDir()
	f := newLocal("local", root)
	if _, err := f.UpsertJob(ctx, JobSpec{Project: "demo", Job: "orders", Definition: dagWithID("orders_daily")}); err != nil {
		t.Fatal(err)
	}
	_, err := f.UpsertJob(ctx, JobSpec{Project: "sales", Job: "report", Definition: dagWithID("orders_daily")})
	permanentKind(t, err, apperr.DagIDOwned)
	if _, err := f.DeleteJob(ctx, "demo", "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.UpsertJob(ctx, JobSpec{Project: "sales", Job: "report", Definition: dagWithID("orders_daily")}); err != nil {
		t.Fatalf("after the owner's delete: %v", err)
	}
}

// TestDagIDOwnershipBucket: on a managed-airflow bucket too.
func TestDagIDOwnershipBucket(t *testing.T) {
	requirePython(t)
	ctx := context.Background()
	f, bucket, _ := managedFabric(t)
	if _, err := f.UpsertJob(ctx, JobSpec{Project: "demo", Job: "orders", Definition: dagWithID("demo__orders")}); err != nil {
		t.Fatal(err)
	}
	if o := readOwnerFile(t, filepath.Join(bucket, "dags"), "demo__orders"); o.Project != "demo" {
		t.Errorf("record = %+v", o)
	}
	_, err := f.UpsertJob(ctx, JobSpec{Project: "sales", Job: "report", Definition: dagWithID("demo__orders")})
	permanentKind(t, err, apperr.DagIDOwned)
}
