//go:build tools

// Package tools pins modules whose packages are imported only by some parts of
// the tree, so `go mod tidy` keeps them in go.mod while those parts are written.
package tools

import (
	_ "github.com/databricks/databricks-sdk-go"
	_ "github.com/go-git/go-git/v5"
	_ "github.com/temporalio/ui-server/v2/server"
	_ "github.com/urfave/cli/v2"
	_ "go.temporal.io/sdk/client"
	_ "go.temporal.io/sdk/testsuite"
	_ "go.temporal.io/server/schema/sqlite"
	_ "go.temporal.io/server/temporal"
	_ "go.uber.org/zap"
	_ "golang.org/x/mod/semver"
	_ "gopkg.in/yaml.v3"
)
