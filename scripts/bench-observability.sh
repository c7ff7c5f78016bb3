#!/usr/bin/env bash
# What metrics and access lines cost: `hello` through Atoll with both on (the default) and
# both off, alternating ROUNDS times so that drift on a noisy machine hits both alike. Reports
# requests/s and the gateway's CPU time per request (all threads, log writer included), the
# steadier figure. Atoll is pinned to CPU 0 with one proxy thread, wrk to CPU 1; logs go to a
# file.
#
#   scripts/bench-observability.sh                 # 3 rounds of 10 s each way
#   ROUNDS=5 DURATION=5s scripts/bench-observability.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
ON_PORT=18110
OFF_PORT=18120
source scripts/lib/bench.sh
cargo build --release --workspace --bins --examples >&2

on_total=0; off_total=0; on_cpu_total=0; off_cpu_total=0
echo "| round | on: requests/s | on: p99 | on: CPU µs/request | off: requests/s | off: p99 | off: CPU µs/request | requests/s on ÷ off | CPU on ÷ off |"
echo "|---|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  start_atoll $ON_PORT "{metrics: on, access_log: on}" info
  read -r on_rps on_p99 on_cpu < <(run_wrk_cpu $ON_PORT)
  on_requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  stop_last
  start_atoll $OFF_PORT "{metrics: off, access_log: off}" warn
  read -r off_rps off_p99 off_cpu < <(run_wrk_cpu $OFF_PORT)
  stop_last
  on_total=$(awk -v a="$on_total" -v b="$on_rps" 'BEGIN { print a + b }')
  off_total=$(awk -v a="$off_total" -v b="$off_rps" 'BEGIN { print a + b }')
  on_cpu_total=$(awk -v a="$on_cpu_total" -v b="$on_cpu" 'BEGIN { print a + b }')
  off_cpu_total=$(awk -v a="$off_cpu_total" -v b="$off_cpu" 'BEGIN { print a + b }')
  echo "| $round | $on_rps | $on_p99 | $on_cpu | $off_rps | $off_p99 | $off_cpu | $(ratio "$on_rps" "$off_rps") | $(ratio "$on_cpu" "$off_cpu") |"
done
lines=$(grep -c '"target":"atoll::access"' "$work/atoll-$ON_PORT.log" || true)
mean() { awk -v t="$1" -v n="$ROUNDS" 'BEGIN { printf "%.1f", t / n }'; }
echo "| mean | $(mean "$on_total") | | $(mean "$on_cpu_total") | $(mean "$off_total") | | $(mean "$off_cpu_total") | $(ratio "$on_total" "$off_total") | $(ratio "$on_cpu_total" "$off_cpu_total") |"
echo
echo "Last 'on' round: $on_requests requests answered, $lines access lines written."

