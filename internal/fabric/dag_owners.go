package fabric

// Who owns each dag_id on an Airflow fabric. A DAG keeps the dag_id its
// author gave it (renaming a DAG loses its history in Airflow), so two jobs,
// of one project or of two, could write DAGs with the same dag_id into one
// folder, and Airflow would run one of them and hide the other. Shipline
// records the owner of each dag_id in the DAG folder itself, where every
// worker deploying to the fabric reads it and it lives as long as the DAGs:
//
//	<dags_folder>/.shipline/owners/<dag_id>.json   {"dag_id": …, "project": …, "job": …}
//
// Airflow loads only .py files (and zips), so it never reads a record. A
// record is created only when absent (a hard link of a complete temporary
// file on a directory, a conditional write on a bucket), so of two
// deployments claiming a dag_id at once one wins and the other is refused;
// the same project and job claim it again freely. Deleting a job's DAG (and
// a new release of the job defining another dag_id) releases its record.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/shipline/shipline/internal/apperr"
)

// dagOwner is an ownership record.
type dagOwner struct {
	DagID   string `json:"dag_id"`
	Project string `json:"project"`
	Job     string `json:"job"`
}

// ownerKey is the record's name in the DAG folder.
func ownerKey(dagID string) string { return ".shipline/owners/" + dagID + ".json" }

// readOwner reads a dag_id's record; ok is false when there is none.
func readOwner(ctx context.Context, dags dagFolder, dagID string) (dagOwner, bool, error) {
	data, err := dags.Read(ctx, ownerKey(dagID))
	if errors.Is(err, fs.ErrNotExist) {
		return dagOwner{}, false, nil
	}
	if err != nil {
		return dagOwner{}, false, err
	}
	var o dagOwner
	if err := json.Unmarshal(data, &o); err != nil || o.Project == "" || o.Job == "" {
		return dagOwner{}, false, &apperr.Error{Type: apperr.FabricConfig,
			Msg: fmt.Sprintf("the ownership record %s is not one Shipline wrote; remove it by hand", dags.Where(ownerKey(dagID)))}
	}
	return o, true, nil
}

// claimDAG records project/job as the owner of dagID on the fabric, or
// refuses with DagIDOwned when another job owns it. source names the DAG's
// definition in messages.
func claimDAG(ctx context.Context, fabric string, dags dagFolder, dagID, project, job, source string) error {
	for attempt := 0; attempt < 2; attempt++ {
		o, ok, err := readOwner(ctx, dags, dagID)
		if err != nil {
			return err
		}
		if ok {
			if o.Project == project && o.Job == job {
				return nil
			}
			return dagOwnedError(fabric, dags, dagID, o, project, job, source)
		}
		data, _ := json.Marshal(dagOwner{DagID: dagID, Project: project, Job: job})
		created, err := dags.Create(ctx, ownerKey(dagID), append(data, '\n'))
		if err != nil {
			return fmt.Errorf("fabric %q: record the owner of dag_id %s: %w", fabric, dagID, err)
		}
		if created {
			return nil
		}
		// Another deployment recorded it first: read whose it is.
	}
	return fmt.Errorf("fabric %q: the ownership record of dag_id %s keeps changing; will retry", fabric, dagID)
}

func dagOwnedError(fabric string, dags dagFolder, dagID string, o dagOwner, project, job, source string) error {
	where := "its DAG"
	if source != "" {
		where = source
	}
	return &apperr.Error{Type: apperr.DagIDOwned, Msg: fmt.Sprintf(
		"fabric %q: dag_id %q belongs to job %s of project %s (recorded in %s); job %s of project %s cannot deploy a DAG with the same dag_id: "+
			"give the DAG in %s another dag_id and release again, or, if %s/%s no longer deploys it here, delete that job from this fabric "+
			"(shipline delete, or remove its DAG and the record by hand), then resume",
		fabric, dagID, o.Job, o.Project, dags.Where(ownerKey(dagID)), job, project, where, o.Project, o.Job)}
}

// releaseDAG removes dagID's record when project/job owns it.
func releaseDAG(ctx context.Context, dags dagFolder, dagID, project, job string) error {
	o, ok, err := readOwner(ctx, dags, dagID)
	if err != nil || !ok || o.Project != project || o.Job != job {
		return err
	}
	_, err = dags.Remove(ctx, ownerKey(dagID))
	return err
}

// createExclusive writes name under dir only if it does not exist: a
// complete temporary file is hard-linked to the name, which fails when the
// name exists; false when it did.
func createExclusive(dir, name string, data []byte) (bool, error) {
	target := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), target); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, err
	}
	syncDir(filepath.Dir(target))
	return true, nil
}

// dagOwnerChecker is a fabric that records the owner of each dag_id.
type dagOwnerChecker interface {
	checkDagOwner(ctx context.Context, j JobSpec) error
}

// CheckDagOwner refuses, read-only, with DagIDOwned a job whose DAG's dag_id
// another job owns on fab, as deploying it would be refused at its schedule
// step. `shipline plan`, `shipline check` and a deployment's check step
// (before any upload) ask it. A fabric without dag_ids, or a DAG that does
// not check (left to the check of its definition), passes.
func CheckDagOwner(ctx context.Context, fab Fabric, j JobSpec) error {
	c, ok := fab.(dagOwnerChecker)
	if !ok {
		return nil
	}
	return c.checkDagOwner(ctx, j)
}

// checkOwner refuses dagID when another job than j's owns it in dags.
func checkOwner(ctx context.Context, fabric string, dags dagFolder, dagID string, j JobSpec) error {
	o, owned, err := readOwner(ctx, dags, dagID)
	if err != nil {
		return err
	}
	if owned && (o.Project != j.Project || o.Job != j.Job) {
		return dagOwnedError(fabric, dags, dagID, o, j.Project, j.Job, j.Source)
	}
	return nil
}

func (a *airflowFabric) checkDagOwner(ctx context.Context, j JobSpec) error {
	if err := checkJobNames(j); err != nil {
		return err
	}
	dag, err := a.checkDAG(ctx, j, dagID(j)+".py", dagFileContent(j))
	if err != nil {
		return nil
	}
	return checkOwner(ctx, a.name, a.dags, dag.ID, j)
}

func (l *localFabric) checkDagOwner(ctx context.Context, j JobSpec) error {
	dir, name, want, isDAG, err := l.jobFile(j)
	if err != nil || !isDAG {
		return err
	}
	dag, err := checkDAGContent(ctx, pythonBin(nil), j, name, want)
	if err != nil {
		return nil
	}
	return checkOwner(ctx, l.name, dagDir(dir), dag.ID, j)
}
