#!/usr/bin/env python3
"""HTTP/2 from clients (issue: HTTP/2, TLS and WebSockets): h2load against subgate, nginx and
HAProxy, each proxying to the same HTTP/1.1 backend (an nginx answering a small body), over h2c
(prior knowledge) and over TLS (ALPN h2). One worker / thread each pinned to PROXY_CPU, h2load on
CLIENT_CPU; reported per proxy: requests/s, and the proxy's CPU microseconds per request
(utime+stime from /proc), then subgate's ratio to the best peer (target <= 0.8).

    bench/h2_bench.py         (after scripts/setup.sh build bench; builds release)

Environment: ROUNDS (3), REQUESTS (100000), CLIENTS (10), STREAMS (10), PROXY_CPU (0), CLIENT_CPU (1).
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


def certificate(d):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", f"{d}/key.pem",
                    "-out", f"{d}/cert.pem"], check=True, capture_output=True, timeout=60)
    with open(f"{d}/both.pem", "w") as out:
        out.write(open(f"{d}/cert.pem").read() + open(f"{d}/key.pem").read())


def h2load(url):
    out = subprocess.run(["taskset", "-c", ib.CLIENT_CPU, "h2load", "-n", str(REQUESTS), "-c", str(CLIENTS),
                          "-m", str(STREAMS), url], capture_output=True, text=True, timeout=300).stdout
    done = out.split("requests: ")[1]
    succeeded = int(done.split(" succeeded")[0].split(",")[-1].split()[0])
    rps = float(out.split("finished in ")[1].split(",")[1].split()[0])
    if succeeded != REQUESTS:
        raise SystemExit(f"bench: {url}: only {succeeded} of {REQUESTS} succeeded\n{out}")
    return rps


def main():
    subprocess.run([os.path.join(ib.ROOT, "scripts", "setup.sh"), "build", "bench"], check=True)
    subprocess.run([os.path.join(ib.ROOT, "scripts", "build.sh"), "release", "subgate"], check=True)
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

        # subgate
        plain, tls = ib.free_port(), ib.free_port()
        conf = os.path.join(tmp, "subgate.conf")
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
        procs["subgate"] = ib.start([ib.subgate_bin(), "-c", conf, "-p", tmp], cpu=ib.PROXY_CPU)
        ports["subgate"] = (plain, tls)
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
        for mode, index, scheme in (("h2c", 0, "http"), ("tls", 1, "https")):
            results = {name: [] for name in ports}
            for name, pair in ports.items():  # warm-up
                h2load(f"{scheme}://127.0.0.1:{pair[index]}/")
            for _ in range(ROUNDS):
                for name, pair in ports.items():
                    pids = ib.pids_of(procs[name], name == "nginx")
                    before = sum(ib.cpu_seconds(p) for p in pids)
                    rps = h2load(f"{scheme}://127.0.0.1:{pair[index]}/")
                    used = sum(ib.cpu_seconds(p) for p in pids) - before
                    results[name].append((rps, used * 1e6 / REQUESTS))
            print(f"{mode}: {'proxy':<8} {'req/s':>9} {'µs/req':>7}")
            med = {}
            for name, rows in results.items():
                med[name] = statistics.median(u for _, u in rows)
                print(f"{mode}: {name:<8} {statistics.median(r for r, _ in rows):>9.0f} {med[name]:>7.2f}")
            best = min(med["nginx"], med["haproxy"])
            print(f"{mode}: subgate/best peer CPU per request {med['subgate'] / best:.2f}x (target <= 0.8)")
    finally:
        ib.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
