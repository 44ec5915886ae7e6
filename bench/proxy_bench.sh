#!/usr/bin/env bash
# subgate next to nginx and HAProxy, all three in front of the same backend, on 127.0.0.1 only.
#
#   bench/proxy_bench.sh
#
# Environment: ROUNDS (3), DURATION (10s per wrk run), WARMUP (2s), CONNECTIONS (50),
#   PROXY_CPU (0: the proxies), CLIENT_CPU (1: wrk and the backend nginx),
#   SKIP_SUBGATE=1 (measure only nginx and HAProxy), DIRECT=1 (also subgate with `io_uring off;`,
#   as "subgate-direct": what the I/O batching saves), BASELINE=PATH (also another subgate binary,
#   e.g. a copy of build-release/subgate from before a change, as "subgate-base": the change's
#   effect measured in the same run), KEEP_TMP=1 (keep configs, logs, wrk output).
#
# Each proxy runs one worker (thread or process) without request logs, keeps connections to
# the backend alive and is pinned to PROXY_CPU. wrk (1 thread, CONNECTIONS connections) runs
# against each proxy in turn, ROUNDS interleaved rounds (the first proxy rotates). Per proxy, the
# medians over rounds of: requests/s, p50 and p99 latency (wrk --latency), CPU time per request
# (utime+stime from /proc/PID/stat, summed over the proxy's processes: nginx's master + worker),
# and CPU busy (that CPU time over the run's wall time: ~100% means the proxy was the bottleneck).
# The ratios are given twice: of those medians, and the median of each round's own ratio (runs
# next to each other see the same load on a shared machine).
# Config templates: bench/conf/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
conf_dir="$root/bench/conf"

rounds="${ROUNDS:-3}"
duration="${DURATION:-10s}"
warmup="${WARMUP:-2s}"
connections="${CONNECTIONS:-50}"
proxy_cpu="${PROXY_CPU:-0}"
client_cpu="${CLIENT_CPU:-1}"
skip_subgate="${SKIP_SUBGATE:-0}"
direct="${DIRECT:-0}"
baseline="${BASELINE:-}"
[[ "$duration" =~ ^[0-9]+$ ]] && duration="${duration}s"
[[ "$warmup" =~ ^[0-9]+$ ]] && warmup="${warmup}s"
[[ "$duration" =~ ^[0-9]+s$ && "$warmup" =~ ^[0-9]+s$ && "$rounds" =~ ^[1-9][0-9]*$ ]] || {
  echo "bench: DURATION and WARMUP are seconds (10 or 10s), ROUNDS a positive integer" >&2
  exit 2
}
[[ -z "$baseline" || -x "$baseline" ]] || {
  echo "bench: BASELINE=$baseline is not an executable" >&2
  exit 2
}

