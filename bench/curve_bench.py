#!/usr/bin/env python3
"""The plain proxy across the load curve: subgate, nginx and HAProxy in front of the same
backend, from one keep-alive client to many, HTTP/1.1, h2c and h2 over TLS, in one run and one
table of ratios (issue 20: "cheapest per request at every concurrency").

    bench/curve_bench.py        (after scripts/setup.sh build test bench; builds release)

Points (name: client, protocol, connections x streams):
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
gives subgate's CPU per request over the best peer's at that point (target <= 0.75), and its p50
and p99 over that peer's (target <= 1).

Environment: ROUNDS (3), DURATION (5), WARMUP (1), POINTS (comma-separated names; all),
PROXY_CPU (0), CLIENT_CPU (1), BASELINE=PATH (another subgate binary as "subgate-base", and
subgate's CPU ratio to it per point), SUBGATE_DIRECTIVES (added to subgate's server blocks).
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ingress_bench as ib  # noqa: E402  (processes, ports, CPU time, nginx)
from h2_bench import certificate  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "5"))
WARMUP = int(os.environ.get("WARMUP", "1"))
BASELINE = os.environ.get("BASELINE", "")
SUBGATE_DIRECTIVES = os.environ.get("SUBGATE_DIRECTIVES", "")

# name: (client, listener, connections, streams)
ALL_POINTS = {
    "h1-1": ("wrk", "h1", 1, 1),
    "h1-10": ("wrk", "h1", 10, 1),
    "h1-50": ("wrk", "h1", 50, 1),
    "h1-200": ("wrk", "h1", 200, 1),
    "h1tls-50": ("wrk", "tls", 50, 1),
    "h2c-1x1": ("h2load", "h2c", 1, 1),
    "h2c-10x5": ("h2load", "h2c", 10, 5),
    "h2c-10x10": ("h2load", "h2c", 10, 10),
    "h2c-20x20": ("h2load", "h2c", 20, 20),
    "h2tls-1x1": ("h2load", "tls", 1, 1),
    "h2tls-10x5": ("h2load", "tls", 10, 5),
    "h2tls-10x10": ("h2load", "tls", 10, 10),
    "h2tls-20x20": ("h2load", "tls", 20, 20),
}
POINTS = [p for p in os.environ.get("POINTS", ",".join(ALL_POINTS)).split(",") if p]
PEERS = ("nginx", "haproxy")


def milliseconds(text):
    """wrk's latency ("812.00us", "1.20ms", "2.00s") in ms."""
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * scale
    raise ValueError(text)


