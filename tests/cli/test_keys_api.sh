#!/usr/bin/env bash
# Integration tests of ownkeyd over real HTTPS with curl: the 401 challenge, api-version, every keys API
# operation with its errors (nothing changed on a refusal), the permission matrix (each operation refused
# to an identity lacking exactly its permission, with an audit line), Shamir seal/unseal, restart
# persistence, audit verification of an intact and a tampered log, the body limit, health and metrics,
# the TLS versions and key exchange groups, the threads' scheduling policy (--sched).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/daemon_lib.sh"
T=$(mktemp -d)
trap 'stop_daemon; rm -rf "$T"' EXIT
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
unb64url() { local s; s=$(tr -- '-_' '+/'); while [ $(( ${#s} % 4 )) -ne 0 ]; do s="$s="; done; base64 -d <<<"$s"; }
V="api-version=7.5"

D=$T/vault
"$OWNKEYD_BIN" init --data-dir "$D" --dev --output json >"$T/init.json" 2>/dev/null || { echo "init failed"; exit 1; }
TOKEN=$(jq -r .admin_token "$T/init.json")
start_daemon "$D" || exit 1

# --- authentication and api-version -----------------------------------------------------------------
hdrs=$(curl -s -D - -o /dev/null --cacert "$CACERT" -X POST -H 'Content-Length: 0' "$URL/keys/k/create?$V")
check "401 without a token" grep -q "^HTTP/[0-9.]* 401" <<<"$hdrs"
check "challenge header" grep -qiE '^www-authenticate: Bearer authorization="[^"]+", resource="https://[^"]+"' <<<"$hdrs"
expect 401 GET "/keys?$V" "" "okt_not-a-real-token"
check "401 body shape" test "$(jqr .error.code)" = Unauthorized
expect 400 GET "/keys"
check "missing api-version named" grep -q "api-version" <<<"$BODY"
expect 400 GET "/keys?api-version=1.0"
expect 200 GET "/keys?api%2Dversion=2025-07-01"
for v in 7.4 7.5 7.6 2025-07-01; do expect 200 GET "/keys?api-version=$v"; done

# --- create, get ------------------------------------------------------------------------------------
expect 200 POST "/keys/rsa1/create?$V" '{"kty":"RSA","key_size":2048,"attributes":{}}'
RSA_VER=$(jqr .key.kid | sed 's#.*/##')
check "kid names host and version" grep -qE "^$URL/keys/rsa1/[0-9a-f]{32}$" <<<"$(jqr .key.kid)"
check "no private RSA members" test "$(jq '.key | has("d") or has("p") or has("q")' <<<"$BODY")" = false
check "recoveryLevel" test "$(jqr .attributes.recoveryLevel)" = "Recoverable+Purgeable"
expect 200 POST "/keys/ec1/create?$V" '{"kty":"EC","crv":"P-256"}'
check "EC public point" test "$(jqr .key.crv)" = P-256
expect 200 POST "/keys/oct1/create?$V" '{"kty":"oct","key_size":256}'
check "oct key has no k" test "$(jq '.key | has("k")' <<<"$BODY")" = false
expect 200 GET "/keys/rsa1/?$V"
expect 200 GET "/keys/rsa1/$RSA_VER?$V"
expect 200 GET "/keys/rsa1?$V"
expect 404 GET "/keys/nope/?$V"
check "404 code" test "$(jqr .error.code)" = KeyNotFound
expect 404 GET "/keys/rsa1/0123456789abcdef0123456789abcdef?$V"

# --- bad input changes nothing ------------------------------------------------------------------------
expect 400 POST "/keys/bad1/create?$V" '{"kty":'
expect 400 POST "/keys/bad1/create?$V" '{"kty":"RSA","key_size":1000}'
expect 400 POST "/keys/bad1/create?$V" '{"kty":"DSA"}'
expect 400 POST "/keys/bad1/create?$V" '{"kty":"RSA","key_ops":["fly"]}'
expect 404 GET "/keys/bad1/?$V"
expect 400 POST "/keys/bad_name!/create?$V" '{"kty":"RSA"}'

# --- cryptographic operations ------------------------------------------------------------------------
DEK=$(head -c 32 /dev/urandom | b64url)
expect 200 POST "/keys/oct1//wrapkey?$V" "{\"alg\":\"A256KW\",\"value\":\"$DEK\"}"
WRAPPED=$(jqr .value)
expect 200 POST "/keys/oct1//unwrapkey?$V" "{\"alg\":\"A256KW\",\"value\":\"$WRAPPED\"}"
check "A256KW round trip" test "$(jqr .value)" = "$DEK"
expect 400 POST "/keys/oct1//wrapkey?$V" "{\"alg\":\"RSA-OAEP\",\"value\":\"$DEK\"}"
expect 400 POST "/keys/oct1//unwrapkey?$V" '{"alg":"A256KW","value":"!!not base64!!"}'
expect 400 POST "/keys/oct1//unwrapkey?$V" "{\"alg\":\"A256KW\",\"value\":\"$(head -c 40 /dev/zero | b64url)\"}"
expect 200 POST "/keys/oct1//encrypt?$V" '{"alg":"A256GCM","value":"aGVsbG8gd29ybGQ","aad":"Y3R4"}'
GCM=$BODY
expect 200 POST "/keys/oct1//decrypt?$V" "$(jq -c '{alg:"A256GCM", value:.value, iv:.iv, tag:.tag, aad:"Y3R4"}' <<<"$GCM")"
check "A256GCM round trip" test "$(jqr .value)" = aGVsbG8gd29ybGQ
expect 400 POST "/keys/oct1//decrypt?$V" "$(jq -c '{alg:"A256GCM", value:.value, iv:.iv, tag:.tag, aad:"eHh4"}' <<<"$GCM")"
for alg in RSA-OAEP RSA-OAEP-256 RSA1_5; do
  expect 200 POST "/keys/rsa1/$RSA_VER/encrypt?$V" "{\"alg\":\"$alg\",\"value\":\"aGVsbG8\"}"
  expect 200 POST "/keys/rsa1/$RSA_VER/decrypt?$V" "{\"alg\":\"$alg\",\"value\":\"$(jqr .value)\"}"
  check "$alg round trip" test "$(jqr .value)" = aGVsbG8
done
DIGEST=$(printf 'hello' | openssl dgst -sha256 -binary | b64url)
for pair in "ec1 ES256" "rsa1 RS256" "rsa1 PS256"; do
  set -- $pair
  expect 200 POST "/keys/$1//sign?$V" "{\"alg\":\"$2\",\"value\":\"$DIGEST\"}"
  SIG=$(jqr .value)
  expect 200 POST "/keys/$1//verify?$V" "{\"alg\":\"$2\",\"digest\":\"$DIGEST\",\"value\":\"$SIG\"}"
  check "$2 verifies" test "$(jqr .value)" = true
  OTHER=$(printf 'other' | openssl dgst -sha256 -binary | b64url)
  expect 200 POST "/keys/$1//verify?$V" "{\"alg\":\"$2\",\"digest\":\"$OTHER\",\"value\":\"$SIG\"}"
  check "$2 refuses another digest" test "$(jqr .value)" = false
done
expect 400 POST "/keys/ec1//sign?$V" "{\"alg\":\"RS256\",\"value\":\"$DIGEST\"}"
expect 400 POST "/keys/ec1//sign?$V" '{"alg":"ES256","value":"AAAA"}'

# --- lifecycle: disable, key_ops, rotate, versions ---------------------------------------------------------
expect 200 PATCH "/keys/oct1/?$V" '{"attributes":{"enabled":false},"tags":{"team":"payments"}}'
check "tags stored" test "$(jqr .tags.team)" = payments
expect 403 POST "/keys/oct1//wrapkey?$V" "{\"alg\":\"A256KW\",\"value\":\"$DEK\"}"
expect 200 PATCH "/keys/oct1/?$V" '{"attributes":{"enabled":true}}'
expect 200 POST "/keys/signonly/create?$V" '{"kty":"RSA","key_ops":["sign","verify"]}'
expect 403 POST "/keys/signonly//encrypt?$V" '{"alg":"RSA-OAEP-256","value":"aGVsbG8"}'
expect 200 POST "/keys/expired/create?$V" "{\"kty\":\"oct\",\"attributes\":{\"exp\":$(( $(date +%s) - 10 ))}}"
expect 403 POST "/keys/expired//wrapkey?$V" "{\"alg\":\"A256KW\",\"value\":\"$DEK\"}"
expect 200 POST "/keys/rsa1/rotate?$V"
RSA_VER2=$(jqr .key.kid | sed 's#.*/##')
check "rotate makes a new version" test "$RSA_VER2" != "$RSA_VER"
expect 200 GET "/keys/rsa1/versions?$V"
check "two versions" test "$(jq '.value | length' <<<"$BODY")" = 2
expect 200 GET "/keys/rsa1/?$V"
check "latest is the rotated version" test "$(jqr .key.kid | sed 's#.*/##')" = "$RSA_VER2"

# --- paging ---------------------------------------------------------------------------------------------------
expect 200 GET "/keys?$V&maxresults=1"
names=$(jq -r '.value[].kid' <<<"$BODY")
next=$(jqr .nextLink)
pages=1
while [ "$next" != null ] && [ $pages -lt 20 ]; do
  expect 200 GET "${next#$URL}"
  names="$names $(jq -r '.value[].kid' <<<"$BODY")"
  next=$(jqr .nextLink)
  pages=$((pages + 1))
done
check "paging visits every key once" test "$(tr ' ' '\n' <<<"$names" | grep -c .)" = 5
expect 400 GET "/keys?$V&maxresults=26"
expect 400 GET "/keys?$V&\$skiptoken=!!!"

# --- rotation policy, random ------------------------------------------------------------------------------------
expect 200 PUT "/keys/rsa1/rotationpolicy?$V" '{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}},{"trigger":{"timeBeforeExpiry":"P7D"},"action":{"type":"Notify"}}],"attributes":{"expiryTime":"P90D"}}'
expect 200 GET "/keys/rsa1/rotationpolicy?$V"
check "policy stored" test "$(jqr '.lifetimeActions[0].trigger.timeAfterCreate') $(jqr .attributes.expiryTime)" = "P30D P90D"
expect 400 PUT "/keys/rsa1/rotationpolicy?$V" '{"lifetimeActions":[{"trigger":{"timeAfterCreate":"30 days"},"action":{"type":"Rotate"}}]}'
expect 200 POST "/rng?$V" '{"count":32}'
check "32 random bytes" test "$(jqr .value | unb64url | wc -c)" = 32
expect 400 POST "/rng?$V" '{"count":0}'

# --- delete, recover, purge, backup, restore -------------------------------------------------------------------
expect 200 POST "/keys/ec1/backup?$V"
BLOB=$(jqr .value)
expect 200 DELETE "/keys/ec1?$V"
check "deleted bundle" test "$(jqr .recoveryId)" = "$URL/deletedkeys/ec1"
expect 404 GET "/keys/ec1/?$V"
expect 200 GET "/deletedkeys/ec1?$V"
expect 200 GET "/deletedkeys?$V"
check "listed as deleted" grep -q "ec1" <<<"$BODY"
expect 409 POST "/keys/ec1/create?$V" '{"kty":"EC"}'
expect 200 POST "/deletedkeys/ec1/recover?$V"
expect 200 GET "/keys/ec1/?$V"
expect 200 DELETE "/keys/ec1?$V"
expect 204 DELETE "/deletedkeys/ec1?$V"
expect 404 GET "/deletedkeys/ec1?$V"
expect 200 POST "/keys/restore?$V" "{\"value\":\"$BLOB\"}"
expect 200 GET "/keys/ec1/?$V"
expect 409 POST "/keys/restore?$V" "{\"value\":\"$BLOB\"}"
expect 400 POST "/keys/restore?$V" '{"value":"AAAA"}'

# --- import -------------------------------------------------------------------------------------------------------
"$OWNKEY_BIN" keygen --type rsa --bits 2048 -o "$T/imp.jwk" 2>/dev/null
expect 200 PUT "/keys/imported?$V" "{\"key\":$(cat "$T/imp.jwk"),\"attributes\":{\"enabled\":true}}"
check "imported reply has no private key" test "$(jq '.key | has("d")' <<<"$BODY")" = false
expect 400 PUT "/keys/imported2?$V" '{"key":{"kty":"RSA","n":"AQAB"}}'
expect 404 GET "/keys/imported2/?$V"

# --- body limit, health, metrics ----------------------------------------------------------------------------------
head -c 1200000 /dev/zero | tr '\0' 'a' >"$T/big.json"
big_status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CACERT" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' --data-binary @"$T/big.json" "$URL/keys/big/create?$V")
check "413 past the body limit" test "$big_status" = 413
check "healthz" curl -sf --cacert "$CACERT" "$URL/healthz" -o /dev/null
metrics=$(curl -s --cacert "$CACERT" "$URL/metrics")
check "metrics: keys gauge" grep -q '^ownkey_vault_keys ' <<<"$metrics"
check "metrics: requests counter" grep -q 'ownkey_http_requests_total{' <<<"$metrics"
# TLS: an OpenSSL client's X25519 key share is taken as sent (one ServerHello, no HelloRetryRequest and
# its extra round trip); a client offering only P-256 still connects; TLS 1.2 still works.
hello=$(openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CACERT" -msg </dev/null 2>&1)
check "TLS 1.3 with X25519, no HelloRetryRequest" test "$(grep -c 'ServerHello$' <<<"$hello") $(grep -o 'Server Temp Key: X25519' <<<"$hello")" = "1 Server Temp Key: X25519"
check "TLS: a P-256-only client connects" grep -q "Server Temp Key: ECDH, prime256v1" \
  <<<"$(openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CACERT" -groups P-256 </dev/null 2>&1)"
check "TLS 1.2 still served" grep -q "Verify return code: 0" \
  <<<"$(openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CACERT" -tls1_2 </dev/null 2>&1)"
check "TLS 1.1 refused" bash -c "! openssl s_client -connect 127.0.0.1:$PORT -tls1_1 </dev/null >/dev/null 2>&1"

# --- permission matrix ---------------------------------------------------------------------------------------------
expect 200 POST "/keys/gone/create?$V" '{"kty":"oct"}'
expect 200 DELETE "/keys/gone?$V"
OCT_JWK='{"kty":"oct","k":"'$(head -c 32 /dev/urandom | b64url)'"}'
expect 200 POST "/keys/oct1//encrypt?$V" '{"alg":"A256GCM","value":"aGk"}'
GCM=$BODY
expect 200 POST "/keys/ec1//sign?$V" "{\"alg\":\"ES256\",\"value\":\"$DIGEST\"}"
ECSIG=$(jqr .value)
expect 200 POST "/keys/oct1/backup?$V"
OCT_BLOB=$(jqr .value)
ALL_PERMS=(get list create update import delete recover purge backup restore rotate getrotationpolicy
           setrotationpolicy encrypt decrypt wrapKey unwrapKey sign verify admin)
matrix() { # PERM METHOD PATH BODY
  local perm=$1 method=$2 path=$3 body=${4:-} who="lack-$(tr 'A-Z' 'a-z' <<<"$1")" granted
  granted=$(printf '%s\n' "${ALL_PERMS[@]}" | grep -vx "$perm" | jq -R . | jq -sc .)
  expect 200 POST "/ownkey/v1/identities" "{\"name\":\"$who\"}"
  local tok; tok=$(jqr .token)
  expect 200 PUT "/ownkey/v1/identities/$who/policies" "{\"keys\":\"*\",\"permissions\":$granted}"
  expect 403 "$method" "$path" "$body" "$tok"
  if ! jq -e --arg w "$who" 'select(.identity == $w and .status == 403)' "$D/audit.log" >/dev/null 2>&1; then
    bad "no audit line for the refused $perm call"
  else
    ok
  fi
}
matrix get GET "/keys/oct1/?$V"
matrix list GET "/keys?$V"
matrix create POST "/keys/pm-new/create?$V" '{"kty":"oct"}'
expect 404 GET "/keys/pm-new/?$V"
matrix update PATCH "/keys/oct1/?$V" '{"tags":{"team":"changed"}}'
expect 200 GET "/keys/oct1/?$V"
check "refused update changed nothing" test "$(jqr .tags.team)" = payments
matrix import PUT "/keys/pm-imp?$V" "{\"key\":$OCT_JWK}"
expect 404 GET "/keys/pm-imp/?$V"
matrix delete DELETE "/keys/oct1?$V"
expect 200 GET "/keys/oct1/?$V"
matrix recover POST "/deletedkeys/gone/recover?$V"
matrix purge DELETE "/deletedkeys/gone?$V"
expect 200 GET "/deletedkeys/gone?$V"
matrix backup POST "/keys/oct1/backup?$V"
matrix restore POST "/keys/restore?$V" "{\"value\":\"$OCT_BLOB\"}"
matrix rotate POST "/keys/oct1/rotate?$V"
expect 200 GET "/keys/oct1/versions?$V"
check "refused rotate changed nothing" test "$(jq '.value | length' <<<"$BODY")" = 1
matrix getrotationpolicy GET "/keys/oct1/rotationpolicy?$V"
matrix setrotationpolicy PUT "/keys/oct1/rotationpolicy?$V" '{"lifetimeActions":[]}'
matrix encrypt POST "/keys/oct1//encrypt?$V" '{"alg":"A256GCM","value":"aGk"}'
matrix decrypt POST "/keys/oct1//decrypt?$V" "$(jq -c '{alg:"A256GCM", value:.value, iv:.iv, tag:.tag}' <<<"$GCM")"
matrix wrapKey POST "/keys/oct1//wrapkey?$V" "{\"alg\":\"A256KW\",\"value\":\"$DEK\"}"
matrix unwrapKey POST "/keys/oct1//unwrapkey?$V" "{\"alg\":\"A256KW\",\"value\":\"$WRAPPED\"}"
matrix sign POST "/keys/ec1//sign?$V" "{\"alg\":\"ES256\",\"value\":\"$DIGEST\"}"
matrix verify POST "/keys/ec1//verify?$V" "{\"alg\":\"ES256\",\"digest\":\"$DIGEST\",\"value\":\"$ECSIG\"}"
matrix admin POST "/ownkey/v1/identities" '{"name":"sneaky"}'

# A narrow policy: one key, two operations.
expect 200 POST "/ownkey/v1/identities" '{"name":"app"}'
APP=$(jqr .token)
expect 200 PUT "/ownkey/v1/identities/app/policies" '{"keys":"oct*","permissions":["wrapKey","unwrapKey"]}'
expect 200 POST "/keys/oct1//wrapkey?$V" "{\"alg\":\"A256KW\",\"value\":\"$DEK\"}" "$APP"
expect 403 POST "/keys/rsa1//encrypt?$V" '{"alg":"RSA-OAEP-256","value":"aGk"}' "$APP"
expect 403 GET "/keys/oct1/?$V" "" "$APP"
expect 200 DELETE "/ownkey/v1/identities/app/policies?keys=oct*"
expect 403 POST "/keys/oct1//wrapkey?$V" "{\"alg\":\"A256KW\",\"value\":\"$DEK\"}" "$APP"
expect 200 DELETE "/ownkey/v1/identities/app"
expect 401 GET "/keys?$V" "" "$APP"

# --- audit, restart ------------------------------------------------------------------------------------------------
expect 200 GET "/ownkey/v1/audit/verify"
check "audit intact" test "$(jqr .intact)" = true
check "no token in the audit log" bash -c "! grep -q '$TOKEN' '$D/audit.log'"
check "no key material in the audit log" bash -c "! grep -q '$DEK' '$D/audit.log'"
stop_daemon
start_daemon "$D" || exit 1
expect 200 GET "/keys/rsa1/$RSA_VER?$V"
expect 200 POST "/keys/oct1//unwrapkey?$V" "{\"alg\":\"A256KW\",\"value\":\"$WRAPPED\"}"
check "keys survive a restart" test "$(jqr .value)" = "$DEK"
# Scheduling policy of every thread (field 41 of /proc/PID/task/TID/stat): 3 = SCHED_BATCH, 0 = normal.
policies() { cat /proc/"$DAEMON_PID"/task/*/stat | awk '{print $41}' | sort -u | tr '\n' ' '; }
check "every thread of serve is SCHED_BATCH by default" test "$(policies)" = "3 "
stop_daemon
start_daemon "$D" --sched normal || exit 1
expect 200 POST "/keys/oct1//unwrapkey?$V" "{\"alg\":\"A256KW\",\"value\":\"$WRAPPED\"}"
check "--sched normal: every thread has the normal policy" test "$(policies)" = "0 "
stop_daemon
"$OWNKEYD_BIN" serve --data-dir "$D" --sched fast >/dev/null 2>&1
check "--sched takes batch or normal only (usage error, exit 2)" test $? = 2
sed -i '3s/"status":[0-9]*/"status":299/' "$D/audit.log"
start_daemon "$D" || exit 1
expect 200 GET "/ownkey/v1/audit/verify"
check "tampered audit line found" test "$(jqr .intact) $(jqr .first_bad_line)" = "false 3"
stop_daemon

# --- Shamir seal and unseal --------------------------------------------------------------------------------------------
S=$T/shamir
"$OWNKEYD_BIN" init --data-dir "$S" --shares 3 --threshold 2 --output json >"$T/shamir.json" 2>/dev/null
TOKEN=$(jq -r .admin_token "$T/shamir.json")
check "three shares printed" test "$(jq '.shares | length' "$T/shamir.json")" = 3
start_daemon "$S" || exit 1
expect 200 GET "/ownkey/v1/status" "" ""
check "starts sealed" test "$(jqr .sealed)" = true
expect 503 GET "/keys?$V"
check "sealed error code" test "$(jqr .error.code)" = VaultSealed
expect 200 POST "/ownkey/v1/unseal" "{\"share\":\"$(jq -r '.shares[0]' "$T/shamir.json")\"}" ""
check "one share is not enough" test "$(jqr .sealed) $(jqr .shares_submitted)" = "true 1"
expect 200 POST "/ownkey/v1/unseal" "{\"share\":\"$(jq -r '.shares[2]' "$T/shamir.json")\"}" ""
check "two shares unseal" test "$(jqr .sealed)" = false
expect 200 POST "/keys/after-unseal/create?$V" '{"kty":"oct"}'
expect 200 POST "/ownkey/v1/seal"
expect 503 GET "/keys/after-unseal/?$V"
expect 200 POST "/ownkey/v1/unseal" "{\"share\":\"$(jq -r '.shares[1]' "$T/shamir.json")\"}" ""
SHARE0=$(jq -r '.shares[0]' "$T/shamir.json")
FAKE="${SHARE0%%-*}-$(tr '0-9a-f' '1-9a-f0' <<<"${SHARE0#*-}")"   # same share number, other bytes
expect 400 POST "/ownkey/v1/unseal" "{\"share\":\"$FAKE\"}" ""
expect 200 GET "/ownkey/v1/status" "" ""
check "a wrong share set leaves it sealed" test "$(jqr .sealed)" = true
stop_daemon

# --- The daemon's rotation scheduler applies a rotation policy ------------------------------------------------------
TOKEN=$(jq -r .admin_token "$T/init.json")
ROTATION_INTERVAL=1 start_daemon "$D" || exit 1
expect 200 POST "/keys/sched1/create?$V" '{"kty":"oct"}'
expect 200 PUT "/keys/sched1/rotationpolicy?$V" \
  '{"lifetimeActions":[{"trigger":{"timeAfterCreate":"PT1S"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P30D"}}'
rotated=0
for _ in $(seq 1 50); do
  expect 200 GET "/keys/sched1/versions?$V"
  [ "$(jqr '.value | length')" -ge 2 ] && { rotated=1; break; }
  sleep 0.2
done
check "the scheduler rotated the key (timeAfterCreate PT1S)" test "$rotated" = 1
check "the scheduler's rotation is audited" grep -q '"identity":"scheduler","client":[^,]*,"operation":"rotate","key":"sched1"' "$D/audit.log"
stop_daemon

echo "keys api: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
