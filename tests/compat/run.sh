#!/usr/bin/env bash
# The official Azure SDK as a client (CTest: compat_azure_sdk): installs @azure/keyvault-keys from the
# committed lockfile into tests/compat/node_modules when needed, starts a real ownkeyd on a fresh dev
# vault on 127.0.0.1 (with a SoftHSM2 token for the -HSM key types when softhsm2 is installed), runs sdk.test.js (node:test, TAP output ending in "# pass N" / "# fail N")
# against it over HTTPS, stops the daemon with SIGTERM and returns node's status.
# Exit 77 (skipped) when OWNKEYD_BIN or node is missing.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

if [ -z "${OWNKEYD_BIN:-}" ] || [ ! -x "$OWNKEYD_BIN" ]; then
  echo "skipped: ownkeyd is not built (OWNKEYD_BIN unset or not executable)"
  exit 77
fi
if ! command -v node >/dev/null 2>&1; then
  echo "skipped: node is not on PATH (scripts/bootstrap installs nodejs and npm)"
  exit 77
fi
command -v curl >/dev/null 2>&1 || { echo "skipped: needs curl (scripts/bootstrap installs it)"; exit 77; }

# ---- the SDK, from the committed lockfile ----------------------------------------------------------
# npm records what it installed in node_modules/.package-lock.json; reinstall when that is missing or
# older than the lockfile or package.json (a fresh clone, or a dependency bump).
stamp="$HERE/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$HERE/package-lock.json" -nt "$stamp" ] || [ "$HERE/package.json" -nt "$stamp" ]; then
  command -v npm >/dev/null 2>&1 || { echo "skipped: npm is not on PATH (scripts/bootstrap installs it)"; exit 77; }
  echo "compat: npm ci in $HERE"
  if ! (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error); then
    echo "compat: npm ci failed" >&2
    exit 1
  fi
fi

# ---- a fresh dev vault and a daemon on a free port -------------------------------------------------
T=$(mktemp -d)
D="$T/vault"
DAEMON_PID=""
stop_daemon() {
  [ -n "$DAEMON_PID" ] || return 0
  local pid=$DAEMON_PID i
  DAEMON_PID=""
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "compat: ownkeyd did not stop within 10 s of SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 1
  fi
  wait "$pid" 2>/dev/null
}
trap 'stop_daemon; rm -rf "$T"' EXIT
trap 'exit 143' TERM INT

if ! "$OWNKEYD_BIN" init --data-dir "$D" --dev --output json >"$T/init.json" 2>"$T/init.err"; then
  echo "compat: ownkeyd init failed: $(cat "$T/init.err")" >&2
  exit 1
fi
TOKEN=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).admin_token || "")' \
  "$T/init.json") || TOKEN=""
if [ -z "$TOKEN" ]; then
  echo "compat: no admin_token in the output of ownkeyd init --output json: $(cat "$T/init.json")" >&2
  exit 1
fi

free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# ---- a SoftHSM2 token, so that the SDK's RSA-HSM / EC-HSM / oct-HSM keys live in a token ------------
HSM_ARGS=()
SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
if command -v softhsm2-util >/dev/null 2>&1 && [ -f "$SOFTHSM_MODULE" ]; then
  mkdir -p "$T/hsm/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
    "$T/hsm/tokens" >"$T/hsm/softhsm2.conf"
  export SOFTHSM2_CONF="$T/hsm/softhsm2.conf"
  printf '1234' >"$T/hsm/pin"
  if softhsm2-util --init-token --free --label compat --so-pin 87654321 --pin 1234 >/dev/null 2>&1; then
    HSM_ARGS=(--hsm "pkcs11:token=compat?module-path=$SOFTHSM_MODULE&pin-source=file:$T/hsm/pin")
    export OWNKEY_COMPAT_HSM=1
    echo "compat: -HSM keys live in a SoftHSM2 token"
  fi
fi
[ ${#HSM_ARGS[@]} -eq 0 ] && echo "compat: no SoftHSM2: -HSM key types are expected to be refused"

started=0
for attempt in 1 2 3; do
  PORT=$(free_port) || { echo "compat: cannot find a free port" >&2; exit 1; }
  URL="https://127.0.0.1:$PORT"
  "$OWNKEYD_BIN" serve --data-dir "$D" --listen "127.0.0.1:$PORT" "${HSM_ARGS[@]}" 2>>"$T/daemon.log" &
  DAEMON_PID=$!
  for _ in $(seq 1 200); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    if [ -f "$D/tls/cert.pem" ] && curl -fs --cacert "$D/tls/cert.pem" "$URL/healthz" >/dev/null 2>&1; then
      started=1
      break
    fi
    sleep 0.05
  done
  [ "$started" = 1 ] && break
  stop_daemon
done
if [ "$started" != 1 ]; then
  echo "compat: ownkeyd did not answer $URL/healthz; its log:" >&2
  cat "$T/daemon.log" >&2
  exit 1
fi
echo "compat: ownkeyd serving $URL (pid $DAEMON_PID)"

# ---- the suite -------------------------------------------------------------------------------------
# NODE_EXTRA_CA_CERTS is read only when node starts, so it is set here, for the test process.
(cd "$HERE" && NODE_EXTRA_CA_CERTS="$D/tls/cert.pem" OWNKEY_URL="$URL" OWNKEY_TOKEN="$TOKEN" \
  node --test --test-reporter=tap sdk.test.js)
status=$?

if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
  echo "compat: ownkeyd exited during the tests; its log:" >&2
  cat "$T/daemon.log" >&2
  DAEMON_PID=""
  status=1
elif ! stop_daemon; then
  status=1
fi
if [ "$status" != 0 ]; then
  echo "compat: last lines of the daemon's log:" >&2
  tail -n 20 "$T/daemon.log" >&2
fi
exit "$status"
