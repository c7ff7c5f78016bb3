# Helpers shared by the HTTP benchmark scripts, sourced from the repository root: a scratch
# directory `work` and the `pids` of started servers, both cleaned up on exit. Servers go on
# CPU 0, wrk on CPU 1; every wrk run is bounded by DURATION.

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}

command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }

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

cpu_ticks() { # pid -> user + system clock ticks of the whole process
  awk '{print $14 + $15}' "/proc/$1/stat"
}

# Like run_wrk for the server last started, plus the server's CPU time per answered request in
# µs (all its threads): a cost that the noise of a shared machine moves less than requests/s.
run_wrk_cpu() { # port -> requests/s, p99, CPU µs per request
  local pid=${pids[-1]} before after rps p99 requests
  before=$(cpu_ticks "$pid")
  read -r rps p99 < <(run_wrk "$1")
  after=$(cpu_ticks "$pid")
  requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  echo "$rps $p99 $(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
}

stop_last() { kill "${pids[-1]}" 2>/dev/null || true; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }

# Starts Atoll on CPU 0 serving hello (or the example tenant `component`) on `/hello` at
# `port`, with one proxy thread. `observability` is the config's observability mapping;
# `rust_log` the filter; logs go to `$work/atoll-<port>.log`.
start_atoll() { # port observability rust_log [component]
  cat >"$work/atoll-$1.yaml" <<YAML
listen: {http: 127.0.0.1:$1, admin: 127.0.0.1:0}
data_dir: $work/data-$1
threads: 1
observability: $2
tenants:
  bench:
    hosts: [localhost]
    functions:
      hello: {wasm: $PWD/tenants/target/wasm32-wasip2/release/${4:-hello}.wasm, routes: [/hello]}
YAML
  RUST_LOG=$3 taskset -c 0 target/release/atoll serve --log-format json --config "$work/atoll-$1.yaml" 2>"$work/atoll-$1.log" &
  pids+=($!)
  wait_for "$1"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }

# Starts nginx on CPU 0 with one worker and no access log, answering `return 200` on `/hello`
# at `port`; waits until it answers.
start_nginx() { # port
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
    listen 127.0.0.1:$1;
    location /hello { default_type text/plain; return 200 "Hello from Atoll!\n"; }
  }
}
CONF
  taskset -c 0 nginx -c "$work/nginx.conf" -p "$work/nginx" &
  pids+=($!)
  wait_for "$1"
}
