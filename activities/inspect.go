package activities

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/fabric"
	"github.com/shipline/shipline/internal/version"
)

// PlanJobsInput asks what deploying jobs would do, changing nothing.
type PlanJobsInput struct {
	Project string        `json:"project"`
	Version string        `json:"version"`
	Commit  string        `json:"commit"`
	Jobs    []ResolvedJob `json:"jobs"`
	// Files maps pipelines to their artifact file names when known (cached
	// builds); others render with a placeholder name and count as changed.
	Files map[string]string `json:"files,omitempty"`
}

// PlannedJob is what a deploy would do to one job.
type PlannedJob struct {
	Fabric string `json:"fabric"`
	Job    string `json:"job"`
	// Action is create, update or unchanged.
	Action string `json:"action"`
	ID     string `json:"id,omitempty"`
	Detail string `json:"detail,omitempty"`
	// LiveVersion is the version the live job runs (its Shipline tag or header).
	LiveVersion string `json:"live_version,omitempty"`
}

// PlannedUpload is an artifact a deploy would put on a fabric.
type PlannedUpload struct {
	Fabric   string `json:"fabric"`
	Pipeline string `json:"pipeline"`
	Path     string `json:"path"`
}

// PlanJobsOutput lists the planned job actions and the uploads they need.
type PlanJobsOutput struct {
	Jobs    []PlannedJob    `json:"jobs"`
	Uploads []PlannedUpload `json:"uploads"`
}

// PlanJobs renders each job as a deploy would and compares it with the live job.
func (d *Deploy) PlanJobs(ctx context.Context, in PlanJobsInput) (PlanJobsOutput, error) {
	var out PlanJobsOutput
	for _, j := range in.Jobs {
		fab, err := fabric.Open(d.Platform, j.Fabric, d.env())
		if err != nil {
			return out, apperr.ForTemporal(err)
		}
		paths := map[string]string{}
		pending := false
		for _, p := range j.Pipelines {
			file, ok := in.Files[p]
			if !ok {
				file, pending = "<"+p+" artifact, to be built>", true
			}
			paths[p] = fab.ArtifactPath(in.Project, in.Version, p, file)
			up := PlannedUpload{Fabric: j.Fabric, Pipeline: p, Path: paths[p]}
			if !slices.Contains(out.Uploads, up) {
				out.Uploads = append(out.Uploads, up)
			}
		}
		spec, err := d.render(ctx, UpsertJobInput{Project: in.Project, Version: in.Version, Commit: in.Commit, Job: j, Artifacts: paths})
		if err != nil {
			return out, err
		}
		pj, err := PlanJob(ctx, fab, j, spec, pending)
		if err != nil {
			return out, apperr.ForTemporal(err)
		}
		out.Jobs = append(out.Jobs, pj)
	}
	return out, nil
}

// PlanJob reads the live job on its fabric, read-only, and says what
// deploying the rendered spec would do: create it, update it (the live job
// differs, or pending: an artifact is still to be built) or leave it
// unchanged. `shipline plan` and `shipline check` plan each job with it.
func PlanJob(ctx context.Context, fab fabric.Fabric, j ResolvedJob, spec fabric.JobSpec, pending bool) (PlannedJob, error) {
	if err := claimableDag(ctx, fab, j, spec); err != nil {
		return PlannedJob{}, err
	}
	live, err := fab.InspectJob(ctx, spec)
	if err != nil {
		return PlannedJob{}, fmt.Errorf("read job %s on fabric %s: %w", j.Name, j.Fabric, err)
	}
	pj := PlannedJob{Fabric: j.Fabric, Job: j.Name, ID: live.ID, LiveVersion: live.Version}
	switch {
	case !live.Exists:
		pj.Action = "create"
	case live.Drift || pending:
		pj.Action, pj.Detail = "update", planDetail(spec.Version, live)
	default:
		pj.Action = "unchanged"
	}
	return pj, nil
}

// claimableDag refuses a job whose dag_id another job owns on its fabric,
// as its deployment would be refused at the schedule step.
func claimableDag(ctx context.Context, fab fabric.Fabric, j ResolvedJob, spec fabric.JobSpec) error {
	if err := fabric.CheckDagOwner(ctx, fab, spec); err != nil {
		return fmt.Errorf("job %s on fabric %s cannot claim its dag_id: %w", j.Name, j.Fabric, err)
	}
	return nil
}

// DeployedJob is a job as recorded by a fabric entity, to compare with the live one.
type DeployedJob struct {
	Project      string            `json:"project"`
	Fabric       string            `json:"fabric"`
	Job          string            `json:"job"`
	Scheduler    string            `json:"scheduler"`
	Version      string            `json:"version"`
	Commit       string            `json:"commit"`
	DeploymentID string            `json:"deployment_id"`
	Artifacts    map[string]string `json:"artifacts"`
}

// JobDrift says whether a deployed job still matches what Shipline deployed.
type JobDrift struct {
	Fabric      string `json:"fabric"`
	Job         string `json:"job"`
	Exists      bool   `json:"exists"`
	Drift       bool   `json:"drift"`
	Detail      string `json:"detail,omitempty"`
	LiveVersion string `json:"live_version,omitempty"`
	// Error is set when the fabric could not be read (drift unknown).
	Error string `json:"error,omitempty"`
}

// InspectJobsInput lists deployed jobs.
type InspectJobsInput struct {
	Jobs []DeployedJob `json:"jobs"`
}

