package workflows

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/platform"
)

// sentNotice is one delivery the Notify workflow asked for.
type sentNotice struct {
	target string
	event  activities.NotifyEvent
}

type noticeLog struct {
	mu   sync.Mutex
	sent []sentNotice
}

// installNotices records the Notify workflow's deliveries
// (fail, when set, answers them instead).
func installNotices(env *testsuite.TestWorkflowEnvironment, fail error) *noticeLog {
	l := &noticeLog{} // the Notify workflow is registered by newPromoteEnv and newDeployEnv
	env.RegisterActivity(&activities.Notifier{})
	env.OnActivity(notifyActs.Send, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NotifyInput) (activities.NotifyOutput, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.sent = append(l.sent, sentNotice{target: in.Target, event: in.Event})
		if fail != nil {
			return activities.NotifyOutput{}, fail
		}
		return activities.NotifyOutput{Status: 200}, nil
	}).Maybe()
	return l
}

// of lists the deliveries of an event (at a stage, "" for any).
func (l *noticeLog) of(event, stage string) []sentNotice {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sentNotice
	for _, s := range l.sent {
		if s.event.Event == event && (stage == "" || s.event.Stage == stage) {
			out = append(out, s)
		}
	}
	return out
}

const webBase = "https://shipline.example.com"

// notifyTargets: the team's channel is told about gates (reminded every 4h,
// escalated to the leads after 24h) and promotions; the leads' webhook about
// rollbacks.
func notifyTargets() *activities.NotifySettings {
	return &activities.NotifySettings{WebURL: webBase, Targets: []platform.Notification{
		{Name: "team", Kind: platform.NotifySlack, URLEnv: "SLACK_URL",
			Events:      []string{platform.EventApprovalNeeded, platform.EventReminder, platform.EventVerificationFailed, platform.EventParked, platform.EventPromoted},
			RemindEvery: 4 * time.Hour, EscalateAfter: 24 * time.Hour, EscalateTo: "leads"},
		{Name: "leads", Kind: platform.NotifyWebhook, URLEnv: "LEADS_URL", SecretEnv: "LEADS_SECRET", Events: []string{platform.EventRollback}},
	}}
}

