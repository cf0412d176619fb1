#!/usr/bin/env bash
# Integration tests of the data API (/data/v1/) of a real ownkeyd over HTTPS with curl and jq, with
# service-managed tenants: tenant create (201, 409 again), status fields, names; streamed puts of a few MiB
# (past the 1 MiB buffered-body limit, and chunked), replace (200), byte ranges (a-b, a-, -n, 416 past the
# end), HEAD, content type and x-ownkey-meta-* round trip, listing with prefix and paging, delete, a body
# shorter than its Content-Length (nothing stored), bad and unknown names, the permission matrix
# (dataRead / none / no token, each with its audit line), the roles (--roles vault: no data API, --roles
# data: no keys API), refused --roles / --key-cache-ttl values, restart persistence and the metrics.
# Customer keys and locks are test_data_e2e.sh's.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/daemon_lib.sh"
T=$(mktemp -d)
trap 'stop_daemon; rm -rf "$T"' EXIT
sha() { sha256sum "$1" | cut -d' ' -f1; }
# audited JQ_FILTER: some audit line matches.
audited() { jq -e -s "map(select($1)) | length > 0" "$D/audit.log" >/dev/null 2>&1; }

O=/data/v1/tenants
# put TENANT NAME FILE [CURL ARGS...]: streamed upload; sets STATUS and BODY.
put() {
  local tenant=$1 name=$2 file=$3; shift 3
  STATUS=$(curl -s -o "$T/put.json" -w '%{http_code}' --cacert "$CACERT" -H "Authorization: Bearer ${PUT_TOKEN:-$TOKEN}" \
    -T "$file" "$@" "$URL$O/$tenant/objects/$name")
  BODY=$(cat "$T/put.json")
}
# get TENANT NAME OUT [RANGE] [CURL ARGS...]: sets STATUS; headers in $T/hdrs (lowercased names).
get() {
  local tenant=$1 name=$2 out=$3 range=${4:-}; shift 4 2>/dev/null || shift $#
  local args=(-s -D "$T/hdrs.raw" -o "$out" -w '%{http_code}' --cacert "$CACERT" -H "Authorization: Bearer ${GET_TOKEN:-$TOKEN}")
  [ -n "$range" ] && args+=(-H "Range: bytes=$range")
  STATUS=$(curl "${args[@]}" "$@" "$URL$O/$tenant/objects/$name")
  tr -d '\r' <"$T/hdrs.raw" | sed -E 's/^([^:]+):/\L\1:/' >"$T/hdrs"
}
hdr() { sed -n "s/^$1: //p" "$T/hdrs" | head -1; }

D=$T/vault
"$OWNKEYD_BIN" init --data-dir "$D" --dev --output json >"$T/init.json" 2>/dev/null || { echo "init failed"; exit 1; }
TOKEN=$(jq -r .admin_token "$T/init.json")

# --- refused serve arguments (usage errors, exit 2, before anything is opened) ---------------------------------------
for roles in foo "" "vault," ",data" "vault,,data" "vault,keys" "VAULT"; do
  "$OWNKEYD_BIN" serve --data-dir "$D" --listen 127.0.0.1:1 --roles "$roles" >/dev/null 2>"$T/err"
  check "--roles '$roles' refused" test $? -eq 2
done
check "--roles error names the flag" grep -q -- "--roles" "$T/err"
for ttl in 0 -5 abc 10x "" 99999999999; do
  "$OWNKEYD_BIN" serve --data-dir "$D" --listen 127.0.0.1:1 --key-cache-ttl "$ttl" >/dev/null 2>"$T/err"
  check "--key-cache-ttl '$ttl' refused" test $? -eq 2
done
check "help names --roles" bash -c "'$OWNKEYD_BIN' --help | grep -q -- '--roles vault,data'"
check "help names --key-cache-ttl" bash -c "'$OWNKEYD_BIN' serve --help | grep -q -- '--key-cache-ttl'"

