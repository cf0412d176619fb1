#!/usr/bin/env bash
# BYOK import against a real ownkeyd over HTTPS: a key exchange key (KEK, key_ops ["import"]) that refuses
# every other operation; transfer blobs made with the openssl command line alone, following docs/BYOK.md
# step by step (RSA-2048, EC P-256, AES-256), and with `ownkey key byok-blob`, imported and then used, with
# the results checked by openssl on the outside; refusals (blob for another KEK, one altered byte, replay,
# also after a restart, a kid naming a key that is not a KEK, kty mismatch), each leaving nothing stored;
# and the audit lines of the imports.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/daemon_lib.sh"
T=$(mktemp -d)
trap 'stop_daemon; rm -rf "$T"' EXIT
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
unb64url() { local s; s=$(tr -- '-_' '+/'); while [ $(( ${#s} % 4 )) -ne 0 ]; do s="$s="; done; base64 -d <<<"$s"; }
hex() { od -An -tx1 -v | tr -d ' \n'; }
unhex() { xxd -r -p; }
V="api-version=7.5"
OK_CLI=${OWNKEY_BIN:?OWNKEY_BIN is not set}

D=$T/vault
"$OWNKEYD_BIN" init --data-dir "$D" --dev --output json >"$T/init.json" 2>/dev/null || { echo "init failed"; exit 1; }
TOKEN=$(jq -r .admin_token "$T/init.json")
start_daemon "$D" || exit 1
export OWNKEY_ADDR=$URL OWNKEY_TOKEN=$TOKEN OWNKEY_CACERT=$CACERT

# gone NAME: the key does not exist (a refusal stored nothing).
gone() { local r; r=$(api GET "/keys/$1/?$V"); [ "${r%% *}" = 404 ]; }
# import_blob NAME FILE KEYJSON: PUT the blob with the key members given (kty, crv, key_ops).
import_blob() {
  local hsm; hsm=$(b64url <"$2")
  expect "$4" PUT "/keys/$1?$V" "{\"Hsm\":true,\"key\":$(jq -c --arg h "$hsm" '. + {key_hsm: $h}' <<<"$3"),\"attributes\":{}}"
}

# --- the key exchange key ------------------------------------------------------------------------------
expect 200 POST "/keys/kek1/create?$V" '{"kty":"RSA","key_size":3072,"key_ops":["import"],"attributes":{}}'
KID=$(jqr .key.kid)
check "KEK reported as a software RSA key" test "$(jqr .key.kty)" = RSA
check "KEK key_ops are import only" test "$(jq -c .key.key_ops <<<"$BODY")" = '["import"]'
DEK=$(head -c 32 /dev/urandom | b64url)
DIGEST=$(printf 'message' | openssl dgst -sha256 -binary | b64url)
expect 403 POST "/keys/kek1//wrapkey?$V" "{\"alg\":\"RSA-OAEP\",\"value\":\"$DEK\"}"
check "wrapKey refusal names key_ops" grep -q "key_ops" <<<"$BODY"
expect 403 POST "/keys/kek1//unwrapkey?$V" "{\"alg\":\"RSA-OAEP\",\"value\":\"$DEK\"}"
expect 403 POST "/keys/kek1//encrypt?$V" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$DEK\"}"
expect 403 POST "/keys/kek1//decrypt?$V" "{\"alg\":\"RSA-OAEP\",\"value\":\"$DEK\"}"
expect 403 POST "/keys/kek1//sign?$V" "{\"alg\":\"RS256\",\"value\":\"$DIGEST\"}"
expect 403 POST "/keys/kek1//verify?$V" "{\"alg\":\"RS256\",\"digest\":\"$DIGEST\",\"value\":\"$DEK\"}"
"$OK_CLI" key create kekcli --type RSA --size 3072 --ops import >/dev/null 2>"$T/err" || bad "CLI KEK: $(cat "$T/err")"
expect 200 GET "/keys/kekcli/?$V"
check "CLI-made KEK has key_ops [import]" test "$(jq -c .key.key_ops <<<"$BODY")" = '["import"]'
expect 400 POST "/keys/kekbad/create?$V" '{"kty":"RSA","key_ops":["import","unwrapKey"]}'
expect 400 POST "/keys/kekbad/create?$V" '{"kty":"EC","key_ops":["import"]}'
expect 400 POST "/keys/kekbad/create?$V" '{"kty":"oct","key_ops":["import"]}'
check "no half-made KEK" gone kekbad
expect 400 PATCH "/keys/kek1/?$V" '{"key_ops":["import","wrapKey"]}'
expect 400 PATCH "/keys/kek1/?$V" '{"key_ops":["wrapKey"]}'
expect 200 POST "/keys/plainrsa/create?$V" '{"kty":"RSA","key_size":2048}'
PLAIN_KID=$(jqr .key.kid)
expect 400 PATCH "/keys/plainrsa/?$V" '{"key_ops":["import"]}'
expect 200 GET "/keys/kek1/?$V"
check "KEK unchanged" test "$(jq -c .key.key_ops <<<"$BODY")" = '["import"]'

# The KEK's public key as PEM, from the CLI; its modulus must be the JWK's n.
"$OK_CLI" key show kek1 --pem >"$T/kek.pem" 2>"$T/err" || bad "key show --pem: $(cat "$T/err")"
N_PEM=$(openssl rsa -pubin -in "$T/kek.pem" -modulus -noout 2>/dev/null | sed 's/^Modulus=//' | tr 'A-F' 'a-f')
N_JWK=$(jqr .key.n | unb64url | hex)
check "PEM public key is the KEK's" test -n "$N_PEM" -a "$N_PEM" = "$N_JWK"
check "kid printed by key show" test "$("$OK_CLI" key show kek1 | awk '$1=="kid"{print $2}')" = "$KID"

# --- docs/BYOK.md step 2, "With nothing but the openssl command line", literally ------------------------
# make_blob_openssl KEK_PUB KID KEYFILE OUT [raw]: KEYFILE is a PEM private key, or (raw) the AES key bytes.
make_blob_openssl() (
  set -eu
  KEK_PUB=$1 KID=$2
  W=$(mktemp -d "$T/w.XXXXXX"); cd "$W"
  if [ "${5:-}" = raw ]; then cp "$3" target.der; else
  openssl pkcs8 -topk8 -nocrypt -inform PEM -outform DER -in "$3" -out target.der
  fi
  openssl rand -out aes.key 32
  openssl pkeyutl -encrypt -pubin -inkey "$KEK_PUB" -in aes.key -out aes.wrapped \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1
  openssl enc -id-aes256-wrap-pad -iv A65959A6 -K "$(od -An -tx1 -v aes.key | tr -d ' \n')" \
    -in target.der -out target.wrapped
  CT=$(cat aes.wrapped target.wrapped | openssl base64 -A | tr '+/' '-_' | tr -d '=')
  printf '{"schema_version":"1.0.0","header":{"kid":"%s","alg":"dir","enc":"CKM_RSA_AES_KEY_WRAP"},"ciphertext":"%s","generator":"openssl"}\n' \
    "$KID" "$CT" > "$4"
  shred -u aes.key target.der 2>/dev/null || rm -f aes.key target.der
  cd /; rm -rf "$W"
)

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ec.pem" 2>/dev/null
openssl rand -out "$T/aes.bin" 32
make_blob_openssl "$T/kek.pem" "$KID" "$T/rsa.pem" "$T/rsa.byok" || bad "openssl recipe (RSA)"
make_blob_openssl "$T/kek.pem" "$KID" "$T/ec.pem" "$T/ec.byok" || bad "openssl recipe (EC)"
make_blob_openssl "$T/kek.pem" "$KID" "$T/aes.bin" "$T/aes.byok" raw || bad "openssl recipe (AES)"
check "blob shape" test "$(jq -r '[.schema_version, .header.alg, .header.enc] | join(" ")' "$T/rsa.byok")" = \
  "1.0.0 dir CKM_RSA_AES_KEY_WRAP"

# check_rsa NAME PEM: the vault holds PEM's key: same n, and an RSA-OAEP ciphertext openssl made from the
# local public key unwraps through the vault.
check_rsa() {
  expect 200 GET "/keys/$1/?$V"
  check "$1 is reported as plain RSA" test "$(jqr .key.kty)" = RSA
  local n; n=$(openssl rsa -in "$2" -modulus -noout 2>/dev/null | sed 's/^Modulus=//' | tr 'A-F' 'a-f')
  check "$1 modulus is the customer's" test "$(jqr .key.n | unb64url | hex)" = "$n"
  head -c 32 /dev/urandom >"$T/dek.bin"
  openssl pkeyutl -encrypt -inkey "$2" -in "$T/dek.bin" -out "$T/dek.oaep" -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1
  expect 200 POST "/keys/$1//unwrapkey?$V" "{\"alg\":\"RSA-OAEP\",\"value\":\"$(b64url <"$T/dek.oaep")\"}"
  check "$1 unwraps what openssl wrapped" test "$(jqr .value)" = "$(b64url <"$T/dek.bin")"
}

# check_ec NAME PEM: the vault's ES256 signature verifies with openssl and the customer's public key.
der_int() { local h=$1; while [ ${#h} -gt 2 ] && [ "${h:0:2}" = 00 ]; do h=${h:2}; done
  [ $((16#${h:0:1})) -ge 8 ] && h="00$h"; printf '02%02x%s' $(( ${#h} / 2 )) "$h"; }
check_ec() {
  expect 200 GET "/keys/$1/?$V"
  check "$1 is reported as plain EC" test "$(jqr .key.kty) $(jqr .key.crv)" = "EC P-256"
  expect 200 POST "/keys/$1//sign?$V" "{\"alg\":\"ES256\",\"value\":\"$DIGEST\"}"
  local raw r s body; raw=$(jqr .value | unb64url | hex); r=$(der_int "${raw:0:64}"); s=$(der_int "${raw:64:64}")
  body="$r$s"; printf '30%02x%s' $(( ${#body} / 2 )) "$body" | unhex >"$T/sig.der"
  openssl pkey -in "$2" -pubout -out "$T/ecpub.pem" 2>/dev/null
  check "$1 signature verifies with the customer's public key" \
    bash -c "printf message | openssl dgst -sha256 -verify '$T/ecpub.pem' -signature '$T/sig.der' >/dev/null"
}

# check_aes NAME KEYFILE: the vault's A256KW output unwraps with openssl and the customer's AES key.
check_aes() {
  expect 200 GET "/keys/$1/?$V"
  check "$1 is reported as plain oct" test "$(jqr .key.kty)" = oct
  expect 200 POST "/keys/$1//wrapkey?$V" "{\"alg\":\"A256KW\",\"value\":\"$DEK\"}"
  jqr .value | unb64url >"$T/kw.bin"
  check "$1 wraps with the customer's AES key" test "$(openssl enc -d -id-aes256-wrap -iv A6A6A6A6A6A6A6A6 \
    -K "$(hex <"$2")" -in "$T/kw.bin" 2>/dev/null | b64url)" = "$DEK"
}

RSA_OPS='"key_ops":["wrapKey","unwrapKey","encrypt","decrypt","sign","verify"]'
import_blob byokrsa "$T/rsa.byok" "{\"kty\":\"RSA-HSM\",$RSA_OPS}" 200
check "import reply is plain RSA" test "$(jqr .key.kty)" = RSA
check_rsa byokrsa "$T/rsa.pem"
# a mismatching kty is refused and does not use the blob up
import_blob byokec "$T/ec.byok" '{"kty":"RSA-HSM"}' 400
check "kty mismatch message" grep -q "kty says an RSA key" <<<"$BODY"
check "nothing stored after a kty mismatch" gone byokec
import_blob byokec "$T/ec.byok" '{"kty":"EC-HSM","crv":"P-384","key_ops":["sign","verify"]}' 400
check "nothing stored after a crv mismatch" gone byokec
import_blob byokec "$T/ec.byok" '{"kty":"EC-HSM","crv":"P-256","key_ops":["sign","verify"]}' 200
check_ec byokec "$T/ec.pem"
import_blob byokaes "$T/aes.byok" '{"kty":"oct-HSM","key_ops":["wrapKey","unwrapKey"]}' 200
check_aes byokaes "$T/aes.bin"

# --- the same with ownkey key byok-blob and ownkey key import --------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa2.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ec2.pem" 2>/dev/null
openssl rand -out "$T/aes2.bin" 32
run() { "$OK_CLI" "$@" 2>"$T/err" >"$T/out" || { bad "ownkey $*: $(cat "$T/err")"; return 1; }; ok; }
run key byok-blob --kek "$T/kek.pem" --kid "$KID" --key "$T/rsa2.pem" -o "$T/rsa2.byok"
check "byok-blob names the import command" grep -q "key import NAME --byok" "$T/err"
run key byok-blob --kek-name kek1 --key "$T/ec2.pem" -o "$T/ec2.byok"
check "byok-blob --kek-name uses the KEK's kid" test "$(jq -r .header.kid "$T/ec2.byok")" = "$KID"
run key byok-blob --kek "$T/kek.pem" --kid "$KID" --key "$T/aes2.bin" -o "$T/aes2.byok"
printf '{"kty":"oct","k":"%s"}' "$(b64url <"$T/aes2.bin")" >"$T/aes2.jwk"
run key byok-blob --kek "$T/kek.pem" --kid "$KID" --key "$T/aes2.jwk" -o "$T/aes3.byok"
run key import clirsa --byok "$T/rsa2.byok" --type RSA --ops wrapKey,unwrapKey
check_rsa clirsa "$T/rsa2.pem"
run key import cliec --byok "$T/ec2.byok" --type EC --curve P-256 --ops sign,verify
check_ec cliec "$T/ec2.pem"
run key import cliaes --byok "$T/aes2.byok" --type oct
check_aes cliaes "$T/aes2.bin"
run key import cliaes2 --byok "$T/aes3.byok" --type oct --output json
check "JWK oct blob holds the same key" test "$(jq -r .key.kty "$T/out")" = oct
check_aes cliaes2 "$T/aes2.bin"
"$OK_CLI" key byok-blob --kek-name plainrsa --key "$T/rsa2.pem" -o "$T/x.byok" 2>"$T/err"
check "byok-blob --kek-name refuses a key that is not a KEK" test $? -ne 0 -a ! -e "$T/x.byok"

# --- refusals: nothing stored after any of them ----------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa3.pem" 2>/dev/null
# a blob for another KEK, carrying kek1's kid
expect 200 POST "/keys/kek2/create?$V" '{"kty":"RSA","key_size":3072,"key_ops":["import"]}'
KID2=$(jqr .key.kid)
"$OK_CLI" key show kek2 --pem >"$T/kek2.pem"
make_blob_openssl "$T/kek2.pem" "$KID" "$T/rsa3.pem" "$T/other.byok"
import_blob refused1 "$T/other.byok" '{"kty":"RSA"}' 400
check "another KEK's blob: clear message" grep -q "does not open with key exchange key" <<<"$BODY"
check "nothing stored (another KEK)" gone refused1
# the same blob naming its own KEK imports: it was not used up
make_blob_openssl "$T/kek2.pem" "$KID2" "$T/rsa3.pem" "$T/own.byok"
# one byte altered, in the RSA part and in the AES-KWP part
for off in 10 400; do
  CT=$(jq -r .ciphertext "$T/own.byok" | unb64url | hex)
  b=${CT:$((off * 2)):2}; nb=$(printf '%02x' $(( 16#$b ^ 1 )))
  CT2=$(printf '%s%s%s' "${CT:0:$((off * 2))}" "$nb" "${CT:$((off * 2 + 2))}" | unhex | b64url)
  jq -c --arg c "$CT2" '.ciphertext = $c' "$T/own.byok" >"$T/tampered.byok"
  import_blob refused2 "$T/tampered.byok" '{"kty":"RSA"}' 400
  check "tampered blob (byte $off): clear message" grep -q "does not open with key exchange key" <<<"$BODY"
  check "nothing stored (tampered byte $off)" gone refused2
done
import_blob ownok "$T/own.byok" '{"kty":"RSA"}' 200
check_rsa ownok "$T/rsa3.pem"
# replayed: under another name, and under the same name
import_blob refused3 "$T/own.byok" '{"kty":"RSA"}' 400
check "replay: clear message" grep -q "can be used only once" <<<"$BODY"
check "nothing stored (replay)" gone refused3
import_blob ownok "$T/own.byok" '{"kty":"RSA"}' 400
expect 200 GET "/keys/ownok/versions?$V"
check "replay under the same name adds no version" test "$(jq '.value | length' <<<"$BODY")" = 1
# a kid naming a key that is not a KEK (the blob really is wrapped to that key's public key)
"$OK_CLI" key show plainrsa --pem >"$T/plain.pem"
make_blob_openssl "$T/plain.pem" "$PLAIN_KID" "$T/rsa3.pem" "$T/notkek.byok"
import_blob refused4 "$T/notkek.byok" '{"kty":"RSA"}' 400
check "non-KEK: clear message" grep -q "is not a key exchange key" <<<"$BODY"
check "nothing stored (non-KEK)" gone refused4
# a kid naming no key, a malformed blob, a wrong enc
make_blob_openssl "$T/kek.pem" "${KID/\/keys\/kek1\//\/keys\/nokek\/}" "$T/rsa3.pem" "$T/nokek.byok"
import_blob refused5 "$T/nokek.byok" '{"kty":"RSA"}' 400
check "missing KEK: clear message" grep -q "is not in this vault" <<<"$BODY"
printf 'not json' >"$T/junk.byok"
import_blob refused5 "$T/junk.byok" '{"kty":"RSA"}' 400
jq -c '.header.enc = "RSA_AES_KEY_WRAP_512"' "$T/rsa.byok" >"$T/enc.byok"
import_blob refused5 "$T/enc.byok" '{"kty":"RSA"}' 400
check "wrong enc: clear message" grep -q "header.enc" <<<"$BODY"
check "nothing stored (malformed blobs)" gone refused5
"$OK_CLI" key import refused6 --byok "$T/rsa2.byok" --type RSA >/dev/null 2>"$T/err"
check "CLI replay exits non-zero with the message" grep -q "used only once" "$T/err"
check "nothing stored (CLI replay)" gone refused6

# --- durability: the used-blob record survives a restart -----------------------------------------------------
stop_daemon
start_daemon "$D" || exit 1
export OWNKEY_ADDR=$URL
import_blob refused7 "$T/rsa.byok" '{"kty":"RSA"}' 400
check "replay after restart refused" grep -q "can be used only once" <<<"$BODY"
check "nothing stored (replay after restart)" gone refused7

# --- audit ----------------------------------------------------------------------------------------------------
check "successful imports audited" test "$(jq -s '[.[] | select(.operation == "import" and .status == 200)] | length' "$D/audit.log")" -ge 8
check "refused imports audited" test "$(jq -s '[.[] | select(.operation == "import" and .status == 400)] | length' "$D/audit.log")" -ge 10
check "no blob in the audit log" bash -c "! grep -q '$(jq -r .ciphertext "$T/rsa.byok" | cut -c1-40)' '$D/audit.log'"

echo "byok: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