func TestNotifyGateApprovalRemindersAndEscalation(t *testing.T) {
	settings := stages()
	settings.Notify = notifyTargets()
	e := newPromoteEnv(t, settings, released())
	sent := installNotices(e.TestWorkflowEnvironment, nil)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	e.vote(10*time.Hour, ApproveUpdate, Vote{Stage: "prod", Actor: "carol"}, "")
	e.vote(30*time.Hour, ApproveUpdate, Vote{Stage: "prod", Actor: "dave"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})
	var out PromoteState
	if err := e.GetWorkflowResult(&out); err != nil || out.Status != StatusPromoted {
		t.Fatalf("promotion: %v, %s", err, out.Status)
	}
	link := webBase + "/p/demo/promotions/v1.2.0"

	// Each gate, as it opens: who may approve, and the promotion's page.
	qa := sent.of(platform.EventApprovalNeeded, "qa")
	if len(qa) != 1 || qa[0].target != "team" || strings.Join(qa[0].event.Approvers, ",") != "alice,bob" || qa[0].event.URL != link ||
		qa[0].event.Actor != "alice" || !strings.Contains(qa[0].event.Summary, "qa: 0 of 1 approvals from developers") {
		t.Fatalf("qa approval_needed = %+v", qa)
	}
	prod := sent.of(platform.EventApprovalNeeded, "prod")
	if len(prod) != 1 || strings.Join(prod[0].event.Approvers, ",") != "carol,dave,erin" || prod[0].event.URL != link {
		t.Fatalf("prod approval_needed = %+v", prod)
	}
	opened := prod[0].event.Time
	if opened.Sub(qa[0].event.Time) != time.Minute { // qa approved and deployed at 1m; prod's gate comes before its soak
		t.Errorf("prod's gate opened %s after qa's", opened.Sub(qa[0].event.Time))
	}
	if prod[0].event.ID == qa[0].event.ID || !strings.HasPrefix(prod[0].event.ID, "notify/"+PromoteID("demo", "v1.2.0")+"/") {
		t.Errorf("event IDs %q, %q", qa[0].event.ID, prod[0].event.ID)
	}

	// Reminders every 4h from the opening while prod is undecided (dave
	// decides 29h59m after it opened), none for qa (decided within a minute).
	if r := sent.of(platform.EventReminder, "qa"); len(r) != 0 {
		t.Errorf("qa reminders: %+v", r)
	}
	reminders := sent.of(platform.EventReminder, "prod")
	if len(reminders) != 7 {
		t.Fatalf("%d prod reminders, want 7 (4h … 28h after the opening)", len(reminders))
	}
	for k, r := range reminders {
		if at := r.event.Time.Sub(opened); at != time.Duration(k+1)*4*time.Hour || r.target != "team" {
			t.Errorf("reminder %d to %s at +%s", k+1, r.target, at)
		}
	}
	// After carol approved (9h59m after the opening), who may still approve.
	if r := reminders[2]; strings.Join(r.event.Approvers, ",") != "dave,erin" || !strings.Contains(r.event.Summary, "Still waiting after 12h0m") ||
		!strings.Contains(r.event.Summary, "1 of 2 approvals") {
		t.Errorf("third reminder: %+v", r.event)
	}
	if strings.Join(reminders[0].event.Approvers, ",") != "carol,dave,erin" {
		t.Errorf("first reminder's approvers: %v", reminders[0].event.Approvers)
	}

	// One escalation, 24h after the opening, to the leads.
	esc := sent.of(platform.EventEscalation, "")
	if len(esc) != 1 || esc[0].target != "leads" || esc[0].event.Time.Sub(opened) != 24*time.Hour || esc[0].event.Stage != "prod" ||
		!strings.Contains(esc[0].event.Summary, "nobody decided within 24h0m") {
		t.Fatalf("escalations = %+v", esc)
	}

	promoted := sent.of(platform.EventPromoted, "")
	if len(promoted) != 1 || promoted[0].target != "team" || promoted[0].event.Stage != "prod" || promoted[0].event.Summary != "promoted v1.2.0 of demo to prod" {
		t.Fatalf("promoted = %+v", promoted)
	}
	// The promotion's state lists what it sent (the latest MaxNotices), each
	// with its Notify workflow, for `status` and the dashboard.
	if len(out.Notices) != len(sent.sent) { // each event here went to one target
		t.Fatalf("%d notices in the state, want %d", len(out.Notices), len(sent.sent))
	}
	last := out.Notices[len(out.Notices)-1]
	if last.Event != platform.EventPromoted || last.Stage != "prod" || !slices.Equal(last.Targets, []string{"team"}) || last.ID != promoted[0].event.ID || !last.At.Equal(promoted[0].event.Time) {
		t.Errorf("last notice %+v, want the promoted event %s", last, promoted[0].event.ID)
	}
	if n := out.Notices[len(out.Notices)-2]; n.Event != platform.EventReminder || n.Stage != "prod" {
		t.Errorf("notice before the last %+v, want prod's last reminder", n)
	}

	// The leads are told of nothing else (they list rollback only).
	for _, s := range sent.sent {
		if s.target == "leads" && s.event.Event != platform.EventEscalation {
			t.Errorf("leads got %s", s.event.Event)
		}
	}
}

