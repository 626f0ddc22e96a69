#!/usr/bin/env bash
# Shipline on a real Temporal cluster (make cluster-test):
#
#   1. builds temporal-server and temporal-sql-tool from the go.temporal.io/server
#      module in go.mod, bin/shipline + bin/shipline-worker, and bin/weed
#      (SeaweedFS, from tools/seaweedfs/go.mod: make weed);
#   2. starts a private PostgreSQL (initdb into a temporary directory, loopback,
#      a free port; nothing global is touched);
#   3. creates and migrates Temporal's databases with docker/temporal/setup-postgres.sh
#      (the script docker-compose runs) and the module's schema files;
#   4. starts temporal-server on free ports with test/cluster/temporal.yaml and
#      docker-compose's dynamic config;
#   5. runs the Go test in test/cluster (SHIPLINE_CLUSTER=1): it starts SeaweedFS
#      (test/s3server: `weed server -s3` on free loopback ports, a bucket, an S3
#      identity for the workers), registers the namespace, starts two
#      shipline-worker processes without --dev, each with its own state_dir
#      and the bucket as their shared `storage:`, releases, runs concurrent
#      deploys, SIGKILLs a worker mid-build and one mid-upload, and checks every
#      deploy completes on the other one.
#
# Everything it starts is stopped on exit. Needs PostgreSQL's server binaries
# (Debian: apt-get install postgresql), git, python3 with build/wheel/setuptools/
# pytest and a JDK, like `make test`.
#
# CLUSTER_BENCH=1 runs BenchmarkClusterWorkers (deploys per minute with one
# worker against two, CPU per process) instead of the scenario (make cluster-bench).
#
# Environment: KEEP=1 keeps the work directory (logs, configs, databases);
# CLUSTER_TEST_TIMEOUT (default 15m). Run as root (with unshare(1)), each
# worker's state directory is also hidden from the other one, as on two machines.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
export GOTOOLCHAIN=local
GO=${GO:-go}
started=$(date +%s)

log() { printf '[cluster %3ds] %s\n' $(($(date +%s) - started)) "$*"; }
die() { log "FAILED: $*"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/shipline-cluster.XXXXXX")
chmod 755 "$work" # PostgreSQL may run as another user
mkdir -p "$work/bin" "$work/logs"

# --- cleanup: stop what this script started, by PID ----------------------------
pg_bin=""
pg_data="$work/pg/data"
server_pid=""
as_pg=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	if [ -n "$pg_bin" ] && [ -f "$pg_data/postmaster.pid" ]; then
		"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	# Build tools orphaned by a killed worker (they run in their own process
	# group) still have their working directory under $work: end them.
	for p in /proc/[0-9]*; do
		cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
		case "$cwd" in "$work"/*) kill -KILL "${p#/proc/}" 2>/dev/null || true ;; esac
	done
	if [ $rc -ne 0 ]; then
		for f in "$work"/logs/*.log; do
			[ -f "$f" ] || continue
			echo "----- last lines of $f"
			tail -n 20 "$f" | cut -c1-400
		done
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		log "kept $work"
	else
		rm -rf "$work"
	fi
	log "done (exit $rc)"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_ports N prints N distinct free loopback TCP ports below 32768: Temporal
# stores membership ports in a PostgreSQL smallint (cluster_membership.rpc_port),
# so the kernel's ephemeral ports (32768 and up) make the server exit.
free_ports() {
	python3 - "$1" <<'PY'
import random, socket, sys
socks, ports = [], []
while len(ports) < int(sys.argv[1]):
    port = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    if port not in ports:
        socks.append(s)
        ports.append(port)
print(" ".join(map(str, ports)))
PY
}

# wait_port PORT SECONDS PID: wait until something listens on 127.0.0.1:PORT,
# as long as process PID lives.
wait_port() {
	local deadline=$(($(date +%s) + $2))
	until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		kill -0 "$3" 2>/dev/null || return 1
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.5
	done
}

# --- 1. build ------------------------------------------------------------------
log "building temporal-server, temporal-sql-tool, shipline, shipline-worker, weed"
$GO build -o "$work/bin/temporal-server" go.temporal.io/server/cmd/server
$GO build -o "$work/bin/temporal-sql-tool" go.temporal.io/server/cmd/tools/sql
$GO build -o bin/shipline ./starter
$GO build -o bin/shipline-worker ./worker
make --no-print-directory -s weed GO="$GO"
server_mod=$($GO list -m -f '{{.Dir}}' go.temporal.io/server)
server_version=$($GO list -m -f '{{.Version}}' go.temporal.io/server)
[ -d "$server_mod/schema/postgresql/v12/temporal/versioned" ] || die "no PostgreSQL schema in $server_mod"
log "temporal server $server_version"
# docker-compose.yml runs the same server version (its images' default tag).
compose_version=$(sed -n 's/.*TEMPORAL_VERSION:-\([0-9.]*\)}.*/\1/p' docker-compose.yml | sort -u)
[ "$compose_version" = "${server_version#v}" ] ||
	die "docker-compose.yml runs Temporal ${compose_version:-?}, go.mod has $server_version: keep them in step"

# --- 2. PostgreSQL -------------------------------------------------------------
if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
	pg_bin=$(pg_config --bindir)
else
	pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] ||
	die "PostgreSQL server binaries not found (Debian: apt-get install postgresql)"
