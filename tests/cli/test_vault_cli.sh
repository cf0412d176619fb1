#!/usr/bin/env bash
# End-to-end tests of the ownkey CLI against a real ownkeyd over HTTPS on 127.0.0.1: every key, identity,
# policy, operator and audit command; `ownkey encrypt --to https://…/keys/NAME` and decrypt with oct and
# RSA keys, across a rotation; a token without unwrapKey that can encrypt but not decrypt (exit 12); the
# documented exit codes; seal (exit 13), restart persistence, Shamir unseal; a tampered audit log.
# Needs OWNKEY_BIN and OWNKEYD_BIN (set by ctest); exits 77 (skipped) when ownkeyd is not built.
# Parses JSON with grep/sed only: no jq or python.
set -uo pipefail
if [ -z "${OWNKEYD_BIN:-}" ] || [ ! -x "$OWNKEYD_BIN" ]; then
  echo "skipped: ownkeyd not built"
  exit 77
fi
command -v curl >/dev/null || { echo "skipped: needs curl"; exit 77; }
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
  "$@" >out.txt 2>err.txt
  local rc=$?
  if [ "$rc" -ne "$code" ]; then bad "$* exited $rc, want $code ($(cat err.txt))"; return; fi
  if ! grep -q -- "$pattern" err.txt; then bad "$*: stderr '$(cat err.txt)' lacks '$pattern'"; return; fi
  if [ "$(wc -l <err.txt)" -ne 1 ]; then bad "$*: error is not one line: $(cat err.txt)"; return; fi
  ok
}

# json_str FILE MEMBER: the first string value of MEMBER in a JSON document.
json_str() { grep -o "\"$2\": *\"[^\"]*\"" "$1" | head -1 | sed 's/.*"\([^"]*\)"$/\1/'; }
# field NAME: the value of a "name: value" line of the CLI's record output on stdin.
field() { grep "^$1  " | head -1 | sed "s/^$1 *//"; }

# start_daemon DIR [PORT]: serves DIR on PORT (key URLs, and so envelopes, name the port) or a free high
# port; sets PORT, ADDR, CACERT and the OWNKEY_* variables.
start_daemon() {
  local dir=$1 want=${2:-} _try
  for _try in 1 2 3 4 5 6 7 8 9 10; do
    if [ -n "$want" ]; then PORT=$want; else PORT=$((20000 + RANDOM % 40000)); fi
    "$OWNKEYD_BIN" serve --data-dir "$dir" --listen "127.0.0.1:$PORT" 2>>"$dir/daemon.log" &
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
    [ -n "$want" ] && sleep 0.5
  done
  echo "cannot start ownkeyd: $(cat "$dir/daemon.log")" >&2
  exit 1
}

# --- a development vault -----------------------------------------------------------------------------
"$OWNKEYD_BIN" init --data-dir "$T/v1" --dev --output json >init.json 2>init.err || { cat init.err >&2; exit 1; }
ADMIN=$(json_str init.json admin_token)
[ -n "$ADMIN" ] || { echo "no admin_token in ownkeyd init --output json" >&2; exit 1; }
export OWNKEY_TOKEN=$ADMIN
start_daemon "$T/v1"

# --- usage and connection errors ---------------------------------------------------------------------
check "key --help" "$OWNKEY" key --help
for c in "key create" "key list" "key show" "key versions" "key update" "key delete" "key recover" "key purge" \
         "key backup" "key restore" "key rotate" "key rotation-policy get" "key rotation-policy set" "key wrap" \
         "key unwrap" "key encrypt" "key decrypt" "key sign" "key verify" "identity create" "identity list" \
         "identity delete" "identity token" "identity revoke-token" "policy set" "policy delete" "policy list" \
         "operator status" "operator seal" "operator unseal" "operator purge-protection" "audit verify" "audit tail"; do
  # shellcheck disable=SC2086
  check "$c --help" bash -c "'$OWNKEY' $c --help | grep -q usage"
