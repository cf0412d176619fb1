#!/usr/bin/env bash
# Crash test of the data service (issue 4 §4): writers put objects concurrently while ownkeyd is killed
# with SIGKILL, again and again. After every restart each acknowledged object reads back intact, every
# listed object reads back as one of the versions that was sent (never partial), and an object replaced
# in place holds a version at least as new as the last one acknowledged.
set -uo pipefail
source "$(dirname "$0")/daemon_lib.sh"

ROUNDS=${CRASH_ROUNDS:-5}
WRITERS=${CRASH_WRITERS:-6}
T=$(mktemp -d)
trap 'stop_daemon; rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$OWNKEYD_BIN" init --data-dir "$T/d" --dev --output json >"$T/init.json" 2>/dev/null || { echo "init failed"; exit 1; }
TOKEN=$(jq -r .admin_token "$T/init.json")
start_daemon "$T/d" || exit 1
[ "$(api PUT /data/v1/tenants/crash '{}' | cut -d' ' -f1)" = 201 ] || { echo "cannot create the tenant"; exit 1; }

# The content of a version is a function of its name and number, so any later reader can check it.
gen() { # NAME VERSION -> file path with the bytes
  local f="$T/gen.$BASHPID" size=$(( ($2 * 7919 + ${#1} * 104729) % 400000 ))
  [ $(( $2 % 9 )) -eq 0 ] && size=$((size + 2 * 1024 * 1024))
  yes "$1#$2" | head -c "$size" >"$f"
  echo "$f"
}
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

writer() { # W ROUND: puts new objects and replaces one shared name until the daemon dies
  local w=$1 r=$2 i=0 f code
  while :; do
    i=$((i + 1))
    f=$(gen "w$w-r$r-$i" "$i")
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CACERT" -H "Authorization: Bearer $TOKEN" \
             -T "$f" "$URL/data/v1/tenants/crash/objects/w$w-r$r-$i") || break
    case "$code" in 200|201) echo "w$w-r$r-$i $i $(sha_of "$f")" >>"$T/acked" ;; *) break ;; esac
    f=$(gen "replace-w$w" "$((r * 100000 + i))")
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CACERT" -H "Authorization: Bearer $TOKEN" \
             -T "$f" "$URL/data/v1/tenants/crash/objects/replace-w$w") || break
    case "$code" in 200|201) echo "replace-w$w $((r * 100000 + i))" >>"$T/replaced.$w" ;; *) break ;; esac
  done
  rm -f "$T/gen.$BASHPID"
}

get_sha() { # NAME -> sha of what the daemon returns, or "error"
  if curl -sf --cacert "$CACERT" -H "Authorization: Bearer $TOKEN" -o "$T/got" "$URL/data/v1/tenants/crash/objects/$1"; then
    sha_of "$T/got"
  else
    echo error
  fi
}

touch "$T/acked"
for r in $(seq 1 "$ROUNDS"); do
  pids=()
  for w in $(seq 1 "$WRITERS"); do writer "$w" "$r" & pids+=($!); done
  sleep "$(awk -v s="$RANDOM" 'BEGIN { printf "%.1f", 1.5 + (s % 20) / 10 }')"
  kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=""
  for p in "${pids[@]}"; do wait "$p"; done
  start_daemon "$T/d" || { fail "restart $r"; break; }

  # Every acknowledged object reads back intact.
  while read -r name ver sha; do
    [ "$(get_sha "$name")" = "$sha" ] || fail "round $r: acknowledged $name (version $ver) does not read back"
  done <"$T/acked"
  # Every listed object is whole: one of the versions that was sent.
  marker=""
  while :; do
    page=$(curl -sf --cacert "$CACERT" -H "Authorization: Bearer $TOKEN" \
             "$URL/data/v1/tenants/crash/objects?maxresults=500${marker:+&marker=$(jq -rn --arg m "$marker" '$m|@uri')}")
    for name in $(jq -r '.objects[].name' <<<"$page"); do
      case "$name" in
        replace-w*)
          w=${name#replace-w}
          last=$(tail -n 1 "$T/replaced.$w" 2>/dev/null | cut -d' ' -f2)
          got=$(get_sha "$name"); ok=0
          # The version held must be the last acknowledged one or one sent after it (in flight at the kill).
          for v in ${last:-} $(( ${last:-0} + 1 )) $(( r * 100000 + 1 )); do
            [ -n "$v" ] && [ "$got" = "$(sha_of "$(gen "$name" "$v")")" ] && ok=1
          done
          # A round's first replacement may have been in flight after a new object was acknowledged.
          [ $ok = 1 ] || fail "round $r: $name holds no version at or after the last acknowledged ($last)"
          ;;
        *)
          i=${name##*-}
          [ "$(get_sha "$name")" = "$(sha_of "$(gen "$name" "$i")")" ] || fail "round $r: listed $name is not whole"
          ;;
      esac
    done
    marker=$(jq -r '.next_marker // empty' <<<"$page")
    [ -z "$marker" ] && break
  done
  # Nothing temporary is left behind once the daemon has restarted.
  left=$(find "$T/d/objects" -name '.tmp-*' | wc -l)
  [ "$left" -eq 0 ] || fail "round $r: $left temporary files left after restart"
  echo "round $r: $(wc -l <"$T/acked") acknowledged objects so far, all intact"
done
rm -f "$T"/gen.*

[ "$(wc -l <"$T/acked")" -gt 0 ] || fail "no put was ever acknowledged"
if [ "$fails" -ne 0 ]; then echo "$fails failures"; exit 1; fi
echo "crash test: $ROUNDS kills, $(wc -l <"$T/acked") acknowledged objects, all intact"
