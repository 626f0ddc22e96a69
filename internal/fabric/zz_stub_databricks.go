package fabric

import "github.com/shipline/shipline/internal/platform"

// Temporary stub until databricks.go lands. DELETE before finishing.
func newDatabricks(f platform.Fabric, env Env) (Fabric, error) {
	return nil, &Error{Permanent: true, Msg: "databricks stub"}
}