done
expect_fail 2 "unknown command" "$OWNKEY" key frobnicate
expect_fail 2 "NAME is required" "$OWNKEY" key show
expect_fail 2 "--type must be RSA, EC or oct" "$OWNKEY" key create x --type DES
expect_fail 2 "unknown option --bogus" "$OWNKEY" key list --bogus
expect_fail 2 "not a key name" "$OWNKEY" key show 'a/b'
expect_fail 2 "no vault address" env -u OWNKEY_ADDR "$OWNKEY" key list
expect_fail 2 "refusing plain http" "$OWNKEY" key list --addr "http://127.0.0.1:$PORT"
expect_fail 2 "no token" env -u OWNKEY_TOKEN "$OWNKEY" key list
expect_fail 3 "TLS" env -u OWNKEY_CACERT "$OWNKEY" key list
expect_fail 3 "cannot reach the vault" "$OWNKEY" key list --addr "https://127.0.0.1:1"
expect_fail 6 "Unauthorized" "$OWNKEY" key list --token okt_not_a_token
expect_fail 2 "ownkeyd init" "$OWNKEY" operator init

# --- operator status (no token needed) ---------------------------------------------------------------
check "status unsealed" bash -c "env -u OWNKEY_TOKEN '$OWNKEY' operator status | grep -q '^sealed  *false'"
check "status json" bash -c "env -u OWNKEY_TOKEN '$OWNKEY' operator status --output json | grep -q '\"sealed\":false'"

# --- create, show, list, versions --------------------------------------------------------------------
check "create oct" bash -c "'$OWNKEY' key create k1 --type oct >create.txt"
check "created an oct key" test "$(field type <create.txt)" = oct
check "create RSA" "$OWNKEY" key create r1 --type RSA --size 2048 --tags env=test --output json
check "create EC" "$OWNKEY" key create e1 --type EC --curve P-256 --ops sign,verify
expect_fail 2 "EC keys take --curve" "$OWNKEY" key create e2 --type EC --size 256
expect_fail 2 "--ops needs" "$OWNKEY" key create e2 --type EC --ops sign,fly
expect_fail 10 "KeyNotFound" "$OWNKEY" key show nokey
"$OWNKEY" key show k1 --output json >show.json
curl -s --cacert "$CACERT" -H "Authorization: Bearer $ADMIN" "$ADDR/keys/k1?api-version=7.5" >api.json
echo >>api.json
check "show --output json is the API's bundle, byte for byte" cmp -s show.json api.json
check "show json has kty" grep -q '"kty":"oct"' show.json
K1V1=$(json_str show.json kid | sed 's|.*/||')
check "show --version" bash -c "'$OWNKEY' key show k1 --version $K1V1 | grep -q '^version  *$K1V1'"
check "show RSA table" bash -c "'$OWNKEY' key show r1 | grep -q '^size  *2048'"
check "show tags" bash -c "'$OWNKEY' key show r1 | grep -q '^tags  *env=test'"
check "list" bash -c "'$OWNKEY' key list | cut -f1 | sort | tr '\n' ' ' | grep -q '^e1 k1 r1 \$'"
check "list json" bash -c "'$OWNKEY' key list --output json | grep -q '\"value\":\\['"
check "versions" test "$("$OWNKEY" key versions k1 | wc -l)" -eq 1

