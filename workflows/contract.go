// Package workflows holds Shipline's deterministic workflow code. This file is
// the contract shared with the worker, the CLI and the Temporal UI: the task
// queue, workflow/query names, search attributes, workflow-ID builders and the
// input/output structs. Every other file refers to these identifiers; no string
// literal names appear elsewhere.
package workflows

import (
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/msgauth"
	"github.com/shipline/shipline/internal/signing"
)

// Change IDs of workflow.GetVersion markers: each names a change to workflow
// code made while workflows of the previous shape may still be open.
const (
	// ChangeBatchedJobs: Deploy upserts a fabric's jobs in one activity instead of one per job.
	ChangeBatchedJobs = "batched-job-upserts"
	// ChangeSignedRequests: workflows read the signing policy and verify requests.
	ChangeSignedRequests = "signed-requests"
	// ChangeRebuildMissingArtifacts: Deploy rebuilds a pipeline whose artifact is
	// gone from the build cache (upload failed with ArtifactMissing) and uploads
	// again once, instead of parking.
	ChangeRebuildMissingArtifacts = "rebuild-missing-artifacts"
	// ChangeRefusalClasses: Deploy refuses every resolve failure of class refused
	// (internal/apperr) instead of six listed types, and parks on the rest.
	ChangeRefusalClasses = "refusal-classes"
	// ChangeReleaseRecordCheck: a Deploy started by hand (and a Promote of a
	// version no Release recorded) asks whether a Release recorded the version's
	// tag; a tag pushed by hand is refused until an admin adopts it.
	ChangeReleaseRecordCheck = "release-record-check"
	// ChangeParkReleasesFabric: a parked Deploy releases its fabric locks (and
	// joins the queue again on resume), its git steps honour the project's
	// git_retry, cancel stops a running step, and a promotion is told when its
	// stage's deployment parks.
	ChangeParkReleasesFabric = "park-releases-fabric"
	// ChangeSupersede: a Fabric entity keeps parked deployments apart from its
	// queue and supersedes a queued (or parked) deployment of an older version
	// by a newer one.
	ChangeSupersede = "fabric-supersede"
	// ChangeInternalAuth: messages between Shipline's workflows (enqueue, grant,
	// deployment-done, deployed, link, refusal) are sealed by the sender and
	// verified by the receiver (internal/msgauth); an unsealed or forged one
	// changes nothing and is recorded in the project's audit.
	ChangeInternalAuth = "internal-auth"
	// ChangeCarriedStateCheck: a run believes its carried input only when it was
	// continued as new (see carriedStateAllowed); a direct start is refused.
	ChangeCarriedStateCheck = "carried-state-check"
	// ChangeCheckJobs: Deploy renders and checks every job for every target
	// fabric (step check) before the upload and schedule steps write anything.
	ChangeCheckJobs = "check-jobs-first"
	// ChangeProjectReplayClaims: a signed request's ID is claimed in the
	// project's Audit entity before the request acts (once per project, across
	// workflow IDs and runs), and refusals of updates happen in their handlers,
	// recorded in history and in the audit.
	ChangeProjectReplayClaims = "project-replay-claims"
	// ChangeSealedClaims: the Audit entity answers a claim-request only when
	// Shipline sealed it (internal/msgauth); an unsealed or forged claim claims
	// nothing and is recorded as an attempt.
	ChangeSealedClaims = "sealed-claims"
	// ChangeReleaseBuildsFirst: Release builds and tests every pipeline at the
	// commit (step build and test) before it pushes the tag; a release whose
	// tests fail is never tagged. The artifacts stay in the build cache, where
	// the deployment that follows finds them.
	ChangeReleaseBuildsFirst = "release-builds-first"
	// ChangeActiveRuns: before Deploy's schedule step replaces jobs it reads
	// their active runs and waits for, refuses or cancels them (the fabric's
	// active_runs); Release's delete refuses while a run uses the release.
	ChangeActiveRuns = "active-runs"
	// ChangeVersionBaseline: a Deploy or Fabric run records this one marker for
	// every change above (baselineChanges in versions.go) instead of one marker
	// and one search-attribute upsert per change.
	ChangeVersionBaseline = "version-baseline-1"
	// ChangeStageVerify: Promote runs a stage's verify jobs after its
	// deployment (and records the stage verified on the release), counts soak
	// from the verified time, and continues into following auto stages.
	ChangeStageVerify = "stage-verify"
	// ChangeFirstStageVerify: a Promote whose release reached the first stage
	// before it (the release's auto_deploy) and was not verified there runs
	// that stage's verification first and records it verified.
	ChangeFirstStageVerify = "first-stage-verify"
	// ChangeWindows: a Deploy (not started by a promotion) and each stage of
	// a Promote read the stage's change windows and freezes before deploying,
	// and wait while it is closed unless an allowed override was given
	// (windows.go).
	ChangeWindows = "change-windows"
	// ChangeGatePlan: a Promote computes the plan of a gated stage when its
	// gate opens, binds approvals to the plan's hash, and recomputes the plan
	// before the stage's deployment starts: a changed plan reopens the gate
	// (promote_plan.go).
	ChangeGatePlan = "gate-plan"
	// ChangeReleaseLibraries: a Release of a project with libraries builds
	// and tests them with its pipelines, checks the pipelines' pinned
	// dependencies on them, and publishes them to their package indexes
	// (step publish libraries) before it pushes the tag.
	ChangeReleaseLibraries = "release-libraries"
	// ChangeWindowRecheckPace: a RecheckWindowSignal that arrives within
	// windowRecheckPace of the last read of the windows waits for the pace
	// before the next read (windows.go).
	ChangeWindowRecheckPace = "window-recheck-pace"
	// ChangeNotify: Promote and Deploy post notifications of their events
	// (child Notify workflows) and time a gate's reminders and escalations.
	ChangeNotify = "notify"
	// ChangePlanAtLock: a Promote passes the approved plan's hash to the
	// stage's deployment (DeployInput.PlanHash) and reopens the gate when the
	// deployment ends with PlanChanged; a Deploy given a plan hash recomputes
	// the stage's plan once it holds its fabrics, before it writes anything
	// (deploy_plan.go).
	ChangePlanAtLock = "plan-at-lock"
	// ChangeNotifyTargetIDs: a Notify names each delivery's activity after its
	// target (NotifyActivityID), so `status` can say which receiver a retrying
	// delivery waits for.
	ChangeNotifyTargetIDs = "notify-target-ids"
)

// DefaultTaskQueue is used when platform.yaml names none.
const DefaultTaskQueue = "shipline"

// Workflow type names.
const (
	// ReleaseWorkflow is the long-lived entity of one release (ID ReleaseID).
	ReleaseWorkflow = "Release"
	// ListReleasesWorkflow lists the release tags found on a project's remote (ID ListReleasesID).
	ListReleasesWorkflow = "ListReleases"
)

// Query names.
const (
	// StateQuery returns the workflow's current state (ReleaseState for Release).
	// Every state embeds Progress so `shipline status` can show any workflow.
	StateQuery = "state"
)

// Search attributes registered in the namespace and set by the workflows.
var (
	ProjectKey = temporal.NewSearchAttributeKeyKeyword("ShiplineProject")
	VersionKey = temporal.NewSearchAttributeKeyKeyword("ShiplineVersion")
	ActorKey   = temporal.NewSearchAttributeKeyKeyword("ShiplineActor")
	FabricKey  = temporal.NewSearchAttributeKeyKeywordList("ShiplineFabric")
)

// Memo fields set by the Release workflow, read by `shipline releases`.
const (
	MemoCommit    = "commit"
	MemoCreatedBy = "created_by"
	MemoCreatedAt = "created_at"
	MemoStatus    = "status"
	MemoReason    = "reason"
	MemoLinked    = "linked"
	MemoStages    = "stages"
	MemoFabrics   = "fabrics"
	MemoAdopted   = "adopted"
)

