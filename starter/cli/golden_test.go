package cli

import (
	"errors"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/workflows"
)

// Golden-file tests: every command's text and --output json, rendered from
// fixed states. `go test ./starter/cli -run TestGolden -update` rewrites them.

const depID = "deploy/demo/v1.0.0/20261122-101500-ab12"

func step(name string, st workflows.StepStatus, detail string) workflows.Step {
	return workflows.Step{Name: name, Status: st, Detail: detail}
}

func releaseState(status workflows.Status, summary string, steps ...workflows.Step) workflows.ReleaseState {
	return workflows.ReleaseState{Progress: workflows.Progress{Status: status, Summary: summary, Steps: steps},
		Project: "demo", Version: "v1.0.0", Ref: "main", Actor: "alice"}
}

func deployState(status workflows.Status, summary string, steps ...workflows.Step) workflows.DeployState {
	return workflows.DeployState{Progress: workflows.Progress{Status: status, Summary: summary, Steps: steps},
		DeploymentID: depID, Project: "demo", Version: "v1.0.0", Actor: "alice", Started: t0}
}

var (
	relAuthorized = releaseState(workflows.StatusRunning, "releasing v1.0.0 of demo from main for alice",
		step(workflows.StepAuthorize, workflows.StepDone, "alice is an admin of demo"), step(workflows.StepResolve, workflows.StepRunning, ""))
	relReleased = releaseState(workflows.StatusReleased, "released v1.0.0 of demo at 0123456 by alice",
		step(workflows.StepAuthorize, workflows.StepDone, "alice is an admin of demo"), step(workflows.StepResolve, workflows.StepDone, "main is 0123456"),
		step(workflows.StepValidate, workflows.StepDone, "shipline.yaml is valid"), step(workflows.StepTag, workflows.StepDone, "pushed tag v1.0.0"),
		step(workflows.StepDeploy, workflows.StepSkipped, string(workflows.DeploySkipped)))
)

func TestGoldenRelease(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		for _, out := range []string{"text", "json"} {
			f := newFake()
			f.onStart[workflows.ReleaseWorkflow] = &fakeWF{typ: workflows.ReleaseWorkflow, status: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED,
				accept: workflows.Acceptance{Status: workflows.StatusRefused, Step: workflows.StepAuthorize,
					Reason: "bob may not release project demo: only the project's admins may (alice)"}}
			code, _, _ := golden(t, "release_refused_"+out, f, "--output", out, "release", "v1.0.0", "--project", "demo")
			if code != ExitFailed {
				t.Errorf("exit %d, want 1", code)
			}
		}
	})
	t.Run("started", func(t *testing.T) {
		for _, out := range []string{"text", "json"} {
			f := newFake()
			f.onStart[workflows.ReleaseWorkflow] = &fakeWF{typ: workflows.ReleaseWorkflow, accept: workflows.Acceptance{Accepted: true, Status: workflows.StatusRunning}}
			golden(t, "release_started_"+out, f, "--output", out, "release", "v1.0.0", "--project", "demo", "--no-deploy")
		}
	})
	t.Run("wait", func(t *testing.T) {
		for _, out := range []string{"text", "json"} {
			f := newFake()
			f.onStart[workflows.ReleaseWorkflow] = &fakeWF{typ: workflows.ReleaseWorkflow, accept: workflows.Acceptance{Accepted: true, Status: workflows.StatusRunning},
				states: []any{relAuthorized, relReleased}}
			if code, _, _ := golden(t, "release_wait_"+out, f, "--output", out, "release", "v1.0.0", "--project", "demo", "--no-deploy", "--wait"); code != ExitOK {
				t.Errorf("exit %d", code)
			}
		}
	})
}

