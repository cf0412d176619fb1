#!/usr/bin/env bash
# Hold-your-own-key end to end, through a real ownkeyd (vault and data roles, a 2 s key cache, probes at
# most 1 s apart) and the ownkey CLI (issue 5 §4). Three tenants, each under a key held elsewhere, and
# a key brought into the vault's token:
#  1. t-hsm: an AES-256 key in a SoftHSM2 token made in a temporary directory (SOFTHSM2_CONF exported for
#     the daemon too). put/get, status (active, customer_kid), then the token's directory moved away:
#     locked with KeyUnreachable, get refused (exit 12, TenantLocked); moved back: active by itself, the
#     object intact.
#  2. t-kmip: an AES-256 key on a PyKMIP server (certificates made here with openssl, a free port, the key
#     made with the python kmip client). put/get, the server stopped: locked KeyUnreachable, get refused;
#     restarted on the same port: active by itself, the object intact.
#  3. t-byok: an RSA-3072 key generated with openssl, brought in with `ownkey key byok-blob` and
#     `ownkey key import --byok` under an import-only KEK, granted to an identity (get, wrapKey,
#     unwrapKey), used as the tenant's customer key over HTTPS: put/get, disabling it locks the tenant
#     (KeyDisabled, get refused), enabling it unlocks the tenant, the object intact.
#  4. the vault restarted with --hsm on that token: an RSA-HSM key exchange key made in the token, a
#     customer's RSA key imported through the keys API as RSA-HSM (unwrapped into the token), wrap/unwrap
#     with it, and the blob refused the second time.
# Timing is only ever polled against generous deadlines. Needs OWNKEY_BIN and OWNKEYD_BIN, curl, jq and
# openssl (exit 77 without them). Part 1 is skipped without softhsm2, part 2 without pykmip-server and
# python3's kmip package; then the test exits 77 after running the rest (1 on any failure).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OWNKEY=${OWNKEY_BIN:?OWNKEY_BIN must point at the ownkey binary}
# shellcheck source=daemon_lib.sh
source "$HERE/daemon_lib.sh" # exits 77 without OWNKEYD_BIN, curl or jq
OWNKEY=$(realpath "$OWNKEY") OWNKEYD_BIN=$(realpath "$OWNKEYD_BIN") # the test runs in its own directory
command -v openssl >/dev/null || { echo "skipped: needs openssl"; exit 77; }
if ! "$OWNKEYD_BIN" serve --help 2>&1 | grep -q -- --probe-max-backoff; then
  echo "skipped: ownkeyd has no data role"
  exit 77
fi