if [ "$(id -u)" = 0 ]; then # initdb refuses to run as root
	id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to run PostgreSQL"
	as_pg=(runuser -u postgres --)
fi
mkdir -p "$work/pg"
[ ${#as_pg[@]} -eq 0 ] || chown postgres "$work/pg"
read -r pg_port < <(free_ports 1)
log "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port"
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_data" -U temporal --auth=trust -E UTF8 --no-sync >"$work/logs/initdb.log" 2>&1 ||
	die "initdb (see $work/logs/initdb.log)"
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -w -t 60 -l "$work/pg/postgresql.log" \
	-o "-p $pg_port -c listen_addresses=127.0.0.1 -k $work/pg -c fsync=off -c max_connections=200" start >/dev/null ||
	{ cat "$work/pg/postgresql.log" >&2 || true; die "PostgreSQL did not start"; }

# --- 3. schemas (the script docker-compose runs) --------------------------------
log "creating and migrating the temporal and temporal_visibility databases"
SQL_HOST=127.0.0.1 SQL_PORT=$pg_port SQL_USER=temporal SQL_PASSWORD=temporal \
	TEMPORAL_SQL_TOOL="$work/bin/temporal-sql-tool" SCHEMA_DIR="$server_mod/schema/postgresql/v12" \
	sh docker/temporal/setup-postgres.sh >"$work/logs/schema.log" 2>&1 || die "schema setup (see $work/logs/schema.log)"

# --- 4. temporal-server --------------------------------------------------------
read -r fe fe_m fe_h ma ma_m hi hi_m wo wo_m < <(free_ports 9)
mkdir -p "$work/temporal"
sed -e "s|@PG_PORT@|$pg_port|g" \
	-e "s|@FRONTEND_PORT@|$fe|g" -e "s|@FRONTEND_MEMBERSHIP_PORT@|$fe_m|g" -e "s|@FRONTEND_HTTP_PORT@|$fe_h|g" \
	-e "s|@MATCHING_PORT@|$ma|g" -e "s|@MATCHING_MEMBERSHIP_PORT@|$ma_m|g" \
	-e "s|@HISTORY_PORT@|$hi|g" -e "s|@HISTORY_MEMBERSHIP_PORT@|$hi_m|g" \
	-e "s|@WORKER_PORT@|$wo|g" -e "s|@WORKER_MEMBERSHIP_PORT@|$wo_m|g" \
	-e "s|@DYNAMIC_CONFIG@|$repo/docker/temporal/dynamicconfig/shipline.yaml|g" \
	test/cluster/temporal.yaml >"$work/temporal/config.yaml"
log "starting temporal-server, frontend on 127.0.0.1:$fe"
"$work/bin/temporal-server" --config-file "$work/temporal/config.yaml" --allow-no-auth start \
	>"$work/logs/temporal-server.log" 2>&1 &
server_pid=$!
wait_port "$fe" 120 "$server_pid" || die "temporal frontend not listening on :$fe (see $work/logs/temporal-server.log)"
sleep 3 # a server that cannot reach its database or join its ring exits in its first seconds
kill -0 "$server_pid" 2>/dev/null || die "temporal-server exited (see $work/logs/temporal-server.log)"

# --- 5. the scenario (or, with CLUSTER_BENCH=1, the benchmark) --------------------
go_test=(-run '^TestCluster$')
if [ "${CLUSTER_BENCH:-0}" = 1 ]; then
	log "running BenchmarkClusterWorkers (one worker against two; see test/cluster/bench_test.go)"
	go_test=(-run '^$' -bench '^BenchmarkClusterWorkers$' -benchtime 1x)
else
	log "running the cluster scenario (SeaweedFS, two workers on separate state, concurrent deploys, kills mid-build and mid-upload)"
fi
SHIPLINE_CLUSTER=1 \
	SHIPLINE_CLUSTER_ADDRESS="127.0.0.1:$fe" \
	SHIPLINE_CLUSTER_BIN="$repo/bin" \
	SHIPLINE_WEED="$repo/bin/weed" \
	SHIPLINE_CLUSTER_DIR="$work/scenario" \
	SHIPLINE_CLUSTER_SERVER_PID="$server_pid" \
	SHIPLINE_CLUSTER_PG_PID="$(head -n 1 "$pg_data/postmaster.pid" 2>/dev/null || true)" \
	$GO test -count=1 -v -timeout "${CLUSTER_TEST_TIMEOUT:-15m}" "${go_test[@]}" ./test/cluster/ 2>&1 |
	tee "$work/logs/scenario.log"
rc=${PIPESTATUS[0]}
kill -0 "$server_pid" 2>/dev/null || die "temporal-server died during the scenario"
[ "$rc" = 0 ] || die "scenario failed (exit $rc)"
log "PASS: Shipline on temporal-server $server_version + PostgreSQL, SeaweedFS, two workers"