func TestNotifyRemindersStopWhenGateIsDecided(t *testing.T) {
	settings := stages()
	settings.Notify = notifyTargets()
	e := newPromoteEnv(t, settings, released())
	sent := installNotices(e.TestWorkflowEnvironment, nil)
	e.vote(9*time.Hour, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	e.vote(10*time.Hour, RejectUpdate, Vote{Stage: "prod", Actor: "carol", Comment: "not this week"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})
	var out PromoteState
	if err := e.GetWorkflowResult(&out); err != nil || out.Status != StatusRejected {
		t.Fatalf("promotion: %v, %s", err, out.Status)
	}
	// qa: reminded at 4h and 8h, decided at 9h; prod opened at 9h and was
	// rejected at 10h: no reminder there, no escalation.
	if r := sent.of(platform.EventReminder, "qa"); len(r) != 2 {
		t.Errorf("qa reminders: %d, want 2", len(r))
	}
	if r := sent.of(platform.EventReminder, "prod"); len(r) != 0 {
		t.Errorf("prod reminders after the rejection: %+v", r)
	}
	if r := sent.of(platform.EventEscalation, ""); len(r) != 0 {
		t.Errorf("escalations: %+v", r)
	}
	if r := sent.of(platform.EventPromoted, ""); len(r) != 0 {
		t.Errorf("a rejected promotion said promoted: %+v", r)
	}
}

// A receiver that always fails holds nothing: the promotion goes through its
// gates and deploys as if nobody listened.
func TestNotifyFailingReceiverDoesNotBlockPromotion(t *testing.T) {
	settings := stages()
	settings.Notify = notifyTargets()
	e := newPromoteEnv(t, settings, released())
	sent := installNotices(e.TestWorkflowEnvironment, errors.New("notification target team answered 503 Service Unavailable"))
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	e.vote(2*time.Hour, ApproveUpdate, Vote{Stage: "prod", Actor: "carol"}, "")
	e.vote(2*time.Hour+time.Minute, ApproveUpdate, Vote{Stage: "prod", Actor: "dave"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})
	var out PromoteState
	if err := e.GetWorkflowResult(&out); err != nil || out.Status != StatusPromoted || len(e.deploys) != 3 {
		t.Fatalf("promotion: %v, %s, %d deploys", err, out.Status, len(e.deploys))
	}
	if len(sent.of(platform.EventApprovalNeeded, "")) < 2 {
		t.Errorf("approval_needed was not even tried: %+v", sent.sent)
	}
}

// Without the notify change (a run from before it), nothing is sent.
func TestNotifyVersioned(t *testing.T) {
	settings := stages()
	settings.Notify = notifyTargets()
	e := newPromoteEnv(t, settings, released())
	sent := installNotices(e.TestWorkflowEnvironment, nil)
	e.OnGetVersion(ChangeNotify, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	e.vote(time.Minute, ApproveUpdate, Vote{Stage: "qa", Actor: "bob"}, "")
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice", To: "qa"})
	if err := e.GetWorkflowResult(nil); err != nil {
		t.Fatal(err)
	}
	if len(sent.sent) != 0 {
		t.Errorf("sent %+v", sent.sent)
	}
}

func TestNotifyVerificationFailureAndRollback(t *testing.T) {
	settings := verifiedStages()
	settings.Stages[1].OnFailure = platform.OnFailureRollback
	settings.Notify = notifyTargets()
	e := newPromoteEnv(t, settings, released())
	sent := installNotices(e.TestWorkflowEnvironment, nil)
	e.olderRelease("v1.0.0", "sha-old")
	e.stageRan("qa", "v1.0.0")
	(&fakeRuns{fail: map[string]string{"report": "task totals failed: AssertionError"}}).install(e)
	e.ExecuteWorkflow(Promote, PromoteInput{Project: "demo", Version: "v1.2.0", Actor: "alice"})
	if err := e.GetWorkflowResult(nil); err == nil {
		t.Fatal("the promotion did not fail")
	}
	vf := sent.of(platform.EventVerificationFailed, "qa")
	if len(vf) != 1 || vf[0].target != "team" || vf[0].event.Reason != "task totals failed: AssertionError" ||
		!strings.Contains(vf[0].event.Summary, "verification of v1.2.0 on qa failed: report on qa failed") {
		t.Fatalf("verification_failed = %+v", vf)
	}
	// Each event is its own Notify workflow: the two deliveries may reach
	// the receiver in either order.
	rb := sent.of(platform.EventRollback, "qa")
	var phases []string
	byPhase := map[string]activities.NotifyEvent{}
	for _, r := range rb {
		phases = append(phases, r.event.Phase)
		byPhase[r.event.Phase] = r.event
		if r.target != "leads" || r.event.Version != "v1.0.0" || !strings.Contains(r.event.Reason, "AssertionError") {
			t.Errorf("rollback event %+v to %s", r.event, r.target)
		}
	}
	slices.Sort(phases)
	if strings.Join(phases, ",") != "finished,started" {
		t.Fatalf("rollback phases = %v, want started and finished once each", phases)
	}
	if started, finished := byPhase["started"], byPhase["finished"]; finished.Time.Before(started.Time) ||
		!strings.Contains(finished.Summary, "rolled back automatically qa of demo to v1.0.0") {
		t.Errorf("started %+v, finished %+v", started, finished)
	}
}

func TestNotifyDeploymentParked(t *testing.T) {
	e := newDeployEnv(t)
	sent := installNotices(e.TestWorkflowEnvironment, nil)
	e.settings.Notify = notifyTargets()
	e.okResolve()
	e.okBuilds()
	e.okUpload()
	calls := 0
	e.onJobs(func(in activities.UpsertJobInput) (activities.UpsertJobOutput, error) {
		if calls++; calls == 1 {
			return activities.UpsertJobOutput{}, errors.New("fabric dev refused the token (403 PERMISSION_DENIED)")
		}
		return activities.UpsertJobOutput{ID: "42", Action: "created"}, nil
	})
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(ResumeUpdate, "1", &testsuite.TestUpdateCallback{OnReject: func(err error) { t.Fatal(err) }, OnAccept: func() {}, OnComplete: func(any, error) {}},
			ControlRequest{Actor: "alice"})
	}, time.Hour)
	e.ExecuteWorkflow(Deploy, DeployInput{Project: "demo", Version: "v1.0.0", Actor: "bob"})
	if s := e.result(); s.Status != StatusSucceeded {
		t.Fatalf("status %s", s.Status)
	}
	parked := sent.of(platform.EventParked, "")
	if len(parked) != 1 || parked[0].target != "team" || parked[0].event.Actor != "bob" || !strings.Contains(parked[0].event.Reason, "403 PERMISSION_DENIED") ||
		!strings.Contains(parked[0].event.Summary, "shipline resume "+deployID) || parked[0].event.URL != "" {
		t.Fatalf("parked = %+v", parked)
	}
}

