package fabric

import (
	"fmt"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/platform"
)

// kinds indexes the registered fabric kinds by name.
var kinds map[platform.FabricKind]Kind

// The registry: every fabric kind, one line each. A kind is one file that
// declares a Kind value: its platform.yaml keys and their checks, the job
// schedulers it runs, and how to open it (artifact store, job store,
// inspection, deletion and, when it implements Runner, runs).
func init() {
	kinds = register(
		localKind,
		databricksKind,
		airflowKind,
		managedAirflowKind,
	)
}

// Kind describes one fabric kind, in the shape of databricks/cli's
// per-resource descriptions: what the platform config needs to read it
// (platform.KindSpec) and how to reach a fabric of the kind.
type Kind struct {
	platform.KindSpec
	// Open returns the fabric f of this kind; cfg holds the other fabrics
	// (for kinds that lean on one, like airflow's artifact_fabric).
	Open func(cfg *platform.Config, f platform.Fabric, env Env) (Fabric, error)
}

// register hands each kind's platform.yaml part to the platform package and
// indexes the kinds by name.
func register(ks ...Kind) map[platform.FabricKind]Kind {
	m := make(map[platform.FabricKind]Kind, len(ks))
	for _, k := range ks {
		platform.RegisterKind(k.KindSpec)
		m[k.Name] = k
	}
	return m
}

// settingsOf returns the kind's settings of fabric f, as its Decode read them.
func settingsOf[T any](f platform.Fabric) (T, error) {
	switch s := f.Settings.(type) {
	case T:
		return s, nil
	case *T:
		if s != nil {
			return *s, nil
		}
	}
	var zero T
	return zero, &apperr.Error{Type: apperr.FabricConfig,
		Msg: fmt.Sprintf("fabric %q of kind %s has no %T settings: fix it in platform.yaml", f.Name, f.Kind, zero)}
}
