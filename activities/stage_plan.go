package activities

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/shipline/shipline/internal/apperr"
)

// A stage's plan is what its gate shows and its votes approve: what the
// stage's deployment will change on each of the stage's fabrics. Its hash
// binds a vote to it; a plan that changes before the deployment starts
// reopens the gate.
//
// The hash is the hex sha256 of the plan's canonical JSON: the compact
// encoding (Go's encoding/json: no spaces, fields in the order below,
// `<`, `>` and `&` escaped as \u003c, \u003e, \u0026) of
//
//	{"project":…,"version":…,"stage":…,"changes":[…],"artifacts":[…]}
//
// with changes sorted by fabric then job, artifacts by fabric then pipeline,
// each with all its fields (empty strings included), every string valid
// UTF-8 (an invalid byte, e.g. from a live value cut short, becomes U+FFFD,
// as the plan reads once stored as JSON: the hash of the stored plan is its
// hash). Anything that changes
// what the deployment does, or what it replaces, changes the hash: a job to
// create, update or leave, the version a job runs now (another deploy
// landed), a job changed by hand (drift against what Shipline recorded), a
// job added to the fabric, an artifact's path or checksum.

// Plan actions of a job.
const (
	PlanCreate = "create" // the job is not on the fabric: the deployment creates it
	PlanUpdate = "update" // the live job differs: the deployment resets it
	PlanLeave  = "leave"  // the deployment leaves the job as it is
)

// PlanChange is what a stage's deployment does to one job on one fabric.
type PlanChange struct {
	Fabric string `json:"fabric"`
	Job    string `json:"job"`
	// Action is create, update or leave.
	Action string `json:"action"`
	// From is the version the job runs now (the fabric's record, else the
	// live job's); To the version it runs after the deployment.
	From string `json:"from"`
	To   string `json:"to"`
	// Detail says why it updates (upgrade from v1.1.0, a drift), or why a
	// job is left (not in this release).
	Detail string `json:"detail"`
	// Drift is how the live job differs from what Shipline recorded
	// deploying there (a change by hand); empty when it does not.
	Drift string `json:"drift"`
}

// PlanArtifact is one artifact a stage's deployment puts on a fabric: the
// same bytes every stage ships (SHA256 pinned by the release's first
// deployment; empty when none is pinned yet).
type PlanArtifact struct {
	Fabric   string `json:"fabric"`
	Pipeline string `json:"pipeline"`
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
}

// StagePlan is a promotion stage's plan and its hash (see above).
type StagePlan struct {
	Project   string         `json:"project"`
	Version   string         `json:"version"`
	Stage     string         `json:"stage"`
	Changes   []PlanChange   `json:"changes"`
	Artifacts []PlanArtifact `json:"artifacts"`
	// Hash is the hex sha256 of the canonical JSON of the fields above.
	Hash string `json:"hash"`
}

// PlanStageInput asks for the plan of a stage's deployment, changing nothing.
type PlanStageInput struct {
	Project string `json:"project"`
	Version string `json:"version"`
	Stage   string `json:"stage"`
	Commit  string `json:"commit"`
	// Jobs are the release's jobs resolved onto the stage's fabrics (Resolve
	// with Stage), Files the cached artifact file names (as for PlanJobs).
	Jobs  []ResolvedJob     `json:"jobs"`
	Files map[string]string `json:"files,omitempty"`
	// Pins are the checksums the promotion pins: pipeline → sha256.
	Pins map[string]string `json:"pins,omitempty"`
	// Recorded are the jobs the stage's fabric entities record as deployed.
	Recorded []DeployedJob `json:"recorded,omitempty"`
}

