#!/usr/bin/env bash
# End-to-end test of bring-your-own-key with two daemons on 127.0.0.1, each with its own data directory
# (issue 4 §4): the customer's vault (--roles vault) and the provider's data service (--roles data, a short
# --key-cache-ttl). Covers every key source, validation of customer keys, enabling a customer key on a
# tenant that holds data (no file rewritten), rotation (unversioned followed, pinned kept), every cause of
# lock with its reason and the automatic unlock, double encryption with either key missing, Range reads,
# erasure by purging the customer key and by deleting the tenant, re-key with a crash in the middle, and
# restart persistence. Talks to the API with curl and jq.
set -uo pipefail
source "$(dirname "$0")/daemon_lib.sh"
command -v sqlite3 >/dev/null || { echo "skipped: needs sqlite3"; exit 77; }

TTL=2
T=$(mktemp -d)
C_PID="" P_PID=""
cleanup() {
  for p in $C_PID $P_PID; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
pass=0 fails=0
check() { # NAME CMD...
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); else echo "FAIL: $name"; fails=$((fails + 1)); fi
}

free_port() { echo $((20000 + RANDOM % 40000)); }
# start_node C|P: (re)starts a daemon on its fixed port.
start_node() {
  local n=$1 dir port log pid
  if [ "$n" = C ]; then dir=$T/c; port=$C_PORT; else dir=$T/p; port=$P_PORT; fi
  if [ "$n" = C ]; then
    "$OWNKEYD_BIN" serve --data-dir "$dir" --listen "127.0.0.1:$port" --roles vault 2>>"$dir.log" &
  else
    "$OWNKEYD_BIN" serve --data-dir "$dir" --listen "127.0.0.1:$port" --roles data --key-cache-ttl "$TTL" \
      --probe-max-backoff 1 2>>"$dir.log" &
  fi
  pid=$!
  for _ in $(seq 1 200); do
    curl -s --cacert "$dir/tls/cert.pem" "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ "$n" = C ]; then C_PID=$pid; else P_PID=$pid; fi
}
stop_node() { # C|P [KILL]
  local pid; if [ "$1" = C ]; then pid=$C_PID; C_PID=""; else pid=$P_PID; P_PID=""; fi
  kill "-${2:-TERM}" "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}
# capi C|P METHOD PATH [JSON] [TOKEN] -> sets ST and BODY
capi() {
  local n=$1 method=$2 path=$3 body=${4:-} token ca url
  if [ "$n" = C ]; then token=${5-$CT}; ca=$T/c/tls/cert.pem; url=$C_URL; else token=${5-$PT}; ca=$T/p/tls/cert.pem; url=$P_URL; fi
  local args=(-s -o "$T/body" -w '%{http_code}' --cacert "$ca" -X "$method" -H 'Content-Type: application/json')
  [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
  [ -n "$body" ] && args+=(--data-binary "$body")
  ST=$(curl "${args[@]}" "$url$path"); BODY=$(cat "$T/body")
}
V="api-version=7.5"
# put TENANT NAME FILE / get TENANT NAME OUT [RANGE] -> sets ST
put() { ST=$(curl -s -o "$T/putbody" -w '%{http_code}' --cacert "$T/p/tls/cert.pem" -H "Authorization: Bearer $PT" \
               -T "$3" "$P_URL/data/v1/tenants/$1/objects/$2"); }
get() {
  local args=(-s -o "$3" -w '%{http_code}' --cacert "$T/p/tls/cert.pem" -H "Authorization: Bearer $PT")
  [ -n "${4:-}" ] && args+=(-H "Range: bytes=$4")
  ST=$(curl "${args[@]}" "$P_URL/data/v1/tenants/$1/objects/$2")
}
tenant() { capi P GET "/data/v1/tenants/$1"; }
field() { jq -r "$1" <<<"$BODY"; }
# wait_state TENANT STATE [SECONDS]: polls the tenant's state (the lock bound is one TTL; allow slack).
wait_state() {
  local deadline=$((SECONDS + ${3:-20}))
  while [ $SECONDS -lt $deadline ]; do
    tenant "$1"; [ "$(field .state)" = "$2" ] && return 0
    sleep 0.3
  done
  echo "  $1: state $(field .state) reason $(field .reason_code): $(field .reason)"
  return 1
}
same_file() { cmp -s "$1" "$2"; }
key_version() { capi C GET "/keys/$1?$V"; field .key.kid | awk -F/ '{print $NF}'; }

# ---- the two daemons -----------------------------------------------------------------------------------------------
C_PORT=$(free_port); P_PORT=$(free_port)
C_URL="https://127.0.0.1:$C_PORT"; P_URL="https://127.0.0.1:$P_PORT"
"$OWNKEYD_BIN" init --data-dir "$T/c" --dev --output json >"$T/c.json" 2>/dev/null
printf 'provider passphrase for the e2e test' >"$T/pass"
"$OWNKEYD_BIN" init --data-dir "$T/p" --passphrase-file "$T/pass" --output json >"$T/p.json" 2>/dev/null
CT=$(jq -r .admin_token "$T/c.json"); PT=$(jq -r .admin_token "$T/p.json")
unseal_p() { capi P POST /ownkey/v1/unseal '{"passphrase":"provider passphrase for the e2e test"}' ""; }
start_node C; start_node P; unseal_p
check "provider unsealed" test "$ST" = 200
CA_JSON=$(jq -Rs . <"$T/c/tls/cert.pem")

# The customer: keys, and an identity for the provider holding only get, wrapKey, unwrapKey on them.
for k in k-rsa k-pin k-dbl k-erase k-exp k-del; do
  kty=RSA; [ "$k" = k-pin ] || [ "$k" = k-dbl ] && kty=oct
  capi C POST "/keys/$k/create?$V" "{\"kty\":\"$kty\"}"; check "create $k" test "$ST" = 200
done
capi C POST "/keys/k-ec/create?$V" '{"kty":"EC","crv":"P-256"}'
capi C POST "/keys/k-nowrap/create?$V" '{"kty":"RSA","key_ops":["encrypt","decrypt"]}'
capi C POST /ownkey/v1/identities '{"name":"provider"}'; CUST=$(field .token)
capi C PUT /ownkey/v1/identities/provider/policies '{"keys":"k-*","permissions":["get","wrapKey","unwrapKey"]}'
check "provider policy" test "$ST" = 200
capi C POST /ownkey/v1/identities '{"name":"weak"}'; WEAK=$(field .token)
capi C PUT /ownkey/v1/identities/weak/policies '{"keys":"k-*","permissions":["get"]}'
ck() { # URI [TOKEN] [CA_JSON] -> the customer_key JSON member
  echo "{\"uri\":\"$1\",\"token\":\"${2:-$CUST}\",\"ca_pem\":${3:-$CA_JSON}}"
}

head -c 300000 /dev/urandom >"$T/a"; head -c 70000 /dev/urandom >"$T/b"; : >"$T/empty"

# ---- service-managed tenant, Range reads ----------------------------------------------------------------------------
capi P PUT /data/v1/tenants/s1 '{}'; check "service tenant created" test "$ST" = 201
check "service key source" test "$(field .key_source)" = service
put s1 a "$T/a"; check "put a" test "$ST" = 201
put s1 b "$T/b"; check "put b" test "$ST" = 201
get s1 a "$T/out"; check "get a" same_file "$T/a" "$T/out"
get s1 a "$T/out" 65530-65545; check "range across a frame boundary 206" test "$ST" = 206
check "range bytes" same_file <(tail -c +65531 "$T/a" | head -c 16) "$T/out"
get s1 a "$T/out" -100; check "suffix range" same_file <(tail -c 100 "$T/a") "$T/out"
get s1 a "$T/out" 299990-; check "open range" same_file <(tail -c 10 "$T/a") "$T/out"
get s1 a "$T/out" 300000-300010; check "range past the end 416" test "$ST" = 416

# ---- customer keys: validation ----------------------------------------------------------------------------------------
bad_key() { # NAME JSON-customer-key EXPECTED-IN-MESSAGE
  capi P PUT "/data/v1/tenants/$1" "{\"customer_key\":$2}"
  check "$1 refused 400" test "$ST" = 400
  check "$1 says why ($3)" grep -qi "$3" <<<"$BODY"
  capi P GET "/data/v1/tenants/$1"; check "$1 not created" test "$ST" = 404
}
bad_key bad-ec "$(ck "$C_URL/keys/k-ec")" "EC\|type"
bad_key bad-missing "$(ck "$C_URL/keys/k-none")" "not found\|KeyNotFound"
bad_key bad-ops "$(ck "$C_URL/keys/k-nowrap")" "wrap"
bad_key bad-perm "$(ck "$C_URL/keys/k-rsa" "$WEAK")" "Forbidden\|permission\|wrap"
bad_key bad-ca "$(ck "$C_URL/keys/k-rsa" "$CUST" "$(jq -Rs . <"$T/p/tls/cert.pem")")" "TLS\|certificate\|reach\|unreachable"
bad_key bad-uri "$(ck "http://127.0.0.1:$C_PORT/keys/k-rsa")" "https"
bad_key bad-version "$(ck "$C_URL/keys/k-rsa/0123456789abcdef0123456789abcdef")" "not found\|KeyNotFound"

# ---- customer-managed tenant (unversioned URI) ----------------------------------------------------------------------
capi P PUT /data/v1/tenants/c1 "{\"customer_key\":$(ck "$C_URL/keys/k-rsa")}"
check "customer tenant created" test "$ST" = 201
check "customer key source" test "$(field .key_source)" = customer
V1=$(key_version k-rsa)
check "customer_kid names the version in use" test "$(field .customer_kid)" = "$C_URL/keys/k-rsa/$V1"
put c1 a "$T/a"; check "customer put" test "$ST" = 201
get c1 a "$T/out"; check "customer get" same_file "$T/a" "$T/out"

# ---- enabling a customer key on a tenant that holds data: only the TK is re-wrapped --------------------------------------
S1_UUID=$(sqlite3 "$T/p/data.db" "SELECT uuid FROM tenants WHERE name = 's1'")
(cd "$T/p/objects/$S1_UUID" && sha256sum * | sort) >"$T/s1.before"
PIN1=$(key_version k-pin)
capi P PUT /data/v1/tenants/s1/customer-key "$(ck "$C_URL/keys/k-pin/$PIN1")"
check "set-key on a non-empty tenant" test "$ST" = 200
tenant s1; check "s1 is customer-keyed now" test "$(field .key_source)" = customer
check "s1 pinned version" test "$(field .customer_kid)" = "$C_URL/keys/k-pin/$PIN1"
(cd "$T/p/objects/$S1_UUID" && sha256sum * | sort) >"$T/s1.after"
check "no object file rewritten" cmp -s "$T/s1.before" "$T/s1.after"
get s1 a "$T/out"; check "s1 data readable under the customer key" same_file "$T/a" "$T/out"

# ---- rotation: unversioned followed, pinned kept --------------------------------------------------------------------------
capi C POST "/keys/k-rsa/rotate?$V" ''; V2=$(key_version k-rsa)
capi C POST "/keys/k-pin/rotate?$V" ''; PIN2=$(key_version k-pin)
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ]; do tenant c1; [ "$(field .customer_kid)" = "$C_URL/keys/k-rsa/$V2" ] && break; sleep 0.3; done
check "unversioned URI follows the new version" test "$(field .customer_kid)" = "$C_URL/keys/k-rsa/$V2"
get c1 a "$T/out"; check "readable after rotation" same_file "$T/a" "$T/out"
capi C PATCH "/keys/k-rsa/$V1?$V" '{"attributes":{"enabled":false}}'
sleep $((TTL * 2)); tenant c1
check "old version disabled after re-wrap: still active" test "$(field .state)" = active
tenant s1; check "pinned URI stays on its version" test "$(field .customer_kid)" = "$C_URL/keys/k-pin/$PIN1"
capi P PUT /data/v1/tenants/s1/customer-key "$(ck "$C_URL/keys/k-pin/$PIN2")"
tenant s1; check "pinned moved by updating the URI" test "$(field .customer_kid)" = "$C_URL/keys/k-pin/$PIN2"
get s1 b "$T/out"; check "s1 readable on the new pinned version" same_file "$T/b" "$T/out"

# ---- every cause of lock, and the automatic unlock ----------------------------------------------------------------------
lock_cycle() { # CAUSE REASON_CODE BREAK-CMD FIX-CMD
  local cause=$1 code=$2
  eval "$3"
  check "$cause: locked within the bound" wait_state c1 locked 15
  check "$cause: reason $code" test "$(field .reason_code)" = "$code"
  check "$cause: since is set" test "$(field .since)" != null
  get c1 a "$T/out"; check "$cause: get refused 403" test "$ST" = 403
  check "$cause: TenantLocked code" grep -q TenantLocked "$T/out"
  put c1 z "$T/b"; check "$cause: put refused 403" test "$ST" = 403
  eval "$4"
  check "$cause: unlocked by itself" wait_state c1 active 20
  get c1 a "$T/out"; check "$cause: readable again" same_file "$T/a" "$T/out"
}
lock_cycle disabled KeyDisabled \
  'capi C PATCH "/keys/k-rsa/$V2?$V" "{\"attributes\":{\"enabled\":false}}"' \
  'capi C PATCH "/keys/k-rsa/$V2?$V" "{\"attributes\":{\"enabled\":true}}"'
lock_cycle permission Forbidden \
  'capi C DELETE "/ownkey/v1/identities/provider/policies?keys=k-*"' \
  'capi C PUT /ownkey/v1/identities/provider/policies "{\"keys\":\"k-*\",\"permissions\":[\"get\",\"wrapKey\",\"unwrapKey\"]}"'
lock_cycle expired KeyExpired \
  'capi C PATCH "/keys/k-rsa/$V2?$V" "{\"attributes\":{\"exp\":1000000000}}"' \
  'capi C PATCH "/keys/k-rsa/$V2?$V" "{\"attributes\":{\"exp\":4102444800}}"'
lock_cycle deleted KeyNotFound \
  'capi C DELETE "/keys/k-rsa?$V"' \
  'capi C POST "/deletedkeys/k-rsa/recover?$V" ""'
lock_cycle unreachable VaultUnreachable 'stop_node C' 'start_node C'
capi C GET "/ownkey/v1/audit/tail" >/dev/null 2>&1 || true
check "the customer's audit log shows failed unwraps" grep -q '"unwrapkey".*"status":40[0-9]' "$T/c/audit.log"

# ---- double encryption -------------------------------------------------------------------------------------------------
capi P PUT /data/v1/tenants/d1 "{\"customer_key\":$(ck "$C_URL/keys/k-dbl"),\"double\":true}"
check "double tenant created" test "$ST" = 201
check "double key source" test "$(field .key_source)" = double
put d1 a "$T/a"; get d1 a "$T/out"; check "double round trip" same_file "$T/a" "$T/out"
D=$(key_version k-dbl)
capi C PATCH "/keys/k-dbl/$D?$V" '{"attributes":{"enabled":false}}'
check "double: customer key missing -> locked" wait_state d1 locked 15
capi C PATCH "/keys/k-dbl/$D?$V" '{"attributes":{"enabled":true}}'
check "double: back when the customer key is back" wait_state d1 active 20
capi P POST /ownkey/v1/seal '' ; check "provider sealed" test "$ST" = 200
get d1 a "$T/out"; check "double: service key missing (sealed) -> refused 503" test "$ST" = 503
unseal_p; check "provider unsealed again" test "$ST" = 200
get d1 a "$T/out"; check "double: readable after unseal" same_file "$T/a" "$T/out"

# ---- erasure: purging the customer key --------------------------------------------------------------------------------
capi P PUT /data/v1/tenants/e1 "{\"customer_key\":$(ck "$C_URL/keys/k-erase")}"
put e1 a "$T/a"; check "e1 put" test "$ST" = 201
capi C DELETE "/keys/k-erase?$V"; capi C DELETE "/deletedkeys/k-erase?$V"
check "purge the customer key" test "$ST" = 204
check "purged key -> locked" wait_state e1 locked 15
check "purged: KeyNotFound" test "$(field .reason_code)" = KeyNotFound
stop_node P; start_node P; unseal_p
get e1 a "$T/out"; check "purged: still unreadable after a restart" test "$ST" = 403

# ---- erasure: deleting a tenant ----------------------------------------------------------------------------------------
capi P PUT /data/v1/tenants/x1 '{}'; put x1 a "$T/a"
X1_UUID=$(sqlite3 "$T/p/data.db" "SELECT uuid FROM tenants WHERE name = 'x1'")
capi P DELETE /data/v1/tenants/x1; check "tenant delete" test "$ST" = 204
tenant x1; check "deleted tenant is gone" test "$ST" = 404
check "its files are gone" test ! -e "$T/p/objects/$X1_UUID"
check "its rows are gone" test "$(sqlite3 "$T/p/data.db" "SELECT (SELECT COUNT(*) FROM tenant_keys WHERE tenant = 'x1') + (SELECT COUNT(*) FROM objects WHERE tenant = 'x1')")" = 0

# ---- re-key with a crash in the middle -----------------------------------------------------------------------------------
capi P PUT /data/v1/tenants/r1 '{}'
for i in $(seq 1 40); do put r1 "o$i" "$T/b"; done
check "r1 filled" test "$ST" = 201
stop_node P
# This run of the daemon stops its re-key worker after two batches of five: the job is mid-way when the
# daemon is killed.
export OWNKEY_DS_REKEY_BATCH=5 OWNKEY_DS_REKEY_MAX_BATCHES=2
start_node P; unseal_p
unset OWNKEY_DS_REKEY_BATCH OWNKEY_DS_REKEY_MAX_BATCHES
capi P POST /data/v1/tenants/r1/rekey '{"reencrypt":true}'; check "rekey started 202" test "$ST" = 202
for _ in $(seq 1 50); do capi P GET /data/v1/tenants/r1/rekey; [ "$(field .done)" = 10 ] && break; sleep 0.1; done
check "rekey mid-way at the crash (10 of 40)" test "$(field .done)/$(field .total)/$(field .state)" = 10/40/running
get r1 o1 "$T/out"; check "readable mid-way" same_file "$T/b" "$T/out"
stop_node P KILL
start_node P; unseal_p
check "rekey resumes and finishes" bash -c "for i in \$(seq 1 100); do
  s=\$(curl -s --cacert '$T/p/tls/cert.pem' -H 'Authorization: Bearer $PT' '$P_URL/data/v1/tenants/r1/rekey' | jq -r .state)
  [ \"\$s\" = done ] && exit 0; sleep 0.3; done; exit 1"
tenant r1; check "r1 on generation 2" test "$(field .tk_generation)" = 2
check "only the new TK is left" test "$(sqlite3 "$T/p/data.db" "SELECT COUNT(*) FROM tenant_keys WHERE tenant = 'r1'")" = 1
ok=1; for i in $(seq 1 40); do get r1 "o$i" "$T/out"; same_file "$T/b" "$T/out" || ok=0; done
check "every object reads back after the re-key" test $ok = 1

# ---- restart persistence ------------------------------------------------------------------------------------------------
stop_node P; start_node P; unseal_p
for t in s1 c1 d1; do get "$t" a "$T/out"; check "$t readable after restart" same_file "$T/a" "$T/out"; done
tenant c1; check "c1 active after restart" test "$(field .state)" = active

echo "data e2e: $pass passed, $fails failed"
[ "$fails" -eq 0 ]