// MemoWindowOverride is set (a WindowWait with its Override) when a Deploy or
// Promote enters a closed stage by override; `shipline audit` shows it.
const MemoWindowOverride = "window_override"

// ReleaseID is the workflow ID of a release entity: release/<project>/<version>.
func ReleaseID(project, version string) string { return "release/" + project + "/" + version }

// ListReleasesID is the workflow ID of one listing of a project's remote tags.
func ListReleasesID(project, requestID string) string {
	return "releases/" + project + "/" + requestID
}

// ParseReleaseID splits a release workflow ID; ok is false for other IDs.
func ParseReleaseID(id string) (project, version string, ok bool) {
	rest, found := strings.CutPrefix(id, "release/")
	if !found {
		return "", "", false
	}
	project, version, ok = strings.Cut(rest, "/")
	return project, version, ok && project != "" && version != ""
}

// TagTrailer is written into every release tag's message so a tag created by
// Shipline is recognized as such when listed from the remote.
const TagTrailer = "Shipline-Release: "

// Status is the coarse state of any Shipline workflow.
type Status string

const (
	StatusRunning  Status = "running"  // working through its steps
	StatusReleased Status = "released" // Release: tag on the remote; the entity stays open as the record
	StatusRefused  Status = "refused"  // an access rule or invalid input refused the request
	StatusFailed   Status = "failed"   // a step failed permanently
)

// StepStatus is the state of one step.
type StepStatus string

const (
	StepPending StepStatus = "pending"
	StepRunning StepStatus = "running"
	StepDone    StepStatus = "done"
	StepSkipped StepStatus = "skipped"
	StepFailed  StepStatus = "failed"
)

// Step is one named step of a workflow, as `shipline status` shows it.
type Step struct {
	Name     string     `json:"name"`
	Status   StepStatus `json:"status"`
	Detail   string     `json:"detail,omitempty"`
	Started  time.Time  `json:"started,omitempty"`
	Finished time.Time  `json:"finished,omitempty"`
}

// Progress is embedded in every workflow state.
type Progress struct {
	Status Status `json:"status"`
	// Summary is one human sentence: what the workflow is doing or how it ended.
	Summary string `json:"summary"`
	Steps   []Step `json:"steps"`
}

// Release steps, in order.
const (
	StepAuthorize = "authorize"
	StepResolve   = "resolve ref"
	StepValidate  = "validate manifest"
	// StepBuildTest builds and tests every pipeline before the tag is pushed.
	StepBuildTest = "build and test"
	StepTag       = "tag and push"
	StepDeploy    = "deploy"
)

// StepPublishLibraries, between build and test and tag and push, checks the
// pipelines' dependencies on the project's libraries and publishes the
// libraries (only in a release of a project that has libraries).
const StepPublishLibraries = "publish libraries"

// ReleaseInput starts a Release. It is plain JSON so the Temporal UI can start one:
//
//	{"project":"demo","version":"v1.0.0","actor":"alice","ref":"main"}
type ReleaseInput struct {
	Project string `json:"project"`
	Version string `json:"version"`
	// Actor is the user on whose behalf the release is made; must be a project admin.
	Actor string `json:"actor"`
	// Ref to release: branch, tag or commit; default "main".
	Ref string `json:"ref,omitempty"`
	// Message of the annotated tag; a default names the version and actor.
	Message string `json:"message,omitempty"`
	// NoDeploy releases without deploying (Prophecy's two-step mode), even with auto_deploy.
	NoDeploy bool `json:"no_deploy,omitempty"`
	// Auth signs the request (see internal/signing); required with require_signatures.
	Auth *signing.Auth `json:"auth,omitempty"`

	// Carried is set only by continue-as-new: the state so far, and the signing
	// policy (so updates are checked from the first moment of the new run).
	// A direct start that carries them is refused (CarriedStateRefused).
	Carried       *ReleaseState   `json:"carried,omitempty"`
	CarriedPolicy *signing.Policy `json:"carried_policy,omitempty"`
}

// DeployPlan says whether a release deploys.
type DeployPlan string

const (
	DeployDue          DeployPlan = "due"                          // auto_deploy: a deploy follows the release
	DeploySkipped      DeployPlan = "skipped (--no-deploy)"        // requested without deploy
	DeployNotAutomatic DeployPlan = "skipped (auto_deploy: false)" // the project deploys separately
)

// ReleaseState is the record of one release, answered by StateQuery.
type ReleaseState struct {
	Progress
	Project string `json:"project"`
	Version string `json:"version"`
	Ref     string `json:"ref"`
	Commit  string `json:"commit,omitempty"`
	Message string `json:"message,omitempty"`
	// Actor requested the release and is the tagger.
	Actor string `json:"actor"`
	// TagCreated is false when the tag already existed on the remote at the same commit.
	TagCreated bool `json:"tag_created"`
	// Adopted is true when the release adopted a tag pushed by hand (no --ref:
	// the version's tag was already on the remote).
	Adopted   bool       `json:"adopted,omitempty"`
	CreatedAt time.Time  `json:"created_at,omitempty"`
	Deploy    DeployPlan `json:"deploy,omitempty"`
	// DeployID is the auto_deploy deployment's workflow ID.
	DeployID string `json:"deploy_id,omitempty"`
	// Refusal holds the reason a request was refused or failed, as the user saw it.
	Refusal string `json:"refusal,omitempty"`
	// Builds are the pipelines built and tested before the tag was pushed
	// (step build and test), by name; `shipline logs` reads their logs.
	Builds map[string]PipelineBuild `json:"builds,omitempty"`
	// Libraries are the libraries the release published to their package
	// indexes before the tag (step publish libraries), by library name.
	Libraries map[string]PublishedLibrary `json:"libraries,omitempty"`

	// Admins are the project's admins when it was released (who may delete it).
	Admins []string `json:"admins,omitempty"`
	// Fabrics the release was deployed to, with its latest deployment there.
	Fabrics map[string]FabricReach `json:"fabrics,omitempty"`
	// Stages reached through promotion (the first stage included once deployed).
	Stages []string `json:"stages,omitempty"`
	// Verified maps each stage that verified the release to when it did.
	Verified map[string]time.Time `json:"verified,omitempty"`
	// Linked: the release reached a stage after the first and can no longer be deleted.
	Linked bool `json:"linked"`
	// Artifacts are the checksums of its first deployment (pipeline → sha256):
	// every later deployment of this release must ship the same bytes.
	Artifacts map[string]string `json:"artifacts,omitempty"`
	// Deleted records what deleting the release did.
	Deleted *DeleteResult `json:"deleted,omitempty"`
	// Requests are the IDs of signed requests accepted (replays are refused).
	Requests []string `json:"requests,omitempty"`
	// Parked says why the release waits for `resume` (its remote stayed unreachable).
	Parked *Parked `json:"parked,omitempty"`
	// Nonces of internal messages accepted (a copy sent again is refused).
	Nonces []string `json:"nonces,omitempty"`
}

// PublishedLibrary is one library a release published.
type PublishedLibrary = activities.PublishedLibrary

// ListReleasesInput asks for the release tags on a project's remote.
type ListReleasesInput struct {
	Project string `json:"project"`
	Actor   string `json:"actor,omitempty"`
}

// RemoteTag is one release tag found on a remote.
type RemoteTag struct {
	Version string    `json:"version"`
	Commit  string    `json:"commit"`
	Creator string    `json:"creator"`
	Created time.Time `json:"created"`
	// Shipline is true when the tag message ends with Shipline's trailer block (IsShiplineTag).
	Shipline bool `json:"shipline"`
}

// ListReleasesOutput lists the remote's release tags, newest version first.
type ListReleasesOutput struct {
	Tags []RemoteTag `json:"tags"`
}

// ---- Deploy --------------------------------------------------------------