T=$(mktemp -d)
KMIP_PID=""
kmip_stop() {
  if [ -n "$KMIP_PID" ]; then
    # pykmip-server runs in a session of its own (setsid): its group holds the server and the
    # multiprocessing helpers it forks (manager, policy monitor).
    kill -KILL -- "-$KMIP_PID" 2>/dev/null
    wait "$KMIP_PID" 2>/dev/null
    KMIP_PID=""
  fi
}
cleanup() {
  stop_daemon
  kmip_stop
  [ -d "$T/away" ] && [ -n "${TOKDIR:-}" ] && mv "$T/away" "$TOKDIR" 2>/dev/null
  if [ -n "${OWNKEY_HYOK_KEEP:-}" ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$T" || exit 1
START=$SECONDS
skipped=()
# check WHAT CMD...: as daemon_lib.sh's, without the command's stdout (the CLI's records).
check() { local what=$1; shift; if "$@" >/dev/null; then ok; else bad "$what"; fi; }

# expect_fail CODE PATTERN CMD...: the command exits with CODE and its stderr matches PATTERN.
expect_fail() {
  local code=$1 pattern=$2; shift 2
  "$@" >out.txt 2>err.txt </dev/null
  local rc=$?
  if [ "$rc" -ne "$code" ]; then bad "$* exited $rc, want $code ($(cat err.txt))"; return; fi
  if ! grep -q -- "$pattern" err.txt; then bad "$*: stderr '$(cat err.txt)' lacks '$pattern'"; return; fi
  ok
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
field() { grep "^$1  " | head -1 | sed "s/^$1 *//"; }
show() { "$OWNKEY" tenant show "$1" --output json 2>/dev/null; }
# wait_state TENANT STATE SECONDS: polls tenant show until its state is STATE.
wait_state() {
  local deadline=$((SECONDS + $3))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(show "$1" | jq -r .state)" = "$2" ] && return 0
    sleep 0.3
  done
  echo "tenant $1 is not $2 after $3 s: $(show "$1" | jq -c '{state, reason_code, reason}')" >&2
  return 1
}
# reason_is TENANT CODE: the tenant's reason_code is CODE.
reason_is() {
  local got; got=$(show "$1" | jq -r .reason_code)
  [ "$got" = "$2" ] || { echo "tenant $1 reason_code is $got, want $2: $(show "$1" | jq -r .reason)" >&2; return 1; }
}
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 40000))
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

head -c 300001 /dev/urandom >data.bin # several 64 KiB frames
echo "small object" >small.txt

# --- SoftHSM2: the token and its key (made before the daemon starts, which inherits SOFTHSM2_CONF) ---------
MODULE=/usr/lib/softhsm/libsofthsm2.so
HSM=0
if command -v softhsm2-util >/dev/null 2>&1 && [ -r "$MODULE" ]; then
  mkdir tokens
  printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
    "$T" >softhsm2.conf
  export SOFTHSM2_CONF=$T/softhsm2.conf
  printf '1234\n' >pin
  chmod 600 pin
  # softhsm2-util --import --aes reads the file as text: a NUL or newline byte would shorten the key.
  head -c 256 /dev/urandom | tr -d '\000\n\r' | head -c 32 >aes.key
  if softhsm2-util --init-token --free --label hyok-e2e --so-pin 87654321 --pin 1234 >hsm.log 2>&1 &&
     softhsm2-util --import aes.key --aes --token hyok-e2e --label kek-aes --id 01 --pin 1234 >>hsm.log 2>&1; then
    HSM=1
    TOKDIR=$(find "$T/tokens" -mindepth 1 -maxdepth 1 -type d | head -1)
    check "aes key is 32 bytes" test "$(stat -c %s aes.key)" -eq 32
  else
    bad "cannot make the SoftHSM2 token: $(cat hsm.log)"
  fi
  rm -f aes.key
else
  skipped+=("SoftHSM2 (softhsm2-util or $MODULE missing)")
fi

# --- PyKMIP: certificates, configuration, server on a free port, an AES-256 key -----------------------------
KMIP=0
if [ -x /usr/bin/pykmip-server ] && /usr/bin/python3 -c 'import kmip.pie.client' 2>/dev/null; then
  K=$T/kmip
  mkdir -p "$K/policies"
  make_cert() { # NAME CN EXT
    openssl req -newkey rsa:2048 -nodes -keyout "$K/$1.key" -out "$K/$1.csr" -subj "/CN=$2" &&
      printf '%b' "$3" >"$K/$1.ext" &&
      openssl x509 -req -in "$K/$1.csr" -CA "$K/ca.crt" -CAkey "$K/ca.key" -CAcreateserial -out "$K/$1.crt" \
        -days 2 -extfile "$K/$1.ext"
  }
  KPORT=$(free_port)
  if { openssl req -x509 -newkey rsa:2048 -nodes -keyout "$K/ca.key" -out "$K/ca.crt" -days 2 -subj /CN=hyok-e2e-ca &&
       make_cert server localhost 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' &&
       make_cert client kmip-client 'extendedKeyUsage=clientAuth\n'; } >"$K/setup.log" 2>&1; then
    printf '[server]\nhostname=127.0.0.1\nport=%s\ncertificate_path=%s/server.crt\nkey_path=%s/server.key\n'`
          `'ca_path=%s/ca.crt\nauth_suite=TLS1.2\npolicy_path=%s/policies\nenable_tls_client_auth=True\n'`
          `'logging_level=INFO\ndatabase_path=%s/pykmip.db\n' "$KPORT" "$K" "$K" "$K" "$K" "$K" >"$K/server.conf"
    printf '[client]\n' >"$K/client.conf"
    KMIP=1
  else
    bad "cannot make the KMIP certificates: $(tail -5 "$K/setup.log")"
  fi
else
  skipped+=("PyKMIP (/usr/bin/pykmip-server or python3's kmip package missing)")
fi
# kmip_start: pykmip-server on KPORT, in a session of its own; waits until it accepts connections.
kmip_start() {
  setsid /usr/bin/python3 /usr/bin/pykmip-server -f "$K/server.conf" -l "$K/server.log" >>"$K/server.out" 2>&1 &
  KMIP_PID=$!
  local _
  for _ in $(seq 1 200); do
    port_open "$KPORT" && return 0
    kill -0 "$KMIP_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "pykmip-server did not start on $KPORT: $(tail -5 "$K/server.out")" >&2
  kmip_stop
  return 1
}
if [ "$KMIP" = 1 ]; then
  if kmip_start; then
    cat >"$K/create.py" <<'EOF'
import sys
from kmip.core import enums
from kmip.pie.client import ProxyKmipClient
port, d, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with ProxyKmipClient(hostname="127.0.0.1", port=port, cert=d + "/client.crt", key=d + "/client.key",
                     ca=d + "/ca.crt", ssl_version="PROTOCOL_SSLv23", config_file=d + "/client.conf") as c:
    uid = c.create(enums.CryptographicAlgorithm.AES, 256, name=name,
                   cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT,
                                             enums.CryptographicUsageMask.DECRYPT])
    c.activate(uid)
    print(uid)
