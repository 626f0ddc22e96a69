package devserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	serverlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	clusterName = "active"
	storeName   = "sqlite-default"
)

// prepareDatabase returns the SQLite persistence config. A new database file
// gets the schema first; then the namespace is created unless it exists.
func prepareDatabase(opts Options) (*config.SQL, error) {
	conf := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: opts.DBFile,
		// WAL with synchronous=normal: commits no longer wait for an fsync of
		// the main file, which is what limits a dev server under many parallel
		// workflows (the last commits may be lost on a power cut, not on a
		// crash of the process). One connection, as SQLite allows one writer.
		ConnectAttributes: map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "normal"},
	}
	if isNewFile(opts.DBFile) {
		if err := os.MkdirAll(filepath.Dir(opts.DBFile), 0o755); err != nil {
			return nil, fmt.Errorf("create directory for the dev server database: %w", err)
		}
		if err := sqliteschema.SetupSchema(conf); err != nil {
			// Leave no half-initialised file behind: the next start would take
			// it for a ready database.
			_ = os.Remove(opts.DBFile)
			return nil, fmt.Errorf("create the dev server database schema in %s: %w", opts.DBFile, err)
		}
	}

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("namespace %q: %w", opts.Namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(conf, ns); err != nil {
		return nil, fmt.Errorf("create namespace %q in %s: %w", opts.Namespace, opts.DBFile, err)
	}
	return conf, nil
}

func isNewFile(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, os.ErrNotExist)
}

// newTemporalServer builds the server from a config written in code: all four
// services on opts.IP (frontend on opts.Port, the internal ones on free
// ports), one history shard, no archival; TLS and API keys as opts say
// (by default none).
func newTemporalServer(opts Options, sqlConf *config.SQL, logger *zap.Logger) (temporal.Server, error) {
	ports := map[primitives.ServiceName]int{primitives.FrontendService: opts.Port}
	httpPorts := map[primitives.ServiceName]int{}
	for _, svc := range internalServices(opts) {
		p, err := freePort(opts.IP)
		if err != nil {
			return nil, err
		}
		ports[svc] = p
	}
	for svc := range ports {
		if svc == primitives.FrontendService || svc == primitives.InternalFrontendService {
			p, err := freePort(opts.IP)
			if err != nil {
				return nil, err
			}
			httpPorts[svc] = p
		}
	}
	httpPort := httpPorts[primitives.FrontendService]
	hostPort := func(port int) string { return net.JoinHostPort(opts.IP, strconv.Itoa(port)) }

	conf := &config.Config{}
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = opts.IP
	conf.Persistence.DefaultStore = storeName
	conf.Persistence.VisibilityStore = storeName
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{storeName: {SQL: sqlConf}}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             hostPort(opts.Port),
				HTTPAddress:            hostPort(httpPort),
				ClusterID:              uuid.NewString(), // used only when the database is new
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for svc, port := range ports {
		var s config.Service
		s.RPC.GRPCPort = port
		s.RPC.BindOnIP = opts.IP
		s.RPC.HTTPPort = httpPorts[svc]
		conf.Services[string(svc)] = s
		hosts[svc] = static.SingleLocalHost(hostPort(port))
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	if _, ok := ports[primitives.InternalFrontendService]; !ok {
		conf.PublicClient.HostPort = hostPort(opts.Port) // else the server's own calls go to the internal frontend
	}

	dynConf := dynamicconfig.StaticClient{
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 8096,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// Search attributes added after start (EnsureSearchAttributes on an
		// older database) are usable at once, not after a cache refresh.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		// One task-queue partition: a single-host dev server gains nothing from
		// several, and tasks of many parallel workflows then wait less.
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  1,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): 1,
	}
	for k, v := range opts.DynamicConfig {
		dynConf[dynamicconfig.MakeKey(k)] = v
	}

	applyTLS(conf, opts.TLS)
	serverOpts := append([]temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(serviceNames(ports)),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(serverlog.NewZapLogger(logger.WithOptions(zap.WithFatalHook(fatalHook{})))),
		temporal.WithDynamicConfigClient(dynConf),
	}, authOptions(opts)...)
	server, err := temporal.NewServer(serverOpts...)
	if err != nil {
		return nil, fmt.Errorf("build temporal server: %w", err)
	}
	return server, nil
}

// fatalHook ends the process when the Temporal server logs Fatal (it cannot
// go on: a port taken, its database gone), as the server expects, but first
// writes the message to stderr, whatever the logger does with it: a test's
// logger keeps its lines until the test ends, which the exit prevents, and
// the test run would end with a bare FAIL.
type fatalHook struct{}

func (fatalHook) OnWrite(ce *zapcore.CheckedEntry, fields []zapcore.Field) {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	fmt.Fprintf(os.Stderr, "embedded Temporal server stopped the process: %s %v\n", ce.Message, enc.Fields)
	os.Exit(1)
}