// Deploy-related workflow type names.
const (
	// DeployWorkflow is one deployment of one release (ID DeployID).
	DeployWorkflow = "Deploy"
	// FabricWorkflow is the entity of one (project, fabric): its deploy queue,
	// what runs there now and its deployment history (ID FabricID).
	FabricWorkflow = "Fabric"
	// PlanWorkflow computes what a deploy would do, changing nothing.
	PlanWorkflow = "Plan"
	// InspectWorkflow reads live jobs from fabrics to report drift.
	InspectWorkflow = "Inspect"
	// ReadLogsWorkflow returns a deployment's build logs from the shared store.
	ReadLogsWorkflow = "ReadLogs"
	// CheckWorkflow renders, checks and plans the jobs of an unreleased tree
	// (`shipline check` without --platform), changing nothing.
	CheckWorkflow = "Check"
)

// Update and signal names.
const (
	// ResumeUpdate retries a parked deployment from its failed step.
	ResumeUpdate = "resume"
	// CancelUpdate cancels a parked or queued deployment.
	CancelUpdate = "cancel"
	// AcceptUpdate answers (Acceptance) once a Release, Deploy or Promote has
	// accepted or refused the request that started it; the CLI sends it with
	// the start (update-with-start), so refusals are reported at once.
	AcceptUpdate = "accepted"
	// EnqueueSignal asks a Fabric entity for its deploy lock (payload QueueEntry).
	EnqueueSignal = "enqueue"
	// GrantSignal tells a Deploy where it stands in a fabric's queue (payload Grant).
	GrantSignal = "grant"
	// DoneSignal tells a Fabric entity a deployment is over, or parked (Outcome
	// StatusParked): release its lock and record the result.
	DoneSignal = "deployment-done"
	// StageParkedSignal tells a Promote workflow its stage's deployment parked
	// or went on after a resume (payload StageDeployment).
	StageParkedSignal = "stage-deployment"
	// RecheckWindowSignal wakes a Deploy or Promote waiting for a change
	// window to read the windows again (after platform.yaml changed); no payload.
	RecheckWindowSignal = "recheck-window"
)

// DeployID is the workflow ID of one deployment: deploy/<project>/<version>/<request>.
func DeployID(project, version, request string) string {
	return "deploy/" + project + "/" + version + "/" + request
}

// FabricID is the workflow ID of a (project, fabric) entity.
func FabricID(project, fabric string) string { return "fabric/" + project + "/" + fabric }

// Deployment statuses (in addition to StatusRunning and StatusFailed/StatusRefused).
const (
	StatusQueued    Status = "queued"    // waiting for another deployment to the same fabric
	StatusParked    Status = "parked"    // a step failed permanently; waiting for resume or cancel
	StatusSucceeded Status = "succeeded" // everything is deployed
	StatusCancelled Status = "cancelled" // cancelled by a user
	// StatusSuperseded: a deployment of a newer version to the same fabric was
	// queued behind it or succeeded since it queued; it ended without changing
	// anything more. A named outcome, not a failure.
	StatusSuperseded Status = "superseded"
)

// Deploy steps, in order.
const (
	StepResolveRelease = "resolve"
	StepAccess         = "authorize"
	StepLock           = "queue"
	StepBuild          = "build"
	StepCheck          = "check"
	StepUpload         = "upload"
	StepSchedule       = "schedule"
	StepRecord         = "record"
)

// DeployInput starts a Deploy. Plain JSON, so the Temporal UI can start one:
//
//	{"project":"demo","version":"v1.0.0","actor":"bob"}
type DeployInput struct {
	Project string `json:"project"`
	Version string `json:"version"`
	Actor   string `json:"actor"`
	// Fabric overrides the fabric of every job (Prophecy's "Override Fabric").
	Fabric string `json:"fabric,omitempty"`
	// Jobs deploys only these jobs (the project must allow selective_jobs).
	Jobs []string `json:"jobs,omitempty"`
	// Trigger says who started it: "cli", "release" (auto_deploy), "promote" or "" (UI).
	Trigger string `json:"trigger,omitempty"`
	// Stage deploys to a promotion stage's fabrics: each job goes to every one of
	// Fabrics that can run it (set by Promote).
	Stage   string   `json:"stage,omitempty"`
	Fabrics []string `json:"fabrics,omitempty"`
	// Expect pins the artifacts' bytes (pipeline → sha256): a build or cache hit
	// with other bytes fails the deployment instead of shipping them.
	Expect map[string]string `json:"expect,omitempty"`
	// Auth signs the request; a deployment started by a Release or Promote
	// workflow of the same release needs none.
	Auth *signing.Auth `json:"auth,omitempty"`
	// OverrideWindow deploys even while a target stage is closed (owner team only; signed, audited).
	OverrideWindow *WindowOverride `json:"override_window,omitempty"`
	// PlanHash is the hash of the stage's plan its approvers approved (set by
	// Promote for a gated stage): once the deployment holds its fabrics it
	// recomputes the plan and, when it differs, ends with PlanChanged before
	// writing anything.
	PlanHash string `json:"plan_hash,omitempty"`
}

// PipelineBuild is the build state of one pipeline in a deployment.
type PipelineBuild struct {
	Pipeline string     `json:"pipeline"`
	Status   StepStatus `json:"status"`
	Cached   bool       `json:"cached"`
	File     string     `json:"file,omitempty"`
	SHA256   string     `json:"sha256,omitempty"`
	Size     int64      `json:"size,omitempty"`
	Seconds  float64    `json:"seconds,omitempty"`
	// LogPath is the build log's key in the workers' shared store
	// (logs/builds/<key>.log; `shipline logs` reads it); deployments recorded
	// before the store hold a path under a worker's state_dir.
	LogPath string `json:"log_path,omitempty"`
	LogTail string `json:"log_tail,omitempty"`
	Error   string `json:"error,omitempty"`
	// Failure is the failure type of a failed build (BuildFailed, TestsFailed, …).
	Failure string `json:"failure,omitempty"`
	// Library is true for the build of a library (shipline.yaml's
	// libraries:); Object is then its artifact's key in the workers' shared
	// store, which the library is published from.
	Library bool   `json:"library,omitempty"`
	Object  string `json:"object,omitempty"`
}

// JobRecord is one job deployed to one fabric.
type JobRecord struct {
	Fabric       string            `json:"fabric"`
	Job          string            `json:"job"`
	Scheduler    string            `json:"scheduler"`
	ID           string            `json:"id,omitempty"` // Databricks job ID or file path
	Action       string            `json:"action,omitempty"`
	Version      string            `json:"version"`
	Commit       string            `json:"commit"`
	DeploymentID string            `json:"deployment_id"`
	Actor        string            `json:"actor"`
	At           time.Time         `json:"at"`
	Artifacts    map[string]string `json:"artifacts,omitempty"` // pipeline → path on the fabric
}

// Waiting says which deployment holds a fabric a queued deploy waits for.
type Waiting struct {
	Fabric string   `json:"fabric"`
	Holder string   `json:"holder"`          // deployment ID holding the fabric
	Ahead  []string `json:"ahead,omitempty"` // deployments ahead, holder first
}

// RunsWait says which active run a deployment waits for, and until when.
type RunsWait struct {
	Fabric string    `json:"fabric"`
	Job    string    `json:"job"`
	RunID  string    `json:"run_id"`
	URL    string    `json:"url,omitempty"`
	Policy string    `json:"policy"` // the fabric's active_runs: wait or cancel
	Since  time.Time `json:"since"`  // when the deployment began to wait
	Until  time.Time `json:"until"`  // when it parks if the run has not ended
}

// CancelledRun is a run a deployment cancelled before it replaced its job.
type CancelledRun struct {
	Fabric string    `json:"fabric"`
	Job    string    `json:"job"`
	RunID  string    `json:"run_id"`
	URL    string    `json:"url,omitempty"`
	At     time.Time `json:"at"`
}

