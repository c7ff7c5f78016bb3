#!/usr/bin/env bash
# HTTP throughput of `hello` through Atoll next to Pingora alone and nginx, in the same run.
# Each server is pinned to CPU 0 with one worker thread; wrk is pinned to CPU 1. Loopback only;
# every wrk run is bounded in time. Prints a Markdown table with ratios.
#
#   scripts/bench-http.sh            # 10 s per server, 32 connections
#   DURATION=5s CONNECTIONS=64 scripts/bench-http.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
ATOLL_PORT=18080
BASELINE_PORT=18090
NGINX_PORT=18100
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
cargo build --release -p atoll-gateway --bin atoll --example pingora_baseline >&2

wait_for() { # port
  for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$1/hello" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "bench: nothing answers on port $1" >&2
  exit 1
}

run_wrk() { # port -> requests/s and p99 (ms)
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$1/hello" >"$work/wrk.txt"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  echo "$rps $p99"
}

stop_last() { kill "${pids[-1]}" 2>/dev/null || true; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }

# Atoll: hello with a fresh instance per request, metrics on, access to the admin listener.
cat >"$work/atoll.yaml" <<YAML
listen: {http: 127.0.0.1:$ATOLL_PORT, admin: 127.0.0.1:0}
data_dir: $work/data
threads: 1
tenants:
  bench:
    hosts: [localhost]
    functions:
      hello: {wasm: $PWD/tenants/target/wasm32-wasip2/release/hello.wasm, routes: [/hello]}
YAML
RUST_LOG=warn taskset -c 0 target/release/atoll serve --config "$work/atoll.yaml" 2>"$work/atoll.log" &
pids+=($!)
wait_for $ATOLL_PORT
read -r atoll_rps atoll_p99 < <(run_wrk $ATOLL_PORT)
stop_last

taskset -c 0 target/release/examples/pingora_baseline 127.0.0.1:$BASELINE_PORT 2>/dev/null &
pids+=($!)
wait_for $BASELINE_PORT
read -r base_rps base_p99 < <(run_wrk $BASELINE_PORT)
stop_last

nginx_rps="n/a"; nginx_p99="n/a"
if command -v nginx >/dev/null; then
  mkdir -p "$work/nginx"
  cat >"$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /hello { default_type text/plain; return 200 "Hello from Atoll!\n"; }
  }
}
CONF
  taskset -c 0 nginx -c "$work/nginx.conf" -p "$work/nginx" &
  pids+=($!)
  wait_for $NGINX_PORT
  read -r nginx_rps nginx_p99 < <(run_wrk $NGINX_PORT)
  stop_last
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "| server (1 core, wrk -c$CONNECTIONS -d$DURATION) | requests/s | p99 | Atoll ÷ this |"
echo "|---|---|---|---|"
echo "| Atoll, hello, fresh instance per request | $atoll_rps | $atoll_p99 | 1.00 |"
echo "| Pingora alone, answer from request_filter | $base_rps | $base_p99 | $(ratio "$atoll_rps" "$base_rps") |"
echo "| nginx \`return 200\` | $nginx_rps | $nginx_p99 | $(ratio "$atoll_rps" "$nginx_rps") |"
