#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas to the
# version shipped with the server. Safe to run again: existing databases are
# kept and only missing schema versions are applied.
#
# docker-compose runs it in the temporalio/admin-tools image with the defaults
# below; test/cluster/run.sh runs the same script against its private
# PostgreSQL with the tool built from the Go module and the module's schema
# directory. temporal-sql-tool reads SQL_HOST, SQL_PORT, SQL_USER and
# SQL_PASSWORD from the environment.
set -eu

: "${SQL_HOST:=postgresql}"
: "${SQL_PORT:=5432}"
: "${SQL_USER:=temporal}"
: "${TEMPORAL_SQL_TOOL:=temporal-sql-tool}"
: "${SCHEMA_DIR:=/etc/temporal/schema/postgresql/v12}"
export SQL_HOST SQL_PORT SQL_USER

setup() { # setup DATABASE SCHEMA_SUBDIR
	tool="$TEMPORAL_SQL_TOOL --plugin postgres12 --db $1"
	echo "setting up database $1"
	$tool create 2>/dev/null || echo "database $1 exists"
	$tool setup-schema -v 0.0 2>/dev/null || echo "schema of $1 exists"
	$tool update-schema -d "$SCHEMA_DIR/$2/versioned"
}

setup temporal temporal
setup temporal_visibility visibility
echo "temporal schema ready"