EOF
    if KUID=$(/usr/bin/python3 "$K/create.py" "$KPORT" "$K" hyok-kek 2>"$K/create.err") && [ -n "$KUID" ]; then
      ok
    else
      bad "cannot create the KMIP key: $(tail -3 "$K/create.err")"
      KMIP=0
    fi
  else
    bad "pykmip-server did not start"
    KMIP=0
  fi
fi

# --- the daemon ------------------------------------------------------------------------------------------------
"$OWNKEYD_BIN" init --data-dir "$T/v" --dev --output json >init.json 2>init.err || { cat init.err >&2; exit 1; }
ADMIN=$(jq -r .admin_token init.json)
export OWNKEY_TOKEN=$ADMIN
TOKEN=$ADMIN # for expect (daemon_lib.sh)
unset OWNKEY_CUSTOMER_TOKEN
start_daemon "$T/v" --roles vault,data --key-cache-ttl 2 --probe-max-backoff 1 || exit 1
export OWNKEY_ADDR=$URL OWNKEY_CACERT=$CACERT

# tenant_round_trip TENANT: puts data.bin and small.txt into TENANT and reads them back.
tenant_round_trip() {
  check "$1: put" "$OWNKEY" put "$1" data.bin -i data.bin -q
  check "$1: put small" "$OWNKEY" put "$1" dir/small.txt -i small.txt -q --content-type text/plain
  check "$1: get" "$OWNKEY" get "$1" data.bin -o "$1.out"
  check "$1: round trip" test "$(sha data.bin)" = "$(sha "$1.out")"
  check "$1: small round trip" bash -c "'$OWNKEY' get '$1' dir/small.txt | cmp -s - small.txt"
}
# locked_then_refused TENANT CODE: TENANT locks with reason_code CODE and its objects are refused.
locked_then_refused() {
  check "$1: locked" wait_state "$1" locked 30
  check "$1: reason_code $2" reason_is "$1" "$2"
  check "$1: show names the reason" bash -c "'$OWNKEY' tenant show '$1' | grep -q '^reason  *[A-Za-z]'"
  rm -f never.out
  expect_fail 12 "TenantLocked" "$OWNKEY" get "$1" data.bin -o never.out
  check "$1: nothing written for a locked tenant" test ! -e never.out
  expect_fail 12 "TenantLocked" "$OWNKEY" put "$1" new.bin -i small.txt
  expect 403 GET "/data/v1/tenants/$1/objects/data.bin"
  check "$1: API says TenantLocked with $2" grep -q "^TenantLocked .*$2" <<<"$(jqr '.error.code + " " + .error.message')"
}
# unlocked_intact TENANT: TENANT becomes active by itself and its objects read back intact.
unlocked_intact() {
  check "$1: unlocks by itself" wait_state "$1" active 40
  check "$1: no reason once active" test "$(show "$1" | jq -r .reason_code)" = null
  check "$1: get after unlock" "$OWNKEY" get "$1" data.bin -o "$1.after"
  check "$1: intact after unlock" test "$(sha data.bin)" = "$(sha "$1.after")"
  check "$1: small intact after unlock" bash -c "'$OWNKEY' get '$1' dir/small.txt | cmp -s - small.txt"
  check "$1: put after unlock" "$OWNKEY" put "$1" new.bin -i small.txt -q
  check "$1: no object was added while locked" test "$(show "$1" | jq -r .objects)" -eq 3
}