// Parked says why a deployment stopped and how to go on.
type Parked struct {
	Step   string    `json:"step"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// Resume is the command that goes on from Step (`shipline resume ID`).
	Resume string `json:"resume,omitempty"`
}

// DeployState is a deployment's state, answered by StateQuery.
type DeployState struct {
	Progress
	DeploymentID string                   `json:"deployment_id"`
	Project      string                   `json:"project"`
	Version      string                   `json:"version"`
	Actor        string                   `json:"actor"`
	Commit       string                   `json:"commit,omitempty"`
	Fabrics      []string                 `json:"fabrics,omitempty"`
	Builds       map[string]PipelineBuild `json:"builds,omitempty"`
	Jobs         []JobRecord              `json:"jobs,omitempty"`
	Waiting      *Waiting                 `json:"waiting,omitempty"`
	// Runs is set while the deployment, holding its fabrics, waits for a
	// job's active run to end before it replaces the job.
	Runs *RunsWait `json:"runs,omitempty"`
	// CancelledRuns are the runs the deployment cancelled (active_runs: cancel).
	CancelledRuns []CancelledRun `json:"cancelled_runs,omitempty"`
	Parked        *Parked        `json:"parked,omitempty"`
	// Superseded names the newer deployment that superseded it: set when it
	// ended superseded, or while parked once a newer version succeeded on one
	// of its fabrics (resume is then refused).
	Superseded *Supersession `json:"superseded,omitempty"`
	// PlanChanged is set when the deployment ended with PlanChanged: the plan
	// it found once it held its fabrics (deploy_plan.go).
	PlanChanged *PlanAtLock `json:"plan_changed,omitempty"`
	Reason      string      `json:"reason,omitempty"` // why it failed or was cancelled
	// Window says which stage's change window the deployment waits for (or overrode).
	Window *WindowWait `json:"window,omitempty"`
	// Notices are the latest events sent to notification targets (parked).
	Notices  []Notice  `json:"notices,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitempty"`
}

// Acceptance is the result of AcceptUpdate.
type Acceptance struct {
	// Accepted: the request passed the workflow's authorize step.
	Accepted bool `json:"accepted"`
	// Status is the workflow's status when it decided (refused, failed, parked, ...).
	Status Status `json:"status"`
	// Step is the step that refused or parked the request.
	Step string `json:"step,omitempty"`
	// Reason says why the request was not accepted, as the user reads it.
	Reason string `json:"reason,omitempty"`
}

// ControlRequest is the input of ResumeUpdate and CancelUpdate.
type ControlRequest struct {
	Actor  string        `json:"actor"`
	Reason string        `json:"reason,omitempty"`
	Auth   *signing.Auth `json:"auth,omitempty"`
}

// FabricInput starts (or continues) a Fabric entity. Carried is set only by
// continue-as-new; a direct start's is dropped (and audited).
type FabricInput struct {
	Project string       `json:"project"`
	Fabric  string       `json:"fabric"`
	Carried *FabricState `json:"carried,omitempty"`
}

// QueueEntry is one deployment in a fabric's queue; the first holds the lock.
type QueueEntry struct {
	DeploymentID string    `json:"deployment_id"`
	Version      string    `json:"version"`
	Actor        string    `json:"actor"`
	Since        time.Time `json:"since"`
	// Jobs the deployment deploys to this fabric (a newer version supersedes
	// it only when it deploys them all). Empty from deployments of before.
	Jobs []string `json:"jobs,omitempty"`
	// Queued is when the deployment first joined this fabric's queue (Since
	// is the latest join, after a resume); zero from deployments of before.
	Queued time.Time `json:"queued,omitempty"`
	// Granted: the entry holds the lock (set by the entity).
	Granted bool `json:"granted,omitempty"`
	// Sealed authenticates the message as sent by a Shipline workflow (internal_msg.go).
	Sealed
}

// Grant is the payload of GrantSignal: the lock is held (Granted), or the
// deployment waits behind Ahead (the holder first), or it is Superseded.
type Grant struct {
	Fabric  string   `json:"fabric"`
	Granted bool     `json:"granted"`
	Ahead   []string `json:"ahead,omitempty"`
	// Superseded: a newer version supersedes the deployment on this fabric.
	// A queued deployment has left the queue and ends as superseded; a parked
	// one can no longer be resumed (cancel still ends it).
	Superseded *Supersession `json:"superseded,omitempty"`
	// Sealed authenticates the message as sent by a Shipline workflow (internal_msg.go).
	Sealed
}

// Supersession names the deployment of a newer version that supersedes another.
type Supersession struct {
	By      string `json:"by"`      // deployment ID
	Version string `json:"version"` // its version
	// Succeeded: it already succeeded on the fabric (else it is queued there).
	Succeeded bool   `json:"succeeded"`
	Reason    string `json:"reason"` // one sentence for the user
}

// ParkedDeployment is a deployment parked after it joined a fabric's queue:
// it holds no lock; the jobs it changed before it parked run its version.
type ParkedDeployment struct {
	DeploymentID string    `json:"deployment_id"`
	Version      string    `json:"version"`
	Actor        string    `json:"actor"`
	Step         string    `json:"step"`
	Reason       string    `json:"reason"`
	Since        time.Time `json:"since"`
	Queued       time.Time `json:"queued"`
	// Jobs it deploys to this fabric; LeftBehind the ones it changed already.
	Jobs       []string `json:"jobs,omitempty"`
	LeftBehind []string `json:"left_behind,omitempty"`
	// Superseded is set once a newer version succeeded here: resume is refused.
	Superseded *Supersession `json:"superseded,omitempty"`
}

// DeploymentDone is the payload of DoneSignal.
type DeploymentDone struct {
	DeploymentID string `json:"deployment_id"`
	Version      string `json:"version"`
	Actor        string `json:"actor"`
	Outcome      Status `json:"outcome"`
	Reason       string `json:"reason,omitempty"`
	// Step is where a parked deployment stopped (Outcome StatusParked).
	Step     string      `json:"step,omitempty"`
	Started  time.Time   `json:"started"`
	Finished time.Time   `json:"finished"`
	Jobs     []JobRecord `json:"jobs,omitempty"` // jobs changed on this fabric, even by a failed deployment
	// Removed lists jobs removed from the fabric (a deleted release with no predecessor).
	Removed []string `json:"removed,omitempty"`
	// Sealed authenticates the message as sent by a Shipline workflow (internal_msg.go).
	Sealed
}

// FabricState is a Fabric entity's state, answered by StateQuery.
type FabricState struct {
	Project string               `json:"project"`
	Fabric  string               `json:"fabric"`
	Queue   []QueueEntry         `json:"queue"`
	Jobs    map[string]JobRecord `json:"jobs"`    // job name → what runs there now
	History []DeploymentDone     `json:"history"` // newest last, bounded
	// Parked deployments hold no lock; `resume` queues them again.
	Parked []ParkedDeployment `json:"parked,omitempty"`
	// Nonces of internal messages accepted (a copy sent again is refused).
	Nonces []string `json:"nonces,omitempty"`
}

// MaxFabricHistory bounds the deployments a Fabric entity remembers.
const MaxFabricHistory = 500

// PlanInput asks what a deploy would do; same selection as DeployInput.
type PlanInput = DeployInput

// PlannedBuild is what a deploy would do for one pipeline.
type PlannedBuild struct {
	Pipeline string `json:"pipeline"`
	Action   string `json:"action"` // build or cached
	Key      string `json:"key"`
	File     string `json:"file,omitempty"`
}

// PlanOutput is what a deploy would build, upload, create, update or leave unchanged.
type PlanOutput struct {
	Project string                     `json:"project"`
	Version string                     `json:"version"`
	Commit  string                     `json:"commit"`
	Builds  []PlannedBuild             `json:"builds"`
	Uploads []activities.PlannedUpload `json:"uploads"`
	Jobs    []activities.PlannedJob    `json:"jobs"`
	Refused string                     `json:"refused,omitempty"`
}

// InspectInput lists recorded jobs to compare with the live fabrics.
type InspectInput struct {
	Jobs []activities.DeployedJob `json:"jobs"`
}

// InspectOutput reports drift per job.
type InspectOutput = activities.InspectJobsOutput

// ReadLogsInput names a deployment whose logs to read.
type ReadLogsInput = activities.ReadLogsInput

// ReadLogsOutput holds the logs.
type ReadLogsOutput = activities.ReadLogsOutput

// CheckInput is an unreleased tree's project files, the provisional version
// and the artifacts the CLI built, for `shipline check` to render and plan
// its jobs with the worker's platform.yaml and fabric credentials.
type CheckInput = activities.CheckTreeInput

// CheckOutput is the render and plan of every job (and the manifest's
// findings against the worker's platform.yaml).
type CheckOutput = activities.CheckTreeOutput

// Actions named in signed requests (signing.Request.Action).
const (
	ActionRelease = "release"
	ActionDeploy  = "deploy"
	ActionPromote = "promote"
	ActionApprove = "approve"
	ActionReject  = "reject"
	ActionDelete  = "delete"
	ActionResume  = "resume"
	ActionCancel  = "cancel"
)

// ActionStart names, in the audit, a workflow start refused before it did
// anything (a direct start carrying continue-as-new state).
const ActionStart = "start"

// ---- Promote, link and delete -----------------------------------------------

const (
	// PromoteWorkflow walks a release through promotion.stages (ID PromoteID).
	PromoteWorkflow = "Promote"
	// VerifyWorkflow reruns a stage's verification of a release on demand (ID
	// VerifyID; input PromoteInput with Reverify set) and records the result.
	VerifyWorkflow = "Verify"
	// RollbackWorkflow redeploys a stage's previous verified release (ID
	// RollbackID; input PromoteInput with Rollback set) and holds the stage.
	RollbackWorkflow = "Rollback"
	// AuditWorkflow is a project's entity that records refused attempts that left
	// no trace elsewhere (an update refused by a validator), ID AuditID.
	AuditWorkflow = "Audit"
)

// Promotion messages.
const (
	// ApproveUpdate and RejectUpdate vote on the stage that waits for approval (input Vote).
	ApproveUpdate = "approve"
	RejectUpdate  = "reject"
	// PendingQuery explains in one sentence why a promotion is pending.
	PendingQuery = "pending"
	// LinkUpdate asks a Release entity to mark the release linked before it is
	// deployed to a stage after the first (input LinkRequest). Refused once deleted.
	LinkUpdate = "link"
	// VerifiedUpdate records on a Release entity that a stage verified the
	// release (input VerifiedRequest; only Shipline's workflows send it).
	VerifiedUpdate = "verified"
	// DeleteUpdate deletes a release (input DeleteRequest). Refused once linked.
	DeleteUpdate = "delete"
	// DeployedSignal tells a Release entity a deployment of it succeeded (payload Deployed).
	DeployedSignal = "deployed"
	// ClaimRequestUpdate claims a signed request's ID in a project's Audit
	// entity (payload RequestClaim, result ClaimResult): the first claim of an
	// ID is accepted, every later one is answered as a replay.
	ClaimRequestUpdate = "claim-request"
	// RefusalSignal records a refused attempt in the project's Audit entity (payload Refusal).
	RefusalSignal = "refusal"
)

// PromoteID is the workflow ID of a release's promotion: promote/<project>/<version>.
func PromoteID(project, version string) string { return "promote/" + project + "/" + version }

// AuditID is the workflow ID of a project's audit entity: audit/<project>.
func AuditID(project string) string { return "audit/" + project }

// Promotion statuses.
const (
	StatusWaiting    Status = "waiting"     // a gate waits for approvals or a soak timer
	StatusPromoted   Status = "promoted"    // every stage up to the target is deployed
	StatusRolledBack Status = "rolled back" // a rollback redeployed its stage's previous verified release
	StatusRejected   Status = "rejected"    // a reviewer rejected a stage
	StatusExpired    Status = "expired"     // a gate's approval timed out; `promote` again reopens it
	StatusDeleted    Status = "deleted"     // Release: the release was deleted
)

// PromoteInput starts a promotion:
//
//	{"project":"demo","version":"v1.2.0","actor":"alice","to":"prod"}
type PromoteInput struct {
	Project string `json:"project"`
	Version string `json:"version"`
	// Actor requested the promotion (with self_approval: false they may not approve).
	Actor string `json:"actor"`
	// To stops after this stage; default: the last stage.
	To string `json:"to,omitempty"`
	// Auth signs the request.
	Auth *signing.Auth `json:"auth,omitempty"`
	// OverrideWindow enters closed stages anyway, where the actor is in the owner team (signed, audited).
	OverrideWindow *WindowOverride `json:"override_window,omitempty"`
	// Reverify makes the promotion a rerun of one stage's verification of
	// Version (which must run there): `shipline verify`.
	Reverify string `json:"reverify,omitempty"`
	// Rollback makes the promotion a rollback of one stage to Version, which
	// the stage must have verified before (Version empty: the release the
	// stage verified before the one it runs now).
	Rollback *RollbackRequest `json:"rollback,omitempty"`
	// Carried is set only by continue-as-new, with the stage settings the
	// promotion started with (a promotion keeps its rules until it ends).
	// A direct start that carries them is refused (CarriedStateRefused).
	Carried         *PromoteState                 `json:"carried,omitempty"`
	CarriedSettings *activities.PromotionSettings `json:"carried_settings,omitempty"`
	CarriedPolicy   *signing.Policy               `json:"carried_policy,omitempty"`
}

// Vote is the input of ApproveUpdate and RejectUpdate, and a recorded vote.
type Vote struct {
	Stage   string        `json:"stage"`
	Actor   string        `json:"actor"`
	Comment string        `json:"comment,omitempty"`
	At      time.Time     `json:"at,omitempty"`
	Auth    *signing.Auth `json:"auth,omitempty"`
	// OverrideWindow, with an approval, lets the stage deploy while closed (owner team only).
	OverrideWindow *WindowOverride `json:"override_window,omitempty"`

	// PlanHash is the hash of the stage's plan the voter approved (signed
	// with the vote): an approval of another plan than the gate's is refused.
	PlanHash string `json:"plan_hash,omitempty"`
	// Delegate, on a recorded vote, names the delegate that signed it on
	// Actor's behalf ("carol via web"); the workflow sets it from Auth.
	Delegate string `json:"delegate,omitempty"`
}

// StageStatus is where a stage of a promotion stands.
type StageStatus string

const (
	StagePending   StageStatus = "pending"
	StageReached   StageStatus = "reached"   // deployed before this promotion (e.g. by auto_deploy)
	StageApproval  StageStatus = "approval"  // waiting for approvals
	StageSoaking   StageStatus = "soaking"   // waiting for the soak time
	StageClosed    StageStatus = "closed"    // waiting for the stage's change window (Window says until when)
	StageDeploying StageStatus = "deploying" // the stage's deployment runs
	// StageParked: the stage's deployment parked; it waits for
	// `shipline resume <DeploymentID>` or `shipline cancel <DeploymentID>` (see Parked).
	StageParked   StageStatus = "parked"
	StageDeployed StageStatus = "deployed"
	// StageVerifying: the stage's verify jobs run on its fabrics.
	StageVerifying StageStatus = "verifying"
	// StageVerified: deployed, and every verify run succeeded (or the stage has no verify).
	StageVerified StageStatus = "verified"
	// StageHeld: the stage holds after a rollback; the promotion waits until it is cleared.
	StageHeld StageStatus = "held"
	// StageRolledBack: a rollback redeployed the stage's previous verified release.
	StageRolledBack StageStatus = "rolled back"
	StageRejected   StageStatus = "rejected"
	StageExpired    StageStatus = "expired"
	StageRefused    StageStatus = "refused" // no approver may deploy to the stage's fabrics, or the release was deleted
	StageFailed     StageStatus = "failed"
)

// StageState is one stage of a promotion.
type StageState struct {
	Name     string      `json:"name"`
	Fabrics  []string    `json:"fabrics"`
	Status   StageStatus `json:"status"`
	Team     string      `json:"team,omitempty"`
	Required int         `json:"required,omitempty"`
	// Eligible lists the team members who may still approve.
	Eligible     []string      `json:"eligible,omitempty"`
	SelfApproval bool          `json:"self_approval"`
	Timeout      time.Duration `json:"timeout,omitempty"`
	Soak         time.Duration `json:"soak,omitempty"`
	Approvals    []Vote        `json:"approvals,omitempty"`
	Rejection    *Vote         `json:"rejection,omitempty"`
	OpenedAt     time.Time     `json:"opened_at,omitempty"`
	ExpiresAt    time.Time     `json:"expires_at,omitempty"`
	SoakUntil    time.Time     `json:"soak_until,omitempty"`
	DeploymentID string        `json:"deployment_id,omitempty"`
	DeployedBy   string        `json:"deployed_by,omitempty"`
	DeployedAt   time.Time     `json:"deployed_at,omitempty"`
	Detail       string        `json:"detail,omitempty"`
	// Parked says where and why the stage's deployment (DeploymentID) parked,
	// while Status is StageParked.
	Parked *Parked `json:"parked,omitempty"`
	// Verify is the stage's verification (nil: a deployment is verified).
	Verify *StageVerify `json:"verify,omitempty"`
	// Runs are the verification's runs, one per job and fabric, in order.
	Runs []VerifyRun `json:"runs,omitempty"`
	// VerifiedAt is when the stage counted as reached: every verify run
	// succeeded (the deployment's end for a stage without verify).
	VerifiedAt time.Time `json:"verified_at,omitempty"`
	// Window says until when the closed stage waits (or who overrode it);
	// Override is an approver's --override-window for the stage.
	Window   *WindowWait     `json:"window,omitempty"`
	Override *WindowOverride `json:"override,omitempty"`
	// Plan is what the stage's deployment will change, computed when its
	// gate opened (or reopened); approvals name its Hash. PlanError says why
	// it could not be computed. Reopened lists the times the plan changed
	// before the deployment started, each dropping the votes given.
	Plan      *StagePlan   `json:"plan,omitempty"`
	PlanError string       `json:"plan_error,omitempty"`
	PlannedAt time.Time    `json:"planned_at,omitempty"`
	Reopened  []GateReopen `json:"reopened,omitempty"`
}

// StageVerify is a stage's verification: jobs that must run successfully on
// each of its fabrics, with parameters, within a time limit.
type StageVerify struct {
	Jobs    []string          `json:"jobs"`
	Params  map[string]string `json:"params,omitempty"`
	Timeout time.Duration     `json:"timeout"`
}

// VerifyRun is one run of a verification: a job on a fabric, started as a
// child Run workflow (WorkflowID).
type VerifyRun struct {
	Job        string    `json:"job"`
	Fabric     string    `json:"fabric"`
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id,omitempty"` // the fabric's run
	URL        string    `json:"url,omitempty"`
	State      string    `json:"state,omitempty"` // pending, running, succeeded, failed, timed out
	Message    string    `json:"message,omitempty"`
	Started    time.Time `json:"started,omitempty"`
	Finished   time.Time `json:"finished,omitempty"`
}

