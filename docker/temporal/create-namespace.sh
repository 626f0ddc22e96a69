#!/bin/sh
# Creates the namespace Shipline uses, unless it exists.
set -eu
ns="${NAMESPACE:-default}"
addr="${TEMPORAL_ADDRESS:-temporal:7233}"

tries=0
until temporal operator cluster health --address "$addr"; do
	tries=$((tries + 1))
	[ "$tries" -ge 30 ] && { echo "temporal at $addr is not healthy"; exit 1; }
	sleep 2
done
temporal operator namespace describe --namespace "$ns" --address "$addr" >/dev/null 2>&1 ||
	temporal operator namespace create --namespace "$ns" --retention 30d --address "$addr"
echo "namespace $ns ready"