# --- envelopes through the vault: oct and RSA, across a rotation -------------------------------------
head -c 300000 /dev/urandom >plain.bin
check "encrypt --to vault oct" "$OWNKEY" encrypt --to "$ADDR/keys/k1" -i plain.bin -o oct.env
check "inspect shows the vault key" bash -c "'$OWNKEY' inspect -i oct.env | grep -q 'provider=vault key=$ADDR/keys/k1 version=$K1V1 alg=A256KW'"
check "decrypt --key vault oct" "$OWNKEY" decrypt --key "$ADDR/keys/k1" -i oct.env -o oct.out
check "oct round trip" cmp -s plain.bin oct.out
check "encrypt --to vault RSA" "$OWNKEY" encrypt --to "$ADDR/keys/r1" -i plain.bin -o rsa.env
check "RSA uses RSA-OAEP-256" bash -c "'$OWNKEY' inspect -i rsa.env | grep -q 'alg=RSA-OAEP-256'"
check "decrypt --key vault RSA" bash -c "'$OWNKEY' decrypt --key '$ADDR/keys/r1' -i rsa.env | cmp -s - plain.bin"
check "any-of vault + file" bash -c "'$OWNKEY' keygen --type oct -o f.jwk 2>/dev/null && '$OWNKEY' encrypt --to '$ADDR/keys/k1' --to file:f.jwk -i plain.bin | '$OWNKEY' decrypt --key file:f.jwk | cmp -s - plain.bin"
check "all-of vault + vault" bash -c "'$OWNKEY' encrypt --all-of --to '$ADDR/keys/k1' --to '$ADDR/keys/r1' -i plain.bin | '$OWNKEY' decrypt --key '$ADDR/keys/r1' --key '$ADDR/keys/k1' | cmp -s - plain.bin"
expect_fail 4 "cannot wrap data keys" "$OWNKEY" encrypt --to "$ADDR/keys/e1" -i plain.bin -o never.env
expect_fail 5 "no recipient matches" "$OWNKEY" decrypt --key "$ADDR/keys/r1" -i oct.env -o never.out
expect_fail 10 "KeyNotFound" "$OWNKEY" encrypt --to "$ADDR/keys/nokey" -i plain.bin -o never.env
expect_fail 2 "OWNKEY_TOKEN" env -u OWNKEY_TOKEN "$OWNKEY" encrypt --to "$ADDR/keys/k1" -i plain.bin -o never.env
check "nothing written on failure" test ! -e never.env -a ! -e never.out
R1V1=$("$OWNKEY" key show r1 | field version)
check "rotate" bash -c "'$OWNKEY' key rotate r1 >rotate.txt"
R1V2=$(field version <rotate.txt)
check "rotation made a new version" test -n "$R1V2" -a "$R1V2" != "$R1V1"
check "versions after rotate" test "$("$OWNKEY" key versions r1 | wc -l)" -eq 2
check "old envelope decrypts after rotation" bash -c "'$OWNKEY' decrypt --key '$ADDR/keys/r1' -i rsa.env | cmp -s - plain.bin"
check "new envelope uses the new version" bash -c "'$OWNKEY' encrypt --to '$ADDR/keys/r1' -i plain.bin -o rsa2.env && '$OWNKEY' inspect -i rsa2.env | grep -q 'version=$R1V2'"
check "pinned version wraps with it" bash -c "'$OWNKEY' encrypt --to '$ADDR/keys/r1/$R1V1' -i plain.bin -o rsa3.env && '$OWNKEY' inspect -i rsa3.env | grep -q 'version=$R1V1'"
check "versionless key opens a pinned envelope" bash -c "'$OWNKEY' decrypt --key '$ADDR/keys/r1' -i rsa3.env | cmp -s - plain.bin"

# --- update ------------------------------------------------------------------------------------------
check "disable" bash -c "'$OWNKEY' key update k1 --enabled false --output json | grep -q '\"enabled\":false'"
expect_fail 12 "Forbidden" "$OWNKEY" decrypt --key "$ADDR/keys/k1" -i oct.env -o never.out
expect_fail 12 "Forbidden" "$OWNKEY" encrypt --to "$ADDR/keys/k1" -i plain.bin -o never.env
check "enable, exp, tags" "$OWNKEY" key update k1 --enabled true --exp 2099-01-01 --tags owner=ops
check "updated attributes" bash -c "'$OWNKEY' key show k1 | grep -q '^expires  *2099-01-01T00:00:00Z' && '$OWNKEY' key show k1 | grep -q '^tags  *owner=ops'"
check "update a version" "$OWNKEY" key update r1 --version "$R1V1" --exp none
expect_fail 2 "nothing to change" "$OWNKEY" key update k1
expect_fail 2 "--enabled needs true or false" "$OWNKEY" key update k1 --enabled yes