// The Notify workflow with the real activity against real HTTP receivers.

type flakyReceiver struct {
	*httptest.Server
	mu         sync.Mutex
	answers    []int // in turn; the last one repeats
	deliveries []string
}

func newFlakyReceiver(t *testing.T, answers ...int) *flakyReceiver {
	r := &flakyReceiver{answers: answers}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.deliveries = append(r.deliveries, req.Header.Get(activities.DeliveryHeader))
		code := r.answers[0]
		if len(r.answers) > 1 {
			r.answers = r.answers[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Close)
	return r
}

func runNotify(t *testing.T, r *flakyReceiver) NotifyOutcome {
	t.Setenv("TEST_NOTIFY_URL", r.URL+"/services/T0/B0/token")
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Notify, workflow.RegisterOptions{Name: NotifyWorkflow})
	env.RegisterActivity(&activities.Notifier{Platform: &platform.Config{Notifications: []platform.Notification{
		{Name: "team", Kind: platform.NotifySlack, URLEnv: "TEST_NOTIFY_URL", Events: []string{platform.EventPromoted}}}}})
	ev := activities.NotifyEvent{Event: platform.EventPromoted, Project: "demo", Version: "v1.2.0", Summary: "promoted v1.2.0 of demo to prod", ID: "notify/promote/demo/v1.2.0/abcd1234/3"}
	// Each delivery's activity is named after its target, so that `status`
	// can say which receiver a retrying delivery waits for.
	var ids []string
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		ids = append(ids, info.ActivityID)
	})
	env.ExecuteWorkflow(Notify, NotifyInput{Event: ev, Targets: []string{"team"}})
	defer func() {
		if len(ids) == 0 || slices.ContainsFunc(ids, func(id string) bool { return id != NotifyActivityID("team") }) {
			t.Errorf("delivery activity IDs %v, want each %q", ids, NotifyActivityID("team"))
		}
	}()
	var out NotifyOutcome
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatalf("Notify failed: %v", err)
	}
	// `shipline status` reads what happened.
	v, err := env.QueryWorkflow(StateQuery)
	var p Progress
	if err == nil {
		err = v.Get(&p)
	}
	if err != nil || !strings.HasPrefix(p.Summary, "promoted delivered to ") || (p.Status == StatusSucceeded) != (len(out.Failed) == 0) {
		t.Errorf("state %+v (%v) for outcome %+v", p, err, out)
	}
	return out
}

