#!/usr/bin/env bash
# HTTP throughput of `hello` through Atoll next to Pingora alone and nginx, in the same run, and
# of a response cache hit (the `cached` component's answer, served from memory).
# Each server is pinned to CPU 0 with one worker thread; wrk is pinned to CPU 1. Loopback only;
# every wrk run is bounded in time. Prints a Markdown table with ratios.
#
#   scripts/bench-http.sh            # 10 s per server, 32 connections
#   DURATION=5s CONNECTIONS=64 scripts/bench-http.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ATOLL_PORT=18080
BASELINE_PORT=18090
CACHE_PORT=18095
NGINX_PORT=18100
source scripts/lib/bench.sh
cargo build --release --workspace --bins --examples >&2

# Atoll: hello with a fresh instance per request; metrics and access lines on, logs to a file.
start_atoll $ATOLL_PORT "{metrics: on, access_log: on}" info
read -r atoll_rps atoll_p99 < <(run_wrk $ATOLL_PORT)
stop_last

# Atoll answering from its response cache: `cached` says `max-age=60`, the first request fills
# the cache, every later one is a hit that runs no guest. Metrics on, access log off (as nginx).
start_atoll $CACHE_PORT "{metrics: on, access_log: off}" warn cached
curl -fsS -o /dev/null "http://127.0.0.1:$CACHE_PORT/hello"
[[ $(curl -fsS -o /dev/null -w '%header{x-cache}' "http://127.0.0.1:$CACHE_PORT/hello") == HIT ]] ||
  { echo "bench: the cached answer is not a hit" >&2; exit 1; }
read -r cache_rps cache_p99 < <(run_wrk $CACHE_PORT)
stop_last

taskset -c 0 target/release/examples/pingora_baseline 127.0.0.1:$BASELINE_PORT 2>/dev/null &
pids+=($!)
wait_for $BASELINE_PORT
read -r base_rps base_p99 < <(run_wrk $BASELINE_PORT)
stop_last

nginx_rps="n/a"; nginx_p99="n/a"
if command -v nginx >/dev/null; then
  start_nginx $NGINX_PORT
  read -r nginx_rps nginx_p99 < <(run_wrk $NGINX_PORT)
  stop_last
fi

echo
echo "| server (1 core, wrk -c$CONNECTIONS -d$DURATION) | requests/s | p99 | Atoll ÷ this |"
echo "|---|---|---|---|"
echo "| Atoll, hello, fresh instance per request | $atoll_rps | $atoll_p99 | 1.00 |"
echo "| Pingora alone, answer from request_filter | $base_rps | $base_p99 | $(ratio "$atoll_rps" "$base_rps") |"
echo "| nginx \`return 200\` | $nginx_rps | $nginx_p99 | $(ratio "$atoll_rps" "$nginx_rps") |"
echo
echo "| cache hit (1 core, wrk -c$CONNECTIONS -d$DURATION) | requests/s | p99 | ÷ nginx |"
echo "|---|---|---|---|"
echo "| Atoll, \`cached\` answered from the response cache | $cache_rps | $cache_p99 | $(ratio "$cache_rps" "$nginx_rps") |"