start_daemon "$D" --key-cache-ttl 30 || exit 1

# --- authentication ----------------------------------------------------------------------------------------------------
hdrs=$(curl -s -D - -o /dev/null --cacert "$CACERT" "$URL$O")
check "401 without a token" grep -q "^HTTP/[0-9.]* 401" <<<"$hdrs"
check "401 challenge" grep -qi '^www-authenticate: Bearer' <<<"$hdrs"
expect 401 GET "$O" "" "okt_not-a-real-token"
check "401 code" test "$(jqr .error.code)" = Unauthorized
expect 404 GET "/data/v1/nothing-here"

# --- tenants -------------------------------------------------------------------------------------------------------------
expect 201 PUT "$O/t1" '{}'
check "name" test "$(jqr .name)" = t1
check "state active" test "$(jqr .state)" = active
check "service key source" test "$(jqr .key_source)" = service
check "no customer key" test "$(jqr '.customer_key, .customer_kid, .reason, .reason_code' | sort -u)" = null
check "not permanent" test "$(jqr .permanent)" = false
check "empty" test "$(jqr '.objects, .bytes' | tr '\n' ' ')" = "0 0 "
check "generation" test "$(jqr '.tk_generation | type')" = number
check "since is RFC 3339 UTC" grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' <<<"$(jqr .since)"
check "since_unix and created are numbers" test "$(jqr '[.since_unix, .created] | map(type) | join(",")')" = number,number
check "since matches since_unix" test "$(date -u -d "@$(jqr .since_unix)" +%Y-%m-%dT%H:%M:%SZ)" = "$(jqr .since)"
check "rekey none" test "$(jqr '.rekey.state, .rekey.reencrypt, .rekey.done, .rekey.total' | tr '\n' ' ')" = "none false 0 0 "
expect 409 PUT "$O/t1" '{}'
check "409 code" test "$(jqr .error.code)" = Conflict
expect 201 PUT "$O/t2"
expect 200 GET "$O/t1"
check "status fields" test "$(jq -c 'keys' <<<"$BODY")" = \
  '["bytes","created","customer_key","customer_kid","key_source","name","objects","permanent","reason","reason_code","rekey","since","since_unix","state","tk_generation"]'
expect 200 GET "$O"
check "tenant names" test "$(jq -c .tenants <<<"$BODY")" = '["t1","t2"]'
expect 400 PUT "$O/bad_name" '{}'
check "bad tenant name code" test "$(jqr .error.code)" = BadParameter
expect 400 PUT "$O/$(printf 'a%.0s' $(seq 1 64))" '{}'
expect 400 GET "$O/bad.name"
expect 400 PUT "$O/t3" '{"double":true}'
expect 400 PUT "$O/t3" '{"customer_key":"https://x/keys/k"}'
expect 400 PUT "$O/t3" '{"customer_key":{"uri":"https://x/keys/k"}}'
expect 400 PUT "$O/t3" '{"permanent":"yes"}'
expect 400 PUT "$O/t3" '{"double":'
expect 404 GET "$O/t3"
check "refused creates left nothing" test "$(jqr .error.code)" = TenantNotFound
expect 404 GET "$O/nope/objects"
expect 404 GET "$O/nope/objects/a"
check "unknown tenant code" test "$(jqr .error.code)" = TenantNotFound
expect 200 GET "$O/t1/rekey"
check "rekey progress" test "$(jqr .state)" = none

