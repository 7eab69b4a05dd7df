#!/usr/bin/env bash
# Load test of `peerscope web` (not part of ctest: timings live in benchmarks). Starts the
# server on a fixture, runs wrk on the read-only routes (tests/web/load.lua rotates
# GET /api/v1/topology, /api/v1/job, /api/v1/launch and /), once to warm up and once measured,
# and reports requests/s, p99 latency, errors and the server's RSS. Fails when a request got
# a non-2xx answer or a socket error, when RSS grew by more than PS_LOAD_MAX_GROWTH_KB
# (default 6144) from after the warm-up to after the measured run (not in a sanitizer build,
# whose allocator grows by design), or when the server does not exit 0 on SIGTERM with
# nothing on stderr (in a sanitizer build: no LeakSanitizer report).
#
#   tests/web/load.sh [BUILD_DIR]        (default build; e.g. build-asan for ASan/UBSan)
#   PS_LOAD_SECONDS=20 PS_LOAD_CONNECTIONS=50 PS_LOAD_THREADS=2 PS_LOAD_WARMUP=5
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
cli=$build/bin/peerscope
seconds=${PS_LOAD_SECONDS:-20}
conns=${PS_LOAD_CONNECTIONS:-50}
threads=${PS_LOAD_THREADS:-2}
warmup=${PS_LOAD_WARMUP:-5}
max_growth=${PS_LOAD_MAX_GROWTH_KB:-6144}
command -v wrk >/dev/null || { echo "load.sh: wrk is not installed (scripts/install-deps.sh)" >&2; exit 2; }
[ -x "$cli" ] || { echo "load.sh: $cli not built" >&2; exit 2; }

work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -KILL "$server"; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PEERSCOPE_CACHE_DIR=$work/cache
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
"$cli" web --port "$port" --fixture tests/fixtures/example-4x-a100.topo \
  --vllm tests/fake/vllm >"$work/out" 2>"$work/err" &
server=$!
for _ in $(seq 1 200); do
  grep -q "peerscope web: http://" "$work/out" 2>/dev/null &&
    python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/app.js', timeout=2)" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/out" "$work/err" >&2; exit 1; }
  sleep 0.05
done
url=http://127.0.0.1:$port
# Every API route needs the session: the token from the start-up URL, sent as a header.
PS_LOAD_TOKEN=$(sed -n 's/.*?token=\([0-9a-f]*\).*/\1/p' "$work/out" | head -1)
export PS_LOAD_TOKEN

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$server/status"; }
run_wrk() {
  wrk -t"$threads" -c"$conns" -d"$1"s --latency -s tests/web/load.lua "$url" >"$work/wrk" 2>&1 ||
    { cat "$work/wrk" >&2; exit 1; }
  grep '^LOAD ' "$work/wrk"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

rss_start=$(rss_kb)
run_wrk "$warmup" >/dev/null
rss_before=$(rss_kb)
line=$(run_wrk "$seconds")
rss_after=$(rss_kb)
echo "load: $build, wrk -t$threads -c$conns -d${seconds}s --latency on GET /api/v1/topology, /api/v1/job, /api/v1/launch, /"
sed -n '/Latency Distribution/,/requests in/p' "$work/wrk"
echo "$line"
errors=$(( $(field non2xx "$line") + $(field connect "$line") + $(field read "$line") +
           $(field write "$line") + $(field timeout "$line") ))
growth=$(( rss_after - rss_before ))
printf 'requests/s %s, p99 %s ms, errors %d, RSS %d kB at start, %d kB after the warm-up, %d kB after the run (%+d kB)\n' \
  "$(field rps "$line")" "$(field p99_ms "$line")" "$errors" "$rss_start" "$rss_before" "$rss_after" "$growth"

status=0
if [ "$errors" -ne 0 ]; then echo "load: FAIL $errors non-2xx answers or socket errors"; status=1; fi
if grep -qE '^PS_SANITIZE:STRING=.+' "$build/CMakeCache.txt" 2>/dev/null; then
  # ASan's quarantine, allocator caches and stack depot grow with traffic: RSS says nothing
  # about leaks there. LeakSanitizer does, at exit (below).
  echo "RSS growth not gated in a sanitizer build (LeakSanitizer checks at exit)"
elif [ "$growth" -gt "$max_growth" ]; then
  echo "load: FAIL RSS grew by $growth kB (limit $max_growth kB)"; status=1
fi
kill -TERM "$server"
t0=$EPOCHREALTIME
set +e
wait "$server"
rc=$?
set -e
server=""
took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}')
echo "SIGTERM: exit $rc after ${took} s"
if [ "$rc" -ne 0 ]; then echo "load: FAIL exit $rc on SIGTERM"; status=1; fi
if [ -s "$work/err" ]; then
  echo "load: FAIL the server wrote to stderr (a sanitizer report?):"; head -40 "$work/err"; status=1
fi
[ $status -eq 0 ] && echo "load: ok"
exit $status