// InspectJobsOutput reports drift per job, in input order.
type InspectJobsOutput struct {
	Jobs []JobDrift `json:"jobs"`
}

// InspectJobs re-renders each deployed job from its recorded release and
// compares it with the live fabric. A fabric that cannot be read is reported
// per job, not as a failure, so one unreachable fabric does not hide the rest.
func (d *Deploy) InspectJobs(ctx context.Context, in InspectJobsInput) (InspectJobsOutput, error) {
	var out InspectJobsOutput
	for _, j := range in.Jobs {
		r := JobDrift{Fabric: j.Fabric, Job: j.Job}
		spec, err := d.render(ctx, UpsertJobInput{Project: j.Project, Version: j.Version, Commit: j.Commit, DeploymentID: j.DeploymentID,
			Job: ResolvedJob{Name: j.Job, Scheduler: j.Scheduler, Fabric: j.Fabric}, Artifacts: j.Artifacts})
		if err == nil {
			var fab fabric.Fabric
			if fab, err = fabric.Open(d.Platform, j.Fabric, d.env()); err == nil {
				var live fabric.LiveJob
				if live, err = fab.InspectJob(ctx, spec); err == nil {
					r.Exists, r.Drift, r.Detail, r.LiveVersion = live.Exists, live.Drift, driftDetail(j.Version, live), live.Version
				}
			}
		}
		if err != nil {
			r.Error = userMessageOf(err)
		}
		out.Jobs = append(out.Jobs, r)
	}
	return out, nil
}

// planDetail says why a plan updates a live job. When the live job runs
// another version, the difference is Shipline's own version change (an
// upgrade or a downgrade), not drift: only a job of the same version that
// differs was changed outside Shipline.
func planDetail(planned string, live fabric.LiveJob) string {
	if change := versionChange(planned, live.Version); change != "" {
		return change
	}
	if live.Version != "" && live.DriftDetail != "" {
		return "live version " + live.Version + "; " + live.DriftDetail
	}
	return live.DriftDetail
}

// versionChange is "upgrade from v1.0.0" or "downgrade from v1.1.0" for a
// job going from version live to version to; "" when they are the same or
// live is unknown.
func versionChange(to, live string) string {
	switch {
	case live == "" || live == to:
		return ""
	case version.Valid(live) && version.Valid(to) && version.Compare(to, live) < 0:
		return "downgrade from " + live
	case version.Valid(live) && version.Valid(to):
		return "upgrade from " + live
	}
	return "replaces " + live
}

// driftDetail says how a live job differs from the one the fabric's record
// says Shipline deployed. A live job of another version than the recorded one
// is reported as such (a deployment that did not finish recording, or a
// change outside Shipline), not as a change of the recorded version's job.
func driftDetail(recorded string, live fabric.LiveJob) string {
	if live.Version != "" && live.Version != recorded {
		return fmt.Sprintf("the live job runs %s, not the recorded %s", live.Version, recorded)
	}
	return live.DriftDetail
}

// ReadLogsInput names log files, as recorded in a deployment's state.
type ReadLogsInput struct {
	Paths []string `json:"paths"`
	// MaxBytes caps each log (its tail is kept); default 256 KiB.
	MaxBytes int `json:"max_bytes,omitempty"`
}

// LogFile is one log's content.
type LogFile struct {
	Path      string `json:"path"`
	Content   string `json:"content"`
	Truncated bool   `json:"truncated,omitempty"`
	Error     string `json:"error,omitempty"`
}

// ReadLogsOutput holds the logs, in input order.
type ReadLogsOutput struct {
	Logs []LogFile `json:"logs"`
}

// ReadLogs returns logs from the store workers share (keys under logs/,
// whichever worker wrote them); any other path is refused. A path recorded
// before the shared store, <state_dir>/logs/…, reads the same key.
func (d *Deploy) ReadLogs(ctx context.Context, in ReadLogsInput) (ReadLogsOutput, error) {
	limit := in.MaxBytes
	if limit <= 0 {
		limit = 256 << 10
	}
	st, err := d.store.get(ctx, d.Store, d.Platform)
	if err != nil {
		return ReadLogsOutput{}, err
	}
	var out ReadLogsOutput
	for _, p := range in.Paths {
		lf := LogFile{Path: p}
		key, ok := logKey(d.Platform.StateDir, p)
		if !ok {
			return out, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s is not a Shipline log (logs are stored under logs/ in %s)", p, st), apperr.InvalidInput, nil)
		}
		lf.Content, lf.Truncated, err = st.Tail(ctx, key, int64(limit))
		if err != nil {
			lf.Error = err.Error()
		}
		out.Logs = append(out.Logs, lf)
	}
	return out, nil
}

// logKey maps a recorded log path to its store key: a key under logs/, or an
// absolute path under <state_dir>/logs/.
func logKey(stateDir, p string) (string, bool) {
	if filepath.IsAbs(p) {
		root, err := filepath.Abs(stateDir)
		if err != nil {
			return "", false
		}
		rel, err := filepath.Rel(root, filepath.Clean(p))
		if err != nil {
			return "", false
		}
		p = filepath.ToSlash(rel)
	}
	clean := path.Clean(p)
	return clean, clean == p && strings.HasPrefix(clean, "logs/") && !strings.Contains(clean, "/../")
}

func userMessageOf(err error) string { return apperr.Message(err) }