// VerifiedRequest is the input of VerifiedUpdate: a stage verified a release.
type VerifiedRequest struct {
	Stage string    `json:"stage"`
	Actor string    `json:"actor"`
	At    time.Time `json:"at"`
	// By is the workflow that verified it (a promotion or a `verify`).
	By string `json:"by"`
	// Sealed authenticates the message as sent by a Shipline workflow (internal_msg.go).
	Sealed
}

// StageDeployment is the payload of StageParkedSignal: the state of a
// promotion's stage deployment (parked, or running again after resume).
type StageDeployment struct {
	Stage        string  `json:"stage"`
	DeploymentID string  `json:"deployment_id"`
	Parked       *Parked `json:"parked,omitempty"` // nil: running again
	// Sealed authenticates the message as sent by a Shipline workflow (internal_msg.go).
	Sealed
}

// PromoteState is a promotion's state, answered by StateQuery.
type PromoteState struct {
	Progress
	Project  string       `json:"project"`
	Version  string       `json:"version"`
	Actor    string       `json:"actor"`
	Releaser string       `json:"releaser,omitempty"`
	Target   string       `json:"target"`
	Stages   []StageState `json:"stages"`
	// Pending explains why the promotion waits (empty when it does not).
	Pending string `json:"pending,omitempty"`
	// Artifacts pins the bytes every stage deploys: pipeline → sha256.
	Artifacts map[string]string `json:"artifacts,omitempty"`
	// Requests are the IDs of signed requests accepted (replays are refused).
	Requests []string `json:"requests,omitempty"`
	// Nonces of internal messages accepted (a copy sent again is refused).
	Nonces []string `json:"nonces,omitempty"`
	// Notices are the latest events sent to notification targets (approval
	// needed, reminders, escalations, verification failed, rollback, promoted).
	Notices []Notice `json:"notices,omitempty"`
}