# --- cryptographic operations ------------------------------------------------------------------------
head -c 32 /dev/urandom >dk.bin
check "wrap" "$OWNKEY" key wrap k1 --alg A256KW -i dk.bin -o dk.wrapped
check "unwrap" bash -c "'$OWNKEY' key unwrap k1 --alg A256KW -i dk.wrapped | cmp -s - dk.bin"
check "unwrap -o mode 0600" bash -c "'$OWNKEY' key unwrap k1 --alg A256KW -i dk.wrapped -o dk.out && test \$(stat -c %a dk.out) = 600"
check "wrap json" bash -c "'$OWNKEY' key wrap k1 --alg A256KW -i dk.bin --output json | grep -q '\"kid\":\"$ADDR/keys/k1/'"
check "RSA encrypt" bash -c "'$OWNKEY' key encrypt r1 --alg RSA-OAEP-256 <dk.bin >rsa.ct"
check "RSA decrypt (current version)" bash -c "'$OWNKEY' key decrypt r1 --alg RSA-OAEP-256 <rsa.ct | cmp -s - dk.bin"
check "RSA encrypt with old version" bash -c "'$OWNKEY' key encrypt r1 --version $R1V1 --alg RSA-OAEP-256 <dk.bin >rsa1.ct && '$OWNKEY' key decrypt r1 --version $R1V1 --alg RSA-OAEP-256 <rsa1.ct | cmp -s - dk.bin"
expect_fail 2 "BadParameter" "$OWNKEY" key decrypt r1 --alg RSA-OAEP-256 -i plain.bin -o never.out
echo "a message" >msg.txt
echo "another message" >msg2.txt
check "sign ES256 --data" "$OWNKEY" key sign e1 --alg ES256 --data -i msg.txt -o msg.sig
check "verify ES256 --data" "$OWNKEY" key verify e1 --alg ES256 --data -i msg.txt --signature msg.sig
expect_fail 6 "does not verify" "$OWNKEY" key verify e1 --alg ES256 --data -i msg2.txt --signature msg.sig
check "verify json" bash -c "'$OWNKEY' key verify e1 --alg ES256 --data -i msg.txt --signature msg.sig --output json | grep -q '\"value\":true'"
if command -v openssl >/dev/null; then
  openssl dgst -sha256 -binary msg.txt >msg.digest
  check "sign RS256 digest" "$OWNKEY" key sign r1 --alg RS256 -i msg.digest -o rs.sig
  check "verify RS256 --data" "$OWNKEY" key verify r1 --alg RS256 --data -i msg.txt --signature rs.sig
fi
expect_fail 2 "--data computes SHA-256" "$OWNKEY" key sign r1 --alg RS384 --data -i msg.txt -o never.sig
expect_fail 2 "BadParameter" "$OWNKEY" key sign k1 --alg ES256 --data -i msg.txt -o never.sig
check "create a wrap-only key" "$OWNKEY" key create w1 --type oct --ops wrapKey,unwrapKey
expect_fail 12 "Forbidden" "$OWNKEY" key encrypt w1 --alg A256GCM -i msg.txt -o never.ct
check "the wrap-only key wraps" "$OWNKEY" key wrap w1 --alg A256KW -i dk.bin -o /dev/null
expect_fail 2 "--alg ALG is required" "$OWNKEY" key wrap k1 -i dk.bin

# --- rotation policy ---------------------------------------------------------------------------------
check "rotation-policy set" bash -c "'$OWNKEY' key rotation-policy set r1 --rotate-after P30D --expiry P90D | grep -q 'Rotate P30D after create'"
check "rotation-policy get json" bash -c "'$OWNKEY' key rotation-policy get r1 --output json | grep -q '\"timeAfterCreate\":\"P30D\"'"
expect_fail 2 "ISO 8601 duration" "$OWNKEY" key rotation-policy set r1 --rotate-after 30days

# --- delete, recover, purge, backup, restore ---------------------------------------------------------
check "delete" "$OWNKEY" key delete r1
check "list --deleted" bash -c "'$OWNKEY' key list --deleted | cut -f1 | grep -qx r1"
check "show --deleted" bash -c "'$OWNKEY' key show r1 --deleted | grep -q '^purge date'"
expect_fail 10 "KeyNotFound" "$OWNKEY" key show r1
expect_fail 10 "KeyNotFound" "$OWNKEY" decrypt --key "$ADDR/keys/r1" -i rsa.env -o never.out
expect_fail 11 "Conflict" "$OWNKEY" key create r1 --type RSA
check "recover" "$OWNKEY" key recover r1
check "decrypt after recover" bash -c "'$OWNKEY' decrypt --key '$ADDR/keys/r1' -i rsa.env | cmp -s - plain.bin"
check "backup" "$OWNKEY" key backup k1 -o k1.backup
check "backup mode 0600" test "$(stat -c %a k1.backup)" = 600
check "delete k1" "$OWNKEY" key delete k1
check "purge k1" "$OWNKEY" key purge k1
expect_fail 10 "KeyNotFound" "$OWNKEY" key show k1 --deleted
expect_fail 10 "KeyNotFound" "$OWNKEY" key purge k1
check "restore" bash -c "'$OWNKEY' key restore -i k1.backup | grep -q '^kid  *$ADDR/keys/k1/$K1V1'"
check "decrypt after restore" bash -c "'$OWNKEY' decrypt --key '$ADDR/keys/k1' -i oct.env | cmp -s - plain.bin"
expect_fail 11 "" "$OWNKEY" key restore -i k1.backup
expect_fail 2 "BadParameter" "$OWNKEY" key restore -i plain.bin

