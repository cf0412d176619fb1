#!/usr/bin/env bash
# End-to-end tests of the ownkey CLI: key generation, round trips, recipients, inspect, and every
# documented error message and exit code. Needs OWNKEY_BIN (set by ctest).
set -uo pipefail
OWNKEY=${OWNKEY_BIN:?OWNKEY_BIN must point at the ownkey binary}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
passed=0
failed=0

ok()   { passed=$((passed + 1)); }
bad()  { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

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

header_len() { od -An -tu1 -j7 -N4 "$1" | awk '{print $1*16777216 + $2*65536 + $3*256 + $4}'; }
flip_byte() { # flip_byte FILE OFFSET
  local b; b=$(od -An -tu1 -j"$2" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# --- keygen ---------------------------------------------------------------------------------------
check "keygen oct" "$OWNKEY" keygen --type oct -o k1.jwk
check "keygen oct 2" "$OWNKEY" keygen --type oct -o k2.jwk
check "keygen rsa" "$OWNKEY" keygen --type rsa --bits 2048 -o r.jwk --public-out r.pub.jwk
check "key mode 0600" test "$(stat -c %a k1.jwk)" = 600
check "rsa key mode 0600" test "$(stat -c %a r.jwk)" = 600
check "public key has no d" bash -c '! grep -q "\"d\"" r.pub.jwk'
check "oct key is a JWK" grep -q '"kty": *"oct"' k1.jwk
expect_fail 2 "refusing to overwrite" "$OWNKEY" keygen --type oct -o k1.jwk
expect_fail 2 "RSA keys are 2048, 3072 or 4096" "$OWNKEY" keygen --type rsa --bits 1024 -o x.jwk
expect_fail 2 "type must be oct or rsa" "$OWNKEY" keygen --type ec -o x.jwk

# --- round trips ----------------------------------------------------------------------------------
head -c 300000 /dev/urandom >plain.bin
check "encrypt -i/-o" "$OWNKEY" encrypt --to file:k1.jwk -i plain.bin -o enc.bin
check "decrypt -i/-o" "$OWNKEY" decrypt --key file:k1.jwk -i enc.bin -o dec.bin
check "round trip equal" cmp -s plain.bin dec.bin
check "stdin/stdout round trip" bash -c "'$OWNKEY' encrypt --to file:k1.jwk <plain.bin | '$OWNKEY' decrypt --key file:k1.jwk | cmp -s - plain.bin"
: >empty.bin
check "empty file" bash -c "'$OWNKEY' encrypt --to file:k1.jwk -i empty.bin | '$OWNKEY' decrypt --key file:k1.jwk | cmp -s - empty.bin"
check "one thread" bash -c "'$OWNKEY' encrypt --threads 1 --frame-size 4096 --to file:k1.jwk -i plain.bin | '$OWNKEY' decrypt --threads 1 --key file:k1.jwk | cmp -s - plain.bin"

# --- recipients -----------------------------------------------------------------------------------
check "any-of encrypt" "$OWNKEY" encrypt --to file:k1.jwk --to file:r.pub.jwk -i plain.bin -o any.bin
check "any-of: oct opens" bash -c "'$OWNKEY' decrypt --key file:k1.jwk -i any.bin | cmp -s - plain.bin"
check "any-of: rsa private opens" bash -c "'$OWNKEY' decrypt --key file:r.jwk -i any.bin | cmp -s - plain.bin"
expect_fail 5 "no recipient matches" "$OWNKEY" decrypt --key file:k2.jwk -i any.bin -o never.bin
check "no output on failure" test ! -e never.bin
check "no temp file left" bash -c '! ls never.bin.tmp.* 2>/dev/null'
expect_fail 4 "private key" "$OWNKEY" decrypt --key file:r.pub.jwk -i any.bin
check "all-of encrypt" "$OWNKEY" encrypt --all-of --to file:k1.jwk --to file:r.jwk -i plain.bin -o all.bin
expect_fail 5 "no recipient matches layer" "$OWNKEY" decrypt --key file:k1.jwk -i all.bin
check "all-of: both open" bash -c "'$OWNKEY' decrypt --key file:r.jwk --key file:k1.jwk -i all.bin | cmp -s - plain.bin"

# --- inspect --------------------------------------------------------------------------------------
check "encrypt with context" "$OWNKEY" encrypt --to file:k1.jwk --context tenant=acme --context purpose=backup -i plain.bin -o ctx.bin
"$OWNKEY" inspect -i ctx.bin >inspect.txt 2>&1
check "inspect shows context" grep -q "tenant=acme" inspect.txt
check "inspect shows recipient" grep -q "provider=file key=$(grep -o '"kid": *"[^"]*"' k1.jwk | sed 's/.*"\([^"]*\)"$/\1/')" inspect.txt
check "inspect shows mode" grep -q "any-of" inspect.txt
"$OWNKEY" inspect -i all.bin --output json >inspect.json
check "inspect json mode" grep -q '"mode": "all-of"' inspect.json
check "inspect json recipients" grep -q '"wrap_alg": "RSA-OAEP-256"' inspect.json
expect_fail 2 "context needs KEY=VALUE" "$OWNKEY" encrypt --to file:k1.jwk --context novalue -i plain.bin

# --- tampering, truncation, versions ---------------------------------------------------------------
check "small frames" "$OWNKEY" encrypt --frame-size 64 --to file:k1.jwk -i plain.bin -o small.bin
H=$(header_len small.bin)
cp small.bin tampered.bin
flip_byte tampered.bin $((H + 84 + 10))   # inside frame 2's ciphertext
expect_fail 6 "authentication failed in frame 2" "$OWNKEY" decrypt --key file:k1.jwk -i tampered.bin -o never.bin
check "no partial plaintext" test ! -e never.bin
cp small.bin tampered.bin
flip_byte tampered.bin 20                 # inside the header (the message id)
expect_fail 6 "authentication failed" "$OWNKEY" decrypt --key file:k1.jwk -i tampered.bin
head -c $((H + 84 * 3)) small.bin >trunc.bin
expect_fail 7 "truncated" "$OWNKEY" decrypt --key file:k1.jwk -i trunc.bin -o never.bin
check "no partial plaintext (truncated)" test ! -e never.bin
head -c $((H + 84 * 3 + 30)) small.bin >trunc2.bin
expect_fail 7 "truncated" "$OWNKEY" decrypt --key file:k1.jwk -i trunc2.bin
head -c 20 small.bin >trunc3.bin
expect_fail 7 "header" "$OWNKEY" decrypt --key file:k1.jwk -i trunc3.bin
cp small.bin v2.bin
printf '\002' | dd of=v2.bin bs=1 seek=4 conv=notrunc status=none
expect_fail 8 "unknown format version 2" "$OWNKEY" decrypt --key file:k1.jwk -i v2.bin
expect_fail 8 "unknown format version 2" "$OWNKEY" inspect -i v2.bin
echo "hello" >notenv.bin
expect_fail 9 "not an ownkey envelope" "$OWNKEY" decrypt --key file:k1.jwk -i notenv.bin
cp small.bin trailing.bin; echo x >>trailing.bin
expect_fail 9 "trailing data" "$OWNKEY" decrypt --key file:k1.jwk -i trailing.bin

# --- key files and usage ----------------------------------------------------------------------------
expect_fail 4 "cannot read key file" "$OWNKEY" decrypt --key file:missing.jwk -i small.bin
echo '{"kty":"oct"}' >broken.jwk
expect_fail 4 "not a usable JWK" "$OWNKEY" decrypt --key file:broken.jwk -i small.bin
echo 'not json' >broken2.jwk
expect_fail 4 "broken2.jwk" "$OWNKEY" encrypt --to file:broken2.jwk -i plain.bin
expect_fail 2 "unknown key reference" "$OWNKEY" encrypt --to k1.jwk -i plain.bin
expect_fail 2 "at least one --to" "$OWNKEY" encrypt -i plain.bin
expect_fail 3 "cannot open" "$OWNKEY" encrypt --to file:k1.jwk -i does-not-exist.bin
expect_fail 2 "unknown command" "$OWNKEY" frobnicate
for cmd in keygen encrypt decrypt inspect; do
  check "$cmd --help" bash -c "'$OWNKEY' $cmd --help | grep -q usage"
done

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
