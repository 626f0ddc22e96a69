#!/usr/bin/env bash
# The whole life of a release of the example project, offline, on the embedded Temporal stack:
#   1. builds bin/shipline and bin/shipline-worker;
#   2. creates the demo users' signing keys under examples/.shipline/keys/ (platform.yaml requires signed
#      requests and reads the public halves from there) and a git remote for examples/demo under
#      examples/.shipline/remotes/demo.git;
#   3. validates the project against examples/platform.yaml and starts `shipline-worker --dev` (embedded
#      Temporal + UI on :8233, the dashboard on :8080) in the background;
#   4. alice (project admin) releases VERSION (default v1.0.0): both wheels are built and tested, the
#      Databricks job JSON and the Airflow DAG are deployed to the dev stage's fabric (local-dev);
#   5. alice promotes it: bob (developers) approves qa, which deploys to local-qa; dave and erin
#      (prod_support, two approvals, not the requester) approve prod, which deploys to local-prod after
#      its soak; a vote from someone outside prod_support is refused on the way;
#   6. prints what runs on each stage's fabric (`shipline deployments`) and the audit;
#   7. stops the worker, unless KEEP=1 (then the stack and its UI stay up until you stop it).
# APPROVE=browser leaves the qa approval to you, in the dashboard (http://127.0.0.1:8080, user picker).
# Every fabric is a local folder under examples/.shipline/fabrics/. Every request is signed with the acting
# user's key (--as NAME --key examples/.shipline/keys/NAME). Rerunning is safe: keys, remote, release
# and promotion are reused; `rm -rf examples/.shipline` starts from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-v1.0.0}
STATE=examples/.shipline
KEYS=$STATE/keys
REMOTE=$STATE/remotes/demo.git
PORT=${TEMPORAL_PORT:-7233}
UI_PORT=${UI_PORT:-8233}
WEB_ADDR=${WEB_ADDR:-127.0.0.1:8080}
PROMOTION=promote/demo/$VERSION
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

step() { printf '\n==> %s\n' "$*"; }

# as USER ARGS... runs `shipline ARGS...` on behalf of USER, signed with USER's key.
as() {
  local user=$1
  shift
  local shown=() arg
  for arg in "$@"; do
    case $arg in *' '*) shown+=("\"$arg\"") ;; *) shown+=("$arg") ;; esac
  done
  echo "\$ shipline ${shown[*]} --as $user --key $KEYS/$user"
  bin/shipline "$@" --as "$user" --key "$KEYS/$user"
}

# promotion_state prints the promotion's state as one line of JSON.
promotion_state() { bin/shipline status "$PROMOTION" --output json 2>/dev/null | tr -d ' \n'; }

# wait_for WHAT PATTERN waits until the promotion's state matches PATTERN (an extended regular
# expression over its JSON); it stops the demo when the promotion ends another way.
wait_for() {
  local what=$1 pattern=$2 state
  for _ in $(seq 1 600); do
    state=$(promotion_state)
    if grep -Eq "$pattern" <<<"$state"; then return 0; fi
    if grep -Eq '"status":"(failed|refused|rejected|expired|cancelled)"' <<<"$state"; then
      bin/shipline status "$PROMOTION"
      echo "the promotion ended before $what" >&2
      exit 1
    fi
    sleep 0.5
  done
  bin/shipline status "$PROMOTION"
  echo "gave up waiting for $what after 5 minutes" >&2
  exit 1
}
gate_open() { echo "\"name\":\"$1\",[^}]*\"status\":\"approval\""; }

step "building bin/shipline and bin/shipline-worker"
go build -o bin/shipline ./starter
go build -o bin/shipline-worker ./worker

# The users are the ones examples/platform.yaml registers keys for.
users=$(sed -n 's|.*key_files: \[\.shipline/keys/\([a-z0-9_-]*\)\.pub\].*|\1|p' examples/platform.yaml)
mkdir -p "$KEYS"
for user in $users; do
  if [ ! -f "$KEYS/$user" ]; then
    command -v ssh-keygen >/dev/null || { echo "the demo creates signing keys with ssh-keygen: install OpenSSH (Debian: openssh-client)" >&2; exit 1; }
    ssh-keygen -q -t ed25519 -N '' -C "$user@shipline-demo" -f "$KEYS/$user"
    created=1
  fi
done
if [ -n "${created:-}" ]; then
  step "created signing keys for $(echo $users | tr ' ' ',') in $KEYS/ (the worker reads the .pub files)"
fi