func TestNotifyRetriesUntilDelivered(t *testing.T) {
	r := newFlakyReceiver(t, 500, 503, 200)
	out := runNotify(t, r)
	if !slices.Equal(out.Delivered, []string{"team"}) || len(out.Failed) != 0 {
		t.Fatalf("outcome = %+v", out)
	}
	if len(r.deliveries) != 3 {
		t.Fatalf("%d posts, want 3 (500, 503, then 200)", len(r.deliveries))
	}
	for _, d := range r.deliveries {
		if d != "notify/promote/demo/v1.2.0/abcd1234/3/team" {
			t.Errorf("delivery ID %q changes between retries", d)
		}
	}
}

func TestNotifyRefusedIsNotRetried(t *testing.T) {
	r := newFlakyReceiver(t, 404)
	out := runNotify(t, r)
	if len(out.Delivered) != 0 || !strings.Contains(out.Failed["team"], "404 Not Found") || len(r.deliveries) != 1 {
		t.Fatalf("outcome = %+v after %d posts", out, len(r.deliveries))
	}
}

func TestNotifyGivesUpOnReceiverThatStaysDown(t *testing.T) {
	r := newFlakyReceiver(t, 503)
	out := runNotify(t, r)
	if len(out.Delivered) != 0 || !strings.Contains(out.Failed["team"], "503") || len(r.deliveries) < 5 {
		t.Fatalf("outcome = %+v after %d posts", out, len(r.deliveries))
	}
}

// A run that continues as new while a gate waits keeps the schedule: the next
// reminder is the next multiple of remind_every from the opening, and an
// escalation whose time passed (sent by the run before) is not sent again.
func TestNotifyGatePlanAfterContinueAsNew(t *testing.T) {
	opened := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	plan := func(after time.Duration) string {
		var out []string
		for _, d := range gatePlan(notifyTargets(), "demo", "prod", opened, opened.Add(after)) {
			out = append(out, d.event+" "+d.target+" +"+d.at.Sub(opened).String())
		}
		return strings.Join(out, "; ")
	}
	for after, want := range map[time.Duration]string{
		0:              "reminder team +4h0m0s; escalation leads +24h0m0s",
		9 * time.Hour:  "reminder team +12h0m0s; escalation leads +24h0m0s",
		24 * time.Hour: "reminder team +28h0m0s",
		25 * time.Hour: "reminder team +28h0m0s",
		4 * time.Hour:  "reminder team +8h0m0s; escalation leads +24h0m0s",
	} {
		if got := plan(after); got != want {
			t.Errorf("seen %s after the opening: %s, want %s", after, got, want)
		}
	}
	scoped := notifyTargets()
	scoped.Targets[0].Stages = []string{"qa"}
	if got := gatePlan(scoped, "demo", "prod", opened, opened); len(got) != 0 {
		t.Errorf("a target of qa only has a plan at prod: %+v", got)
	}
}

// A state keeps the latest MaxNotices notices, oldest dropped first.
func TestKeepNotice(t *testing.T) {
	var list []Notice
	for i := range MaxNotices + 3 {
		list = keepNotice(list, Notice{ID: strconv.Itoa(i)})
	}
	if len(list) != MaxNotices || list[0].ID != "3" || list[MaxNotices-1].ID != strconv.Itoa(MaxNotices+2) {
		t.Errorf("kept %d notices, first %s, last %s", len(list), list[0].ID, list[len(list)-1].ID)
	}
}