# --- identities and policies -------------------------------------------------------------------------
check "identity create" bash -c "'$OWNKEY' identity create app --output json >app.json"
APP=$(json_str app.json token)
APP_ID=$(json_str app.json token_id)
check "identity token printed" test -n "$APP" -a -n "$APP_ID"
check "identity list" bash -c "'$OWNKEY' identity list | cut -f1 | grep -qx app"
expect_fail 11 "" "$OWNKEY" identity create app
expect_fail 12 "Forbidden" env OWNKEY_TOKEN="$APP" "$OWNKEY" encrypt --to "$ADDR/keys/k1" -i plain.bin -o never.env
check "policy set" "$OWNKEY" policy set app --keys 'k*' --permissions get,wrapKey
check "policy list" bash -c "'$OWNKEY' policy list app | grep -q \$'^app\\tk\\*\\tget,wrapKey\$'"
check "app can encrypt" env OWNKEY_TOKEN="$APP" "$OWNKEY" encrypt --to "$ADDR/keys/k1" -i plain.bin -o app.env
expect_fail 12 "lacks the unwrapKey permission" env OWNKEY_TOKEN="$APP" "$OWNKEY" decrypt --key "$ADDR/keys/k1" -i app.env -o never.out
check "no plaintext on refusal" test ! -e never.out
expect_fail 12 "Forbidden" env OWNKEY_TOKEN="$APP" "$OWNKEY" encrypt --to "$ADDR/keys/r1" -i plain.bin -o never.env
expect_fail 12 "Forbidden" env OWNKEY_TOKEN="$APP" "$OWNKEY" key list
expect_fail 12 "Forbidden" env OWNKEY_TOKEN="$APP" "$OWNKEY" identity list
expect_fail 12 "Forbidden" env OWNKEY_TOKEN="$APP" "$OWNKEY" operator seal
check "admin decrypts the app's envelope" bash -c "'$OWNKEY' decrypt --key '$ADDR/keys/k1' -i app.env | cmp -s - plain.bin"
check "policy grants unwrapKey" "$OWNKEY" policy set app --keys 'k*' --permissions get,wrapKey,unwrapKey
check "app can decrypt now" bash -c "OWNKEY_TOKEN='$APP' '$OWNKEY' decrypt --key '$ADDR/keys/k1' -i app.env | cmp -s - plain.bin"
check "identity token" bash -c "'$OWNKEY' identity token app --output json >app2.json"
APP2=$(json_str app2.json token)
check "second token works" env OWNKEY_TOKEN="$APP2" "$OWNKEY" encrypt --to "$ADDR/keys/k1" -i plain.bin -o /dev/null
check "revoke-token" "$OWNKEY" identity revoke-token "$APP_ID"
expect_fail 6 "Unauthorized" env OWNKEY_TOKEN="$APP" "$OWNKEY" encrypt --to "$ADDR/keys/k1" -i plain.bin -o never.env
check "policy delete" "$OWNKEY" policy delete app --keys 'k*'
expect_fail 12 "Forbidden" env OWNKEY_TOKEN="$APP2" "$OWNKEY" encrypt --to "$ADDR/keys/k1" -i plain.bin -o never.env
expect_fail 2 "--keys PATTERN is required" "$OWNKEY" policy set app --permissions get
check "identity delete" "$OWNKEY" identity delete app
expect_fail 6 "Unauthorized" env OWNKEY_TOKEN="$APP2" "$OWNKEY" key show k1
expect_fail 10 "" "$OWNKEY" identity delete app

# --- audit -------------------------------------------------------------------------------------------
check "audit verify" bash -c "'$OWNKEY' audit verify | grep -q 'intact'"
check "audit verify json" bash -c "'$OWNKEY' audit verify --output json | grep -q '\"intact\":true'"
check "audit tail -n 3" test "$("$OWNKEY" audit tail -n 3 --data-dir "$T/v1" | wc -l)" -eq 3
check "audit tail json" bash -c "'$OWNKEY' audit tail -n 2 --data-dir '$T/v1' --output json | grep -c '\"operation\":' | grep -qx 2"
check "audit records a refusal" bash -c "'$OWNKEY' audit tail -n 100000 --data-dir '$T/v1' | grep -q \$'\\tForbidden\$'"
check "audit has no tokens" bash -c "! grep -q -e '$ADMIN' -e '$APP2' '$T/v1/audit.log'"
expect_fail 2 "--data-dir DIR is required" "$OWNKEY" audit tail
expect_fail 10 "cannot open" "$OWNKEY" audit tail --data-dir "$T/nowhere"

