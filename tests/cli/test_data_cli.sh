#!/usr/bin/env bash
# End-to-end tests of the data service CLI (ownkey tenant, put, get, ls, rm, head) against a real ownkeyd
# (vault and data roles) on 127.0.0.1. Without a daemon: usage errors (missing arguments, --double without
# a customer key, bad --range, erasure without --yes). With one: tenants (create, show --output json,
# list), put/get round trips (empty, small, several MB, stdin/stdout, names with '/' and spaces), --range,
# metadata (head), ls across many pages, rm, rekey --wait (and --reencrypt), delete --yes; then a tenant
# under a customer key held by the same vault: created with a token file and the vault's CA, objects
# round-trip, disabling the key locks the tenant within the cache TTL (get refused, exit 12) and
# re-enabling unlocks it by itself.
# Needs OWNKEY_BIN; the daemon part needs OWNKEYD_BIN, curl and jq (exit 77, skipped, without them).
set -uo pipefail
OWNKEY=${OWNKEY_BIN:?OWNKEY_BIN must point at the ownkey binary}
T=$(mktemp -d)
DAEMON_PID=""
stop_daemon() {
  if [ -n "$DAEMON_PID" ]; then
    kill -TERM "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_PID=""
  fi
}
trap 'stop_daemon; rm -rf "$T"' EXIT
cd "$T" || exit 1
passed=0
failed=0