// LinkRequest is the input of LinkUpdate.
type LinkRequest struct {
	Stage       string `json:"stage"`
	PromotionID string `json:"promotion_id"`
	Actor       string `json:"actor"`
	// Sealed authenticates the message as sent by a Shipline workflow (internal_msg.go).
	Sealed
}

// DeleteRequest is the input of DeleteUpdate.
type DeleteRequest struct {
	Actor string        `json:"actor"`
	Auth  *signing.Auth `json:"auth,omitempty"`
}

// DeleteResult says what deleting a release did.
type DeleteResult struct {
	TagDeleted bool     `json:"tag_deleted"`
	Artifacts  int      `json:"artifacts_removed"`
	Reverted   []string `json:"reverted,omitempty"` // fabric/job → previous version
	Removed    []string `json:"removed,omitempty"`  // fabric/job removed (no previous release)
}

// Deployed is the payload of DeployedSignal.
type Deployed struct {
	DeploymentID string            `json:"deployment_id"`
	Stage        string            `json:"stage,omitempty"` // set for a promotion's deployment
	Fabrics      []string          `json:"fabrics"`
	Actor        string            `json:"actor"`
	At           time.Time         `json:"at"`
	Artifacts    map[string]string `json:"artifacts"` // pipeline → sha256
	Jobs         []JobRecord       `json:"jobs,omitempty"`
	// Sealed authenticates the message as sent by a Shipline workflow (internal_msg.go).
	Sealed
}

// FabricReach records a release's latest deployment to a fabric.
type FabricReach struct {
	DeploymentID string    `json:"deployment_id"`
	Actor        string    `json:"actor"`
	At           time.Time `json:"at"`
}