func TestGoldenDeploy(t *testing.T) {
	t.Run("unreleased", func(t *testing.T) {
		f := newFake()
		f.onStart[workflows.DeployWorkflow] = &fakeWF{typ: workflows.DeployWorkflow, accept: workflows.Acceptance{Status: workflows.StatusRefused, Step: workflows.StepResolveRelease,
			Reason: "v9.9.9 of demo is not released: no tag v9.9.9 on the remote; release it first with `shipline release v9.9.9 --project demo`"}}
		if code, _, _ := golden(t, "deploy_unreleased", f, "deploy", "v9.9.9", "--project", "demo"); code != ExitFailed {
			t.Errorf("exit %d", code)
		}
	})
	queued := deployState(workflows.StatusQueued, "queued for fabric dev behind deploy/demo/v0.9.0/x",
		step(workflows.StepResolveRelease, workflows.StepDone, "v1.0.0 is 0123456: 2 jobs to dev, 2 pipelines"),
		step(workflows.StepAccess, workflows.StepDone, "alice may deploy to dev"), step(workflows.StepLock, workflows.StepRunning, ""))
	queued.Waiting = &workflows.Waiting{Fabric: "dev", Holder: "deploy/demo/v0.9.0/x"}
	building := deployState(workflows.StatusRunning, "deploying v1.0.0 of demo to dev",
		step(workflows.StepResolveRelease, workflows.StepDone, "v1.0.0 is 0123456: 2 jobs to dev, 2 pipelines"),
		step(workflows.StepAccess, workflows.StepDone, "alice may deploy to dev"), step(workflows.StepLock, workflows.StepDone, "holding dev"),
		step(workflows.StepBuild, workflows.StepRunning, ""))
	building.Builds = map[string]workflows.PipelineBuild{
		"ingest": {Pipeline: "ingest", Status: workflows.StepRunning},
		"score":  {Pipeline: "score", Status: workflows.StepRunning},
	}
	built := building
	built.Builds = map[string]workflows.PipelineBuild{
		"ingest": {Pipeline: "ingest", Status: workflows.StepDone, File: "ingest-1.0.0-py3-none-any.whl", Seconds: 12.5},
		"score":  {Pipeline: "score", Status: workflows.StepDone, Cached: true, File: "score-1.0.0-py3-none-any.whl"},
	}
	done := deployState(workflows.StatusSucceeded, "deployed v1.0.0 of demo to dev (2 jobs)",
		step(workflows.StepResolveRelease, workflows.StepDone, "v1.0.0 is 0123456: 2 jobs to dev, 2 pipelines"),
		step(workflows.StepAccess, workflows.StepDone, "alice may deploy to dev"), step(workflows.StepLock, workflows.StepDone, "holding dev"),
		step(workflows.StepBuild, workflows.StepDone, "2 pipelines (1 from cache)"), step(workflows.StepUpload, workflows.StepDone, "2 artifacts sent"),
		step(workflows.StepSchedule, workflows.StepDone, "daily_orders created, orders_dag created"), step(workflows.StepRecord, workflows.StepDone, "recorded on dev"))
	done.Builds = built.Builds
	t.Run("wait", func(t *testing.T) {
		for _, out := range []string{"text", "json"} {
			f := newFake()
			f.onStart[workflows.DeployWorkflow] = &fakeWF{typ: workflows.DeployWorkflow, accept: workflows.Acceptance{Accepted: true, Status: workflows.StatusQueued},
				states: []any{queued, building, built, done}}
			code, stdout, _ := golden(t, "deploy_wait_"+out, f, "--output", out, "deploy", "v1.0.0", "--project", "demo", "--wait")
			if code != ExitOK || strings.Contains(stdout, "building") {
				t.Errorf("exit %d; a pipeline announced as building:\n%s", code, stdout)
			}
		}
	})
	parked := built
	parked.Status, parked.Parked = workflows.StatusParked, &workflows.Parked{Step: workflows.StepUpload, Reason: "fabric dev refused the token (403)", Since: t0.Add(time.Minute)}
	parked.Summary = "parked at upload: fabric dev refused the token (403) — fix the cause, then `shipline resume " + depID + "` (or `shipline cancel " + depID + "`)"
	t.Run("parked", func(t *testing.T) {
		f := newFake()
		f.onStart[workflows.DeployWorkflow] = &fakeWF{typ: workflows.DeployWorkflow, accept: workflows.Acceptance{Accepted: true}, states: []any{parked}}
		if code, _, _ := golden(t, "deploy_wait_parked", f, "deploy", "v1.0.0", "--project", "demo", "--wait"); code != ExitFailed {
			t.Errorf("exit %d", code)
		}
	})
	t.Run("status", func(t *testing.T) {
		for _, out := range []string{"text", "json"} {
			f := newFake()
			f.add(depID, &fakeWF{typ: workflows.DeployWorkflow, states: []any{parked}})
			golden(t, "status_deploy_"+out, f, "--output", out, "status", depID)
		}
	})
	t.Run("resume", func(t *testing.T) {
		f := newFake()
		f.add(depID, &fakeWF{typ: workflows.DeployWorkflow, states: []any{parked},
			updates: map[string]any{workflows.ResumeUpdate: "resuming " + depID + " from step upload"},
			after:   map[string][]any{workflows.ResumeUpdate: {parked, done}}})
		if code, _, _ := golden(t, "resume_deploy_wait", f, "resume", depID, "--wait"); code != ExitOK {
			t.Errorf("exit %d", code)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		cancelled := parked
		cancelled.Status, cancelled.Reason, cancelled.Summary = workflows.StatusCancelled, "cancelled by alice: wrong fabric", "cancelled by alice: wrong fabric"
		for _, out := range []string{"text", "json"} {
			f := newFake()
			f.add(depID, &fakeWF{typ: workflows.DeployWorkflow, states: []any{parked},
				updates: map[string]any{workflows.CancelUpdate: "cancelling " + depID},
				after:   map[string][]any{workflows.CancelUpdate: {cancelled}}})
			// A successful cancel --wait exits 0.
			if code, _, _ := golden(t, "cancel_deploy_wait_"+out, f, "--output", out, "cancel", depID, "--reason", "wrong fabric", "--wait"); code != ExitOK {
				t.Errorf("exit %d, want 0", code)
			}
		}
	})
	t.Run("cancel refused", func(t *testing.T) {
		f := newFake()
		f.add(depID, &fakeWF{typ: workflows.DeployWorkflow, states: []any{parked},
			updates: map[string]any{workflows.CancelUpdate: errors.New("mallory may not cancel " + depID + ": fabric dev is owned by team developers")}})
		if code, _, _ := golden(t, "cancel_refused", f, "cancel", depID); code != ExitFailed {
			t.Errorf("exit %d", code)
		}
	})
}

// A workflow no worker ever ran, on a queue nobody polls, is terminated with
// who and why; one on a served queue goes through its cancel update.
func TestGoldenCancelStranded(t *testing.T) {
	f := newFake()
	f.pollers["nowhere"] = 0
	f.add(depID, &fakeWF{typ: workflows.DeployWorkflow, queue: "nowhere", neverRan: true})
	if code, _, _ := golden(t, "cancel_stranded", f, "cancel", depID, "--reason", "wrong queue", "--wait"); code != ExitOK {
		t.Errorf("exit %d", code)
	}
}

func TestGoldenNoWorker(t *testing.T) {
	f := newFake()
	f.pollers["nowhere"] = 0
	if code, _, _ := golden(t, "deploy_no_worker", f, "--task-queue", "nowhere", "deploy", "v1.0.0", "--project", "demo"); code != ExitFailed {
		t.Errorf("exit %d", code)
	}
}

func promoteState(status workflows.Status, summary string, stages ...workflows.StageState) workflows.PromoteState {
	return workflows.PromoteState{Progress: workflows.Progress{Status: status, Summary: summary}, Project: "demo", Version: "v1.0.0", Actor: "alice", Target: "prod", Stages: stages}
}

const stageDep = "deploy/demo/v1.0.0/promote-qa-0a1b2c3d"

func TestGoldenPromote(t *testing.T) {
	devDone := workflows.StageState{Name: "dev", Fabrics: []string{"dev"}, Status: workflows.StageReached, Detail: "deployed before this promotion"}
	qaDeploying := workflows.StageState{Name: "qa", Fabrics: []string{"qa"}, Status: workflows.StageDeploying, DeploymentID: stageDep, DeployedBy: "bob"}
	prodPending := workflows.StageState{Name: "prod", Fabrics: []string{"prod"}, Status: workflows.StagePending}
	t.Run("stage parks", func(t *testing.T) {
		for _, out := range []string{"text", "json"} {
			f := newFake()
			f.onStart[workflows.PromoteWorkflow] = &fakeWF{typ: workflows.PromoteWorkflow, accept: workflows.Acceptance{Accepted: true},
				states: []any{promoteState(workflows.StatusRunning, "promoting v1.0.0 of demo for alice", devDone, qaDeploying, prodPending)}}
			child := deployState(workflows.StatusParked, "parked at schedule: …")
			child.DeploymentID = stageDep
			child.Parked = &workflows.Parked{Step: workflows.StepSchedule, Reason: "fabric qa: 503 Service Unavailable", Since: t0}
			f.add(stageDep, &fakeWF{typ: workflows.DeployWorkflow, states: []any{child}})
			code, _, errOut := golden(t, "promote_stage_parked_"+out, f, "--output", out, "promote", "v1.0.0", "--project", "demo", "--wait")
			if code != ExitFailed || !strings.Contains(errOut, "shipline resume "+stageDep) {
				t.Errorf("exit %d, stderr %q", code, errOut)
			}
		}
	})
	t.Run("parked", func(t *testing.T) {
		qaParked := qaDeploying
		qaParked.Status = workflows.StageParked
		qaParked.Parked = &workflows.Parked{Step: workflows.StepSchedule, Reason: "fabric qa: 503 Service Unavailable", Since: t0}
		qaParked.Detail = "deployment " + stageDep + " parked at schedule: fabric qa: 503 Service Unavailable"
		s := promoteState(workflows.StatusParked, "qa: deployment "+stageDep+" parked at schedule: fabric qa: 503 Service Unavailable — fix the cause, then `shipline resume "+stageDep+"` (or `shipline cancel "+stageDep+"`)",
			devDone, qaParked, prodPending)
		f := newFake()
		f.onStart[workflows.PromoteWorkflow] = &fakeWF{typ: workflows.PromoteWorkflow, accept: workflows.Acceptance{Accepted: true}, states: []any{s}}
		code, _, errOut := golden(t, "promote_parked", f, "promote", "v1.0.0", "--project", "demo", "--wait")
		if code != ExitFailed || !strings.Contains(errOut, "shipline resume "+stageDep) {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("waiting", func(t *testing.T) {
		qaWaiting := workflows.StageState{Name: "qa", Fabrics: []string{"qa"}, Status: workflows.StageApproval, Team: "developers", Required: 1}
		s := promoteState(workflows.StatusWaiting, "promoting v1.0.0 of demo for alice", devDone, qaWaiting, prodPending)
		s.Pending = "qa: 0 of 1 approvals from developers; bob, carol may approve"
		f := newFake()
		f.onStart[workflows.PromoteWorkflow] = &fakeWF{typ: workflows.PromoteWorkflow, accept: workflows.Acceptance{Accepted: true}, states: []any{s}}
		if code, _, _ := golden(t, "promote_waiting", f, "promote", "v1.0.0", "--project", "demo", "--wait"); code != ExitOK {
			t.Errorf("exit %d", code)
		}
		// status --watch of a promotion prints it (it used to exit silently).
		f.calls = nil
		if code, stdout, _ := golden(t, "watch_promote", f, "status", workflows.PromoteID("demo", "v1.0.0"), "--watch"); code != ExitOK || !strings.Contains(stdout, "pending: qa") {
			t.Errorf("exit %d:\n%s", code, stdout)
		}
	})
	t.Run("refused", func(t *testing.T) {
		f := newFake()
		f.onStart[workflows.PromoteWorkflow] = &fakeWF{typ: workflows.PromoteWorkflow, accept: workflows.Acceptance{Status: workflows.StatusRefused,
			Reason: "v1.0.0 of demo cannot be promoted: it was never released; release it first with `shipline release v1.0.0 --project demo`"}}
		if code, _, _ := golden(t, "promote_refused", f, "promote", "v1.0.0", "--project", "demo"); code != ExitFailed {
			t.Errorf("exit %d", code)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		f := newFake()
		f.add(workflows.PromoteID("demo", "v1.0.0"), &fakeWF{typ: workflows.PromoteWorkflow, states: []any{promoteState(workflows.StatusWaiting, "", devDone)}})
		if code, _, _ := golden(t, "cancel_promote", f, "cancel", workflows.PromoteID("demo", "v1.0.0"), "--wait"); code != ExitOK {
			t.Errorf("exit %d", code)
		}
	})
}

// A resumed release returns once its parked step completes; the release
// entity itself stays open.
func TestGoldenResumeRelease(t *testing.T) {
	id := workflows.ReleaseID("demo", "v1.0.0")
	parked := releaseState(workflows.StatusParked, "parked at resolve ref: remote unreachable — when the remote is back, `shipline resume "+id+"`",
		step(workflows.StepAuthorize, workflows.StepDone, "alice is an admin of demo"), step(workflows.StepResolve, workflows.StepFailed, "remote unreachable"))
	parked.Parked = &workflows.Parked{Step: workflows.StepResolve, Reason: "remote unreachable", Since: t0}
	f := newFake()
	f.add(id, &fakeWF{typ: workflows.ReleaseWorkflow, states: []any{parked},
		updates: map[string]any{workflows.ResumeUpdate: "resuming release v1.0.0 from resolve ref"},
		after:   map[string][]any{workflows.ResumeUpdate: {parked, relAuthorized, relReleased}}})
	if code, _, _ := golden(t, "resume_release_wait", f, "resume", id, "--wait"); code != ExitOK {
		t.Errorf("exit %d", code)
	}
}

// status --watch follows a fabric while deployments hold it, then says what runs there.
func TestGoldenWatchFabric(t *testing.T) {
	id := workflows.FabricID("demo", "dev")
	busy := workflows.FabricState{Project: "demo", Fabric: "dev",
		Queue: []workflows.QueueEntry{{DeploymentID: depID, Version: "v1.0.0", Actor: "alice"}, {DeploymentID: "deploy/demo/v1.1.0/y", Version: "v1.1.0", Actor: "bob"}}}
	second := busy
	second.Queue = busy.Queue[1:]
	second.History = []workflows.DeploymentDone{{DeploymentID: depID, Version: "v1.0.0", Actor: "alice", Outcome: workflows.StatusSucceeded}}
	idle := second
	idle.Queue = nil
	idle.History = append(second.History, workflows.DeploymentDone{DeploymentID: "deploy/demo/v1.1.0/y", Version: "v1.1.0", Actor: "bob", Outcome: workflows.StatusFailed, Reason: "schedule failed: 403"})
	idle.Jobs = map[string]workflows.JobRecord{"daily_orders": {Job: "daily_orders", Version: "v1.0.0"}}
	f := newFake()
	f.add(id, &fakeWF{typ: workflows.FabricWorkflow, states: []any{busy, second, idle}})
	if code, _, _ := golden(t, "watch_fabric", f, "status", id, "--watch"); code != ExitOK {
		t.Errorf("exit %d", code)
	}
}

// logs: the failed build's log first, a release ID shows its deployment's,
// and a build it cannot decode is named, not fatal.
func TestGoldenLogs(t *testing.T) {
	relID := workflows.ReleaseID("demo", "v1.0.0")
	state := `{"status":"parked","builds":{` +
		`"ingest":{"pipeline":"ingest","status":"done","file":"ingest.whl","log_path":"/state/logs/ingest.log"},` +
		`"score":{"pipeline":"score","status":"failed","error":"tests failed","log_path":"/state/logs/score.log","log_tail":"FAILED test_score"},` +
		`"weird":{"pipeline":7}}}`
	for _, out := range []string{"text", "json"} {
		f := newFake()
		rel := relReleased
		rel.DeployID = depID
		f.add(relID, &fakeWF{typ: workflows.ReleaseWorkflow, states: []any{rel}})
		f.add(depID, &fakeWF{typ: workflows.DeployWorkflow, states: []any{state}})
		f.reads[workflows.ReadLogsUpdate] = workflows.ReadLogsOutput{Logs: []activities.LogFile{
			{Path: "/state/logs/score.log", Content: "collected 3 items\nFAILED test_score\n"},
			{Path: "/state/logs/ingest.log", Content: "Successfully built ingest.whl\n"},
		}}
		code, stdout, _ := golden(t, "logs_release_"+out, f, "--output", out, "logs", relID)
		if code != ExitOK || (out == "text" && strings.Index(stdout, "score") > strings.Index(stdout, "ingest")) {
			t.Errorf("exit %d; the failed build's log must come first:\n%s", code, stdout)
		}
	}
}

// logs of a release whose tests failed before its tag: it has no
// deployment, so its own builds (step build and test) are shown.
func TestGoldenLogsReleaseTestsFailed(t *testing.T) {
	relID := workflows.ReleaseID("demo", "v1.1.0")
	rel := releaseState(workflows.StatusFailed, "release v1.1.0 of demo failed: the tests of pipeline score failed",
		step(workflows.StepBuildTest, workflows.StepFailed, "the tests of pipeline score failed"))
	rel.Builds = map[string]workflows.PipelineBuild{
		"ingest": {Pipeline: "ingest", Status: workflows.StepDone, File: "ingest.whl", LogPath: "/state/logs/ingest.log"},
		"score":  {Pipeline: "score", Status: workflows.StepFailed, Error: "tests failed", LogPath: "/state/logs/score.log", LogTail: "FAILED test_score"},
	}
	f := newFake()
	f.add(relID, &fakeWF{typ: workflows.ReleaseWorkflow, states: []any{rel}})
	f.reads[workflows.ReadLogsUpdate] = workflows.ReadLogsOutput{Logs: []activities.LogFile{
		{Path: "/state/logs/score.log", Content: "collected 3 items\nFAILED test_score - assert 0.4 > 0.5\n"},
		{Path: "/state/logs/ingest.log", Content: "Successfully built ingest.whl\n"},
	}}
	code, stdout, _ := golden(t, "logs_release_tests_failed", f, "logs", relID)
	if code != ExitOK || !strings.Contains(stdout, "assert 0.4 > 0.5") || strings.Index(stdout, "score") > strings.Index(stdout, "ingest") {
		t.Errorf("exit %d; the release's failed build's log must be shown first:\n%s", code, stdout)
	}
}

func TestGoldenVotesAndDelete(t *testing.T) {
	pid := workflows.PromoteID("demo", "v1.0.0")
	f := newFake()
	qa := gatedQA()
	f.add(pid, &fakeWF{typ: workflows.PromoteWorkflow, states: []any{promoteState(workflows.StatusWaiting, "", qa)}, updates: map[string]any{
		workflows.ApproveUpdate: workflows.StageState{Name: "qa", Required: 1, Approvals: []workflows.Vote{{Actor: "alice", PlanHash: qa.Plan.Hash}}}}})
	golden(t, "approve", f, "approve", "v1.0.0", "--project", "demo", "--stage", "qa")
	// The approval names the plan the gate showed (and printed).
	if args := f.wfs[pid].updateArgs; len(args) != 1 || args[0].(workflows.Vote).PlanHash != qa.Plan.Hash {
		t.Errorf("approve sent %+v, want the hash of the plan shown, %s", args, qa.Plan.Hash)
	}

	f = newFake()
	f.add(workflows.ReleaseID("demo", "v1.0.0"), &fakeWF{typ: workflows.ReleaseWorkflow, updates: map[string]any{
		workflows.DeleteUpdate: workflows.DeleteResult{TagDeleted: true, Artifacts: 2, Reverted: []string{"dev/daily_orders → v0.9.0"}}}})
	golden(t, "delete", f, "delete", "v1.0.0", "--project", "demo")

	f = newFake()
	f.add(workflows.ReleaseID("demo", "v1.0.0"), &fakeWF{typ: workflows.ReleaseWorkflow, updates: map[string]any{
		workflows.DeleteUpdate: errors.New("v1.0.0 of demo is linked (promoted to qa): it can no longer be deleted")}})
	if code, _, _ := golden(t, "delete_refused", f, "delete", "v1.0.0", "--project", "demo"); code != ExitFailed {
		t.Errorf("exit %d", code)
	}
}

// status of a workflow no worker runs: what Temporal knows, and why there is no state.
func TestGoldenStatusNoWorker(t *testing.T) {
	f := newFake()
	f.pollers["nowhere"] = 0
	f.add(depID, &fakeWF{typ: workflows.DeployWorkflow, queue: "nowhere", neverRan: true})
	if code, _, _ := golden(t, "status_no_worker", f, "status", depID); code != ExitFailed {
		t.Errorf("exit %d", code)
	}
}

// A worker that does not know the accepted update yet: the start still works,
// as before it existed.
func TestStartWithOlderWorker(t *testing.T) {
	f := newFake()
	f.onStart[workflows.ReleaseWorkflow] = &fakeWF{typ: workflows.ReleaseWorkflow, acceptErr: errors.New("unknown update accepted. KnownUpdates=[delete link]")}
	code, out, errOut := shipline(t, f, "release", "v1.0.0", "--project", "demo")
	if code != ExitOK || !strings.Contains(out, "release v1.0.0 of demo started for alice") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

// validate is offline: an invalid project's errors, with file:line:col, exit 2.
func TestGoldenValidate(t *testing.T) {
	for _, out := range []string{"text", "json"} {
		if code, _, _ := golden(t, "validate_bad_"+out, newFake(), "--output", out, "validate", "testdata/validate/bad"); code != ExitInvalid {
			t.Errorf("exit %d, want 2", code)
		}
	}
}

// A step before authorize that runs long (a slow fetch) does not hold the
// command silently: it returns, saying the request is not decided yet.
func TestGoldenDeployUndecided(t *testing.T) {
	f := newFake()
	f.onStart[workflows.DeployWorkflow] = &fakeWF{typ: workflows.DeployWorkflow, acceptHang: true}
	if code, _, _ := golden(t, "deploy_undecided", f, "deploy", "v1.0.0", "--project", "demo"); code != ExitOK {
		t.Errorf("exit %d", code)
	}
}

// status --watch of any other workflow (here the audit entity) says where it
// stands and returns: it never exits silently, and never waits on an idle entity.
func TestGoldenWatchOther(t *testing.T) {
	f := newFake()
	f.add(workflows.AuditID("demo"), &fakeWF{typ: workflows.AuditWorkflow, states: []any{map[string]any{"summary": "3 refusals recorded"}}})
	if code, _, _ := golden(t, "watch_audit", f, "status", workflows.AuditID("demo"), "--watch"); code != ExitOK {
		t.Errorf("exit %d", code)
	}
}