# --- 1. SoftHSM2 ---------------------------------------------------------------------------------------------------
if [ "$HSM" = 1 ]; then
  P11="pkcs11:token=hyok-e2e;object=kek-aes?module-path=$MODULE&pin-source=file:$T/pin"
  expect_fail 2 "CustomerKeyInvalid" "$OWNKEY" tenant create t-hsm-bad \
    --customer-key "pkcs11:token=hyok-e2e;object=no-such-key?module-path=$MODULE&pin-source=file:$T/pin"
  check "t-hsm: create" bash -c "'$OWNKEY' tenant create t-hsm --customer-key '$P11' >t-hsm.txt 2>t-hsm.err"
  [ -s t-hsm.err ] && cat t-hsm.err >&2
  show t-hsm >t-hsm.json
  check "t-hsm: active" test "$(jq -r .state t-hsm.json)" = active
  check "t-hsm: key_source customer" test "$(jq -r .key_source t-hsm.json)" = customer
  check "t-hsm: customer_kid names token and object only" \
    test "$(jq -r .customer_kid t-hsm.json)" = "pkcs11:token=hyok-e2e;object=kek-aes"
  check "t-hsm: customer_key is the URI" test "$(jq -r .customer_key t-hsm.json)" = "$P11"
  tenant_round_trip t-hsm

  mv "$TOKDIR" "$T/away" || bad "cannot move the token away"
  locked_then_refused t-hsm KeyUnreachable
  check "t-hsm: the reason says the token is gone" bash -c "'$OWNKEY' tenant show t-hsm --output json | jq -r .reason | grep -qi 'token'"
  mv "$T/away" "$TOKDIR" || bad "cannot move the token back"
  unlocked_intact t-hsm
  echo "SoftHSM2 part done at $((SECONDS - START)) s" >&2
fi

# --- 2. PyKMIP -----------------------------------------------------------------------------------------------------
if [ "$KMIP" = 1 ]; then
  KQ="cert=$K/client.crt&key=$K/client.key&ca=$K/ca.crt"
  KURI="kmip://127.0.0.1:$KPORT/hyok-kek?$KQ"
  expect_fail 2 "CustomerKeyInvalid" "$OWNKEY" tenant create t-kmip-bad --customer-key "kmip://127.0.0.1:$KPORT/no-such-key?$KQ"
  check "t-kmip: create" bash -c "'$OWNKEY' tenant create t-kmip --customer-key '$KURI' >t-kmip.txt 2>t-kmip.err"
  [ -s t-kmip.err ] && cat t-kmip.err >&2
  show t-kmip >t-kmip.json
  check "t-kmip: active" test "$(jq -r .state t-kmip.json)" = active
  check "t-kmip: customer_kid names the key by its unique identifier" \
    test "$(jq -r .customer_kid t-kmip.json)" = "kmip://127.0.0.1:$KPORT/uid/$KUID"
  tenant_round_trip t-kmip

  kmip_stop
  locked_then_refused t-kmip KeyUnreachable
  if kmip_start; then ok; else bad "pykmip-server did not restart on $KPORT"; fi
  unlocked_intact t-kmip
  echo "PyKMIP part done at $((SECONDS - START)) s" >&2
fi

# --- 3. BYOK: an imported key as a tenant's customer key -------------------------------------------------------------
check "KEK (import only)" "$OWNKEY" key create hyok-kek --type RSA --size 3072 --ops import
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out byok-rsa.pem 2>/dev/null || bad "openssl genpkey"
check "byok-blob" bash -c "'$OWNKEY' key byok-blob --kek-name hyok-kek --key byok-rsa.pem -o byok-rsa.byok 2>blob.err"
check "key import --byok" "$OWNKEY" key import byok-cust --byok byok-rsa.byok --type RSA --ops wrapKey,unwrapKey
"$OWNKEY" key show byok-cust --pem >byok-cust.pub 2>/dev/null
check "the vault holds the customer's key (same modulus)" test -n "$(openssl rsa -pubin -in byok-cust.pub -modulus -noout 2>/dev/null)" -a \
  "$(openssl rsa -pubin -in byok-cust.pub -modulus -noout 2>/dev/null)" = "$(openssl rsa -in byok-rsa.pem -modulus -noout 2>/dev/null)"
