#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas to the
# version shipped in this admin-tools image. Safe to run again: existing
# databases are kept and only missing schema versions are applied.
set -eu

setup() { # setup DATABASE SCHEMA_DIR
	tool="temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 -u temporal --db $1"
	echo "setting up database $1"
	$tool create 2>/dev/null || echo "database $1 exists"
	$tool setup-schema -v 0.0 2>/dev/null || echo "schema of $1 exists"
	$tool update-schema -d "/etc/temporal/schema/postgresql/v12/$2/versioned"
}

setup temporal temporal
setup temporal_visibility visibility
echo "temporal schema ready"
