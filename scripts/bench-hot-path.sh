#!/usr/bin/env bash
# The fresh-instance hot path against its peers, one run, one core each (issue 17's table):
# `hello` through Atoll with the access log off and on (JSON lines to a file), the same
# component under `wasmtime serve -Scli`, and nginx `return 200`. Servers on CPU 0, wrk on
# CPU 1 (`wrk -t1 -c$CONNECTIONS`), every run bounded by DURATION; loopback only. Prints a
# Markdown table with the date, requests/s, p99, the server's CPU µs per request and the ratios.
#
#   scripts/bench-hot-path.sh                    # 10 s per server, 32 connections
#   ATOLL=target/release/atoll-mimalloc scripts/bench-hot-path.sh   # another build
set -euo pipefail
cd "$(dirname "$0")/.."

ATOLL_PORT=18380
LOGGED_PORT=18381
WASMTIME_PORT=18382
NGINX_PORT=18383
ATOLL=${ATOLL:-target/release/atoll}
source scripts/lib/bench.sh
[[ -n "${NO_BUILD:-}" ]] || cargo build --release --workspace --bins --examples >&2
hello=$PWD/tenants/target/wasm32-wasip2/release/hello.wasm

start() { # port access_log
  cat >"$work/atoll-$1.yaml" <<YAML
listen: {http: 127.0.0.1:$1, admin: 127.0.0.1:0}
data_dir: $work/data-$1
threads: 1
observability: {metrics: on, access_log: $2}
tenants:
  bench:
    hosts: [localhost, 127.0.0.1]
    functions:
      hello: {wasm: $hello, routes: [/hello]}
YAML
  RUST_LOG=info taskset -c 0 "$ATOLL" serve --log-format json --config "$work/atoll-$1.yaml" 2>"$work/atoll-$1.log" &
  pids+=($!)
  wait_for "$1"
}

start $ATOLL_PORT off
read -r off_rps off_p99 off_cpu < <(run_wrk_cpu $ATOLL_PORT)
stop_last
start $LOGGED_PORT on
read -r on_rps on_p99 on_cpu < <(run_wrk_cpu $LOGGED_PORT)
stop_last
lines=$(grep -c '"atoll::access"' "$work/atoll-$LOGGED_PORT.log" || true)

wt_rps="n/a"; wt_p99="n/a"; wt_cpu="n/a"
wasmtime=$(command -v wasmtime || echo "$HOME/.cargo/bin/wasmtime")
if [[ -x "$wasmtime" ]]; then
  taskset -c 0 "$wasmtime" serve -Scli --addr 127.0.0.1:$WASMTIME_PORT "$hello" 2>/dev/null &
  pids+=($!)
  wait_for $WASMTIME_PORT
  read -r wt_rps wt_p99 wt_cpu < <(run_wrk_cpu $WASMTIME_PORT)
  stop_last
fi

start_nginx $NGINX_PORT
read -r nginx_rps nginx_p99 < <(run_wrk $NGINX_PORT)
stop_last

echo
echo "Run of $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), wrk -t1 -c$CONNECTIONS -d$DURATION, $ATOLL"
echo
echo "| server (1 core) | requests/s | p99 | CPU µs/request | Atoll (log off) ÷ this |"
echo "|---|---|---|---|---|"
echo "| Atoll \`hello\`, access log off | $off_rps | $off_p99 | $off_cpu | 1.00 |"
echo "| Atoll \`hello\`, access log on ($lines lines) | $on_rps | $on_p99 | $on_cpu | $(ratio "$off_rps" "$on_rps") |"
echo "| \`wasmtime serve -Scli\` \`hello\` | $wt_rps | $wt_p99 | $wt_cpu | $(ratio "$off_rps" "$wt_rps") |"
echo "| nginx \`return 200\` | $nginx_rps | $nginx_p99 | n/a (workers) | $(ratio "$off_rps" "$nginx_rps") |"
