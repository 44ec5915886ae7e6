#!/usr/bin/env python3
"""The plain proxy across the load curve: subgate, nginx and HAProxy in front of the same
backend, from one keep-alive client to many, HTTP/1.1, h2c and h2 over TLS, in one run and one
table of ratios (issue 20: "cheapest per request at every concurrency").

    bench/curve_bench.py        (after scripts/setup.sh build bench; builds release)

Points (bench/benchlib.py; any h1-N, h1tls-N, h2c-CxS, h2tls-CxS may be named):
  h1-1, h1-10, h1-50, h1-200    wrk -t1 over HTTP/1.1 keep-alive, 1 / 10 / 50 / 200 connections
  h1tls-50                      wrk over HTTP/1.1 and TLS, 50 connections
  h2c-1x1 ... h2c-20x20         h2load over h2c (prior knowledge), clients x streams: 1x1, 10x5,
                                10x10, 20x20
  h2tls-1x1 ... h2tls-20x20     the same over TLS (ALPN h2)
Each proxy runs one worker (thread or process) pinned to PROXY_CPU, keeps its upstream
connections alive, and logs no requests; the clients and the backend (nginx answering a small
body) share CLIENT_CPU. Every point runs ROUNDS times per proxy, DURATION seconds each after a
WARMUP, the proxies in a rotating order. Per point and proxy, the medians over rounds of:
requests/s, p50 and p99 latency (wrk --latency; h2load's per-request log) and the proxy's CPU
microseconds per request (utime+stime from /proc, nginx's master and worker summed). The table
gives subgate's CPU per request over the best peer's at that point (target <= 0.75; also as the
median of each round's own ratio, "per rd"), and its p50 and p99 over that peer's (target <= 1).

Environment: ROUNDS (3), DURATION (5), WARMUP (1), POINTS (comma-separated names; the curve),
PROXY_CPU (0), CLIENT_CPU (1), SUBGATE_DIRECTIVES (added to subgate's config, main context, say
'io_coalesce off;' or 'request_id off;'; not to BASELINE's: with BASELINE a copy of the same
binary, the ratio to it is the directives' effect), DIRECT=1 (also subgate with `io_uring off;`
as "subgate-direct", and subgate's CPU ratio to it per point: what the I/O batching saves),
BASELINE=PATH (another subgate binary, say a copy of build-release/subgate from before a change,
as "subgate-base", and subgate's CPU ratio to it per point: a change's effect in one run),
KEEP_TMP=1 (keep the configs), SYSCALLS=1 (one more run per point and proxy under
`perf stat -e raw_syscalls:sys_enter`: system calls per request, "sg sys" and "peer sys"; needs
root). Always: context switches per request ("sg cs", "peer cs", from /proc/PID/task/*/status),
which with the system calls are most of what a proxy's request costs on a VM. FLOOR=1 (also
bench/floor_relay.c at the plain HTTP/1.1 and h2c points, with epoll and with io_uring: a relay
that copies bytes between each client and its own backend connection and does nothing else: at
one connection the least any proxy's process can spend per request through either interface
(under load a proxy that batches can spend less); at h2c it relays to the
backend's h2c port, one multiplexed upstream connection per client, what an HTTP/2 upstream
would give; printed as its CPU over the cheapest peer, "floor ep" and "floor ur", "-" where it
does not run). PROFILE=1 (one
more run per point and proxy under `perf record -g`: each proxy's CPU per request split into
user space, context switches, waking other processes, the TCP/IP stack and the rest of the
kernel; needs root). PEER_H2=1 (also HAProxy with `proto h2` to the backend's h2c port, as
"haproxy-h2": not a peer for the ratios; printed as its CPU and p99 against HAProxy's with
HTTP/1.1 upstreams: what HTTP/2 upstreams cost or save a proxy that has them). MUX=1 (also
bench/mux_relay.c at the HTTP/1.1 points: HTTP/1.1 clients multiplexed onto h2c connections to
the backend, each turn's frames sent together, so requests share segments; printed as its CPU,
context switches and system calls per request, over subgate's and, with FLOOR, over
floor-epoll's, which does the same least HTTP work with a backend connection per client: what
HTTP/2 upstreams with batching would save, the question PEER_H2 leaves open). RELAY_PAUSE (µs,
default 0: off): subgate's io_coalesce pause in floor-epoll's and mux-relay's loops; mux-relay
batches little without it. One point, as
the former bench/proxy_bench.sh and bench/h2_bench.py measured: POINTS=h1-50, or
POINTS=h2c-10x10,h2tls-10x10.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "5"))
WARMUP = int(os.environ.get("WARMUP", "1"))
BASELINE = os.environ.get("BASELINE", "")
DIRECT = os.environ.get("DIRECT") == "1"
SYSCALLS = os.environ.get("SYSCALLS") == "1"
PROFILE = os.environ.get("PROFILE") == "1"
FLOOR = os.environ.get("FLOOR") == "1"
PEER_H2 = os.environ.get("PEER_H2") == "1"
MUX = os.environ.get("MUX") == "1"
RELAY_PAUSE = os.environ.get("RELAY_PAUSE", "0")
SUBGATE_DIRECTIVES = os.environ.get("SUBGATE_DIRECTIVES", "")
FLOORS = ("floor-epoll", "floor-uring")
PEERS = ("nginx", "haproxy")


def main():
    points = bl.points_from_env()
    bl.prepare("build", "bench")
    if BASELINE and not os.access(BASELINE, os.X_OK):
        raise SystemExit(f"bench: BASELINE={BASELINE} is not an executable")
    tmp = bl.temp_dir("subgate-curve-bench-")
    try:
        bl.certificate(tmp)
        backend = bl.free_port()
        backend_h2c = bl.free_port()  # for FLOOR's relays at the h2c points and PEER_H2
        bl.start_nginx(os.path.join(tmp, "backend"), f"""
            server {{ listen 127.0.0.1:{backend}; listen 127.0.0.1:{backend_h2c} http2;
                     keepalive_requests 1000000000;
                     location / {{ return 200 "hello world\\n"; }} }}""", cpu=bl.CLIENT_CPU)
        bl.wait_ready(backend)
        bl.wait_ready_port(backend_h2c)
        # Idle upstream connections kept above the most requests in flight (20 x 20 = 400, 200
        # connections), else subgate and nginx reconnect upstream (HAProxy keeps every one).
        upstream = f"upstream backend {{ server 127.0.0.1:{backend}; keepalive 512; }}"
        targets = {}

        def ports():
            return {"h1": bl.free_port(), "h2c": bl.free_port(), "tls": bl.free_port()}

        def start_subgate(name, binary, directives):
            p = ports()
            conf = os.path.join(tmp, f"{name}.conf")
            with open(conf, "w") as f:
                f.write(f"""
                    workers 1;
                    error_log stderr warn;
                    {directives}
                    {upstream}
                    server {{
                        listen 127.0.0.1:{p["h1"]};
                        listen 127.0.0.1:{p["h2c"]} http2;
                        listen 127.0.0.1:{p["tls"]} ssl http2;
                        ssl_certificate {tmp}/cert.pem; ssl_certificate_key {tmp}/key.pem;
                        keepalive_requests 1000000;
                        access_log off;
                        location / {{ proxy_pass http://backend; }}
                    }}
                """)
            targets[name] = bl.Target(bl.start([binary, "-c", conf, "-p", tmp], cpu=bl.PROXY_CPU), p)

        start_subgate("subgate", bl.subgate_bin(), SUBGATE_DIRECTIVES)
        if DIRECT:
            start_subgate("subgate-direct", bl.subgate_bin(), SUBGATE_DIRECTIVES + " io_uring off;")
        if BASELINE:
            start_subgate("subgate-base", os.path.abspath(BASELINE), "")
        p = ports()
        proc = bl.start_nginx(os.path.join(tmp, "nginx"), f"""
            {upstream}
            server {{
                listen 127.0.0.1:{p["h1"]};
                listen 127.0.0.1:{p["h2c"]} http2;
                listen 127.0.0.1:{p["tls"]} ssl http2;
                ssl_certificate {tmp}/cert.pem; ssl_certificate_key {tmp}/key.pem;
                http2_max_requests 1000000;
                keepalive_requests 1000000;
                location / {{ proxy_pass http://backend; proxy_http_version 1.1;
                             proxy_set_header Connection ""; }}
            }}""", cpu=bl.PROXY_CPU)
        targets["nginx"] = bl.Target(proc, p, with_children=True)

        def start_haproxy(name, server):
            p = ports()
            conf = os.path.join(tmp, f"{name}.cfg")
            with open(conf, "w") as f:
                f.write(f"""
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always
frontend fe
    bind 127.0.0.1:{p["h1"]}
    bind 127.0.0.1:{p["h2c"]} proto h2
    bind 127.0.0.1:{p["tls"]} ssl crt {tmp}/both.pem alpn h2,http/1.1
    default_backend be
backend be
    {server}
""")
            targets[name] = bl.Target(bl.start(["haproxy", "-f", conf], cpu=bl.PROXY_CPU), p)

        start_haproxy("haproxy", f"server b1 127.0.0.1:{backend}")
        if PEER_H2:
            # Not a peer for the ratios: what HTTP/2 upstreams (multiplexed, with HAProxy's own
            # batching) cost a proxy that has them, against its HTTP/1.1 keep-alive upstreams.
            start_haproxy("haproxy-h2", f"server b1 127.0.0.1:{backend_h2c} proto h2")
        # The relays' pause (bench/floor_relay.c's epoll loop, bench/mux_relay.c).
        os.environ["RELAY_PAUSE_US"] = RELAY_PAUSE
        if FLOOR:
            relay = os.path.join(tmp, "floor_relay")
            source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor_relay.c")
            subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-o", relay, source, "-luring"],
                           check=True)
            for name in FLOORS:
                p = {"h1": bl.free_port(), "h2c": bl.free_port()}
                routes = [f"{p['h1']}:{backend}", f"{p['h2c']}:{backend_h2c}"]
                targets[name] = bl.Target(bl.start([relay, name.split("-")[1], *routes],
                                                   cpu=bl.PROXY_CPU), p)
        if MUX:
            relay = os.path.join(tmp, "mux_relay")
            source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mux_relay.c")
            subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-o", relay, source, "-lnghttp2"],
                           check=True)
            p = {"h1": bl.free_port()}
            targets["mux-relay"] = bl.Target(
                bl.start([relay, f"{p['h1']}:{backend_h2c}"], cpu=bl.PROXY_CPU), p)
        for target in targets.values():
            for port in target.ports.values():
                bl.wait_ready_port(port)

        results = bl.sweep(points, targets, ROUNDS, DURATION, WARMUP, tmp, syscalls=SYSCALLS,
                           profiled=PROFILE)

        def median(point, name, i):
            return bl.median(results, point, name, i)

        print(f"\nthe load curve (CPU µs per request, p50/p99 ms; medians of {ROUNDS} x {DURATION}s; "
              f"ratios: subgate over the cheapest peer at that point)")
        header = (f"{'point':<12} {'subgate':>8} {'nginx':>8} {'haproxy':>8} {'peer':>8} {'CPU':>6} {'per rd':>6} "
                  f"{'p50':>6} {'p99':>6} {'sg p50':>7} {'sg p99':>7}")
        if DIRECT:
            header += f" {'vs direct':>9}"
        if BASELINE:
            header += f" {'vs base':>8}"
        header += f" {'sg cs':>6} {'peer cs':>7}"
        if SYSCALLS:
            header += f" {'sg sys':>6} {'peer sys':>8}"
        if FLOOR:
            header += f" {'floor ep':>8} {'floor ur':>8}"
        print(header)
        for point in points:
            cpu = {name: median(point, name, 3) for name in targets if (point, name) in results}
            peer = min(PEERS, key=lambda name: cpu[name])
            line = (f"{point:<12} {cpu['subgate']:>8.1f} {cpu['nginx']:>8.1f} {cpu['haproxy']:>8.1f} "
                    f"{peer:>8} {cpu['subgate'] / cpu[peer]:>5.2f}x "
                    f"{bl.round_ratio(results, point, 'subgate', peer):>5.2f}x "
                    f"{median(point, 'subgate', 1) / median(point, peer, 1):>5.2f}x "
                    f"{median(point, 'subgate', 2) / median(point, peer, 2):>5.2f}x "
                    f"{median(point, 'subgate', 1):>7.3f} {median(point, 'subgate', 2):>7.3f}")
            if DIRECT:
                line += f" {cpu['subgate'] / cpu['subgate-direct']:>8.2f}x"
            if BASELINE:
                line += f" {cpu['subgate'] / cpu['subgate-base']:>7.2f}x"
            line += f" {median(point, 'subgate', 4):>6.2f} {median(point, peer, 4):>7.2f}"
            if SYSCALLS:
                calls = [results.get((point, name, "syscalls")) for name in ("subgate", peer)]
                line += "".join(f" {c:>{w}.2f}" if c is not None else f" {'-':>{w}}"
                                for c, w in zip(calls, (6, 8)))
            if FLOOR:
                line += "".join(f" {cpu[name] / cpu[peer]:>7.2f}x" if name in cpu else f" {'-':>8}"
                                for name in FLOORS)
            print(line)
        print("targets: CPU <= 0.75x and p99 <= 1.00x the cheapest peer at every point")
        if FLOOR:
            print("\nthe floor relays (CPU µs, context switches and, with SYSCALLS, system calls per request)")
            print(f"{'point':<12} {'target':<12} {'CPU':>6} {'cs':>6} {'sys':>6} {'vs subgate':>10}")
            for point in points:
                for name in FLOORS:
                    if (point, name) not in results:
                        continue
                    calls = results.get((point, name, "syscalls"))
                    print(f"{point:<12} {name:<12} {median(point, name, 3):>6.1f} "
                          f"{median(point, name, 4):>6.2f} "
                          + (f"{calls:>6.2f}" if calls is not None else f"{'-':>6}")
                          + f" {median(point, name, 3) / median(point, 'subgate', 3):>9.2f}x")
        if PEER_H2:
            print("\nHAProxy with HTTP/2 to its backend (proto h2): CPU µs per request, p99 ms")
            print(f"{'point':<12} {'h1 CPU':>7} {'h2 CPU':>7} {'h2/h1':>6} {'h1 p99':>7} {'h2 p99':>7}"
                  f" {'subgate/h2':>10}")
            for point in points:
                if (point, "haproxy-h2") not in results:
                    continue
                h1, h2 = median(point, "haproxy", 3), median(point, "haproxy-h2", 3)
                print(f"{point:<12} {h1:>7.1f} {h2:>7.1f} {h2 / h1:>5.2f}x "
                      f"{median(point, 'haproxy', 2):>7.3f} {median(point, 'haproxy-h2', 2):>7.3f} "
                      f"{median(point, 'subgate', 3) / h2:>9.2f}x")
        if MUX:
            print("\nthe multiplexing relay (CPU µs, context switches and, with SYSCALLS, system calls per"
                  " request; its CPU over subgate's and, with FLOOR, over floor-epoll's)")
            print(f"{'point':<12} {'CPU':>6} {'cs':>6} {'sys':>6} {'vs subgate':>10} {'vs floor ep':>11}")
            for point in points:
                if (point, "mux-relay") not in results:
                    continue
                calls = results.get((point, "mux-relay", "syscalls"))
                cpu = median(point, "mux-relay", 3)
                line = (f"{point:<12} {cpu:>6.1f} {median(point, 'mux-relay', 4):>6.2f} "
                        + (f"{calls:>6.2f}" if calls is not None else f"{'-':>6}")
                        + f" {cpu / median(point, 'subgate', 3):>9.2f}x")
                if (point, "floor-epoll") in results:
                    line += f" {cpu / median(point, 'floor-epoll', 3):>10.2f}x"
                print(line)
        if PROFILE:
            bl.print_profile(results, points, targets)
    finally:
        bl.stop_all()
        bl.remove_temp_dir(tmp)


if __name__ == "__main__":
    main()