def run_wrk(url, connections, seconds):
    """(requests, requests/s, p50 ms, p99 ms)."""
    out = subprocess.run(["taskset", "-c", ib.CLIENT_CPU, "wrk", "-t1", f"-c{connections}",
                          f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"bench: wrk {url}: errors or non-2xx answers\n{out}")
    requests = int(out.split(" requests in ")[0].split()[-1])
    rps = float(out.split("Requests/sec:")[1].split()[0])
    p50 = milliseconds(out.split(" 50%")[1].split()[0])
    p99 = milliseconds(out.split(" 99%")[1].split()[0])
    return requests, rps, p50, p99


def run_h2load(url, clients, streams, seconds, log):
    """(requests, requests/s, p50 ms, p99 ms), from h2load's per-request log."""
    if os.path.exists(log):
        os.remove(log)  # h2load appends to it
    out = subprocess.run(["taskset", "-c", ib.CLIENT_CPU, "h2load", "-D", str(seconds), "-c", str(clients),
                          "-m", str(streams), "-t", "1", f"--log-file={log}", url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    if "errored" in out and " 0 errored" not in out:
        raise SystemExit(f"bench: h2load {url}: errors\n{out}")
    with open(log) as f:  # start (µs since epoch), status, µs until the end of the response
        rows = [line.split("\t") for line in f if line.strip()]
    if not rows or any(not row[1].startswith("2") for row in rows):
        raise SystemExit(f"bench: h2load {url}: no answers, or non-2xx ones\n{out}")
    elapsed = sorted(int(row[2]) for row in rows)
    rps = float(out.split("finished in ")[1].split(",")[1].split()[0])
    pick = lambda q: elapsed[min(len(elapsed) - 1, len(elapsed) * q // 100)] / 1000  # noqa: E731
    return len(elapsed), rps, pick(50), pick(99)


def main():
    unknown = [p for p in POINTS if p not in ALL_POINTS]
    if unknown:
        raise SystemExit(f"bench: unknown POINTS {unknown}; known: {', '.join(ALL_POINTS)}")
    subprocess.run([os.path.join(ib.ROOT, "scripts", "setup.sh"), "build", "bench"], check=True)
    subprocess.run([os.path.join(ib.ROOT, "scripts", "build.sh"), "release", "subgate"], check=True)
    if BASELINE and not os.access(BASELINE, os.X_OK):
        raise SystemExit(f"bench: BASELINE={BASELINE} is not an executable")
    tmp = tempfile.mkdtemp(prefix="subgate-curve-bench-")
    try:
        certificate(tmp)
        backend = ib.free_port()
        ib.start_nginx(os.path.join(tmp, "backend"), f"""
            server {{ listen 127.0.0.1:{backend}; keepalive_requests 1000000;
                     location / {{ return 200 "hello world\\n"; }} }}""", cpu=ib.CLIENT_CPU)
        ib.wait_ready(backend)
        # Idle upstream connections kept above the most requests in flight (20 x 20 = 400, 200
        # connections), else subgate and nginx reconnect upstream (HAProxy keeps every one).
        upstream = f"upstream backend {{ server 127.0.0.1:{backend}; keepalive 512; }}"
        listeners = {}  # proxy: {"h1": port, "h2c": port, "tls": port}
        procs = {}

        def ports():
            return {"h1": ib.free_port(), "h2c": ib.free_port(), "tls": ib.free_port()}

        def start_subgate(name, binary):
            p = ports()
            conf = os.path.join(tmp, f"{name}.conf")
            with open(conf, "w") as f:
                f.write(f"""
                    workers 1;
                    error_log stderr warn;
                    {upstream}
                    server {{
                        listen 127.0.0.1:{p["h1"]};
                        listen 127.0.0.1:{p["h2c"]} http2;
                        listen 127.0.0.1:{p["tls"]} ssl http2;
                        ssl_certificate {tmp}/cert.pem; ssl_certificate_key {tmp}/key.pem;
                        keepalive_requests 1000000;
                        access_log off;
                        {SUBGATE_DIRECTIVES if name == "subgate" else ""}
                        location / {{ proxy_pass http://backend; }}
                    }}
                """)
            procs[name] = ib.start([binary, "-c", conf, "-p", tmp], cpu=ib.PROXY_CPU)
            listeners[name] = p

        start_subgate("subgate", ib.subgate_bin())
        if BASELINE:
            start_subgate("subgate-base", os.path.abspath(BASELINE))
        p = ports()
        procs["nginx"] = ib.start_nginx(os.path.join(tmp, "nginx"), f"""
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
            }}""", cpu=ib.PROXY_CPU)
        listeners["nginx"] = p
        p = ports()
        hconf = os.path.join(tmp, "haproxy.cfg")
        with open(hconf, "w") as f:
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
    server b1 127.0.0.1:{backend}
""")
        procs["haproxy"] = ib.start(["haproxy", "-f", hconf], cpu=ib.PROXY_CPU)
        listeners["haproxy"] = p
        for p in listeners.values():
            for port in p.values():
                ib.wait_ready_port(port)

        names = list(listeners)
        log = os.path.join(tmp, "h2load.log")
        results = {}  # (point, proxy): [(rps, p50, p99, cpu µs/req)]
        for point in POINTS:
            client, listener, connections, streams = ALL_POINTS[point]
            scheme = "https" if listener == "tls" else "http"

            def once(name, seconds):
                url = f"{scheme}://127.0.0.1:{listeners[name][listener]}/"
                if client == "wrk":
                    return run_wrk(url, connections, seconds)
                return run_h2load(url, connections, streams, seconds, log)

            for name in names:
                once(name, WARMUP)
            for round_index in range(ROUNDS):
                shift = round_index % len(names)
                for name in names[shift:] + names[:shift]:
                    pids = ib.pids_of(procs[name], name == "nginx")
                    before = sum(ib.cpu_seconds(pid) for pid in pids)
                    requests, rps, p50, p99 = once(name, DURATION)
                    used = sum(ib.cpu_seconds(pid) for pid in pids) - before
                    results.setdefault((point, name), []).append((rps, p50, p99, used * 1e6 / requests))
            summary = "  ".join(f"{name} {statistics.median(r[3] for r in results[(point, name)]):.1f}"
                                for name in names)
            ib.log(f"{point}: CPU µs/req {summary}")

        def median(point, name, i):
            return statistics.median(row[i] for row in results[(point, name)])

        print(f"\nthe load curve (CPU µs per request, p50/p99 ms; medians of {ROUNDS} x {DURATION}s; "
              f"ratios: subgate over the cheapest peer at that point)")
        header = (f"{'point':<12} {'subgate':>8} {'nginx':>8} {'haproxy':>8} {'peer':>8} {'CPU':>6} "
                  f"{'p50':>6} {'p99':>6} {'sg p50':>7} {'sg p99':>7}")
        if BASELINE:
            header += f" {'vs base':>8}"
        print(header)
        for point in POINTS:
            cpu = {name: median(point, name, 3) for name in names}
            peer = min(PEERS, key=lambda name: cpu[name])
            line = (f"{point:<12} {cpu['subgate']:>8.1f} {cpu['nginx']:>8.1f} {cpu['haproxy']:>8.1f} "
                    f"{peer:>8} {cpu['subgate'] / cpu[peer]:>5.2f}x "
                    f"{median(point, 'subgate', 1) / median(point, peer, 1):>5.2f}x "
                    f"{median(point, 'subgate', 2) / median(point, peer, 2):>5.2f}x "
                    f"{median(point, 'subgate', 1):>7.3f} {median(point, 'subgate', 2):>7.3f}")
            if BASELINE:
                line += f" {cpu['subgate'] / cpu['subgate-base']:>7.2f}x"
            print(line)
        print("targets: CPU <= 0.75x and p99 <= 1.00x the cheapest peer at every point")
    finally:
        ib.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
