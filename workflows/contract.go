// Package workflows holds Shipline's deterministic workflow code. This file is
// the contract shared with the worker, the CLI and the Temporal UI: the task
// queue, workflow/query names, search attributes, workflow-ID builders and the
// input/output structs. Every other file refers to these identifiers; no string
// literal names appear elsewhere.
package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
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
)

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
	StepTag       = "tag and push"
	StepDeploy    = "deploy"
)

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

	// Carried is set only by continue-as-new: the state so far.
	Carried *ReleaseState `json:"carried,omitempty"`
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
	TagCreated bool       `json:"tag_created"`
	CreatedAt  time.Time  `json:"created_at,omitempty"`
	Deploy     DeployPlan `json:"deploy,omitempty"`
	// Refusal holds the reason a request was refused or failed, as the user saw it.
	Refusal string `json:"refusal,omitempty"`
}

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
	// Shipline is true when the tag message carries TagTrailer.
	Shipline bool `json:"shipline"`
}

// ListReleasesOutput lists the remote's release tags, newest version first.
type ListReleasesOutput struct {
	Tags []RemoteTag `json:"tags"`
}
