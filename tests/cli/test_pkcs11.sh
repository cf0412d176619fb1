#!/usr/bin/env bash
# End-to-end test of the CLI with a PKCS#11 key: an envelope round trip through `--to pkcs11:…` for an AES
# key and an RSA key imported into a SoftHSM2 token made in a temporary directory, an any-of envelope
# (token + file key), and the errors for a wrong PIN (no PIN in the message) and a missing key. Skipped
# (77) without SoftHSM2. Needs OWNKEY_BIN (set by ctest).
set -uo pipefail
OWNKEY=${OWNKEY_BIN:?OWNKEY_BIN must point at the ownkey binary}
MODULE=/usr/lib/softhsm/libsofthsm2.so
command -v softhsm2-util >/dev/null 2>&1 && [ -r "$MODULE" ] || { echo "softhsm2 not installed: skipped"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
passed=0
failed=0
ok()   { passed=$((passed + 1)); }
bad()  { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
expect_fail() { # CODE PATTERN CMD...
  local code=$1 pattern=$2; shift 2
  "$@" >out.txt 2>err.txt
  local rc=$?
  if [ "$rc" -ne "$code" ]; then bad "$* exited $rc, want $code ($(cat err.txt))"; return; fi
  if ! grep -q -- "$pattern" err.txt; then bad "$*: stderr '$(cat err.txt)' lacks '$pattern'"; return; fi
  ok
}

mkdir tokens
cat >softhsm2.conf <<CONF
directories.tokendir = $T/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF=$T/softhsm2.conf
softhsm2-util --init-token --free --label cli-test --so-pin 87654321 --pin 1234 >/dev/null || { bad "init token"; exit 1; }
# softhsm2-util --import --aes reads the file as text: a NUL or newline byte would shorten the key.
head -c 256 /dev/urandom | tr -d '\000\n\r' | head -c 32 >aes.key
softhsm2-util --import aes.key --aes --token cli-test --label kek-aes --id 01 --pin 1234 >/dev/null || bad "import AES"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out rsa.pem 2>/dev/null
softhsm2-util --import rsa.pem --token cli-test --label kek-rsa --id 02 --pin 1234 >/dev/null || bad "import RSA"
printf '1234\n' >pin
printf '4321\n' >badpin
Q="module-path=$MODULE&pin-source=file:$T/pin"
AES="pkcs11:token=cli-test;object=kek-aes?$Q"
RSA="pkcs11:token=cli-test;id=%02?$Q"

head -c 200000 /dev/urandom >plain.bin
check "encrypt to AES key" "$OWNKEY" encrypt --to "$AES" -i plain.bin -o aes.env
check "decrypt with AES key" "$OWNKEY" decrypt --key "$AES" -i aes.env -o aes.out
check "AES round trip" cmp -s plain.bin aes.out
check "inspect names the token key" bash -c "'$OWNKEY' inspect -i aes.env | grep -q 'pkcs11:token=cli-test;object=kek-aes'"
check "inspect shows AES-KWP" bash -c "'$OWNKEY' inspect -i aes.env | grep -q 'AES-KWP'"
# Only the header can hold a key reference (the frames are ciphertext, where any 3 bytes may spell "pin").
HL=$(od -An -tu1 -j7 -N4 aes.env | awk '{print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4}')
check "no PIN or module in the envelope header" bash -c "! head -c '$HL' aes.env | grep -q -a -e 'pin' -e 'softhsm'"
check "encrypt to RSA key" "$OWNKEY" encrypt --to "$RSA" -i plain.bin -o rsa.env
check "inspect shows RSA-OAEP (SHA-1 on SoftHSM 2.6)" bash -c "'$OWNKEY' inspect -i rsa.env | grep -q 'RSA-OAEP'"
check "decrypt with RSA key" bash -c "'$OWNKEY' decrypt --key '$RSA' -i rsa.env | cmp -s - plain.bin"
"$OWNKEY" keygen --type oct -o file.jwk || bad "keygen"
check "any-of: token + file" "$OWNKEY" encrypt --to "$AES" --to file:file.jwk -i plain.bin -o any.env
check "any-of: file key opens" bash -c "'$OWNKEY' decrypt --key file:file.jwk -i any.env | cmp -s - plain.bin"
check "any-of: token key opens" bash -c "'$OWNKEY' decrypt --key '$AES' -i any.env | cmp -s - plain.bin"
expect_fail 5 "no recipient" "$OWNKEY" decrypt --key "$RSA" -i aes.env -o never.bin

BAD="pkcs11:token=cli-test;object=kek-aes?module-path=$MODULE&pin-source=file:$T/badpin"
expect_fail 12 "PIN refused" "$OWNKEY" encrypt --to "$BAD" -i plain.bin -o never.bin
check "wrong PIN not echoed" bash -c "! grep -q 4321 err.txt"
check "right PIN not echoed" bash -c "! grep -q 1234 err.txt"
check "no output on failure" test ! -e never.bin
expect_fail 10 'no key labelled "nope"' "$OWNKEY" encrypt --to "pkcs11:token=cli-test;object=nope?$Q" -i plain.bin -o n.bin
expect_fail 2 "module-path" "$OWNKEY" encrypt --to "pkcs11:token=cli-test;object=kek-aes" -i plain.bin -o n.bin

echo "pkcs11 CLI: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