# --- put and get ---------------------------------------------------------------------------------------------------------
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$T/big"
head -c 100000 /dev/urandom >"$T/small"
head -c 2000000 /dev/urandom >"$T/other"
: >"$T/empty"
put t1 dir/big.bin "$T/big"
check "put a 3 MiB body: 201 (streamed, no 413)" test "$STATUS" = 201
check "put reply" test "$(jq -r '.name, .size' <<<"$BODY" | tr '\n' ' ')" = "dir/big.bin $((3 * 1024 * 1024 + 12345)) "
check "put reply etag" grep -qE '^[0-9a-f]{32}$' <<<"$(jq -r .etag <<<"$BODY")"
check "put reply fields" test "$(jq -c 'keys' <<<"$BODY")" = '["content_type","etag","modified","name","size"]'
BIG_ETAG=$(jq -r .etag <<<"$BODY")
get t1 dir/big.bin "$T/out"
check "get 200" test "$STATUS" = 200
check "round trip of 3 MiB" test "$(sha "$T/out")" = "$(sha "$T/big")"
check "Content-Length" test "$(hdr content-length)" = $((3 * 1024 * 1024 + 12345))
check "ETag" test "$(hdr etag)" = "\"$BIG_ETAG\""
check "Accept-Ranges" test "$(hdr accept-ranges)" = bytes
check "Last-Modified" grep -qE '^[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT$' <<<"$(hdr last-modified)"
check "default content type" test "$(hdr content-type)" = application/octet-stream
put t1 dir/big.bin "$T/other"
check "replace: 200" test "$STATUS" = 200
check "replace: new etag" test "$(jq -r .etag <<<"$BODY")" != "$BIG_ETAG"
get t1 dir/big.bin "$T/out"
check "replace: new bytes" test "$(sha "$T/out")" = "$(sha "$T/other")"
put t1 chunked "$T/big" -H 'Transfer-Encoding: chunked'
check "chunked put (no Content-Length): 201" test "$STATUS" = 201
get t1 chunked "$T/out"
check "chunked round trip" test "$(sha "$T/out")" = "$(sha "$T/big")"
put t1 empty "$T/empty"
check "empty object: 201" test "$STATUS" = 201
get t1 empty "$T/out"
check "empty object: 200, no bytes" test "$STATUS $(stat -c %s "$T/out")" = "200 0"
get t1 empty "$T/out" 0-
check "empty object: any range 416" test "$STATUS" = 416

# --- ranges ------------------------------------------------------------------------------------------------------------------
put t1 small "$T/small"
get t1 small "$T/out" 0-99
check "a-b: 206" test "$STATUS" = 206
check "a-b: bytes" cmp -s "$T/out" <(head -c 100 "$T/small")
check "a-b: Content-Range" test "$(hdr content-range)" = "bytes 0-99/100000"
check "a-b: Content-Length" test "$(hdr content-length)" = 100
get t1 small "$T/out" 65530-65545
check "across a frame boundary" cmp -s "$T/out" <(tail -c +65531 "$T/small" | head -c 16)
get t1 small "$T/out" 99990-
check "a-: 206" test "$STATUS" = 206
check "a-: bytes" cmp -s "$T/out" <(tail -c 10 "$T/small")
check "a-: Content-Range" test "$(hdr content-range)" = "bytes 99990-99999/100000"
get t1 small "$T/out" -100
check "-n: 206" test "$STATUS" = 206
check "-n: bytes" cmp -s "$T/out" <(tail -c 100 "$T/small")
get t1 small "$T/out" -200000
check "-n longer than the object: all of it" cmp -s "$T/out" "$T/small"
get t1 small "$T/out" 99999-5000000
check "b past the end is cut" test "$STATUS $(hdr content-range)" = "206 bytes 99999-99999/100000"
get t1 small "$T/out" 100000-100010
check "past the end: 416" test "$STATUS" = 416
check "416 Content-Range" test "$(hdr content-range)" = "bytes */100000"
check "416 code" test "$(jq -r .error.code "$T/out")" = RangeNotSatisfiable
get t1 small "$T/out" -0
check "-0: 416" test "$STATUS" = 416
get t1 small "$T/out" 0-1,5-6
check "several ranges: the whole object, 200" test "$STATUS $(sha "$T/out")" = "200 $(sha "$T/small")"
get t1 small "$T/out" 50-10
check "malformed range ignored: 200" test "$STATUS" = 200
get t1 dir/big.bin "$T/out" 1048570-1179660
check "range in a big object" cmp -s "$T/out" <(tail -c +1048571 "$T/other" | head -c 131091)

