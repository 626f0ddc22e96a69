package fabric

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/test/afemu"
)

// afRunSetup starts an Airflow stand-in serving version and an airflow fabric
// on it with DAG demo__orders (extract → load) deployed at v1.4.0.
func afRunSetup(t *testing.T, version string) (*afemu.Server, Runner) {
	t.Helper()
	s := afemu.Start(afemu.Options{Version: version, Token: "jwt-run"})
	t.Cleanup(s.Close)
	s.AddDAG("demo__orders", afemu.Task{ID: "extract"}, afemu.Task{ID: "load", Upstream: []string{"extract"}})
	cfg, dags, _ := airflowConfig(t, s.URL)
	spec := JobSpec{Project: "demo", Job: "orders", Definition: []byte(validDAG), Version: "v1.4.0"}
	if err := os.WriteFile(filepath.Join(dags, "demo__orders.py"), dagFileContent(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	r, ok := AsRunner(openAirflow(t, cfg))
	if !ok {
		t.Fatal("the airflow fabric is not a Runner")
	}
	return s, r
}

func TestAirflowRuns(t *testing.T) {
	for _, version := range []string{"v2", "v1"} {
		t.Run(version, func(t *testing.T) {
			ctx := context.Background()
			s, f := afRunSetup(t, version)
			// The trigger acts and its answer is lost: the retry's 409 for the
			// same dag_run_id returns the run the first try started.
			s.Inject(afemu.Fault{Prefix: "POST /api/" + version + "/dags/", Times: 1, Status: 503, After: true})
			req := RunRequest{Project: "demo", Job: "orders", Key: "run/demo/af/orders/1", Params: map[string]string{"mode": "smoke"}, TriggeredBy: "bob"}
			var ref RunRef
			likeTemporal(t, "start", func() (err error) { ref, err = f.StartRun(ctx, req); return err })
			if ids := s.RunIDs("demo__orders"); len(ids) != 1 || ids[0] != ref.ID || ref.ID != AirflowRunID(req.Key) {
				t.Fatalf("runs %v, started %+v", ids, ref)
			}
			again, err := f.StartRun(ctx, req)
			if err != nil || again != ref || len(s.RunIDs("demo__orders")) != 1 {
				t.Fatalf("second start = %+v %v; runs %v", again, err, s.RunIDs("demo__orders"))
			}
			if c := s.Conf("demo__orders", ref.ID); c["mode"] != "smoke" || c[ConfTriggeredBy] != "bob" || c[ConfVersion] != "v1.4.0" {
				t.Fatalf("conf = %v", c)
			}
			r, err := f.GetRun(ctx, "demo", "orders", ref.ID)
			if err != nil || r.State != RunPending || taskStates(r) != "extract=pending/ load=pending/" || r.URL != ref.URL {
				t.Fatalf("at start: %+v %v", r, err)
			}
			s.Advance(10 * time.Second)
			if r, _ = f.GetRun(ctx, "demo", "orders", ref.ID); r.State != RunRunning || taskStates(r) != "extract=running/ load=pending/" {
				t.Fatalf("after 10s: %s %s", r.State, taskStates(r))
			}
			s.Advance(time.Hour)
			r, _ = f.GetRun(ctx, "demo", "orders", ref.ID)
			if r.State != RunTerminated || r.Result != RunSucceeded || r.TriggeredBy != "bob" || r.Version != "v1.4.0" || r.EndedAt.Before(r.StartedAt) {
				t.Fatalf("at the end: %+v", r)
			}

			// A failing task: the run fails with the task's note.
			s.SetBehavior("demo__orders", "extract", afemu.Behavior{Queued: time.Second, Running: time.Second, Fail: "KeyError: 'orders'"})
			failed, err := f.StartRun(ctx, RunRequest{Project: "demo", Job: "orders", Key: "run/demo/af/orders/2"})
			if err != nil {
				t.Fatal(err)
			}
			s.Advance(time.Minute)
			r, _ = f.GetRun(ctx, "demo", "orders", failed.ID)
			if r.Result != RunFailed || r.Message != "task extract failed: KeyError: 'orders'" || taskStates(r) != "extract=terminated/failed load=terminated/failed" {
				t.Fatalf("failed run: %+v %s", r, taskStates(r))
			}

			// Newest first, active runs, cancel.
			s.SetBehavior("demo__orders", "extract", afemu.DefaultBehavior)
			s.Advance(time.Minute)
			third, _ := f.StartRun(ctx, RunRequest{Project: "demo", Job: "orders", Key: "run/demo/af/orders/3"})
			list, err := f.ListRuns(ctx, "demo", "orders", 0)
			if err != nil || len(list) != 3 || list[0].ID != third.ID || list[1].ID != failed.ID || list[2].ID != ref.ID {
				t.Fatalf("ListRuns = %+v %v", list, err)
			}
			active, err := f.ActiveRuns(ctx, "demo", "orders")
			if err != nil || len(active) != 1 || active[0].ID != third.ID {
				t.Fatalf("ActiveRuns = %+v %v", active, err)
			}
			s.Advance(10 * time.Second)
			if err := f.CancelRun(ctx, "demo", "orders", third.ID); err != nil {
				t.Fatal(err)
			}
			if r, _ = f.GetRun(ctx, "demo", "orders", third.ID); r.State != RunTerminated || r.Result != RunFailed || taskStates(r) != "extract=terminated/failed load=terminated/skipped" {
				t.Fatalf("cancelled run: %+v %s", r, taskStates(r))
			}
			if err := f.CancelRun(ctx, "demo", "orders", ref.ID); err != nil {
				t.Fatalf("cancel of an ended run: %v", err)
			}
			if r, _ = f.GetRun(ctx, "demo", "orders", ref.ID); r.Result != RunSucceeded {
				t.Fatalf("an ended run changed on cancel: %+v", r)
			}
			if _, err := f.GetRun(ctx, "demo", "orders", "nope"); err == nil || !strings.Contains(err.Error(), "run nope of DAG demo__orders does not exist") {
				t.Fatalf("missing run: %v", err)
			}
		})
	}
}

func TestAirflowRunsNeedTheAPI(t *testing.T) {
	cfg, _, _ := airflowConfig(t, "")
	r, _ := AsRunner(openAirflow(t, cfg))
	_, err := r.StartRun(context.Background(), RunRequest{Project: "demo", Job: "orders", Key: "k"})
	fe := dbKind(t, err, apperr.FabricConfig, true)
	if !strings.Contains(fe.Msg, `airflow fabric "af" cannot run demo/orders`) || !strings.Contains(fe.Msg, "airflow_url") {
		t.Fatalf("message = %q", fe.Msg)
	}
}

func TestAirflowRunNotDeployed(t *testing.T) {
	_, f := afRunSetup(t, "v2")
	_, err := f.StartRun(context.Background(), RunRequest{Project: "demo", Job: "other", Key: "k"})
	if fe := dbKind(t, err, apperr.FabricRejected, true); !strings.Contains(fe.Msg, "deploy job other of project demo to this fabric first") {
		t.Fatalf("message = %q", fe.Msg)
	}
}

func TestAirflowRunID(t *testing.T) {
	if got := AirflowRunID("manual-1"); got != "manual-1" {
		t.Fatalf("AirflowRunID kept-as-is = %q", got)
	}
	a, b := AirflowRunID("run/demo/af/x"), AirflowRunID("run_demo/af/x")
	if a == b || strings.ContainsAny(a, "/ ") || !strings.HasPrefix(a, "run_demo_af_x-") {
		t.Fatalf("AirflowRunID: %q %q", a, b)
	}
}

// A paused DAG is not triggered (its run would stay queued); the stand-in
// keeps such a run queued until the DAG is unpaused, as Airflow does.
func TestAirflowRunPausedDAG(t *testing.T) {
	ctx := context.Background()
	s, f := afRunSetup(t, "v2")
	if err := upsertPaused(t, f, true); err != nil {
		t.Fatal(err)
	}
	_, err := f.StartRun(ctx, RunRequest{Project: "demo", Job: "orders", Key: "k"})
	if fe := dbKind(t, err, apperr.FabricRejected, true); !strings.Contains(fe.Msg, "DAG demo__orders is paused") || !strings.Contains(fe.Msg, "fabrics.af.jobs.orders.paused: false") {
		t.Fatalf("message = %q", fe.Msg)
	}
	if ids := s.RunIDs("demo__orders"); len(ids) != 0 {
		t.Fatalf("runs of a paused DAG were triggered: %v", ids)
	}
	if err := upsertPaused(t, f, false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.StartRun(ctx, RunRequest{Project: "demo", Job: "orders", Key: "k"}); err != nil {
		t.Fatal(err)
	}
}

// upsertPaused sets the DAG's is_paused through the fabric's own pause call.
func upsertPaused(t *testing.T, f Runner, paused bool) error {
	t.Helper()
	return f.(*airflowFabric).api.setPaused(context.Background(), "demo__orders", paused)
}

// Task instances come in pages of 100: a run of a DAG with more reads them all.
func TestAirflowRunManyTasks(t *testing.T) {
	s, f := afRunSetup(t, "v1")
	var tasks []afemu.Task
	for i := range 150 {
		tasks = append(tasks, afemu.Task{ID: fmt.Sprintf("t%03d", i)})
	}
	s.AddDAG("demo__orders", tasks...)
	ref, err := f.StartRun(context.Background(), RunRequest{Project: "demo", Job: "orders", Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.GetRun(context.Background(), "demo", "orders", ref.ID)
	if err != nil || len(r.Tasks) != 150 || r.Tasks[149].Key != "t149" {
		t.Fatalf("run has %d tasks (%v)", len(r.Tasks), err)
	}
}
