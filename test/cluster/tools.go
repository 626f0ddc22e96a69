//go:build tools

// This file only records, for `go mod tidy`, that run.sh builds Temporal's SQL
// schema tool (go.temporal.io/server/cmd/tools/sql, a main package) from the
// module: without an import of its library, tidy would drop the module it
// needs (github.com/urfave/cli v1) from go.mod.
package cluster

import _ "go.temporal.io/server/tools/sql"
