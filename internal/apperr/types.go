package apperr

import "slices"

// Stable type names of Shipline's failures: the Type of the application errors
// that activities and workflows end with. Histories, the audit and scripts
// match on these strings; never change a value. Every name has a Class in
// classes below (TestEveryTypeHasAClass keeps it so).
const (
	// AccessDenied: the actor may not do this (internal/access).
	AccessDenied = "AccessDenied"
	// SignatureRefused: the request's signature is missing, invalid or replayed.
	SignatureRefused = "SignatureRefused"
	// CarriedStateRefused: a workflow was started directly with the state that
	// only continue-as-new may carry.
	CarriedStateRefused = "CarriedStateRefused"
	// InvalidInput: the request itself is wrong (bad version, missing field, a
	// project without repo, a bad path).
	InvalidInput = "InvalidInput"
	// InvalidManifest: shipline.yaml at the release's commit is invalid.
	InvalidManifest = "InvalidManifest"
	// UnknownProject: the project is not registered in platform.yaml.
	UnknownProject = "UnknownProject"
	// UnknownRelease: the version has no release tag.
	UnknownRelease = "UnknownRelease"
	// UnknownJob: a --job names no job of the manifest.
	UnknownJob = "UnknownJob"
	// SelectiveJobsDisabled: --job was given but the project does not allow it.
	SelectiveJobsDisabled = "SelectiveJobsDisabled"
	// FabricMismatch: the --fabric or stage fabrics cannot run the selected jobs.
	FabricMismatch = "FabricMismatch"
	// NotReleased: a promotion of a version that is not (or no longer) released.
	NotReleased = "NotReleased"
	// NoDeployer: nobody among the approvers (or the requester) may deploy to the stage.
	NoDeployer = "NoDeployer"
	// NotAdopted: the version's tag was pushed by hand and no project admin has
	// adopted it with `shipline release VERSION`: it is not a release yet.
	NotAdopted = "NotAdopted"
	// UpdateRefused: a workflow refused an update sent on a user's behalf.
	UpdateRefused = "UpdateRefused"
	// ArtifactMismatch: a promotion built other bytes than the release shipped before.
	ArtifactMismatch = "ArtifactMismatch"
	// InvalidName: a project, version, pipeline or file name cannot be used in a path.
	InvalidName = "InvalidName"

	// UnknownRef: the ref or commit does not exist on the remote.
	UnknownRef = "UnknownRef"
	// TagConflict: the release tag exists on another commit.
	TagConflict = "TagConflict"
	// TestsFailed: the pipeline's tests failed.
	TestsFailed = "TestsFailed"
	// BuildFailed: the build tool or the manifest's build command failed.
	BuildFailed = "BuildFailed"
	// ArtifactNotFound: the build produced no artifact where expected.
	ArtifactNotFound = "ArtifactNotFound"
	// ArtifactAmbiguous: the build produced more than one candidate artifact.
	ArtifactAmbiguous = "ArtifactAmbiguous"
	// InvalidDefinition: a job definition does not render or is not valid for its scheduler.
	InvalidDefinition = "InvalidDefinition"

	// GitAuthFailed: the git remote refused the credentials, or none are configured.
	GitAuthFailed = "GitAuthFailed"
	// BuildToolMissing: a tool the build needs is not installed on the worker.
	BuildToolMissing = "BuildToolMissing"
	// PythonUnavailable: no Python on the worker to check Airflow DAGs.
	PythonUnavailable = "PythonUnavailable"
	// FabricConfig: the fabric's platform.yaml entry is incomplete or wrong.
	FabricConfig = "FabricConfig"
	// FabricAuth: the fabric refused the credentials, or none are configured.
	FabricAuth = "FabricAuth"
	// FabricRejected: the fabric refused a request (a 4xx other than auth).
	FabricRejected = "FabricRejected"
	// ArtifactConflict: other bytes already sit at an artifact's immutable path.
	ArtifactConflict = "ArtifactConflict"
	// ArtifactMissing: a built artifact is gone from the worker's build cache.
	ArtifactMissing = "ArtifactMissing"
	// ArtifactCorrupt: a built artifact in the build cache does not match its checksum.
	ArtifactCorrupt = "ArtifactCorrupt"
	// DuplicateJobs: the fabric holds more than one job with a job's Shipline tags.
	DuplicateJobs = "DuplicateJobs"
	// UnsafePath: a path to delete lies outside the fabric's artifact root.
	UnsafePath = "UnsafePath"
	// FabricUnavailable: the fabric did not answer or answered 5xx/429 (transient).
	FabricUnavailable = "FabricUnavailable"
	// DagNotParsed: Airflow has not parsed a written DAG yet (transient).
	DagNotParsed = "DagNotParsed"
	// DagIDOwned: another project's (or job's) DAG on the fabric has the dag_id.
	DagIDOwned = "DagIDOwned"

	// DependencyNotPublished: a pipeline depends on a version of a library of
	// the project that its package index does not hold (and the release does
	// not publish).
	DependencyNotPublished = "DependencyNotPublished"
	// VersionAlreadyPublished: a package index already holds the library
	// version with other bytes; published versions are immutable, so bump the
	// version.
	VersionAlreadyPublished = "VersionAlreadyPublished"
	// IndexConfig: a package index's platform.yaml entry is incomplete or wrong.
	IndexConfig = "IndexConfig"
	// IndexAuth: a package index refused the credentials, or none are configured.
	IndexAuth = "IndexAuth"
	// IndexRejected: a package index refused an upload (a 4xx other than auth).
	IndexRejected = "IndexRejected"
	// IndexUnavailable: a package index did not answer or answered 5xx/429 (transient).
	IndexUnavailable = "IndexUnavailable"

	// ActiveRun: a job has a run in progress and its fabric's active_runs
	// says fail (a deployment), or its artifacts would be removed under it (a
	// release's deletion).
	ActiveRun = "ActiveRun"
	// ActiveRunTimeout: a job's active run did not end within the fabric's
	// active_runs_timeout; resume waits again.
	ActiveRunTimeout = "ActiveRunTimeout"
	// NotDeployed: the job to run is not deployed on the fabric by Shipline
	// (or another version than the one asked for runs there).
	NotDeployed = "NotDeployed"
	// RunsUnsupported: the fabric's kind cannot run jobs.
	RunsUnsupported = "RunsUnsupported"
	// RunFailed: a run of a job ended without success on its fabric (a task
	// failed, it timed out or was cancelled there).
	RunFailed = "RunFailed"
	// VerificationFailed: a run of a stage's verify jobs failed or timed out;
	// the stage is not verified and the promotion stops there.
	VerificationFailed = "VerificationFailed"

	// NotificationConfig: a notification target cannot be posted to as
	// configured (its URL variable is unset, not a URL, or the target is gone).
	NotificationConfig = "NotificationConfig"
	// NotificationRefused: a notification's receiver answered a 4xx other
	// than 408/429 (a wrong or revoked URL, a bad signature).
	NotificationRefused = "NotificationRefused"
	// NotificationUnavailable: a notification's receiver did not answer or
	// answered 5xx/408/429 (transient: retried).
	NotificationUnavailable = "NotificationUnavailable"

	// Cancelled: a user cancelled the work.
	Cancelled = "Cancelled"
	// Superseded: a deployment of a newer version to the same fabric made the
	// work pointless (a promotion whose stage deployment was superseded).
	Superseded = "Superseded"
	// PlanChanged: a promotion's deployment, once it held its fabrics, found
	// that the stage's plan is no longer the one approved (another deployment
	// landed while it queued, a job changed by hand); it wrote nothing, and
	// the gate reopens with the new plan.
	PlanChanged = "PlanChanged"
)