// PlanStage computes a stage's plan: each job planned as `shipline plan`
// plans it (PlanJobs: rendered, compared with the live job), the recorded
// jobs inspected for drift (InspectJobs), and the artifacts with their
// checksums. It reads the fabrics and changes nothing.
func (d *Deploy) PlanStage(ctx context.Context, in PlanStageInput) (StagePlan, error) {
	plan, err := d.PlanJobs(ctx, PlanJobsInput{Project: in.Project, Version: in.Version, Commit: in.Commit, Jobs: in.Jobs, Files: in.Files})
	if err != nil {
		return StagePlan{}, err
	}
	drift, err := d.InspectJobs(ctx, InspectJobsInput{Jobs: in.Recorded})
	if err != nil {
		return StagePlan{}, err
	}
	recorded := map[string]DeployedJob{}
	for _, r := range in.Recorded {
		recorded[r.Fabric+"/"+r.Job] = r
	}
	drifts := map[string]string{}
	for _, j := range drift.Jobs {
		if j.Error != "" { // a fabric that cannot be read: retried, never a plan that hides it
			return StagePlan{}, apperr.ForTemporal(fmt.Errorf("read job %s on fabric %s: %s", j.Job, j.Fabric, j.Error))
		}
		switch {
		case !j.Exists:
			drifts[j.Fabric+"/"+j.Job] = "deleted from the fabric outside Shipline"
		case j.Drift:
			drifts[j.Fabric+"/"+j.Job] = j.Detail
		}
	}
	out := StagePlan{Project: in.Project, Version: in.Version, Stage: in.Stage, Changes: []PlanChange{}, Artifacts: []PlanArtifact{}}
	planned := map[string]bool{}
	for _, pj := range plan.Jobs {
		key := pj.Fabric + "/" + pj.Job
		planned[key] = true
		c := PlanChange{Fabric: pj.Fabric, Job: pj.Job, Action: pj.Action, From: recorded[key].Version, To: in.Version, Detail: pj.Detail, Drift: drifts[key]}
		if c.From == "" {
			c.From = pj.LiveVersion
		}
		if c.Action == "unchanged" {
			c.Action = PlanLeave
		}
		out.Changes = append(out.Changes, c)
	}
	for _, r := range in.Recorded {
		if key := r.Fabric + "/" + r.Job; !planned[key] {
			out.Changes = append(out.Changes, PlanChange{Fabric: r.Fabric, Job: r.Job, Action: PlanLeave, From: r.Version, To: r.Version,
				Detail: fmt.Sprintf("not in %s: keeps running %s", in.Version, r.Version), Drift: drifts[key]})
		}
	}
	for _, u := range plan.Uploads {
		out.Artifacts = append(out.Artifacts, PlanArtifact{Fabric: u.Fabric, Pipeline: u.Pipeline, Path: u.Path, SHA256: in.Pins[u.Pipeline]})
	}
	out.Hash, err = HashStagePlan(out)
	return out, err
}

// HashStagePlan sorts the plan's lists and returns its hash: the hex sha256
// of its canonical JSON (see the top of this file).
func HashStagePlan(p StagePlan) (string, error) {
	slices.SortFunc(p.Changes, func(a, b PlanChange) int { return cmp.Or(cmp.Compare(a.Fabric, b.Fabric), cmp.Compare(a.Job, b.Job)) })
	slices.SortFunc(p.Artifacts, func(a, b PlanArtifact) int {
		return cmp.Or(cmp.Compare(a.Fabric, b.Fabric), cmp.Compare(a.Pipeline, b.Pipeline))
	})
	canonical := struct {
		Project   string         `json:"project"`
		Version   string         `json:"version"`
		Stage     string         `json:"stage"`
		Changes   []PlanChange   `json:"changes"`
		Artifacts []PlanArtifact `json:"artifacts"`
	}{p.Project, p.Version, p.Stage, p.Changes, p.Artifacts}
	canonical.Changes, canonical.Artifacts = []PlanChange{}, []PlanArtifact{}
	for _, c := range p.Changes {
		canonical.Changes = append(canonical.Changes, PlanChange{Fabric: validUTF8(c.Fabric), Job: validUTF8(c.Job), Action: validUTF8(c.Action),
			From: validUTF8(c.From), To: validUTF8(c.To), Detail: validUTF8(c.Detail), Drift: validUTF8(c.Drift)})
	}
	for _, a := range p.Artifacts {
		canonical.Artifacts = append(canonical.Artifacts, PlanArtifact{Fabric: validUTF8(a.Fabric), Pipeline: validUTF8(a.Pipeline), Path: validUTF8(a.Path), SHA256: validUTF8(a.SHA256)})
	}
	canonical.Project, canonical.Version, canonical.Stage = validUTF8(p.Project), validUTF8(p.Version), validUTF8(p.Stage)
	data, err := json.Marshal(canonical)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// validUTF8 is s as encoding/json stores it: each invalid byte U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s { // an invalid byte ranges as one utf8.RuneError
		b.WriteRune(r)
	}
	return b.String()
}

