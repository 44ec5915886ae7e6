#!/usr/bin/env python3
"""HTTP/2 from clients (issue: HTTP/2, TLS and WebSockets): h2load against subgate, nginx and
HAProxy, each proxying to the same HTTP/1.1 backend (an nginx answering a small body), over h2c
(prior knowledge) and over TLS (ALPN h2). One worker / thread each pinned to PROXY_CPU, h2load on
CLIENT_CPU; reported per proxy (medians over rounds): requests/s, p99 latency (from h2load's
per-request log) and the proxy's CPU microseconds per request (utime+stime from /proc), then
subgate's ratio to the best peer (target <= 0.8).

    bench/h2_bench.py         (after scripts/setup.sh build bench; builds release)

Environment: ROUNDS (3), REQUESTS (100000), CLIENTS (10), STREAMS (10), PROXY_CPU (0), CLIENT_CPU (1),
BASELINE=PATH (also another subgate binary, e.g. a copy of build-release/subgate from before a
change, as "subgate-base", and subgate's ratio to it: a change's effect measured in the same run).
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ingress_bench as ib  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
REQUESTS = int(os.environ.get("REQUESTS", "100000"))
CLIENTS = int(os.environ.get("CLIENTS", "10"))
STREAMS = int(os.environ.get("STREAMS", "10"))
BASELINE = os.environ.get("BASELINE", "")


def certificate(d):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", f"{d}/key.pem",
                    "-out", f"{d}/cert.pem"], check=True, capture_output=True, timeout=60)
    with open(f"{d}/both.pem", "w") as out:
        out.write(open(f"{d}/cert.pem").read() + open(f"{d}/key.pem").read())


def h2load(url, log):
    """One h2load run: (requests/s, p99 latency in ms from its per-request log)."""
    if os.path.exists(log):
        os.remove(log)  # h2load appends to it: without this, p99 mixed every earlier run's requests
    out = subprocess.run(["taskset", "-c", ib.CLIENT_CPU, "h2load", "-n", str(REQUESTS), "-c", str(CLIENTS),
                          "-m", str(STREAMS), f"--log-file={log}", url],
                         capture_output=True, text=True, timeout=300).stdout
    done = out.split("requests: ")[1]
    succeeded = int(done.split(" succeeded")[0].split(",")[-1].split()[0])
    rps = float(out.split("finished in ")[1].split(",")[1].split()[0])
    if succeeded != REQUESTS:
        raise SystemExit(f"bench: {url}: only {succeeded} of {REQUESTS} succeeded\n{out}")
    with open(log) as f:  # start (µs since epoch), status, µs until the end of the response
        elapsed = sorted(int(line.split("\t")[2]) for line in f if line.strip())
    return rps, elapsed[min(len(elapsed) - 1, len(elapsed) * 99 // 100)] / 1000


def main():
    subprocess.run([os.path.join(ib.ROOT, "scripts", "setup.sh"), "build", "bench"], check=True)
    subprocess.run([os.path.join(ib.ROOT, "scripts", "build.sh"), "release", "subgate"], check=True)
    if BASELINE and not os.access(BASELINE, os.X_OK):
        raise SystemExit(f"bench: BASELINE={BASELINE} is not an executable")
    tmp = tempfile.mkdtemp(prefix="subgate-h2-bench-")
    try:
        certificate(tmp)
        backend = ib.free_port()
        ib.start_nginx(os.path.join(tmp, "backend"), f"""
            server {{ listen 127.0.0.1:{backend}; keepalive_requests 1000000;
                     location / {{ return 200 "hello world\\n"; }} }}""", cpu=ib.CLIENT_CPU)
        ib.wait_ready(backend)
        ports = {}
        procs = {}
        # subgate and nginx share these directives. keepalive: idle upstream connections kept,
        # above the CLIENTS x STREAMS (100) concurrent requests, else both reconnect upstream
        # (HAProxy keeps every one by default).
        upstream = f"upstream backend {{ server 127.0.0.1:{backend}; keepalive 128; }}"

        def listens(plain, tls):
            return (f"listen 127.0.0.1:{plain} http2; listen 127.0.0.1:{tls} ssl http2; "
                    f"ssl_certificate {tmp}/cert.pem; ssl_certificate_key {tmp}/key.pem;")

        def start_subgate(name, binary):
            plain, tls = ib.free_port(), ib.free_port()
            conf = os.path.join(tmp, f"{name}.conf")
            with open(conf, "w") as f:
                f.write(f"""
                    workers 1;
                    error_log stderr warn;
                    {upstream}
                    server {{
                        {listens(plain, tls)}
                        keepalive_requests 1000000;
                        location / {{ proxy_pass http://backend; }}
                    }}
                """)
            procs[name] = ib.start([binary, "-c", conf, "-p", tmp], cpu=ib.PROXY_CPU)
            ports[name] = (plain, tls)

        start_subgate("subgate", ib.subgate_bin())
        if BASELINE:
            start_subgate("subgate-base", BASELINE)
        # nginx
        plain, tls = ib.free_port(), ib.free_port()
        procs["nginx"] = ib.start_nginx(os.path.join(tmp, "nginx"), f"""
            {upstream}
            server {{
                {listens(plain, tls)}
                http2_max_requests 1000000;
                keepalive_requests 1000000;
                location / {{ proxy_pass http://backend; proxy_http_version 1.1;
                             proxy_set_header Connection ""; }}
            }}""", cpu=ib.PROXY_CPU)
        ports["nginx"] = (plain, tls)
        # HAProxy
        plain, tls = ib.free_port(), ib.free_port()
        hconf = os.path.join(tmp, "haproxy.cfg")
        with open(hconf, "w") as f:
            f.write(f"""
global
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always
frontend h2
    bind 127.0.0.1:{plain} proto h2
    bind 127.0.0.1:{tls} ssl crt {tmp}/both.pem alpn h2,http/1.1
    default_backend be
backend be
    server b1 127.0.0.1:{backend}
""")
        procs["haproxy"] = ib.start(["haproxy", "-f", hconf], cpu=ib.PROXY_CPU)
        ports["haproxy"] = (plain, tls)
        for name, (plain, tls) in ports.items():
            ib.wait_ready_port(plain)
            ib.wait_ready_port(tls)
        log = os.path.join(tmp, "h2load.log")
        for mode, index, scheme in (("h2c", 0, "http"), ("tls", 1, "https")):
            results = {name: [] for name in ports}
            for name, pair in ports.items():  # warm-up
                h2load(f"{scheme}://127.0.0.1:{pair[index]}/", log)
            names = list(ports)
            for round_index in range(ROUNDS):
                # Rotate the order so that no proxy always runs first.
                shift = round_index % len(names)
                for name in names[shift:] + names[:shift]:
                    pair = ports[name]
                    pids = ib.pids_of(procs[name], name == "nginx")
                    before = sum(ib.cpu_seconds(p) for p in pids)
                    rps, p99 = h2load(f"{scheme}://127.0.0.1:{pair[index]}/", log)
                    used = sum(ib.cpu_seconds(p) for p in pids) - before
                    results[name].append((rps, p99, used * 1e6 / REQUESTS))
            print(f"{mode}: {'proxy':<12} {'req/s':>9} {'p99 ms':>7} {'µs/req':>7}")
            med = {}
            for name, rows in results.items():
                med[name] = [statistics.median(row[i] for row in rows) for i in range(3)]
                rps, p99, cpu = med[name]
                print(f"{mode}: {name:<12} {rps:>9.0f} {p99:>7.2f} {cpu:>7.2f}")

            def ratios(other):
                """subgate's CPU per request over other's: of the medians, and the median of each
                round's own ratio (runs next to each other see the same load on a shared machine)."""
                per_round = statistics.median(a[2] / b[2] for a, b in zip(results["subgate"], results[other]))
                return (f"CPU per request {med['subgate'][2] / med[other][2]:.2f}x (per round {per_round:.2f}x),"
                        f" p99 {med['subgate'][1] / med[other][1]:.2f}x")

            best = min(("nginx", "haproxy"), key=lambda name: med[name][2])
            print(f"{mode}: subgate/best peer ({best}) {ratios(best)}; target CPU <= 0.8x")
            if BASELINE:
                print(f"{mode}: subgate/subgate-base {ratios('subgate-base')}")
    finally:
        ib.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