// Class says what a failure of a type means for the work that hit it.
type Class string

const (
	// Refused: the request is wrong or not allowed. The workflow ends at once,
	// nothing was changed; fix the request (or ask someone who may).
	Refused Class = "refused"
	// Parks: something outside Shipline needs fixing (credentials, a fabric, a
	// tool on the worker, a remote that stayed down). A deployment parks with
	// the reason; `resume` after the fix runs the step again.
	Parks Class = "parks"
	// Fails: the release as it is cannot succeed (tests fail, the tag is on
	// another commit, a definition is invalid): resume cannot help; fix,
	// commit and release a new version.
	Fails Class = "fails"
	// Stopped: a person ended the work on purpose, or newer work made it
	// pointless; not a failure.
	Stopped Class = "stopped"
)

// classes holds the class of every type name above.
var classes = map[string]Class{
	AccessDenied:          Refused,
	SignatureRefused:      Refused,
	CarriedStateRefused:   Refused,
	InvalidInput:          Refused,
	InvalidManifest:       Refused,
	UnknownProject:        Refused,
	UnknownRelease:        Refused,
	UnknownJob:            Refused,
	SelectiveJobsDisabled: Refused,
	FabricMismatch:        Refused,
	NotReleased:           Refused,
	NoDeployer:            Refused,
	NotAdopted:            Refused,
	UpdateRefused:         Refused,
	ArtifactMismatch:      Refused,
	InvalidName:           Refused,
	ActiveRun:             Refused,
	NotDeployed:           Refused,
	RunsUnsupported:       Refused,
	PlanChanged:           Refused,

	UnknownRef:         Fails,
	TagConflict:        Fails,
	TestsFailed:        Fails,
	BuildFailed:        Fails,
	ArtifactNotFound:   Fails,
	ArtifactAmbiguous:  Fails,
	InvalidDefinition:  Fails,
	RunFailed:          Fails,
	VerificationFailed: Fails,

	VersionAlreadyPublished: Fails,
	DependencyNotPublished:  Refused,

	GitAuthFailed:     Parks,
	BuildToolMissing:  Parks,
	PythonUnavailable: Parks,
	FabricConfig:      Parks,
	FabricAuth:        Parks,
	FabricRejected:    Parks,
	ArtifactConflict:  Parks,
	ArtifactMissing:   Parks,
	ArtifactCorrupt:   Parks,
	DuplicateJobs:     Parks,
	UnsafePath:        Parks,
	FabricUnavailable: Parks,
	DagNotParsed:      Parks,
	DagIDOwned:        Parks,
	ActiveRunTimeout:  Parks,
	IndexConfig:       Parks,
	IndexAuth:         Parks,
	IndexRejected:     Parks,
	IndexUnavailable:  Parks,

	NotificationConfig:      Parks,
	NotificationRefused:     Parks,
	NotificationUnavailable: Parks,

	Cancelled:  Stopped,
	Superseded: Stopped,
}

// transient are the types Temporal retries (with the activity's retry policy)
// before the workflow sees them; every other type is non-retryable.
var transient = map[string]bool{FabricUnavailable: true, DagNotParsed: true, IndexUnavailable: true, NotificationUnavailable: true}

// ClassOf returns the class of a type name. A failure without a known type (a
// timeout, retries that ran out, an error from outside Shipline) parks: it is
// taken for a transient problem that outlasted its retries.
func ClassOf(typ string) Class {
	if c, ok := classes[typ]; ok {
		return c
	}
	return Parks
}

// Classify returns the class of err's application error type (see ClassOf).
func Classify(err error) Class { return ClassOf(Type(err)) }

// Known reports whether typ is one of Shipline's type names.
func Known(typ string) bool {
	_, ok := classes[typ]
	return ok
}

// Transient reports whether Temporal retries failures of this type.
func Transient(typ string) bool { return transient[typ] }

// Types returns every type name, sorted.
func Types() []string {
	out := make([]string, 0, len(classes))
	for t := range classes {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
