// Command shipline is Shipline's CLI: validate, release, and inspect releases.
package main

import (
	"os"

	"github.com/shipline/shipline/starter/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr))
}