// Refusal is the payload of RefusalSignal: an attempt refused before it was recorded anywhere else.
type Refusal struct {
	Actor   string    `json:"actor"`
	Action  string    `json:"action"` // approve, reject, delete, resume, cancel, promote
	Target  string    `json:"target"` // the workflow ID the request was for
	Version string    `json:"version,omitempty"`
	Stage   string    `json:"stage,omitempty"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
	// Sealed authenticates the message as sent by a Shipline workflow (internal_msg.go).
	Sealed
	// Unauthenticated marks the Audit entity's own record of an audit signal
	// that was not sent by Shipline (its claimed content is not trusted).
	Unauthenticated bool `json:"unauthenticated,omitempty"`
	// Via says how the attempt arrived, as far as the workflow can tell: with
	// a valid signature (as the CLI sends it), unsigned, or with a signature
	// that does not verify (set by the workflow that refused it).
	Via string `json:"via,omitempty"`
	// Dropped, on the audit's own summary record, counts the refusals of
	// Actor in the window starting At that the flood cap
	// (MaxRefusalsPerActor per RefusalWindow) did not keep.
	Dropped int `json:"dropped,omitempty"`
}

// AuditInput starts a project's Audit entity. Carried is set only by
// continue-as-new; a direct start's is dropped (and audited).
type AuditInput struct {
	Project string    `json:"project"`
	Carried []Refusal `json:"carried,omitempty"`
	// CarriedClaims are the request IDs still fresh when the previous run
	// continued as new.
	CarriedClaims []ClaimedRequest `json:"carried_claims,omitempty"`
}

// RequestClaim asks a project's Audit entity to claim a signed request's ID
// before the request acts.
type RequestClaim struct {
	RequestID string `json:"request_id"`
	// Time is when the request was signed: the ID is kept until the signature
	// is too old to be accepted anywhere (signing.MaxAge).
	Time time.Time `json:"time"`
	// Target, Action and Actor say where the request was used (for the audit).
	Target string `json:"target"`
	Action string `json:"action"`
	Actor  string `json:"actor"`
	// Sealed authenticates the message as sent by a Shipline workflow (internal_msg.go).
	Sealed
}

// ClaimResult answers a RequestClaim.
type ClaimResult struct {
	Accepted bool `json:"accepted"`
	// FirstUse says where the ID was claimed first, when it was refused.
	FirstUse string `json:"first_use,omitempty"`
}

// ClaimedRequest is a request ID an Audit entity keeps while it is fresh.
type ClaimedRequest struct {
	RequestID string    `json:"request_id"`
	Target    string    `json:"target"`
	Action    string    `json:"action"`
	Until     time.Time `json:"until"`
	// Nonce is the claim's seal nonce: a copy of the claim is refused.
	Nonce string `json:"nonce,omitempty"`
}

// ---- Project entity: read-only commands ------------------------------------

// ProjectWorkflow is a project's read-only entity (ID ProjectID). `releases
// --refresh`, `plan`, `deployments` (drift) and `logs` send it an Update that
// runs the read's activities and returns their result, instead of starting a
// workflow per call: the namespace's workflow list keeps one row per project
// for all reads. The CLI starts it on demand with update-with-start.
const ProjectWorkflow = "Project"

// Updates of the Project entity. Each runs the same code as the workflow of the
// same read (ListReleases, Plan, Inspect, ReadLogs) and returns the same output.
// They are read-only: no signature is needed and anyone in the namespace may
// send them, as with those workflows.
const (
	// ListReleasesUpdate lists the release tags on the project's remote (ListReleasesInput → ListReleasesOutput).
	ListReleasesUpdate = "list-releases"
	// PlanUpdate says what a deploy would do (PlanInput → PlanOutput).
	PlanUpdate = "plan"
	// InspectUpdate compares recorded jobs with the live fabrics (InspectInput → InspectOutput).
	InspectUpdate = "inspect"
	// ReadLogsUpdate returns build logs from the shared store (ReadLogsInput → ReadLogsOutput).
	ReadLogsUpdate = "read-logs"
	// CheckUpdate renders, checks and plans the jobs of the tree `shipline
	// check` sends, with the worker's platform.yaml (CheckInput → CheckOutput).
	CheckUpdate = "check"
)

// ProjectID is the workflow ID of a project's read-only entity: project/<project>.
func ProjectID(project string) string { return "project/" + project }

// ProjectInput starts (or continues) a Project entity: {"project":"demo"}.
type ProjectInput struct {
	Project string `json:"project"`
	// Answered counts the reads answered by earlier runs (set by continue-as-new).
	Answered int `json:"answered,omitempty"`
}

// ProjectState is a Project entity's state, answered by StateQuery.
type ProjectState struct {
	Progress
	Project string `json:"project"`
	// Answered counts the reads answered since the entity started.
	Answered int `json:"answered"`
	// InFlight counts the reads being answered now.
	InFlight int `json:"in_flight"`
}

// Sealed is embedded in every message one Shipline workflow sends another: its
// seal authenticates the message as sent by Shipline (see internal_msg.go).
type Sealed struct {
	Seal *msgauth.Seal `json:"seal,omitempty"`
}

func (s *Sealed) sealOf() *msgauth.Seal   { return s.Seal }
func (s *Sealed) setSeal(x *msgauth.Seal) { s.Seal = x }

// ---- Runs --------------------------------------------------------------------

const (
	// RunWorkflow is one run of a deployed job on its fabric (ID RunID): it
	// starts the run once, follows it to its end and cancels it when the
	// workflow is cancelled.
	RunWorkflow = "Run"
	// ListRunsUpdate reads the run history of deployed jobs from their fabrics
	// (a read of the Project entity: ListRunsInput → ListRunsOutput).
	ListRunsUpdate = "list-runs"
)

// ActionRun names a run request in signed requests and the audit.
const ActionRun = "run"

// RunID is the workflow ID of one run: run/<project>/<fabric>/<job>/<request>.
func RunID(project, fabric, job, request string) string {
	return "run/" + project + "/" + fabric + "/" + job + "/" + request
}

// ParseRunID splits a run workflow ID; ok is false for other IDs.
func ParseRunID(id string) (project, fabric, job, request string, ok bool) {
	parts := strings.Split(id, "/")
	if len(parts) != 5 || parts[0] != "run" {
		return "", "", "", "", false
	}
	for _, p := range parts[1:] {
		if p == "" {
			return "", "", "", "", false
		}
	}
	return parts[1], parts[2], parts[3], parts[4], true
}

// Memo fields set by the Run workflow (read by `shipline runs` to say who
// triggered a run started through Shipline).
const (
	MemoRunID  = "run_id"
	MemoRunURL = "run_url"
)

// Run steps, in order.
const (
	StepRunResolve = "resolve"
	StepRunAccess  = "authorize"
	StepRunStart   = "start"
	StepRunWait    = "wait"
)

// RunInput starts a Run. Plain JSON, so the Temporal UI can start one:
//
//	{"project":"demo","fabric":"dev","job":"nightly","actor":"bob"}
type RunInput struct {
	Project string `json:"project"`
	Fabric  string `json:"fabric"`
	Job     string `json:"job"`
	// Actor asks for the run; running on a fabric needs the right to deploy there.
	Actor string `json:"actor"`
	// Params are the run's parameters (Databricks job parameters, Airflow conf,
	// --key=value arguments of a local entry point).
	Params map[string]string `json:"params,omitempty"`
	// Version, when set, is the version the job must run on the fabric: the run
	// is refused when another one is deployed there (stage verification).
	Version string `json:"version,omitempty"`
	// Trigger says who started it: "cli", "verify" (a promotion) or "" (UI).
	Trigger string `json:"trigger,omitempty"`
	// Auth signs the request; a run started by the project's Promote workflow needs none.
	Auth *signing.Auth `json:"auth,omitempty"`

	// Carried is set only by continue-as-new (a long run's history is kept
	// short): the state so far, with the started run's ID, which the next
	// run goes on reading. A direct start that carries it is refused
	// (CarriedStateRefused).
	Carried *RunOutcome `json:"carried,omitempty"`
}

// TaskState is one task of a run, as the fabric reports it.
type TaskState = fabric.TaskRun

// RunOutcome is a Run's state, answered by StateQuery, and its result. A Run
// whose remote run failed, timed out or was cancelled on the fabric fails
// with a RunFailed error carrying the RunOutcome as its details (RunOutcomeOf).
type RunOutcome struct {
	Progress
	Project string `json:"project"`
	Fabric  string `json:"fabric"`
	Job     string `json:"job"`
	Actor   string `json:"actor"`
	// Version and DeploymentID say what the fabric's entity records for the job.
	Version      string `json:"version,omitempty"`
	DeploymentID string `json:"deployment_id,omitempty"`
	// RunID and URL name the run on the fabric once started.
	RunID string `json:"run_id,omitempty"`
	URL   string `json:"url,omitempty"`
	// State and Result are the remote run's, as last read.
	State  fabric.RunState  `json:"state,omitempty"`
	Result fabric.RunResult `json:"result,omitempty"`
	// Message explains a failed run: the failing task and its error.
	Message  string      `json:"message,omitempty"`
	Tasks    []TaskState `json:"tasks,omitempty"`
	Started  time.Time   `json:"started"`
	Finished time.Time   `json:"finished,omitempty"`
	// Polls counts the reads of the run's state.
	Polls int `json:"polls,omitempty"`
}

// RunState is the name the state query answers with.
type RunState = RunOutcome

// ListRunsInput names the deployed jobs whose runs to read.
type ListRunsInput = activities.ListRunsInput

// ListRunsOutput holds the runs, newest first.
type ListRunsOutput = activities.ListRunsOutput

// ---- Stages: verified releases, rollbacks and holds ---------------------------

// StageWorkflow is the entity of one promotion stage of a project (ID
// StageID): the releases the stage verified, in order, the one it runs now,
// and its hold after a rollback.
const StageWorkflow = "Stage"

// Messages of the Stage entity.
const (
	// StageRecordUpdate records, on a Stage entity, that the stage verified a
	// release or was rolled back (input StageRecord; only Shipline's workflows send it).
	StageRecordUpdate = "stage-record"
	// ReleaseHoldUpdate clears a stage's hold (input ReleaseHoldRequest; signed;
	// members of the owner team of the stage's fabrics).
	ReleaseHoldUpdate = "release-hold"
)

// Actions of stages in signed requests and the audit.
const (
	ActionVerify    = "verify"
	ActionRollback  = "rollback"
	ActionClearHold = "release-hold"
)

// Kinds of StageRecord.
const (
	StageRecordVerified   = "verified"
	StageRecordRolledBack = "rolled-back"
)

// StageID is the workflow ID of a stage's entity: stage/<project>/<stage>.
func StageID(project, stage string) string { return "stage/" + project + "/" + stage }

// VerifyID is the workflow ID of an on-demand verification: verify/<project>/<stage>/<version>/<request>.
func VerifyID(project, stage, version, request string) string {
	return VerifyIDPrefix(project) + stage + "/" + version + "/" + request
}

// VerifyIDPrefix starts the IDs of a project's on-demand verifications.
func VerifyIDPrefix(project string) string { return "verify/" + project + "/" }

// RollbackID is the workflow ID of a rollback: rollback/<project>/<stage>/<request>.
func RollbackID(project, stage, request string) string {
	return "rollback/" + project + "/" + stage + "/" + request
}

// StageInput starts (or continues) a Stage entity: {"project":"demo","stage":"qa"}.
type StageInput struct {
	Project string `json:"project"`
	Stage   string `json:"stage"`
	// Carried is set only by continue-as-new.
	Carried       *StageLedger    `json:"carried,omitempty"`
	CarriedPolicy *signing.Policy `json:"carried_policy,omitempty"`
}

// StageLedger is a Stage entity's state, answered by StateQuery.
type StageLedger struct {
	Progress
	Project string `json:"project"`
	Stage   string `json:"stage"`
	// Current is the release the stage runs now (verified there or rolled back to).
	Current *StageRelease `json:"current,omitempty"`
	// Verified lists the releases the stage verified, oldest first (a release
	// verified again, or rolled back to, moves to the end; one rolled back
	// from leaves the list).
	Verified []StageRelease `json:"verified,omitempty"`
	// Hold is set after a rollback, until the owner team clears it.
	Hold *StageHold `json:"hold,omitempty"`
	// Requests are the IDs of signed requests accepted; Nonces of internal messages.
	Requests []string `json:"requests,omitempty"`
	Nonces   []string `json:"nonces,omitempty"`
}

// StageRelease is one release a stage verified (or was rolled back to).
type StageRelease struct {
	Version string    `json:"version"`
	At      time.Time `json:"at"`
	By      string    `json:"by"`
	// Via is the workflow that verified it or rolled back to it.
	Via string `json:"via,omitempty"`
}

// StageHold says why a stage holds: promotions of other releases into it
// wait until the owner team clears it.
type StageHold struct {
	Since time.Time `json:"since"`
	// Version the stage was rolled back to, from From.
	Version string `json:"version"`
	From    string `json:"from,omitempty"`
	By      string `json:"by"`
	Reason  string `json:"reason,omitempty"`
	// Emergency: the rollback skipped the approval gate; Automatic: a failed
	// verification rolled back (By is then "shipline").
	Emergency  bool   `json:"emergency,omitempty"`
	Automatic  bool   `json:"automatic,omitempty"`
	RollbackID string `json:"rollback_id,omitempty"`
}

// StageRecord is the input of StageRecordUpdate.
type StageRecord struct {
	Kind    string    `json:"kind"` // StageRecordVerified or StageRecordRolledBack
	Version string    `json:"version"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
	Via     string    `json:"via"`
	// Hold is the hold a rollback puts on the stage.
	Hold *StageHold `json:"hold,omitempty"`
	// Sealed authenticates the message as sent by a Shipline workflow (internal_msg.go).
	Sealed
}

// ReleaseHoldRequest is the input of ReleaseHoldUpdate.
type ReleaseHoldRequest struct {
	Actor string `json:"actor"`
	// Clear lifts the hold.
	Clear bool          `json:"clear"`
	Auth  *signing.Auth `json:"auth,omitempty"`
}

// RollbackRequest turns a Promote into a rollback of one stage to a release
// it verified before (PromoteInput.Rollback).
type RollbackRequest struct {
	Stage  string `json:"stage"`
	Reason string `json:"reason,omitempty"`
	// Emergency skips the stage's approval gate: members of the owner team of
	// the stage's fabrics only; recorded as such.
	Emergency bool `json:"emergency,omitempty"`
	// Automatic is set by a promotion whose verification failed on a stage
	// with on_failure: rollback; only a Promote may start one (as its child).
	Automatic bool `json:"automatic,omitempty"`
	// DeployAs is who deploys an automatic rollback (the failed stage's deployer).
	DeployAs string `json:"deploy_as,omitempty"`
	// From is the version the stage ran before the rollback (set by the workflow).
	From string `json:"from,omitempty"`
}

// ---- Notifications ------------------------------------------------------------

// NotifyWorkflow delivers one event to notification targets (ID NotifyID,
// input NotifyInput, result NotifyOutcome). It is started, and abandoned, by
// the workflow the event is about: a receiver that is down never holds it.
const NotifyWorkflow = "Notify"

// NotifyID is the workflow ID of one event's delivery: notify/<workflow ID>/<run>/<n>,
// n counting the events of that run. It is the event's ID too.
func NotifyID(workflowID, run string, n int) string {
	return "notify/" + workflowID + "/" + run + "/" + strconv.Itoa(n)
}

// NotifyInput is one event and the targets (platform.yaml notifications
// names) it goes to.
type NotifyInput struct {
	Event   activities.NotifyEvent `json:"event"`
	Targets []string               `json:"targets"`
}

// NotifyActivityID is the activity ID of a Notify's delivery to target.
func NotifyActivityID(target string) string { return "send:" + target }

// Notice is an event a workflow sent to notification targets. Its Notify
// workflow (ID) says whether they took it: `status` and the dashboard ask it
// (views.Notices).
type Notice struct {
	ID      string    `json:"id"`
	Event   string    `json:"event"`
	Stage   string    `json:"stage,omitempty"`
	Targets []string  `json:"targets"`
	At      time.Time `json:"at"`
}

// MaxNotices is how many of its latest notices a workflow's state keeps.
const MaxNotices = 20

// NotifyState is a Notify's state, answered by StateQuery: its progress and
// the outcome of the targets whose delivery ended.
type NotifyState struct {
	Progress
	Outcome NotifyOutcome `json:"outcome"`
}

// NotifyOutcome says which targets took the event and why the others did not.
type NotifyOutcome struct {
	Delivered []string          `json:"delivered,omitempty"`
	Failed    map[string]string `json:"failed,omitempty"`
}