log() { echo "bench: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# --- what we need ------------------------------------------------------------------------
if [[ "$skip_subgate" == 1 ]]; then
  "$root/scripts/setup.sh" bench
else
  "$root/scripts/setup.sh" build bench
  "$root/scripts/build.sh" release subgate
fi
for cpu in "$proxy_cpu" "$client_cpu"; do
  taskset -c "$cpu" true 2>/dev/null || die "CPU $cpu is not available (set PROXY_CPU / CLIENT_CPU)"
done
clk_tck="$(getconf CLK_TCK)"
# /usr/sbin is not on a normal user's PATH on Debian.
nginx_bin="$(PATH="$PATH:/usr/sbin:/sbin" command -v nginx)" || die "nginx is not installed"
haproxy_bin="$(PATH="$PATH:/usr/sbin:/sbin" command -v haproxy)" || die "haproxy is not installed"

tmp="$(mktemp -d /tmp/subgate-bench.XXXXXX)"
pids=()
wrk_pid=""

# --- processes ---------------------------------------------------------------------------
# descendants PID: PID and every process below it (nginx's workers are the master's children).
descendants() {
  local stat line ppid pid p all=("$1") frontier=("$1") next
  while [[ ${#frontier[@]} -gt 0 ]]; do
    next=()
    for stat in /proc/[0-9]*/stat; do
      [[ -r "$stat" ]] || continue
      read -r line <"$stat" 2>/dev/null || continue
      line="${line##*) }"
      read -r _ ppid _ <<<"$line"
      pid="${stat#/proc/}"
      pid="${pid%/stat}"
      for p in "${frontier[@]}"; do
        if [[ "$ppid" == "$p" ]]; then
          next+=("$pid")
        fi
      done
    done
    all+=("${next[@]}")
    frontier=("${next[@]}")
  done
  echo "${all[@]}"
}

stop_all() {
  local pid p tree=() i
  if [[ -n "${wrk_pid:-}" ]]; then
    kill -TERM "$wrk_pid" 2>/dev/null || true
  fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    read -r -a tree <<<"$(descendants "$pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    for p in "${tree[@]}"; do
      kill -KILL "$p" 2>/dev/null || true
    done
    wait "$pid" 2>/dev/null || true
  done
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then
    log "kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# free_port: a port no TCP socket on this machine uses (any state, IPv4 or IPv6).
declare -A taken=()
free_port() {
  local hex port
  while read -r hex; do
    taken[$((16#$hex))]=1
  done < <(awk 'FNR > 1 { split($2, a, ":"); print a[2] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  while true; do
    port=$((20000 + RANDOM % 30000))
    if [[ -z "${taken[$port]+set}" ]]; then
      taken[$port]=1
      echo "$port"
      return
    fi
  done
}

# render TEMPLATE OUT PREFIX PORT: fills in the @...@ placeholders.
render() {
  sed -e "s|@PREFIX@|$3|g" -e "s|@PORT@|$4|g" -e "s|@BACKEND_PORT@|${backend_port:-0}|g" "$1" >"$2"
}

# wait_ready NAME PID PORT LOG: polls until the port answers 200, at most 10 s.
wait_ready() {
  local name="$1" pid="$2" port="$3" logf="$4" i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$logf" >&2; die "$name exited while starting"; }
    if curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$logf" >&2
  die "$name did not answer on 127.0.0.1:$port within 10 s"
}

# start NAME CPU PORT COMMAND...: starts a server in the background pinned to CPU.
declare -A proxy_pid=() proxy_port=()
start() {
  local name="$1" cpu="$2" port="$3"
  shift 3
  taskset -c "$cpu" "$@" >"$tmp/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_ready "$name" "$pid" "$port" "$tmp/$name.log"
  proxy_pid[$name]=$pid
  proxy_port[$name]=$port
  log "$name ready on 127.0.0.1:$port (pid $pid, CPU $cpu)"
}

start_nginx() {  # NAME CPU TEMPLATE
  local prefix="$tmp/$1" port
  port="$(free_port)"
  mkdir -p "$prefix"
  render "$3" "$prefix/nginx.conf" "$prefix" "$port"
  "$nginx_bin" -t -q -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf" ||
    die "nginx rejects $prefix/nginx.conf"
  start "$1" "$2" "$port" "$nginx_bin" -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf"
}

start_haproxy() {
  local prefix="$tmp/haproxy" port
  port="$(free_port)"
  mkdir -p "$prefix"
  render "$conf_dir/haproxy.cfg" "$prefix/haproxy.cfg" "$prefix" "$port"
  "$haproxy_bin" -c -q -f "$prefix/haproxy.cfg" || die "haproxy rejects $prefix/haproxy.cfg"
  start haproxy "$proxy_cpu" "$port" "$haproxy_bin" -db -f "$prefix/haproxy.cfg"
}

start_subgate() {  # NAME [EXTRA DIRECTIVE [BINARY]]
  local prefix="$tmp/$1" port bin="${3:-$root/build-release/subgate}"
  port="$(free_port)"
  mkdir -p "$prefix"
  render "$conf_dir/subgate.conf" "$prefix/subgate.conf" "$prefix" "$port"
  [[ -n "${2:-}" ]] && echo "$2" >>"$prefix/subgate.conf"
  [[ -x "$bin" ]] || die "$bin is missing"
  start "$1" "$proxy_cpu" "$port" "$bin" -c "$prefix/subgate.conf" -p "$prefix"
}

# cpu_ticks PID: utime+stime of PID and its descendants, in clock ticks.
cpu_ticks() {
  local total=0 p line f
  for p in $(descendants "$1"); do
    read -r line <"/proc/$p/stat" 2>/dev/null || continue
    line="${line##*) }"
    read -r -a f <<<"$line"
    # f[0] is field 3 (state): utime is field 14, stime field 15.
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

# to_ms VALUE: wrk latency (e.g. 812.00us, 1.23ms, 1.01s) in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.3f", n }'
}

# --- the run -----------------------------------------------------------------------------
start_nginx backend "$client_cpu" "$conf_dir/backend.nginx.conf"
backend_port="${proxy_port[backend]}"

proxies=()
if [[ "$skip_subgate" != 1 ]]; then
  start_subgate subgate
  proxies+=(subgate)
  if [[ "$direct" == 1 ]]; then
    start_subgate subgate-direct "io_uring off;"
    proxies+=(subgate-direct)
  fi
  if [[ -n "$baseline" ]]; then
    start_subgate subgate-base "" "$baseline"
    proxies+=(subgate-base)
  fi
fi
start_nginx nginx "$proxy_cpu" "$conf_dir/proxy.nginx.conf"
proxies+=(nginx)
start_haproxy
proxies+=(haproxy)

for name in "${proxies[@]}"; do
  body="$(curl -fsS --max-time 5 "http://127.0.0.1:${proxy_port[$name]}/")" ||
    die "$name: request through the proxy failed"
  [[ "$body" == "hello world" ]] || die "$name: unexpected body from the backend: $body"
done

# run_wrk NAME DURATION OUT: in the background, so that a signal stops the script at once.
run_wrk() {
  timeout -k 5 $((${2%s} + 30)) taskset -c "$client_cpu" \
    wrk -t1 -c"$connections" -d"$2" --latency "http://127.0.0.1:${proxy_port[$1]}/" >"$3" 2>&1 &
  wrk_pid=$!
  wait "$wrk_pid"
}

log "warming up (${warmup} each)"
for name in "${proxies[@]}"; do
  run_wrk "$name" "$warmup" "$tmp/warmup-$name.txt" || die "wrk failed against $name"
done

results="$tmp/results.tsv"
: >"$results"
for ((round = 1; round <= rounds; round++)); do
  # Rotate the order so that no proxy always runs first.
  order=("${proxies[@]:$(((round - 1) % ${#proxies[@]}))}" "${proxies[@]:0:$(((round - 1) % ${#proxies[@]}))}")
  for name in "${order[@]}"; do
    out="$tmp/wrk-$name-$round.txt"
    log "round $round/$rounds: $name (${duration})"
    before="$(cpu_ticks "${proxy_pid[$name]}")"
    start_ns="$(date +%s%N)"
    run_wrk "$name" "$duration" "$out" || { cat "$out" >&2; die "wrk failed against $name"; }
    end_ns="$(date +%s%N)"
    after="$(cpu_ticks "${proxy_pid[$name]}")"

    requests="$(awk '/ requests in /{print $1}' "$out")"
    rps="$(awk '/^Requests\/sec:/{print $2}' "$out")"
    p50="$(awk '$1 == "50%" {print $2}' "$out")"
    p99="$(awk '$1 == "99%" {print $2}' "$out")"
    [[ -n "$requests" && "$requests" -gt 0 && -n "$p50" && -n "$p99" ]] ||
      { cat "$out" >&2; die "cannot read wrk's output for $name"; }
    if grep -qE '^ *(Socket errors|Non-2xx or 3xx responses):' "$out"; then
      log "WARNING: $name, round $round: $(grep -E '^ *(Socket errors|Non-2xx or 3xx responses):' "$out" |
        sed 's/^ *//' | paste -sd ';' -)"
    fi
    awk -v n="$name" -v r="$round" -v rps="$rps" -v p50="$(to_ms "$p50")" -v p99="$(to_ms "$p99")" \
      -v ticks=$((after - before)) -v hz="$clk_tck" -v req="$requests" \
      -v wall_ns=$((end_ns - start_ns)) 'BEGIN {
        cpu_us = ticks * 1e6 / hz
        printf "%s\t%d\t%.0f\t%.3f\t%.3f\t%.2f\t%.0f\n", n, r, rps, p50, p99, cpu_us / req,
               100 * cpu_us * 1000 / wall_ns }' >>"$results"
  done
done

# --- report ------------------------------------------------------------------------------
# median PROXY COLUMN (3 req/s, 4 p50, 5 p99, 6 CPU us/req, 7 CPU %)
median() {
  awk -F'\t' -v n="$1" -v c="$2" '$1 == n {print $c}' "$results" | sort -g |
    awk '{a[NR] = $1} END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

echo
echo "proxy benchmark: wrk -t1 -c$connections -d$duration, $rounds round(s), medians;" \
  "proxies on CPU $proxy_cpu, wrk + backend on CPU $client_cpu"
printf '%-15s %10s %9s %9s %13s %9s\n' proxy 'req/s' 'p50 ms' 'p99 ms' 'CPU us/req' 'CPU busy'
declare -A cpu_req=() p99s=()
for name in "${proxies[@]}"; do
  cpu_req[$name]="$(median "$name" 6)"
  p99s[$name]="$(median "$name" 5)"
  printf '%-15s %10.0f %9.3f %9.3f %13.2f %8.0f%%\n' "$name" "$(median "$name" 3)" \
    "$(median "$name" 4)" "${p99s[$name]}" "${cpu_req[$name]}" "$(median "$name" 7)"
done
echo
if [[ "$skip_subgate" == 1 ]]; then
  echo "subgate skipped (SKIP_SUBGATE=1): no ratios"
else
  # round_ratio A B: the median over rounds of A's CPU per request over B's in the same round.
  round_ratio() {
    awk -F'\t' -v a="$1" -v b="$2" '$1 == a {x[$2] = $6} $1 == b {y[$2] = $6}
      END { for (r in x) if (y[r] > 0) print x[r] / y[r] }' "$results" | sort -g |
      awk '{v[NR] = $1} END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
  }
  for other in nginx haproxy; do
    awk -v o="$other" -v c1="${cpu_req[subgate]}" -v c2="${cpu_req[$other]}" \
      -v p1="${p99s[subgate]}" -v p2="${p99s[$other]}" -v rr="$(round_ratio subgate "$other")" 'BEGIN {
        printf "subgate / %-8s CPU per request %.2fx (per round %.2fx)   p99 %.2fx\n", o,
               (c2 > 0 ? c1 / c2 : 0), rr, (p2 > 0 ? p1 / p2 : 0) }'
  done
  if [[ "$direct" == 1 ]]; then
    awk -v rr="$(round_ratio subgate subgate-direct)" -v c1="${cpu_req[subgate]}" \
      -v c2="${cpu_req[subgate-direct]}" 'BEGIN {
        printf "subgate / subgate-direct (io_uring off) CPU per request %.2fx (per round %.2fx)\n",
               (c2 > 0 ? c1 / c2 : 0), rr }'
  fi
  if [[ -n "$baseline" ]]; then
    awk -v rr="$(round_ratio subgate subgate-base)" -v c1="${cpu_req[subgate]}" \
      -v c2="${cpu_req[subgate-base]}" -v p1="${p99s[subgate]}" -v p2="${p99s[subgate-base]}" 'BEGIN {
        printf "subgate / subgate-base (BASELINE) CPU per request %.2fx (per round %.2fx)   p99 %.2fx\n",
               (c2 > 0 ? c1 / c2 : 0), rr, (p2 > 0 ? p1 / p2 : 0) }'
  fi
fi