# --- HEAD, content type, metadata ------------------------------------------------------------------------------------------
put t1 "docs/readme.txt" "$T/small" -H 'Content-Type: text/plain; charset=utf-8' -H 'x-ownkey-meta-color: blue' \
  -H 'X-Ownkey-Meta-Owner: Alice Smith'
check "put with metadata: 201" test "$STATUS" = 201
check "put reply content type" test "$(jq -r .content_type <<<"$BODY")" = "text/plain; charset=utf-8"
README_ETAG=$(jq -r .etag <<<"$BODY")
get t1 docs/readme.txt "$T/out" "" -I
check "HEAD 200" test "$STATUS" = 200
check "HEAD: Content-Length" test "$(hdr content-length)" = 100000
check "HEAD: ETag" test "$(hdr etag)" = "\"$README_ETAG\""
check "HEAD: Last-Modified" test -n "$(hdr last-modified)"
check "HEAD: Accept-Ranges" test "$(hdr accept-ranges)" = bytes
check "HEAD: content type" test "$(hdr content-type)" = "text/plain; charset=utf-8"
# x-ownkey-meta-* needs the server to list request headers (ok_http_request has look-up by name only).
check "HEAD: metadata (key lowercased)" test "$(hdr x-ownkey-meta-color),$(hdr x-ownkey-meta-owner)" = "blue,Alice Smith"
get t1 docs/readme.txt "$T/out"
check "GET: content type" test "$(hdr content-type)" = "text/plain; charset=utf-8"
check "GET: metadata" test "$(hdr x-ownkey-meta-color),$(hdr x-ownkey-meta-owner)" = "blue,Alice Smith"
get t1 nope "$T/out" "" -I
check "HEAD of a missing object: 404" test "$STATUS" = 404

# --- list ------------------------------------------------------------------------------------------------------------------------
for i in 1 2 3 4; do put t1 "docs/part$i" "$T/empty"; done
expect 200 GET "$O/t1/objects?prefix=docs/"
check "prefix: sorted names" test "$(jq -c '[.objects[].name]' <<<"$BODY")" = \
  '["docs/part1","docs/part2","docs/part3","docs/part4","docs/readme.txt"]'
check "prefix: last page" test "$(jqr .next_marker)" = null
check "list item fields" test "$(jq -c '.objects[0] | keys' <<<"$BODY")" = '["content_type","etag","modified","name","size"]'
check "list item content type" test "$(jq -r '.objects[4].content_type' <<<"$BODY")" = "text/plain; charset=utf-8"
names="" marker="" pages=0
while :; do
  expect 200 GET "$O/t1/objects?prefix=docs/&maxresults=2${marker:+&marker=$(jq -rn --arg m "$marker" '$m|@uri')}"
  pages=$((pages + 1))
  check "page of at most 2" test "$(jq '.objects | length' <<<"$BODY")" -le 2
  names="$names$(jq -r '.objects[].name' <<<"$BODY")"$'\n'
  marker=$(jqr '.next_marker // empty')
  [ -z "$marker" ] || [ $pages -gt 5 ] && break
done
check "paging: 3 pages" test "$pages" = 3
check "paging: every name once" test "$(grep -c . <<<"$names")" = 5
expect 200 GET "$O/t1/objects"
check "list all" test "$(jq '.objects | length' <<<"$BODY")" = 9
expect 200 GET "$O/t2/objects"
check "list an empty tenant" test "$(jq -c . <<<"$BODY")" = '{"objects":[],"next_marker":null}'
expect 400 GET "$O/t1/objects?maxresults=0"
expect 400 GET "$O/t1/objects?maxresults=abc"
expect 400 GET "$O/t1/objects?maxresults=1001"
expect 200 GET "$O/t1"
check "status counts objects" test "$(jqr .objects)" = 9
check "status counts bytes" test "$(jqr .bytes)" = $((2000000 + 3 * 1024 * 1024 + 12345 + 2 * 100000))