ok()   { passed=$((passed + 1)); }
bad()  { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@" >/dev/null; then ok; else bad "$what"; fi; }

# expect_fail CODE PATTERN CMD...: the command exits with CODE and prints one line matching PATTERN.
expect_fail() {
  local code=$1 pattern=$2; shift 2
  "$@" >out.txt 2>err.txt </dev/null
  local rc=$?
  if [ "$rc" -ne "$code" ]; then bad "$* exited $rc, want $code ($(cat err.txt))"; return; fi
  if ! grep -q -- "$pattern" err.txt; then bad "$*: stderr '$(cat err.txt)' lacks '$pattern'"; return; fi
  if [ "$(wc -l <err.txt)" -ne 1 ]; then bad "$*: error is not one line: $(cat err.txt)"; return; fi
  ok
}

sha() { sha256sum "$@" | cut -d' ' -f1; }
# field NAME: the value of a "name: value" line of the CLI's record output on stdin.
field() { grep "^$1  " | head -1 | sed "s/^$1 *//"; }

# --- usage errors: no daemon needed ------------------------------------------------------------------
export OWNKEY_ADDR=https://127.0.0.1:1 OWNKEY_TOKEN=okt_unused
unset OWNKEY_CACERT OWNKEY_CUSTOMER_TOKEN
check "--help lists the data commands" bash -c "'$OWNKEY' --help | grep -q '^  tenant' && '$OWNKEY' --help | grep -q '^  put'"
for c in "tenant create" "tenant show" "tenant list" "tenant set-key" "tenant remove-key" "tenant rekey" \
         "tenant delete" put get ls rm head; do
  # shellcheck disable=SC2086
  check "$c --help" bash -c "'$OWNKEY' $c --help | grep -q usage"
done
expect_fail 2 "unknown command" "$OWNKEY" tenant frobnicate
expect_fail 2 "NAME is required" "$OWNKEY" tenant create
expect_fail 2 "NAME is required" "$OWNKEY" tenant show
expect_fail 2 "not a tenant name" "$OWNKEY" tenant create 'a/b'
expect_fail 2 "not a tenant name" "$OWNKEY" tenant show "$(printf 'x%.0s' $(seq 64))"
expect_fail 2 "--double needs --customer-key" "$OWNKEY" tenant create t --double
expect_fail 2 "--permanent needs --customer-key" "$OWNKEY" tenant create t --permanent
expect_fail 2 "go with --customer-key" "$OWNKEY" tenant create t --customer-token x
expect_fail 2 "no customer token" "$OWNKEY" tenant create t --customer-key https://127.0.0.1:1/keys/k
expect_fail 2 "give one of" "$OWNKEY" tenant create t --customer-key https://127.0.0.1:1/keys/k --customer-token a --customer-token-file f
expect_fail 2 "--customer-key" "$OWNKEY" tenant create t --customer-key http://127.0.0.1:1/keys/k --customer-token a
expect_fail 2 "--customer-key URI is required" "$OWNKEY" tenant set-key t
expect_fail 2 "unknown option --double" "$OWNKEY" tenant show t --double
expect_fail 2 "unknown option --yes" "$OWNKEY" tenant show t --yes
expect_fail 2 "give --yes" "$OWNKEY" tenant delete t
expect_fail 2 "OBJECT is required" "$OWNKEY" put t
expect_fail 2 "TENANT is required" "$OWNKEY" get -o x
expect_fail 2 "OBJECT is required" "$OWNKEY" get t -o x
expect_fail 2 "TENANT is required" "$OWNKEY" ls
expect_fail 2 "unexpected argument" "$OWNKEY" rm t o extra
expect_fail 2 "--range needs" "$OWNKEY" get t o -o x --range 9-2
expect_fail 2 "--range needs" "$OWNKEY" get t o -o x --range abc
expect_fail 2 "--range needs" "$OWNKEY" get t o -o x --range 1-2-3
expect_fail 2 "--range needs" "$OWNKEY" get t o -o x --range -
expect_fail 2 "--range needs" "$OWNKEY" get t o -o x --range -0
expect_fail 2 "--meta needs K=V" "$OWNKEY" put t o -i /dev/null --meta novalue
expect_fail 2 "--meta keys are" "$OWNKEY" put t o -i /dev/null --meta 'a_b=1'
expect_fail 2 "--page-size needs" "$OWNKEY" ls t --page-size 0
expect_fail 2 "control characters" "$OWNKEY" get t "$(printf 'a\tb')" -o x
expect_fail 2 "no vault address" env -u OWNKEY_ADDR "$OWNKEY" tenant list
expect_fail 3 "cannot reach" "$OWNKEY" tenant list
check "nothing written by failed gets" test ! -e x

if [ -z "${OWNKEYD_BIN:-}" ] || [ ! -x "$OWNKEYD_BIN" ] || ! command -v curl >/dev/null || ! command -v jq >/dev/null; then
  echo "data CLI usage tests: $passed passed, $failed failed; skipped the daemon tests (needs OWNKEYD_BIN, curl, jq)"
  [ "$failed" -eq 0 ] || exit 1
  exit 77
fi
if ! "$OWNKEYD_BIN" serve --help 2>&1 | grep -q -- --roles; then
  echo "data CLI usage tests: $passed passed, $failed failed; skipped the daemon tests (ownkeyd has no data role)"
  [ "$failed" -eq 0 ] || exit 1
  exit 77
fi

# start_daemon DIR: serves DIR (vault and data roles, a 2 s key cache) on a free port; sets PORT, ADDR,
# CACERT and the OWNKEY_* variables.
start_daemon() {
  local dir=$1 _try
  for _try in 1 2 3 4 5 6 7 8 9 10; do
    PORT=$((20000 + RANDOM % 40000))
    "$OWNKEYD_BIN" serve --data-dir "$dir" --listen "127.0.0.1:$PORT" --roles vault,data --key-cache-ttl 2 \
      2>>"$dir/daemon.log" &
    DAEMON_PID=$!
    ADDR="https://127.0.0.1:$PORT"
    CACERT="$dir/tls/cert.pem"
    for _ in $(seq 1 200); do
      kill -0 "$DAEMON_PID" 2>/dev/null || break
      if [ -f "$CACERT" ] && curl -s --cacert "$CACERT" "$ADDR/healthz" >/dev/null 2>&1; then
        export OWNKEY_ADDR=$ADDR OWNKEY_CACERT=$CACERT
        return 0
      fi
      sleep 0.05
    done
    stop_daemon
  done
  echo "cannot start ownkeyd: $(cat "$dir/daemon.log")" >&2
  exit 1
}

# wait_state TENANT STATE SECONDS: polls tenant show until its state is STATE.
wait_state() {
  local deadline=$((SECONDS + $3))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$("$OWNKEY" tenant show "$1" --output json 2>/dev/null | jq -r .state)" = "$2" ] && return 0
    sleep 0.5
  done
  return 1
}

"$OWNKEYD_BIN" init --data-dir "$T/v" --dev --output json >init.json 2>init.err || { cat init.err >&2; exit 1; }
ADMIN=$(jq -r .admin_token init.json)
export OWNKEY_TOKEN=$ADMIN
start_daemon "$T/v"

# --- tenants -----------------------------------------------------------------------------------------
check "tenant create" bash -c "'$OWNKEY' tenant create t1 >create.txt"
check "create prints the tenant" test "$(field state <create.txt)" = active
"$OWNKEY" tenant show t1 --output json >show.json
check "show --output json: active" test "$(jq -r .state show.json)" = active
check "show --output json: the name" test "$(jq -r .name show.json)" = t1
curl -s --cacert "$CACERT" -H "Authorization: Bearer $ADMIN" "$ADDR/data/v1/tenants/t1" >api.json
check "show --output json is the API's object" test "$(jq -cS . show.json)" = "$(jq -cS . api.json)"
check "show table" bash -c "'$OWNKEY' tenant show t1 | grep -q '^state  *active'"
expect_fail 11 "Conflict" "$OWNKEY" tenant create t1
expect_fail 10 "TenantNotFound" "$OWNKEY" tenant show nosuch
check "tenant create t4" "$OWNKEY" tenant create t4
check "tenant list" bash -c "'$OWNKEY' tenant list | cut -f1 | grep -qx t1 && '$OWNKEY' tenant list | cut -f1 | grep -qx t4"
check "tenant list json" bash -c "'$OWNKEY' tenant list --output json | jq -e . >/dev/null"

# --- put and get ---------------------------------------------------------------------------------------
: >empty.bin
echo "hello, tenant" >small.txt
head -c $((5 * 1024 * 1024 + 12345)) /dev/urandom >big.bin
check "put empty" "$OWNKEY" put t1 empty -i empty.bin
check "get empty" "$OWNKEY" get t1 empty -o empty.out
check "empty round trip" cmp -s empty.bin empty.out
check "put small" "$OWNKEY" put t1 small.txt -i small.txt --content-type text/plain --meta owner=ops --meta Color=blue
check "get small" "$OWNKEY" get t1 small.txt -o small.out
check "small round trip" cmp -s small.txt small.out
check "get -o mode 0600" test "$(stat -c %a small.out)" = 600
check "put big" "$OWNKEY" put t1 big.bin -i big.bin
check "get big" "$OWNKEY" get t1 big.bin -o big.out
check "big round trip (sha256)" test "$(sha big.bin)" = "$(sha big.out)"
check "no temporary files left" bash -c '! compgen -G "*.tmp.*"'
check "put --output json" bash -c "'$OWNKEY' put t1 small2 -i small.txt --output json | jq -e .name >/dev/null"
check "put from a pipe (chunked)" bash -c "cat big.bin | '$OWNKEY' put t1 piped -i -"
check "get to stdout" bash -c "'$OWNKEY' get t1 piped -o - | sha256sum | cut -d' ' -f1 | grep -qx '$(sha big.bin)'"
check "get without -o writes stdout" bash -c "'$OWNKEY' get t1 small.txt | cmp -s - small.txt"
check "put replaces" bash -c "'$OWNKEY' put t1 small.txt -i empty.bin && '$OWNKEY' get t1 small.txt -o replaced.out && cmp -s replaced.out empty.bin"
check "put small again" "$OWNKEY" put t1 small.txt -i small.txt --content-type text/plain --meta owner=ops --meta Color=blue
for name in 'dir/sub/file.txt' 'with space & percent%25.bin' 'a/./b/../c' 'ünïcödé?#=+'; do
  check "put '$name'" "$OWNKEY" put t1 "$name" -i small.txt
  check "get '$name'" bash -c "'$OWNKEY' get t1 '$name' | cmp -s - small.txt"
done
check "the name is kept as given" bash -c "'$OWNKEY' ls t1 --prefix a/ | cut -f1 | grep -qxF 'a/./b/../c'"
expect_fail 10 "ObjectNotFound" "$OWNKEY" get t1 nosuch -o never.out
expect_fail 10 "TenantNotFound" "$OWNKEY" get nosuch small.txt -o never.out
expect_fail 10 "TenantNotFound" "$OWNKEY" put nosuch x -i small.txt
expect_fail 3 "cannot open" "$OWNKEY" put t1 x -i no-such-file
check "nothing written on failure" test ! -e never.out

# --- ranges ------------------------------------------------------------------------------------------
check "--range A-B" bash -c "'$OWNKEY' get t1 big.bin --range 100000-299999 -o r1.out && cmp -s r1.out <(tail -c +100001 big.bin | head -c 200000)"
check "--range across frames" bash -c "'$OWNKEY' get t1 big.bin --range 65530-65545 | cmp -s - <(tail -c +65531 big.bin | head -c 16)"
check "--range A-" bash -c "'$OWNKEY' get t1 big.bin --range 5000000- | cmp -s - <(tail -c +5000001 big.bin)"
check "--range -N" bash -c "'$OWNKEY' get t1 big.bin --range -1000 | cmp -s - <(tail -c 1000 big.bin)"
check "--range of a small object" bash -c "'$OWNKEY' get t1 small.txt --range 0-4 | grep -qx hello"
expect_fail 2 "RangeNotSatisfiable" "$OWNKEY" get t1 small.txt --range 1000-2000 -o never.out
check "no output for a bad range" test ! -e never.out

# --- metadata ----------------------------------------------------------------------------------------
"$OWNKEY" head t1 small.txt >head.txt
check "head size" test "$(field size <head.txt)" = "$(stat -c %s small.txt)"
check "head content type" grep -q '^content type  *text/plain' head.txt
"$OWNKEY" head t1 small.txt --output json >head.json
check "head json" test "$(jq -r '(.size|tostring) + " " + .content_type' head.json)" = "$(stat -c %s small.txt) text/plain"
check "head meta owner" grep -q '^meta owner  *ops$' head.txt
check "head meta color (lowercased key)" grep -q '^meta color  *blue$' head.txt
check "head json meta" test "$(jq -r .meta.owner head.json)" = ops
check "default content type" bash -c "'$OWNKEY' head t1 big.bin --output json | jq -r .content_type | grep -q '^application/octet-stream'"
expect_fail 10 "" "$OWNKEY" head t1 nosuch

# --- ls across pages, rm -----------------------------------------------------------------------------
for i in $(seq -w 1 40); do printf 'object %s\n' "$i" >"o$i"; done
seq -w 1 40 | xargs -P 2 -I{} "$OWNKEY" put t1 "page/{}" -i "o{}" -q >/dev/null 2>put.err
check "40 puts" test ! -s put.err
check "ls --prefix across pages" bash -c "test \$('$OWNKEY' ls t1 --prefix page/ --page-size 7 | wc -l) -eq 40"
check "ls in name order" bash -c "'$OWNKEY' ls t1 --prefix page/ --page-size 7 | cut -f1 | sort -c"
check "ls sizes" bash -c "'$OWNKEY' ls t1 --prefix page/0 --page-size 3 | cut -f2 | sort -u | grep -qx 10"
check "ls json merges the pages" bash -c "test \$('$OWNKEY' ls t1 --prefix page/ --page-size 6 --output json | jq '.objects | length') -eq 40"
ALL=$("$OWNKEY" ls t1 | wc -l)
check "ls without a prefix (one page)" test "$ALL" -eq 49 # empty small.txt big.bin small2 piped, 4 names, 40
check "ls one object per page" test "$("$OWNKEY" ls t1 --page-size 1 | wc -l)" -eq "$ALL"
check "rm" "$OWNKEY" rm t1 page/03
expect_fail 10 "ObjectNotFound" "$OWNKEY" get t1 page/03 -o never.out
expect_fail 10 "ObjectNotFound" "$OWNKEY" rm t1 page/03
check "ls after rm" bash -c "test \$('$OWNKEY' ls t1 --prefix page/ --page-size 7 | wc -l) -eq 39"
check "tenant show counts objects" test "$("$OWNKEY" tenant show t1 --output json | jq -r .objects)" -eq $((ALL - 1))

# --- rekey -------------------------------------------------------------------------------------------
GEN=$("$OWNKEY" tenant show t1 --output json | jq -r .tk_generation)
check "rekey --wait" bash -c "'$OWNKEY' tenant rekey t1 --wait >rekey.txt 2>rekey.err"
check "rekey --wait ends done" bash -c "grep -q '^rekey  *done' rekey.txt"
check "the generation moved" test "$("$OWNKEY" tenant show t1 --output json | jq -r .tk_generation)" -gt "$GEN"
check "objects read after rekey" bash -c "'$OWNKEY' get t1 big.bin | cmp -s - big.bin"
check "rekey --reencrypt --wait (json)" bash -c "'$OWNKEY' tenant rekey t1 --reencrypt --wait --output json | jq -e . >/dev/null"
check "objects read after re-encryption" bash -c "'$OWNKEY' get t1 big.bin | cmp -s - big.bin && '$OWNKEY' get t1 page/40 | cmp -s - o40"
if script -qec true /dev/null >/dev/null 2>&1; then
  # a terminal: the progress bar, and erasure confirmed by typing the name
  check "rekey --wait on a terminal" bash -c "script -qec \"'$OWNKEY' tenant rekey t1 --wait\" /dev/null </dev/null | tr -d '\\r' | grep -q '^rekey  *done'"
  check "objects read after rekey (terminal)" bash -c "'$OWNKEY' get t1 page/01 | cmp -s - o01"
  printf 'wrong\n' | script -qec "'$OWNKEY' tenant delete t4" /dev/null >confirm.txt 2>&1
  check "a wrong name erases nothing" bash -c "grep -q 'not confirmed' confirm.txt && '$OWNKEY' tenant show t4"
  printf 't4\n' | script -qec "'$OWNKEY' tenant delete t4" /dev/null >confirm.txt 2>&1
  check "the typed name confirms" bash -c "! '$OWNKEY' tenant show t4 2>/dev/null"
fi
expect_fail 10 "TenantNotFound" "$OWNKEY" tenant rekey nosuch

# --- delete ------------------------------------------------------------------------------------------
expect_fail 2 "give --yes" "$OWNKEY" tenant delete t1
check "still there without --yes" "$OWNKEY" tenant show t1
check "tenant delete --yes" "$OWNKEY" tenant delete t1 --yes
expect_fail 10 "TenantNotFound" "$OWNKEY" tenant show t1
expect_fail 10 "TenantNotFound" "$OWNKEY" get t1 small.txt -o never.out
check "gone from the list" bash -c "! '$OWNKEY' tenant list | cut -f1 | grep -qx t1"

# --- a customer key in the same vault ------------------------------------------------------------------
check "customer key" "$OWNKEY" key create cust --type RSA --size 2048
CUSTV=$("$OWNKEY" key show cust | field version)
check "customer identity" bash -c "'$OWNKEY' identity create custapp --output json >custapp.json"
CUSTTOKEN=$(jq -r .token custapp.json)
check "customer policy" "$OWNKEY" policy set custapp --keys cust --permissions get,wrapKey,unwrapKey
printf '%s\n' "$CUSTTOKEN" >cust.token
chmod 600 cust.token
check "create t2 with the customer key" bash -c "'$OWNKEY' tenant create t2 --customer-key '$ADDR/keys/cust' --customer-token-file cust.token --customer-cacert '$CACERT' >t2.txt"
"$OWNKEY" tenant show t2 --output json >t2.json
check "customer_kid names the version" bash -c "jq -r .customer_kid t2.json | grep -q '/keys/cust/$CUSTV\$'"
check "t2 active" test "$(jq -r .state t2.json)" = active
check "the token is never shown" bash -c "! grep -qF '$CUSTTOKEN' t2.txt t2.json"
check "put t2" "$OWNKEY" put t2 secret.bin -i big.bin
check "get t2" bash -c "'$OWNKEY' get t2 secret.bin | cmp -s - big.bin"
check "pinned form: --customer-token, --double" "$OWNKEY" tenant create t3 --customer-key "$ADDR/keys/cust" --customer-token "$CUSTTOKEN" --customer-cacert "$CACERT" --double
check "t3 round trip" bash -c "'$OWNKEY' put t3 x -i small.txt && '$OWNKEY' get t3 x | cmp -s - small.txt"
check "token from OWNKEY_CUSTOMER_TOKEN" env OWNKEY_CUSTOMER_TOKEN="$CUSTTOKEN" "$OWNKEY" tenant create t5 --customer-key "$ADDR/keys/cust" --customer-cacert "$CACERT"
expect_fail 2 "" "$OWNKEY" tenant create t6 --customer-key "$ADDR/keys/nokey" --customer-token-file cust.token --customer-cacert "$CACERT"
check "remove-key on t5" bash -c "'$OWNKEY' tenant remove-key t5 --output json | jq -e .name >/dev/null"
check "set-key on t5" bash -c "'$OWNKEY' tenant set-key t5 --customer-key '$ADDR/keys/cust' --customer-token-file cust.token --customer-cacert '$CACERT' | grep -q '^customer kid  *.*/keys/cust/$CUSTV'"

check "disable the customer key" "$OWNKEY" key update cust --enabled false
check "t2 locks within the cache TTL" wait_state t2 locked 30
check "show names the cause" bash -c "'$OWNKEY' tenant show t2 | grep -q '^reason  *[A-Za-z]'"
expect_fail 12 "TenantLocked" "$OWNKEY" get t2 secret.bin -o never.out
check "nothing written for a locked tenant" test ! -e never.out
check "enable the customer key" "$OWNKEY" key update cust --enabled true
check "t2 unlocks by itself" wait_state t2 active 60
check "get t2 after unlock" bash -c "'$OWNKEY' get t2 secret.bin | cmp -s - big.bin"
check "the vault's audit log has no customer token" bash -c "! grep -qF '$CUSTTOKEN' '$T/v/audit.log'"
stop_daemon

echo "data CLI tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
