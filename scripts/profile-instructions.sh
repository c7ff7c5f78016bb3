#!/usr/bin/env bash
# Instructions per request: `hello` through Atoll and Pingora alone, each run under
# `valgrind --tool=callgrind`, which counts instructions whatever the host's noise. Prints the
# totals per request and, for Atoll, the heaviest inclusive entries per request. Loopback only;
# every load run is bounded by DURATION with one connection. Takes about 2 minutes.
#
#   scripts/profile-instructions.sh              # 20 s of load per server
#   DURATION=10s KEEP=1 scripts/profile-instructions.sh   # keep the callgrind files
#   COMPONENT=raw_wasip2 scripts/profile-instructions.sh  # another example tenant on /hello
#
# valgrind cannot reserve the pooling allocator's usual address space, so Atoll runs here with a
# pool of 2 instances (the figures per request do not depend on the pool's size).
set -euo pipefail
cd "$(dirname "$0")/.."

ATOLL_PORT=18280
BASELINE_PORT=18290
DURATION=${DURATION:-20s}
command -v valgrind >/dev/null || { echo "profile: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "profile: wrk is missing (apt-get install wrk)" >&2; exit 1; }
[[ -n "${NO_BUILD:-}" ]] || cargo build --release --workspace --bins --examples >&2
ATOLL=${ATOLL:-target/release/atoll}

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n "${KEEP:-}" ]]; then echo "callgrind files kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

wait_for() { # port
  for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$1/hello" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "profile: nothing answers on port $1" >&2
  exit 1
}

# Counts instructions while wrk sends requests for DURATION over one connection, after a
# warm-up; prints "instructions requests".
measure() { # name port
  local pid=${pids[-1]} requests
  for _ in 1 2 3 4 5; do curl -fsS -o /dev/null "http://127.0.0.1:$2/hello"; done
  callgrind_control -i on "$pid" >/dev/null
  callgrind_control -z "$pid" >/dev/null
  wrk -t1 -c1 -d"$DURATION" "http://127.0.0.1:$2/hello" >"$work/$1.wrk"
  callgrind_control -d "$pid" >/dev/null
  requests=$(awk '/requests in/ {print $1}' "$work/$1.wrk")
  for _ in $(seq 1 100); do
    compgen -G "$work/$1.out.*" >/dev/null && break
    sleep 0.1
  done
  sleep 1 # the dump is written by the profiled process; let it finish
  echo "$(awk '/^totals:/ {print $2}' "$work/$1".out.*) $requests"
}

cat >"$work/atoll.yaml" <<YAML
listen: {http: 127.0.0.1:$ATOLL_PORT, admin: 127.0.0.1:0}
data_dir: $work/data
threads: 1
pool: {total_instances: 2, max_memory: 64MiB}
limits: {concurrency: 2}
observability: {metrics: on, access_log: off}
tenants:
  bench:
    hosts: [localhost]
    functions:
      hello: {wasm: $PWD/tenants/target/wasm32-wasip2/release/${COMPONENT:-hello}.wasm, routes: [/hello]}
YAML
RUST_LOG=warn valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/atoll.out" \
  "$ATOLL" serve --config "$work/atoll.yaml" 2>"$work/atoll.log" &
pids+=($!)
wait_for $ATOLL_PORT
read -r atoll_ir atoll_requests < <(measure atoll $ATOLL_PORT)
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'

valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/baseline.out" \
  target/release/examples/pingora_baseline 127.0.0.1:$BASELINE_PORT 2>"$work/baseline.log" &
pids+=($!)
wait_for $BASELINE_PORT
read -r base_ir base_requests < <(measure baseline $BASELINE_PORT)

per() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%.0f", t / n }'; }
atoll_per=$(per "$atoll_ir" "$atoll_requests")
base_per=$(per "$base_ir" "$base_requests")
echo "| server | requests counted | instructions per request | ÷ Pingora alone |"
echo "|---|---|---|---|"
echo "| Atoll \`hello\`, fresh instance per request | $atoll_requests | $atoll_per | $(awk -v a="$atoll_per" -v b="$base_per" 'BEGIN { printf "%.2f", a / b }') |"
echo "| Pingora alone | $base_requests | $base_per | 1.00 |"
echo
echo "Atoll, heaviest inclusive entries (instructions per request):"
callgrind_annotate --inclusive=yes "$work"/atoll.out.* 2>/dev/null |
  grep -E '^ *[0-9,]+ \(' | grep -v 'PROGRAM TOTALS' | head -40 |
  sed -E 's#/root/.cargo/registry/src/[^/]+/##; s#/rustc/[0-9a-f]+/##' |
  awk -v n="$atoll_requests" '{ c = $1; gsub(",", "", c); sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, ""); printf "%9.0f  %s\n", c / n, substr($0, 1, 180) }'