# --- delete, bad names, short bodies ----------------------------------------------------------------------------------------------
expect 204 DELETE "$O/t1/objects/docs/part4"
expect 404 GET "$O/t1/objects/docs/part4"
check "deleted: ObjectNotFound" test "$(jqr .error.code)" = ObjectNotFound
expect 404 DELETE "$O/t1/objects/docs/part4"
expect 400 GET "$O/t1/objects/a%01b"
put t1 "a%01b" "$T/small"
check "put with a control character in the name: 400" test "$STATUS" = 400
put nope a "$T/small"
check "put to an unknown tenant: 404" test "$STATUS $(jq -r .error.code <<<"$BODY")" = "404 TenantNotFound"
put bad_name a "$T/small"
check "put to a bad tenant name: 400" test "$STATUS" = 400
head -c 10 /dev/urandom >"$T/ten"
STATUS=$(curl -s -o "$T/put.json" -w '%{http_code}' --max-time 3 --cacert "$CACERT" -H "Authorization: Bearer $TOKEN" \
  -X PUT -H 'Content-Length: 1000' --data-binary @"$T/ten" "$URL$O/t1/objects/short")
check "short body: IncompleteBody 400 or a broken connection" \
  bash -c "[ '$STATUS' = 000 ] || { [ '$STATUS' = 400 ] && grep -q IncompleteBody '$T/put.json'; }"
sleep 0.5
expect 404 GET "$O/t1/objects/short"
check "short body: nothing stored" test "$(jqr .error.code)" = ObjectNotFound
check "short body: audited" audited '.operation == "data.put" and .version == "short" and .status == 400'

# --- permissions ---------------------------------------------------------------------------------------------------------------------
expect 200 POST "/ownkey/v1/identities" '{"name":"reader"}'
READER=$(jqr .token)
expect 200 PUT "/ownkey/v1/identities/reader/policies" '{"keys":"t1","permissions":["dataRead"]}'
expect 200 POST "/ownkey/v1/identities" '{"name":"nobody"}'
NOBODY=$(jqr .token)
GET_TOKEN=$READER get t1 small "$T/out"
check "dataRead: get 200" test "$STATUS $(sha "$T/out")" = "200 $(sha "$T/small")"
expect 200 GET "$O/t1/objects" "" "$READER"
expect 200 GET "$O/t1" "" "$READER"
PUT_TOKEN=$READER put t1 small "$T/other"
check "dataRead: put 403" test "$STATUS $(jq -r .error.code <<<"$BODY")" = "403 Forbidden"
check "dataRead: put refused, object unchanged" bash -c "curl -s --cacert '$CACERT' -H 'Authorization: Bearer $TOKEN' \
  '$URL$O/t1/objects/small' | cmp -s - '$T/small'"
