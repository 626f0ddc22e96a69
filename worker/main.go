// Command shipline-worker runs Shipline's Temporal worker: it loads
// platform.yaml, dials Temporal (or, with --dev, starts an embedded Temporal
// server with its UI in the same process) and executes Shipline's workflows and
// activities until it receives SIGINT or SIGTERM.
//
//	shipline-worker --config platform.yaml [--dev] [--temporal-port 7233] [--ui-port 8233]
//	                [--log-level info] [--log-format console|json] [--metrics-addr 127.0.0.1:9464]
//	                [--codec-addr 127.0.0.1:8234] [--web-addr 127.0.0.1:8080]
//
// With --metrics-addr the worker serves Prometheus metrics (the Temporal
// SDK's and Shipline's shipline_* ones) on http://ADDR/metrics. With
// platform.yaml's temporal.encryption, --codec-addr serves the payload codec
// endpoint (POST /encode, /decode) for the Temporal UI and the temporal CLI;
// with --dev it is served on a free loopback port unless given, and the
// embedded UI uses it. --web-addr serves the dashboard (on by default with
// --dev, at 127.0.0.1:8080; --web-addr off turns it off).
//
// The connection to Temporal follows the temporal CLI's conventions: a
// profile of the Temporal config file (temporal.profile, TEMPORAL_PROFILE),
// overridden by platform.yaml's temporal block (address, namespace, tls,
// api_key_env), overridden by TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
// TEMPORAL_API_KEY and TEMPORAL_TLS_*. With --dev only the namespace applies.
// SHIPLINE_STORAGE overrides platform.yaml's storage (the store workers share).
// Exit codes: 0 stopped cleanly, 1 failed, 2 bad usage or invalid config.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/shipline/shipline/internal/logging"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/workerapp"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, envconfig.EnvLookupOS))
}

// defaultWebAddr is where --dev serves the dashboard.
const defaultWebAddr = "127.0.0.1:8080"

// storageEnv names the variable that overrides platform.yaml's storage.
const storageEnv = "SHIPLINE_STORAGE"

// flags are the parsed command line.
type flags struct {
	config       string
	dev          bool
	temporalPort int
	uiPort       int
	logLevel     string
	logFormat    string
	builds       int
	metricsAddr  string
	codecAddr    string
	webAddr      string
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("shipline-worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "platform config `file` (required)")
	fs.BoolVar(&f.dev, "dev", false, "start an embedded Temporal server (SQLite in state_dir) and UI in this process")
	fs.IntVar(&f.temporalPort, "temporal-port", 7233, "with --dev: the embedded Temporal frontend `port`")
	fs.IntVar(&f.uiPort, "ui-port", 8233, "with --dev: the Temporal UI `port` (-1 disables the UI)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "console", "log `format`: console or json")
	fs.IntVar(&f.builds, "build-parallelism", 0, "pipeline builds run at once on this worker (default: the number of CPUs)")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on http://`host:port`/metrics, e.g. 127.0.0.1:9464 (default: off)")
	fs.StringVar(&f.codecAddr, "codec-addr", "", "serve the payload codec endpoint for the Temporal UI on http://`host:port` (needs temporal.encryption; default: off, with --dev a free loopback port)")
	fs.StringVar(&f.webAddr, "web-addr", "", "serve the dashboard on http://`host:port` (default: off; with --dev "+defaultWebAddr+"; off turns it off)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	switch {
	case f.webAddr == "off":
		f.webAddr = ""
	case f.webAddr == "" && f.dev:
		f.webAddr = defaultWebAddr
	case f.webAddr != "":
		if _, _, err := net.SplitHostPort(f.webAddr); err != nil {
			return f, fmt.Errorf("--web-addr %q: want HOST:PORT, e.g. 127.0.0.1:8080, or off", f.webAddr)
		}
	}
	if f.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(f.metricsAddr); err != nil {
			return f, fmt.Errorf("--metrics-addr %q: want HOST:PORT, e.g. 127.0.0.1:9464 or :9464", f.metricsAddr)
		}
	}
	if f.codecAddr != "" {
		if _, _, err := net.SplitHostPort(f.codecAddr); err != nil {
			return f, fmt.Errorf("--codec-addr %q: want HOST:PORT, e.g. 127.0.0.1:8234", f.codecAddr)
		}
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if f.config == "" {
		return f, errors.New("--config FILE is required (the platform.yaml to serve)")
	}
	return f, nil
}

// run is main without the exit, so it has one exit point.
func run(args []string, stdout, stderr io.Writer, env envconfig.EnvLookup) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "shipline-worker: %v\n", err)
		return 2
	}

	logger, err := logging.New(logging.Options{Level: f.logLevel, Format: f.logFormat})
	if err != nil {
		fmt.Fprintf(stderr, "shipline-worker: %v\n", err)
		return 2
	}
	defer func() { _ = logger.Sync() }()

	cfg, diags := platform.Load(f.config)
	for _, d := range diags {
		fmt.Fprintln(stderr, d.String())
	}
	if diags.HasErrors() {
		return 2
	}
	// SHIPLINE_STORAGE overrides platform.yaml's storage: (as TEMPORAL_ADDRESS
	// does temporal.address); docker-compose.yml gives it to its workers.
	if v, ok := env.LookupEnv(storageEnv); ok && v != "" {
		if err := cfg.OverrideStorage(storageEnv, v); err != nil {
			fmt.Fprintf(stderr, "shipline-worker: %v\n", err)
			return 2
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = workerapp.Run(ctx, workerapp.Options{
		Config:           cfg,
		Env:              env,
		Dev:              f.dev,
		TemporalPort:     f.temporalPort,
		UIPort:           f.uiPort,
		BuildParallelism: f.builds,
		MetricsAddr:      f.metricsAddr,
		CodecAddr:        f.codecAddr,
		WebAddr:          f.webAddr,
		Logger:           logger,
		Ready:            func(info workerapp.Info) { fmt.Fprintln(stdout, readyLine(info)) },
	})
	if err != nil {
		fmt.Fprintf(stderr, "shipline-worker: %v\n", err)
		return 1
	}
	return 0
}

// readyLine is the one line printed when the worker polls, e.g.
//
//	shipline worker ready: temporal 127.0.0.1:7233 namespace default task queue shipline, UI http://127.0.0.1:8233
func readyLine(info workerapp.Info) string {
	line := fmt.Sprintf("shipline worker ready: temporal %s namespace %s task queue %s",
		info.Address, info.Namespace, info.TaskQueue)
	if info.UIURL != "" {
		line += ", UI " + info.UIURL
	}
	if info.MetricsURL != "" {
		line += ", metrics " + info.MetricsURL
	}
	if info.CodecURL != "" {
		line += ", codec " + info.CodecURL
	}
	if info.WebURL != "" {
		line += ", dashboard " + info.WebURL
	}
	return line
}
