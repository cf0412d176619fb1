#!/usr/bin/env bash
# End-to-end test of HSM auto-unseal: `ownkeyd init --pkcs11 URI` with an AES key in a SoftHSM2 token made
# in a temporary directory, then `ownkeyd serve` comes up unsealed (operator status: seal kind pkcs11) and
# a key made before a restart still works; with the token moved away the daemon starts sealed and says
# why, and once it is back the daemon's own retry (--unseal-retry 1) unseals it; an operator's seal stays
# until `ownkey operator unseal --auto`; pin-value is refused by init; the PIN is in no log or output.
# Skipped (77) without SoftHSM2 or ownkeyd. Needs OWNKEY_BIN and OWNKEYD_BIN (set by ctest).
set -uo pipefail
MODULE=/usr/lib/softhsm/libsofthsm2.so
command -v softhsm2-util >/dev/null 2>&1 && [ -r "$MODULE" ] || { echo "softhsm2 not installed: skipped"; exit 77; }
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
OWNKEY=${OWNKEY_BIN:?OWNKEY_BIN must point at the ownkey binary}
T=$(mktemp -d)
trap 'stop_daemon; rm -rf "$T"' EXIT
cd "$T" || exit 1
PIN=Xq52718zW # distinctive: the test greps logs and files for it

mkdir tokens
cat >softhsm2.conf <<CONF
directories.tokendir = $T/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF=$T/softhsm2.conf
softhsm2-util --init-token --free --label seal-test --so-pin 87654321 --pin $PIN >/dev/null || { bad "init token"; exit 1; }
head -c 256 /dev/urandom | tr -d '\000\n\r' | head -c 32 >aes.key
softhsm2-util --import aes.key --aes --token seal-test --label seal-kek --id 01 --pin $PIN >/dev/null || bad "import AES"
rm -f aes.key
printf '%s\n' $PIN >pin
URI="pkcs11:token=seal-test;object=seal-kek?module-path=$MODULE&pin-source=file:$T/pin"

check "init refuses pin-value" bash -c "! '$OWNKEYD_BIN' init --data-dir '$T/refused' \
  --pkcs11 'pkcs11:token=seal-test;object=seal-kek?module-path=$MODULE&pin-value=$PIN' 2>err.txt && grep -q pin-source err.txt && [ ! -e '$T/refused' ]"
"$OWNKEYD_BIN" init --data-dir "$T/v" --pkcs11 "$URI" --output json >init.json 2>init.err || bad "init --pkcs11: $(cat init.err)"
TOKEN=$(jq -r .admin_token init.json)
check "init says pkcs11" test "$(jq -r .seal_kind init.json)" = pkcs11

start_daemon "$T/v" --unseal-retry 1 || exit 1
export OWNKEY_ADDR=$URL OWNKEY_CACERT=$CACERT OWNKEY_TOKEN=$TOKEN
check "serve comes up unsealed" bash -c "'$OWNKEY' operator status | grep -q '^sealed  *false'"
check "status shows seal kind pkcs11" bash -c "'$OWNKEY' operator status | grep -q '^seal kind  *pkcs11'"
check "status names the token key" bash -c "'$OWNKEY' operator status --output json | jq -e '.hsm_key | startswith(\"pkcs11:token=seal-test\")' >/dev/null"
expect 200 POST "/keys/k1/create?api-version=7.4" '{"kty":"oct","key_size":256}'
expect 200 POST "/keys/k1//encrypt?api-version=7.4" '{"alg":"A256GCM","value":"aGVsbG8gaHNtIHNlYWw"}'
CT=$BODY
stop_daemon

# The token away: the daemon starts sealed and tells why; back: its retry unseals it by itself.
TOKDIR=$(find tokens -mindepth 1 -maxdepth 1 -type d | head -n 1)
mv "$TOKDIR" away
start_daemon "$T/v" --unseal-retry 1 || exit 1
export OWNKEY_ADDR=$URL
check "token away: sealed" bash -c "'$OWNKEY' operator status | grep -q '^sealed  *true'"
check "token away: status says why" bash -c "'$OWNKEY' operator status | grep -q '^seal error .*token not present'"
expect 503 POST "/keys/k1//decrypt?api-version=7.4" "$(jq -c '{alg:"A256GCM", value, iv, tag}' <<<"$CT")"
mv away "$TOKDIR"
for _ in $(seq 1 60); do
  "$OWNKEY" operator status --output json | jq -e '.sealed == false' >/dev/null 2>&1 && break
  sleep 0.2
done
check "token back: the daemon unsealed itself" bash -c "'$OWNKEY' operator status | grep -q '^sealed  *false'"
expect 200 POST "/keys/k1//decrypt?api-version=7.4" "$(jq -c '{alg:"A256GCM", value, iv, tag}' <<<"$CT")"
check "same master key: the old ciphertext opens" test "$(jqr .value)" = "aGVsbG8gaHNtIHNlYWw"

# An operator's seal stays (the retry has stopped) until unseal --auto.
check "operator seal" bash -c "'$OWNKEY' operator seal | grep -q '^sealed  *true'"
sleep 1.5
check "sealed stays sealed" bash -c "'$OWNKEY' operator status | grep -q '^sealed  *true'"
check "unseal --auto" bash -c "env -u OWNKEY_TOKEN '$OWNKEY' operator unseal --auto | grep -q '^sealed  *false'"
stop_daemon

check "the PIN is in no log or output" bash -c "! grep -r -q -a '$PIN' '$T/v' init.json init.err err.txt"
echo "test_vault_seal_pkcs11: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