expect 403 DELETE "$O/t1/objects/small" "" "$READER"
expect 403 PUT "$O/t9" '{}' "$READER"
expect 403 GET "$O" "" "$READER"
expect 403 POST "$O/t1/rekey" '{}' "$READER"
GET_TOKEN=$READER get t2 x "$T/out"
check "dataRead on t1 only: t2 403" test "$STATUS" = 403
GET_TOKEN=$NOBODY get t1 small "$T/out"
check "no policy: get 403" test "$STATUS" = 403
expect 403 GET "$O/t1" "" "$NOBODY"
expect 401 GET "$O/t1/objects/small" "" ""
check "audit: dataRead put refused" audited '.identity == "reader" and .operation == "data.put" and .status == 403 and .key == "t1" and .version == "small"'
check "audit: dataRead create refused" audited '.identity == "reader" and .operation == "tenant.create" and .status == 403 and .key == "t9"'
check "audit: dataRead get allowed" audited '.identity == "reader" and .operation == "data.get" and .status == 200 and .key == "t1"'
check "audit: no policy refused" audited '.identity == "nobody" and .operation == "data.get" and .status == 403'
check "audit: no token" audited '.identity == null and .status == 401'
check "audit: admin put" audited '.identity == "admin" and .operation == "data.put" and .status == 201 and .version == "dir/big.bin"'
check "audit: replace" audited '.operation == "data.put" and .status == 200'
check "audit: range" audited '.operation == "data.get" and .status == 206'
check "audit: 416" audited '.operation == "data.get" and .status == 416 and .error == "RangeNotSatisfiable"'
check "audit: delete" audited '.operation == "data.delete" and .status == 204'
check "audit: tenant create" audited '.operation == "tenant.create" and .status == 201 and .key == "t1"'
check "no token in the audit log" bash -c "! grep -qF '$TOKEN' '$D/audit.log' && ! grep -qF '$READER' '$D/audit.log'"

# --- metrics, restart ------------------------------------------------------------------------------------------------------------------
metrics=$(curl -s --cacert "$CACERT" "$URL/metrics")
check "metrics: vault lines" grep -q '^ownkey_vault_keys ' <<<"$metrics"
check "metrics: data service lines" grep -q '^ownkey_data_tenants{state="active"} 2$' <<<"$metrics"
check "metrics: data requests counted" grep -q 'ownkey_http_requests_total{.*data.put' <<<"$metrics"
expect 200 GET "/keys?api-version=7.5"
stop_daemon
start_daemon "$D" || exit 1
get t1 dir/big.bin "$T/out"
check "restart keeps objects" test "$STATUS $(sha "$T/out")" = "200 $(sha "$T/other")"
get t1 docs/readme.txt "$T/out" "" -I
check "restart keeps the content type" test "$(hdr content-type)" = "text/plain; charset=utf-8"
check "restart keeps the metadata" test "$(hdr x-ownkey-meta-color)" = blue
expect 200 GET "$O/t1"
check "restart keeps the counts" test "$(jqr .objects)" = 8
stop_daemon

# --- roles ----------------------------------------------------------------------------------------------------------------------------------
start_daemon "$D" --roles vault || exit 1
expect 404 GET "$O"
expect 404 GET "$O/t1/objects/small"
put t1 small "$T/small"
check "--roles vault: streamed put 404" test "$STATUS" = 404
expect 200 GET "/keys?api-version=7.5"
expect 200 GET "/ownkey/v1/status" "" ""
metrics=$(curl -s --cacert "$CACERT" "$URL/metrics")
check "--roles vault: no data service metrics" bash -c "! grep -q '^ownkey_data_' <<<'$metrics'"
stop_daemon
start_daemon "$D" --roles data || exit 1
expect 404 GET "/keys?api-version=7.5"
expect 404 POST "/rng?api-version=7.5" '{"count":8}'
expect 404 GET "/deletedkeys?api-version=7.5"
expect 200 GET "/ownkey/v1/status" "" ""
expect 200 GET "/ownkey/v1/identities"
get t1 small "$T/out"
check "--roles data: get" test "$STATUS $(sha "$T/out")" = "200 $(sha "$T/small")"
put t2 new "$T/small"
check "--roles data: put" test "$STATUS" = 201
stop_daemon
start_daemon "$D" --roles data,vault || exit 1
expect 200 GET "/keys?api-version=7.5"
get t2 new "$T/out"; check "--roles data,vault: get" test "$STATUS" = 200
stop_daemon

# --- the end: the audit chain is intact --------------------------------------------------------------------------------------------------
start_daemon "$D" || exit 1
expect 200 GET "/ownkey/v1/audit/verify"
check "audit intact" test "$(jqr .intact)" = true
stop_daemon

echo "data api: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