BYOKV=$("$OWNKEY" key show byok-cust | field version)
check "byok identity" bash -c "'$OWNKEY' identity create byok-app --output json >byok-app.json"
(umask 077; jq -r .token byok-app.json >byok.token)
check "byok policy" "$OWNKEY" policy set byok-app --keys byok-cust --permissions get,wrapKey,unwrapKey
check "t-byok: create" bash -c "'$OWNKEY' tenant create t-byok --customer-key '$URL/keys/byok-cust' --customer-token-file byok.token --customer-cacert '$CACERT' >t-byok.txt 2>t-byok.err"
[ -s t-byok.err ] && cat t-byok.err >&2
show t-byok >t-byok.json
check "t-byok: active" test "$(jq -r .state t-byok.json)" = active
check "t-byok: customer_kid is the imported version" bash -c "jq -r .customer_kid t-byok.json | grep -q '/keys/byok-cust/$BYOKV\$'"
check "t-byok: the token is never shown" bash -c "! grep -qF \"\$(cat byok.token)\" t-byok.txt t-byok.json"
tenant_round_trip t-byok
check "disable the imported key" "$OWNKEY" key update byok-cust --enabled false
locked_then_refused t-byok KeyDisabled
check "enable the imported key" "$OWNKEY" key update byok-cust --enabled true
unlocked_intact t-byok

# the other tenants were not disturbed by any of this
for t in t-hsm t-kmip; do
  if show "$t" >/dev/null; then
    check "$t: still active at the end" test "$(show "$t" | jq -r .state)" = active
  fi
done
check "the audit log has no customer token or PIN" bash -c "! grep -qF \"\$(cat byok.token)\" '$T/v/audit.log' && ! grep -q 'pin-value' '$T/v/audit.log'"
stop_daemon

# --- 4. BYOK into the token: the vault started with --hsm, an RSA-HSM key exchange key made in the token,
# a customer's RSA key imported as RSA-HSM (unwrapped into the token), then used through the keys API. ---------
if [ "$HSM" = 1 ]; then
  start_daemon "$T/v" --roles vault,data --hsm "pkcs11:token=hyok-e2e?module-path=$MODULE&pin-source=file:$T/pin" || exit 1
  V="api-version=7.5"
  expect 200 POST "/keys/kek-hsm/create?$V" '{"kty":"RSA-HSM","key_size":3072,"key_ops":["import"]}'
  check "the KEK is RSA-HSM" test "$(jqr .key.kty)" = RSA-HSM
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out byok-hsm.pem 2>/dev/null || bad "openssl genpkey"
  export OWNKEY_ADDR=$URL
  check "byok-blob for the RSA-HSM KEK" "$OWNKEY" key byok-blob --kek-name kek-hsm --key byok-hsm.pem -o byok-hsm.byok
  BLOB=$(base64 -w0 <byok-hsm.byok | tr '+/' '-_' | tr -d '=')
  expect 200 PUT "/keys/byok-hsm?$V" "{\"key\":{\"kty\":\"RSA-HSM\",\"key_hsm\":\"$BLOB\",\"key_ops\":[\"wrapKey\",\"unwrapKey\"]}}"
  check "imported into the token: kty RSA-HSM" test "$(jqr .key.kty)" = RSA-HSM
  KPATH=$(jqr .key.kid); KPATH=${KPATH#"$URL"}
  check "the vault's public key is the customer's" test "$(jqr .key.n)" = \
    "$(openssl rsa -in byok-hsm.pem -modulus -noout 2>/dev/null | cut -d= -f2 | xxd -r -p | base64 -w0 | tr '+/' '-_' | tr -d '=')"
  DEK=$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
  expect 200 POST "$KPATH/wrapkey?$V" "{\"alg\":\"RSA-OAEP\",\"value\":\"$DEK\"}"
  W=$(jqr .value)
  expect 200 POST "$KPATH/unwrapkey?$V" "{\"alg\":\"RSA-OAEP\",\"value\":\"$W\"}"
  check "the token unwraps with the imported key" test "$(jqr .value)" = "$DEK"
  expect 400 PUT "/keys/byok-hsm2?$V" "{\"key\":{\"kty\":\"RSA-HSM\",\"key_hsm\":\"$BLOB\"}}"
  check "the blob is used once" grep -qi "used\|replay\|once" <<<"$BODY"
  stop_daemon
fi
kmip_stop

echo "HYOK end to end: $passed passed, $failed failed in $((SECONDS - START)) s"
for s in "${skipped[@]}"; do echo "skipped: $s"; done
[ "$failed" -eq 0 ] || exit 1
[ "${#skipped[@]}" -eq 0 ] || exit 77
exit 0
