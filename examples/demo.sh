#!/usr/bin/env bash
# Releases (and, with auto_deploy, deploys) the example project on the embedded
# Temporal stack, end to end, with nothing else to install:
#   1. builds bin/shipline and bin/shipline-worker;
#   2. makes a git remote for examples/demo under examples/.shipline/remotes/demo.git;
#   3. starts `shipline-worker --dev` (embedded Temporal + UI on :8233) in the background;
#   4. validates the project, releases VERSION (default v1.0.0) as alice — with auto_deploy this builds both
#      wheels and deploys the job JSON and the DAG to the local fabric (examples/.shipline/fabrics/local) —
#      then lists releases and deployments;
#   5. stops the worker, unless KEEP=1 (then the UI stays up until you stop it).
# Rerunning is safe: the remote and the release are reused (a release is made once per version).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-v1.0.0}
STATE=examples/.shipline
REMOTE=$STATE/remotes/demo.git
PORT=${TEMPORAL_PORT:-7233}
UI_PORT=${UI_PORT:-8233}
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

echo "==> building bin/shipline and bin/shipline-worker"
go build -o bin/shipline ./starter
go build -o bin/shipline-worker ./worker

if [ ! -d "$REMOTE" ]; then
  echo "==> creating the demo project's git remote at $REMOTE"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$REMOTE"
  git init -q --bare -b main "$REMOTE"
  remote_abs=$(cd "$REMOTE" && pwd)
  cp -R examples/demo/. "$work/"
  (cd "$work" && git init -q -b main && git add . &&
    git -c user.name=alice -c user.email=alice@example.com commit -q -m "demo project" &&
    git push -q "$remote_abs" main)
fi

echo "==> validating examples/demo against examples/platform.yaml"
bin/shipline validate examples/demo --platform examples/platform.yaml

echo "==> starting the worker with the embedded Temporal server (log: $STATE/worker.log)"
mkdir -p "$STATE"
bin/shipline-worker --config examples/platform.yaml --dev --temporal-port "$PORT" --ui-port "$UI_PORT" >"$STATE/worker.log" 2>&1 &
worker=$!
stop() { if [ "${KEEP:-0}" != 1 ]; then kill "$worker" 2>/dev/null && wait "$worker" 2>/dev/null || true; fi; }
trap stop EXIT
for _ in $(seq 1 300); do
  grep -q "shipline worker ready" "$STATE/worker.log" 2>/dev/null && break
  kill -0 "$worker" 2>/dev/null || { cat "$STATE/worker.log"; echo "worker exited" >&2; exit 1; }
  sleep 0.2
done
grep "shipline worker ready" "$STATE/worker.log"

export TEMPORAL_ADDRESS=127.0.0.1:$PORT SHIPLINE_UI_URL=http://127.0.0.1:$UI_PORT
echo "==> shipline release $VERSION --project demo --as alice --wait"
bin/shipline release "$VERSION" --project demo --as alice --wait
echo "==> the tag on the remote"
git --git-dir "$REMOTE" cat-file -p "$VERSION" | sed 's/^/    /'
echo "==> shipline releases --project demo --refresh"
bin/shipline releases --project demo --refresh
echo "==> shipline deployments --project demo"
bin/shipline deployments --project demo
echo "==> what the local fabric holds"
find "$STATE/fabrics/local" -type f | sed 's/^/    /'
echo "==> shipline status release/demo/$VERSION"
bin/shipline status "release/demo/$VERSION"
if [ "${KEEP:-0}" = 1 ]; then
  echo "The stack keeps running (pid $worker): Temporal UI at http://127.0.0.1:$UI_PORT. Stop it with: kill $worker"
fi