if [ ! -d "$REMOTE" ]; then
  step "creating the demo project's git remote at $REMOTE"
  work=$(mktemp -d)
  mkdir -p "$REMOTE"
  git init -q --bare -b main "$REMOTE"
  remote_abs=$(cd "$REMOTE" && pwd)
  cp -R examples/demo/. "$work/"
  (cd "$work" && git init -q -b main && git add . &&
    git -c user.name=alice -c user.email=alice@example.com commit -q -m "demo project" &&
    git push -q "$remote_abs" main)
  rm -rf "$work"
fi

step "shipline validate examples/demo --platform examples/platform.yaml"
bin/shipline validate examples/demo --platform examples/platform.yaml

# A stack an earlier KEEP=1 run left running holds the ports (and writes the log): say so, touch nothing.
if [ -f "$STATE/worker.pid" ] && kept=$(cat "$STATE/worker.pid") && kill -0 "$kept" 2>/dev/null &&
  grep -q shipline-worker "/proc/$kept/cmdline" 2>/dev/null; then
  echo "the demo's worker from an earlier KEEP=1 run still runs (pid $kept, log $STATE/worker.log) and holds its ports: stop it with \`kill $kept\`, then run the demo again" >&2
  exit 1
fi
step "starting the worker with the embedded Temporal server (log: $STATE/worker.log)"
bin/shipline-worker --config examples/platform.yaml --dev --temporal-port "$PORT" --ui-port "$UI_PORT" --web-addr "$WEB_ADDR" >"$STATE/worker.log" 2>&1 &
worker=$!
echo "$worker" >"$STATE/worker.pid"
stop() { if [ "${KEEP:-0}" != 1 ]; then kill "$worker" 2>/dev/null && wait "$worker" 2>/dev/null || true; fi; }
trap stop EXIT
for _ in $(seq 1 300); do
  grep -q "shipline worker ready" "$STATE/worker.log" 2>/dev/null && break
  kill -0 "$worker" 2>/dev/null || { cat "$STATE/worker.log"; echo "worker exited" >&2; exit 1; }
  sleep 0.2
done
grep "shipline worker ready" "$STATE/worker.log"
export TEMPORAL_ADDRESS=127.0.0.1:$PORT SHIPLINE_UI_URL=http://127.0.0.1:$UI_PORT

step "alice, a project admin, releases $VERSION: tag, build and test both wheels, deploy to the dev stage"
as alice release "$VERSION" --project demo --wait

if grep -q '"status":"promoted"' <<<"$(promotion_state)"; then
  step "$VERSION was promoted to prod by an earlier run (VERSION=v1.0.1 $0 promotes a new release)"
else
  step "alice promotes $VERSION through qa to prod; the qa gate waits for one developer"
  as alice promote "$VERSION" --project demo --wait
  wait_for "the qa gate" "$(gate_open qa)"

  if [ "${APPROVE:-cli}" = browser ]; then
    step "approve qa in the dashboard: open http://$WEB_ADDR/p/demo/promotions/$VERSION, pick bob, press Approve on qa"
    wait_for "bob's approval in the dashboard" "$(gate_open prod)"
  else
    step "bob (developers) approves qa; Shipline deploys the same wheels to local-qa"
    as bob approve "$VERSION" --project demo --stage qa --comment "checked the dev run"
    wait_for "the prod gate" "$(gate_open prod)"
  fi
  bin/shipline status "$PROMOTION"

  step "bob is not in prod_support: his vote on prod is refused (and recorded)"
  as bob approve "$VERSION" --project demo --stage prod || echo "(refused, as it should be: exit $?)"

  step "dave and erin (prod_support) approve prod; after the 10s soak it deploys to local-prod"
  as dave approve "$VERSION" --project demo --stage prod --comment "change ticket CHG-1042"
  as erin approve "$VERSION" --project demo --stage prod
  wait_for "prod to be deployed" '"status":"promoted"'
fi
bin/shipline status "$PROMOTION"

for fabric in local-dev local-qa local-prod; do
  step "shipline deployments --project demo --fabric $fabric"
  bin/shipline deployments --project demo --fabric "$fabric"
done

step "what the prod fabric holds ($STATE/fabrics/prod)"
(cd "$STATE/fabrics/prod" && find . -type f | sort | sed 's|^\./|    |')

step "shipline audit --project demo"
bin/shipline audit --project demo

if [ "${KEEP:-0}" = 1 ]; then
  echo "The stack keeps running (pid $worker): the dashboard at http://$WEB_ADDR/p/demo (pick a user), Temporal UI at http://127.0.0.1:$UI_PORT. Stop it with: kill $worker"
else
  echo "Dashboard: rerun with KEEP=1 and open http://$WEB_ADDR/p/demo (the stage view; approve from the promotion page)."
fi