// DiffStagePlans lists, one line each, how plan b differs from plan a: jobs
// and artifacts added, gone or changed, e.g.
// "prod/daily_orders: update v1.1.0 → v1.2.0 (drift: none → settings.max_concurrent_runs: …)".
func DiffStagePlans(a, b StagePlan) []string {
	var out []string
	changeKey := func(c PlanChange) string { return c.Fabric + "/" + c.Job }
	for _, key := range unionKeys(a.Changes, b.Changes, changeKey) {
		x, inA := find(a.Changes, key, changeKey)
		y, inB := find(b.Changes, key, changeKey)
		switch {
		case !inA:
			out = append(out, fmt.Sprintf("%s: new in the plan: %s", key, y.Line()))
		case !inB:
			out = append(out, fmt.Sprintf("%s: no longer in the plan (was: %s)", key, x.Line()))
		case x != y:
			var what []string
			if x.Action != y.Action {
				what = append(what, fmt.Sprintf("action %s → %s", x.Action, y.Action))
			}
			if x.From != y.From {
				what = append(what, fmt.Sprintf("runs %s now, was %s", orNone(y.From), orNone(x.From)))
			}
			if x.To != y.To {
				what = append(what, fmt.Sprintf("goes to %s, was %s", orNone(y.To), orNone(x.To)))
			}
			if x.Drift != y.Drift {
				what = append(what, fmt.Sprintf("drift: %s (was: %s)", orNone(y.Drift), orNone(x.Drift)))
			}
			if len(what) == 0 && x.Detail != y.Detail {
				what = append(what, fmt.Sprintf("%s (was: %s)", orNone(y.Detail), orNone(x.Detail)))
			}
			out = append(out, key+": "+strings.Join(what, "; "))
		}
	}
	artifactKey := func(x PlanArtifact) string { return x.Fabric + "/" + x.Pipeline }
	for _, key := range unionKeys(a.Artifacts, b.Artifacts, artifactKey) {
		x, inA := find(a.Artifacts, key, artifactKey)
		y, inB := find(b.Artifacts, key, artifactKey)
		switch {
		case !inA:
			out = append(out, fmt.Sprintf("artifact %s: new: %s", key, y.Path))
		case !inB:
			out = append(out, fmt.Sprintf("artifact %s: no longer uploaded (was %s)", key, x.Path))
		case x != y:
			out = append(out, fmt.Sprintf("artifact %s: %s sha256 %s (was %s sha256 %s)", key, y.Path, orNone(y.SHA256), x.Path, orNone(x.SHA256)))
		}
	}
	return out
}

// Line renders a change for people, e.g. "update v1.1.0 → v1.2.0 (upgrade from v1.1.0)".
func (c PlanChange) Line() string {
	line := c.Action
	switch {
	case c.Action == PlanCreate:
		line += " " + c.To
	case c.From != c.To:
		line += fmt.Sprintf(" %s → %s", orNone(c.From), c.To)
	default:
		line += " " + c.To
	}
	if c.Detail != "" {
		line += " (" + c.Detail + ")"
	}
	if c.Drift != "" && !strings.Contains(c.Detail, c.Drift) {
		line += "; changed outside Shipline: " + c.Drift
	}
	return line
}

// unionKeys are the keys of the elements of a and b, sorted, each once.
func unionKeys[E any](a, b []E, key func(E) string) []string {
	var keys []string
	for _, e := range slices.Concat(a, b) {
		keys = append(keys, key(e))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// find is the first element of list with the key.
func find[E any](list []E, k string, key func(E) string) (E, bool) {
	i := slices.IndexFunc(list, func(e E) bool { return key(e) == k })
	if i < 0 {
		var zero E
		return zero, false
	}
	return list[i], true
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
