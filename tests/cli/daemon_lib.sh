# Shared by the shell integration tests: start and stop a real ownkeyd on 127.0.0.1 with a fresh data
# directory, and call its API with curl over HTTPS. Source it; needs OWNKEYD_BIN (exit 77 = skipped).
if [ -z "${OWNKEYD_BIN:-}" ] || [ ! -x "$OWNKEYD_BIN" ]; then
  echo "skipped: ownkeyd is not built"
  exit 77
fi
command -v jq >/dev/null && command -v curl >/dev/null || { echo "skipped: needs curl and jq"; exit 77; }

DAEMON_PID=""
# start_daemon DIR [SERVE ARGS...]: serves DIR on a free port, with any further `ownkeyd serve`
# arguments; sets PORT, URL, CACERT.
start_daemon() {
  local dir=$1 try; shift
  for try in 1 2 3 4 5; do
    PORT=$((20000 + RANDOM % 40000))
    "$OWNKEYD_BIN" serve --data-dir "$dir" --listen "127.0.0.1:$PORT" --rotation-interval "${ROTATION_INTERVAL:-60}" \
      "$@" 2>>"$dir/daemon.log" &
    DAEMON_PID=$!
    URL="https://127.0.0.1:$PORT"
    CACERT="$dir/tls/cert.pem"
    for _ in $(seq 1 100); do
      if ! kill -0 "$DAEMON_PID" 2>/dev/null; then break; fi
      if [ -f "$CACERT" ] && curl -s --cacert "$CACERT" "$URL/healthz" >/dev/null 2>&1; then return 0; fi
      sleep 0.05
    done
    stop_daemon
  done
  echo "cannot start ownkeyd: $(cat "$dir/daemon.log")" >&2
  return 1
}

stop_daemon() {
  if [ -n "$DAEMON_PID" ]; then
    kill -TERM "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_PID=""
  fi
}

# api METHOD PATH [JSON] [TOKEN]: prints "STATUS BODY" (body on one line); uses $TOKEN by default.
api() {
  local method=$1 path=$2 body=${3:-} token=${4-$TOKEN} out
  local args=(-s -o /dev/stdout -w ' %{http_code}' --cacert "$CACERT" -X "$method" -H 'Content-Type: application/json')
  [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
  [ -n "$body" ] && args+=(--data-binary "$body")
  out=$(curl "${args[@]}" "$URL$path")
  local status=${out##* }
  echo "$status ${out% *}"
}

# Counting checks, shared by the tests that source this file: ok/bad/check count passes and failures,
# expect STATUS METHOD PATH [BODY] [TOKEN] calls the API and sets STATUS and BODY, jqr reads BODY.
passed=0
failed=0
ok()  { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
expect() {
  local want=$1 r; shift
  r=$(api "$@")
  STATUS=${r%% *}
  BODY=${r#* }
  if [ "$STATUS" = "$want" ]; then ok; else bad "$1 $2 -> $STATUS, want $want: $BODY"; fi
}
jqr() { jq -r "$1" <<<"$BODY"; }