# --- seal, restart persistence -----------------------------------------------------------------------
check "purge-protection" bash -c "'$OWNKEY' operator purge-protection | grep -q '^purge protection  *on'"
check "seal" bash -c "'$OWNKEY' operator seal | grep -q '^sealed  *true'"
expect_fail 13 "VaultSealed" "$OWNKEY" key list
expect_fail 13 "VaultSealed" "$OWNKEY" key show k1
expect_fail 13 "VaultSealed" "$OWNKEY" decrypt --key "$ADDR/keys/k1" -i oct.env -o never.out
expect_fail 13 "VaultSealed" "$OWNKEY" encrypt --to "$ADDR/keys/k1" -i plain.bin -o never.env
check "status sealed" bash -c "'$OWNKEY' operator status --output json | grep -q '\"sealed\":true'"
stop_daemon
start_daemon "$T/v1" "$PORT" # a dev vault unseals itself on start
check "keys persist across a restart" bash -c "'$OWNKEY' decrypt --key '$ADDR/keys/r1' -i rsa.env | cmp -s - plain.bin"
check "delete e1" "$OWNKEY" key delete e1
expect_fail 12 "purge protection" "$OWNKEY" key purge e1

# --- a tampered audit log (in place: the daemon keeps its descriptor) ---------------------------------
LINE=$(grep -n '"status":200' "$T/v1/audit.log" | head -1 | cut -d: -f1)
OFFSET=$(grep -bo '"status":200' "$T/v1/audit.log" | head -1 | cut -d: -f1)
printf '3' | dd of="$T/v1/audit.log" bs=1 seek=$((OFFSET + 9)) conv=notrunc status=none
expect_fail 6 "line $LINE of" "$OWNKEY" audit verify
stop_daemon

# --- a Shamir vault: unseal with shares --------------------------------------------------------------
"$OWNKEYD_BIN" init --data-dir "$T/v2" --shares 3 --threshold 2 --output json >init2.json 2>init2.err || { cat init2.err >&2; exit 1; }
export OWNKEY_TOKEN
OWNKEY_TOKEN=$(json_str init2.json admin_token)
mapfile -t SHARES < <(sed -n '/"shares"/,/]/p' init2.json | grep -o '"[0-9]*-[0-9a-f]*"' | tr -d '"')
check "three shares" test "${#SHARES[@]}" -eq 3
start_daemon "$T/v2"
check "starts sealed" bash -c "'$OWNKEY' operator status | grep -q '^sealed  *true'"
expect_fail 13 "VaultSealed" "$OWNKEY" key list
check "unseal 1 of 2 (--share)" bash -c "env -u OWNKEY_TOKEN '$OWNKEY' operator unseal --share '${SHARES[0]}' | grep -q '^unseal progress  *1 of 2'"
check "unseal 2 of 2 (stdin)" bash -c "echo '${SHARES[2]}' | env -u OWNKEY_TOKEN '$OWNKEY' operator unseal | grep -q '^sealed  *false'"
check "works unsealed" "$OWNKEY" key create s1 --type oct
check "seal again" "$OWNKEY" operator seal
WRONG="${SHARES[1]%?}0"; [ "$WRONG" = "${SHARES[1]}" ] && WRONG="${SHARES[1]%?}1"
check "unseal with a wrong share (1 of 2)" "$OWNKEY" operator unseal --share "$WRONG"
expect_fail 6 "" "$OWNKEY" operator unseal --share "${SHARES[0]}"
printf '%s\n' "${SHARES[1]}" >share.txt
check "unseal (--share-file)" "$OWNKEY" operator unseal --share-file share.txt
check "unseal (--share-file) 2" bash -c "'$OWNKEY' operator unseal --share '${SHARES[2]}' | grep -q '^sealed  *false'"
check "key survives seal/unseal" bash -c "'$OWNKEY' key show s1 | grep -q '^type  *oct'"
expect_fail 2 "give one of" "$OWNKEY" operator unseal --share a --share-file share.txt
stop_daemon

echo "vault CLI tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
