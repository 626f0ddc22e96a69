package fabric

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipline/shipline/internal/apperr"
)

// demoWheel builds a wheel of package demo_task: entry point "run" (declared
// in its metadata, demo_task.cli:run) appends its arguments to the file in
// --out; demo_task.main fails with --fail=..., sleeps with --sleep=N.
func demoWheel(t *testing.T) string {
	t.Helper()
	files := map[string]string{
		"demo_task/__init__.py": `import sys, time
def main():
    args = sys.argv[1:]
    for a in args:
        if a.startswith("--fail="):
            raise ValueError("bad input " + a[len("--fail="):])
        if a.startswith("--sleep="):
            time.sleep(int(a[len("--sleep="):]))
    print("main", args)
`,
		"demo_task/cli.py": `import sys
def run():
    out = sys.argv[sys.argv.index("--out") + 1]
    with open(out, "a") as f:
        f.write(" ".join(sys.argv[1:]) + "\n")
`,
		"demo_task-1.0.dist-info/METADATA":         "Metadata-Version: 2.1\nName: demo_task\nVersion: 1.0\n",
		"demo_task-1.0.dist-info/WHEEL":            "Wheel-Version: 1.0\nGenerator: shipline-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
		"demo_task-1.0.dist-info/entry_points.txt": "[demo_task.tasks]\nrun = demo_task.cli:run\n",
	}
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	var record strings.Builder
	for _, name := range []string{"demo_task/__init__.py", "demo_task/cli.py", "demo_task-1.0.dist-info/METADATA", "demo_task-1.0.dist-info/WHEEL", "demo_task-1.0.dist-info/entry_points.txt"} {
		w, _ := z.Create(name)
		_, _ = w.Write([]byte(files[name]))
		sum := sha256.Sum256([]byte(files[name]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", name, base64.RawURLEncoding.EncodeToString(sum[:]), len(files[name]))
	}
	record.WriteString("demo_task-1.0.dist-info/RECORD,,\n")
	w, _ := z.Create("demo_task-1.0.dist-info/RECORD")
	_, _ = w.Write([]byte(record.String()))
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "demo_task-1.0-py3-none-any.whl")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// localRunSetup deploys job demo/nightly (first: the "run" entry point
// writing to out; second, after first: demo_task.main) at v2.0.0.
func localRunSetup(t *testing.T) (*localFabric, string) {
	t.Helper()
	requirePython(t)
	ctx := context.Background()
	root := t.TempDir()
	f := newLocal("local", root)
	whl := demoWheel(t)
	st, _ := os.Stat(whl)
	up, err := f.Upload(ctx, "demo", "v2.0.0", Artifact{Pipeline: "task", File: filepath.Base(whl), LocalPath: whl, Size: st.Size()})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.txt")
	def := fmt.Sprintf(`{"name": "nightly", "tasks": [
	  {"task_key": "second", "depends_on": [{"task_key": "first"}], "python_wheel_task": {"package_name": "demo_task", "entry_point": "main"}, "libraries": [{"whl": %q}]},
	  {"task_key": "first", "python_wheel_task": {"package_name": "demo_task", "entry_point": "run", "parameters": ["--out", %q]}, "libraries": [{"whl": %q}]}]}`,
		up.Path, out, up.Path)
	if _, err := f.UpsertJob(ctx, JobSpec{Project: "demo", Job: "nightly", Definition: []byte(def), Version: "v2.0.0"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // never leave a run's processes behind a failed test
		runs, _ := f.ActiveRuns(context.Background(), "demo", "nightly")
		for _, r := range runs {
			if pid := localRecord(t, f, r.ID).SupervisorPID; pid > 0 {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
	})
	return f, out
}

// waitLocal polls the run until pred holds; the deadline only guards against a hang.
func waitLocal(t *testing.T, f Runner, id string, pred func(Run) bool) Run {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		r, err := f.GetRun(context.Background(), "demo", "nightly", id)
		if err != nil {
			t.Fatal(err)
		}
		if pred(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s stuck at %+v", id, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ended(r Run) bool { return !r.Active() }

func TestLocalRuns(t *testing.T) {
	ctx := context.Background()
	f, out := localRunSetup(t)

	req := RunRequest{Project: "demo", Job: "nightly", Key: "run/demo/local/nightly/1", Params: map[string]string{"mode": "smoke"}, TriggeredBy: "alice"}
	ref, err := f.StartRun(ctx, req)
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	again, err := f.StartRun(ctx, req)
	if err != nil || again != ref {
		t.Fatalf("second StartRun = %+v %v, want %+v", again, err, ref)
	}
	r := waitLocal(t, f, ref.ID, ended)
	if r.Result != RunSucceeded || taskStates(r) != "first=terminated/success second=terminated/success" || r.TriggeredBy != "alice" || r.Version != "v2.0.0" {
		t.Fatalf("run = %+v (log %s)", r, readLog(t, f, ref.ID))
	}
	// The entry point ran once, with the task's and the run's parameters.
	if got, _ := os.ReadFile(out); string(got) != "--out "+out+" --mode=smoke\n" {
		t.Fatalf("the entry point wrote %q", got)
	}

	// A failing task: the run fails with the task's error.
	failed, err := f.StartRun(ctx, RunRequest{Project: "demo", Job: "nightly", Key: "k2", Params: map[string]string{"fail": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	r = waitLocal(t, f, failed.ID, ended)
	if r.Result != RunFailed || r.Message != "task second: ValueError: bad input x" || taskStates(r) != "first=terminated/success second=terminated/failed" {
		t.Fatalf("failed run = %+v", r)
	}

	// Cancel a running task: its process group stops and the run ends cancelled.
	slow, _ := f.StartRun(ctx, RunRequest{Project: "demo", Job: "nightly", Key: "k3", Params: map[string]string{"sleep": "600"}})
	r = waitLocal(t, f, slow.ID, func(r Run) bool { return len(r.Tasks) == 2 && r.Tasks[1].State == RunRunning })
	active, err := f.ActiveRuns(ctx, "demo", "nightly")
	if err != nil || len(active) != 1 || active[0].ID != slow.ID {
		t.Fatalf("ActiveRuns = %+v %v", active, err)
	}
	pid := localRecord(t, f, slow.ID).SupervisorPID
	if err := f.CancelRun(ctx, "demo", "nightly", slow.ID); err != nil {
		t.Fatal(err)
	}
	r = waitLocal(t, f, slow.ID, ended)
	if r.Result != RunCancelled || taskStates(r) != "first=terminated/success second=terminated/cancelled" {
		t.Fatalf("cancelled run = %+v", r)
	}
	waitGone(t, pid)

	list, err := f.ListRuns(ctx, "demo", "nightly", 0)
	if err != nil || len(list) != 3 || list[0].ID != slow.ID || list[1].ID != failed.ID || list[2].ID != ref.ID {
		t.Fatalf("ListRuns = %+v %v", list, err)
	}
	if err := f.CancelRun(ctx, "demo", "nightly", ref.ID); err != nil {
		t.Fatalf("cancel of an ended run: %v", err)
	}
}

// A run whose supervisor is killed (the machine restarted) reads as failed.
func TestLocalRunSupervisorDied(t *testing.T) {
	ctx := context.Background()
	f, _ := localRunSetup(t)
	ref, err := f.StartRun(ctx, RunRequest{Project: "demo", Job: "nightly", Key: "k", Params: map[string]string{"sleep": "600"}})
	if err != nil {
		t.Fatal(err)
	}
	waitLocal(t, f, ref.ID, func(r Run) bool { return r.State == RunRunning && localRecord(t, f, ref.ID).SupervisorPID != 0 })
	pid := localRecord(t, f, ref.ID).SupervisorPID
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	r := waitLocal(t, f, ref.ID, ended)
	if r.Result != RunFailed || !strings.Contains(r.Message, "ended without recording a result") {
		t.Fatalf("run = %+v", r)
	}
}

func TestLocalRunRefusals(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	f := newLocal("local", root)
	_, err := f.StartRun(ctx, RunRequest{Project: "demo", Job: "nightly", Key: "k"})
	if fe := permanentKind(t, err, apperr.FabricRejected); !strings.Contains(fe.Msg, "deploy job nightly of project demo to this fabric first") {
		t.Fatalf("not deployed: %q", fe.Msg)
	}
	if err := os.MkdirAll(filepath.Join(root, "dags"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "dags", "demo__orders.py"), []byte(validDAG), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = f.StartRun(ctx, RunRequest{Project: "demo", Job: "orders", Key: "k"})
	if fe := permanentKind(t, err, apperr.FabricRejected); !strings.Contains(fe.Msg, "it is an Airflow DAG, and a local fabric has no Airflow scheduler") {
		t.Fatalf("DAG: %q", fe.Msg)
	}
	def := `{"name": "nb", "tasks": [{"task_key": "nb", "notebook_task": {"notebook_path": "/x"}}]}`
	if _, err := f.UpsertJob(ctx, JobSpec{Project: "demo", Job: "nb", Definition: []byte(def), Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.StartRun(ctx, RunRequest{Project: "demo", Job: "nb", Key: "k"})
	if fe := permanentKind(t, err, apperr.InvalidDefinition); !strings.Contains(fe.Msg, `task "nb" is not a python_wheel_task`) {
		t.Fatalf("notebook task: %q", fe.Msg)
	}
	if runs, err := f.ListRuns(ctx, "demo", "nb", 0); err != nil || len(runs) != 0 {
		t.Fatalf("refused starts left runs: %+v %v", runs, err)
	}
}

func localRecord(t *testing.T, f *localFabric, id string) localRunRecord {
	t.Helper()
	rec, err := readLocalRun(filepath.Join(f.runsDir("demo", "nightly"), id))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func readLog(t *testing.T, f *localFabric, id string) string {
	b, _ := os.ReadFile(filepath.Join(f.runsDir("demo", "nightly"), id, "stdout.log"))
	return string(b)
}

// waitGone waits for a process group to be gone (guarding against a hang only).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for syscall.Kill(-pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still alive", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
